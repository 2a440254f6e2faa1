"""Gate many days of one table with a few Great Expectations runs, each day judged as if alone.

A range run (a year's history) would otherwise pay GX's per-expectation overhead once per day and
file: about a second per file even when the table is tiny, far more than the data costs. Instead:

* the **row-level** expectations (a column exists; a value is not null, matches its pattern, lies in
  its range or its closed set) and the keys (unique within a day: the day joins the key) run ONCE
  on all the days' rows together. Every row passes or fails them on its own, so the union passes
  exactly when every day does;
* the **per-day** expectations (row count, a column's mean, a share of nulls) are checked per day
  on the day's own rows;
* a day that fails either (the union is bisected to find which) is validated again **exactly as a
  night would be** — one GX run of the whole suite on that day alone — and that report is the one
  the caller sees. So a day's outcome, and the message that names its file, column and rule, never
  depends on the range it was gated in.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from typing import Any

from glideslope.quality.validate import ValidationReport, run_expectations

log = logging.getLogger(__name__)

DAY_COLUMN = "__glideslope_day"

# Expectations a row passes or fails on its own (GX's class names).
ROW_LEVEL = {"ExpectColumnToExist", "ExpectColumnValuesToMatchRegex", "ExpectColumnValuesToBeBetween",
             "ExpectColumnValuesToBeInSet"}


def _split(expectations: list[Any]) -> tuple[list[Any], list[Any]]:
    """(expectations to run on the union, expectations checked per day)."""
    import great_expectations.expectations as gxe

    union: list[Any] = []
    per_day: list[Any] = []
    for e in expectations:
        kind = type(e).__name__
        if kind in ROW_LEVEL or (kind == "ExpectColumnValuesToNotBeNull" and e.mostly in (None, 1, 1.0)):
            union.append(e)
        elif kind == "ExpectColumnValuesToBeUnique":
            union.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=[e.column, DAY_COLUMN]))
        elif kind == "ExpectCompoundColumnsToBeUnique":
            union.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=[*e.column_list, DAY_COLUMN]))
        else:
            per_day.append(e)
    return union, per_day


def _between(value: Any, lo: Any, hi: Any) -> bool:
    return value is not None and (lo is None or value >= lo) and (hi is None or value <= hi)


def _day_holds(df: Any, expectations: list[Any]) -> bool:
    """Whether ``df`` (one day) passes every per-day expectation; an unknown kind says no (the
    day is then validated exactly)."""
    import pandas as pd

    for e in expectations:
        kind = type(e).__name__
        if kind == "ExpectTableRowCountToBeBetween":
            ok = _between(len(df), e.min_value, e.max_value)
        elif kind == "ExpectColumnMeanToBeBetween":
            values = pd.to_numeric(df[e.column], errors="coerce") if e.column in df else None
            mean = None if values is None or values.notna().sum() == 0 else float(values.mean())
            ok = _between(mean, e.min_value, e.max_value)
        elif kind == "ExpectColumnValuesToNotBeNull":
            ok = e.column in df and (len(df) == 0 or df[e.column].notna().mean() >= e.mostly)
        elif kind == "ExpectColumnValuesToBeNull":
            ok = e.column in df and (len(df) == 0 or df[e.column].isna().mean() >= (e.mostly or 1.0))
        else:
            ok = False
        if not ok:
            return False
    return True


def _failing_days(days: list[str], frames: Mapping[str, Any], expectations: list[Any], suite: str) -> set[str]:
    """The days among ``days`` whose rows break an expectation of the union: one GX run for all of
    them; when it fails, each half again, down to the single days that fail."""
    import pandas as pd

    if not days or not expectations:
        return set()
    union = pd.concat([frames[d].assign(**{DAY_COLUMN: d}) for d in days], ignore_index=True)
    # GX ties an expectation to the suite it ran in: each run gets its own copies.
    report = run_expectations(union, [copy.copy(e) for e in expectations], f"{len(days)} days {days[0]}..{days[-1]}",
                              suite)
    if report.success:
        return set()
    if len(days) == 1:
        return {days[0]}
    half = len(days) // 2
    return _failing_days(days[:half], frames, expectations, suite) | _failing_days(days[half:], frames,
                                                                                    expectations, suite)


def failing_days(frames: Mapping[str, Any], expectations: list[Any], suite: str) -> set[str]:
    """The days of ``frames`` (day -> its rows) that break one of ``expectations`` on their own."""
    days = sorted(frames)
    union, per_day = _split(expectations)
    suspects = {d for d in days if not _day_holds(frames[d], per_day)}
    suspects |= _failing_days([d for d in days if d not in suspects], frames, union, suite)
    if suspects:
        log.info("%s: %d of %d days break a rule; each is validated on its own: %s", suite, len(suspects), len(days),
                 ", ".join(sorted(suspects)[:10]))
    return suspects


def validate_by_day(frames: Mapping[str, Any], expectations: list[Any], suite: str,
                    exact: Callable[[str], ValidationReport], files: Mapping[str, str]) -> dict[str, ValidationReport]:
    """Each day's report for ``frames`` (day -> its rows) under ``expectations``.

    ``exact(day)`` validates one day exactly as a night would (and may check more than
    ``expectations``: its report is the day's); it runs only for the days that fail here. A day that
    passes gets a report with its rows and the number of expectations it passed.
    """
    days = sorted(frames)
    suspects = set(days) if len(days) <= 1 else failing_days(frames, expectations, suite)
    return {d: exact(d) if d in suspects else
            ValidationReport(file=files[d], suite=suite, rows=len(frames[d]), evaluated=len(expectations))
            for d in days}
