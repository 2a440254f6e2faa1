"""``glideslope check --usecase NAME``: is a use case ready to run, before any of its DAGs runs?

What it checks, in order, stopping at the first broken step (each names the file to fix):

1. the spec loads (fields, metrics of the task, outputs that cover the stages);
2. every quality suite it names exists and is valid;
3. the feed and the transform import and define ``deliveries``/``reference`` and ``build``;
4. the Feast repository parses as ``feast apply`` would, with the spec's service and prediction view;
5. Airflow builds the use case's DAGs (one per stage) from dags/ (parsed with the embedded profile's
   settings, so nothing is read from or written to ``~/airflow``; no database is needed);
6. the calendar: on the nights the data shows (published label and scoring tables, else the landed
   raw files, else what ``feed.deliveries()`` returns), can a training window hold too few nights
   with events for its holdout, a holdout too few rows for ``promotion.min_slice_rows``, or the
   monitor's current window too few for ``drift.min_rows``? Each such case is a warning naming the
   field, the window and an example range of nights; warnings do not fail the check.

The data contract of the transform's outputs is checked on its first ETL run (glideslope.contract).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from glideslope.config import STAGES


def _steps(uc: Any) -> list[tuple[str, Callable[[], str]]]:
    from glideslope.quality.suites import load_suite
    from glideslope.usecase_modules import load_module

    def suites() -> str:
        names = [s.suite for s in uc.sources if s.suite] + list(uc.output_suites.values())
        for n in names:
            load_suite(uc, n)
        return f"{len(names)} suites"

    def modules() -> str:
        wanted = {uc.feed: ("deliveries", "reference"), uc.transform: ("build",)}
        for module, functions in wanted.items():
            mod = load_module(uc, module)
            absent = [f for f in functions if not callable(getattr(mod, f, None))]
            if absent:
                raise ValueError(f"{uc.folder / (module + '.py')}: defines no {', '.join(absent)}()")
        return f"{uc.feed}.py, {uc.transform}.py"

    def feast_repo() -> str:
        from glideslope.features.repo import load_definitions

        c = load_definitions(uc)
        return f"{len(c.feature_views)} feature views, service {uc.features.service}"

    def dags() -> str:
        from airflow.dag_processing.dagbag import DagBag

        from glideslope.config import PROJECT_ROOT

        bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
        errors = {f: e for f, e in bag.import_errors.items() if uc.name in str(e) or "usecase_specs" not in f}
        if errors:
            raise ValueError("DAG import errors:\n" + "\n".join(f"{f}:\n{e}" for f, e in errors.items()))
        missing = [uc.dag_id(s) for s in STAGES if uc.dag_id(s) not in bag.dags]
        if missing:
            raise ValueError(f"Airflow did not build {missing}")
        return ", ".join(uc.dag_id(s) for s in STAGES)

    return [("quality suites", suites), ("feed and transform", modules), ("Feast repository", feast_repo),
            ("DAGs", dags)]


# ---------------------------------------------------------------------------------------------
# the calendar: can a window be empty on the nights this use case's data has?

FEED_NIGHTS_MAX = 120  # nights asked of feed.deliveries() by default: it may read a large file per night


@dataclass(frozen=True)
class Calendar:
    """Rows per night of one table, as seen in the data.

    ``where`` says what was read (for the messages); ``rows`` maps a night (YYYY-MM-DD) to its row
    count. A night between the first and the last one seen that has no entry had no rows.
    """

    where: str
    rows: dict[str, int]
    suite: str | None = None  # the quality file that gates what was read (its rows.min)

    def nights(self) -> list[tuple[str, int]]:
        """Every night from the first seen to the last, with its rows (0 where none were seen)."""
        if not self.rows:
            return []
        first, last = date.fromisoformat(min(self.rows)), date.fromisoformat(max(self.rows))
        days = ((first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1))
        return [(d, self.rows.get(d, 0)) for d in days]

    def quiet_runs(self) -> list[tuple[str, str, int]]:
        """Runs of consecutive nights without rows: (first night, last night, length), in order."""
        runs: list[tuple[str, str, int]] = []
        start: str | None = None
        nights = self.nights()
        for i, (night, rows) in enumerate(nights):
            if rows == 0 and start is None:
                start = night
            if start is not None and (rows > 0 or i == len(nights) - 1):
                end = night if rows == 0 else nights[i - 1][0]
                runs.append((start, end, (date.fromisoformat(end) - date.fromisoformat(start)).days + 1))
                start = None
        return runs

    def summary(self) -> str:
        nights = self.nights()
        if not nights:
            return f"{self.where}: no nights"
        quiet = sum(1 for _, rows in nights if rows == 0)
        return f"{self.where}: {len(nights)} nights {nights[0][0]}..{nights[-1][0]}, {quiet} without events"


def _windows(nights: list[tuple[str, int]], size: int) -> list[list[tuple[str, int]]]:
    """Every run of ``size`` consecutive entries of ``nights``."""
    return [nights[i:i + size] for i in range(len(nights) - size + 1)] if size > 0 else []


def _span(window: list[tuple[str, int]]) -> str:
    return f"{window[0][0]}..{window[-1][0]}"


def _quiet_length(window: list[tuple[str, int]]) -> int:
    return max((r[2] for r in Calendar("", dict(window)).quiet_runs()), default=0)


def _longest_quiet(window: list[tuple[str, int]]) -> str:
    """The longest run of nights without events inside ``window``, for the message."""
    quiet = Calendar("", dict(window)).quiet_runs()
    if not quiet:
        return ""
    first, last, length = max(quiet, key=lambda r: r[2])
    return f"; nights without events {first}..{last} ({length})"


def window_warnings(uc: Any, labelled: Calendar | None, scored: Calendar | None) -> list[str]:
    """What can go wrong with the spec's windows on these calendars, one warning per field.

    ``labelled`` holds the rows per night of the label table (what training reads), ``scored``
    those of the scoring table (what the monitor's current window is made of). As training and the
    monitor count them: a training window is ``training.window_days`` calendar nights, and its
    holdout the last ``training.holdout_days`` nights *with events* in it; the monitor's current
    window is the last ``drift.reference_days`` nights with predictions. So a quiet night never
    empties a holdout or the monitor's window, but a break can leave a training window too few
    nights with events to train at all, and a window of sparse nights too few rows for a verdict.
    """
    out: list[str] = []
    if labelled is not None:
        t = uc.training
        nights = labelled.nights()
        need = t.holdout_days + 1
        windows = _windows(nights, t.window_days)
        if windows:
            # The window with the fewest nights with events; among those, the one with the longest break.
            worst = min(windows, key=lambda w: (sum(1 for _, rows in w if rows), -_quiet_length(w)))
            events = sum(1 for _, rows in worst if rows)
            if events < need:
                out.append(f"training.window_days: {t.window_days} — a training window ({t.window_days} calendar "
                           f"nights) can hold only {events} nights with events in {labelled.where} (e.g. "
                           f"{_span(worst)}{_longest_quiet(worst)}), fewer than training.holdout_days + 1 = {need}: "
                           "training on such a day fails; widen window_days or shorten holdout_days")
        with_events = [(d, rows) for d, rows in nights if rows]
        holdouts = _windows(with_events, t.holdout_days)
        if holdouts and uc.promotion.slices:
            thinnest = min(holdouts, key=lambda w: sum(rows for _, rows in w))
            rows = sum(r for _, r in thinnest)
            if rows < uc.promotion.min_slice_rows:
                out.append(f"training.holdout_days: {t.holdout_days} — a holdout ({t.holdout_days} nights with "
                           f"events) can hold as few as {rows} rows in {labelled.where} (e.g. the nights "
                           f"{_span(thinnest)}), fewer than promotion.min_slice_rows {uc.promotion.min_slice_rows}: "
                           "no slice is judged; lengthen holdout_days or lower min_slice_rows")
    if scored is not None:
        d = uc.drift
        with_events = [(night, rows) for night, rows in scored.nights() if rows]
        if not with_events:
            out.append(f"drift.reference_days: {d.reference_days} — {scored.where} has no night with events: "
                       "the monitor has nothing to check")
        else:
            # Fewer nights with events than the window: the window holds them all.
            windows = _windows(with_events, min(d.reference_days, len(with_events)))
            if windows:
                thinnest = min(windows, key=lambda w: sum(rows for _, rows in w))
                rows = sum(r for _, r in thinnest)
                if rows < d.min_rows:
                    out.append(f"drift.min_rows: {d.min_rows} — the monitor's current window (the last "
                               f"{d.reference_days} nights with predictions) can hold as few as {rows} scored "
                               f"events in {scored.where} (e.g. the nights {_span(thinnest)}): on such nights "
                               "the monitor gives no drift verdict; lengthen drift.reference_days or lower min_rows")
    return out


def row_minimum_warnings(uc: Any, calendars: list[Calendar]) -> list[str]:
    """A suite whose ``rows.min`` the calendar's nights do not reach: the gate rejects those nights."""
    from glideslope.quality.suites import load_suite

    out = []
    for cal in {c.where: c for c in calendars}.values():
        if not cal.suite:
            continue
        minimum = load_suite(uc, cal.suite).rows.min or 0
        # Only nights with a file: a night without one never reaches the gate.
        short = sorted((night, rows) for night, rows in cal.rows.items() if rows < minimum)
        if short:
            eg = ", ".join(f"{night}: {rows}" for night, rows in short[:3])
            out.append(f"quality/{cal.suite} rows.min: {minimum} — {len(short)} of the {len(cal.rows)} nights of "
                       f"{cal.where} hold fewer rows (e.g. {eg}): the gate rejects them; a use case whose events "
                       "skip nights says rows.min: 0")
    return out


def csv_rows(data: bytes) -> int:
    """Data rows of a delivered CSV file (its header excluded; quoted line breaks kept in their row)."""
    text = data.decode("utf-8", errors="replace")
    return max(sum(1 for row in csv.reader(io.StringIO(text)) if row) - 1, 0)


def calendar_sources(uc: Any) -> tuple[str | None, str | None]:
    """The daily sources that stand for the label table and the scoring table before the ETL ran.

    The source named like the table when there is one; else the first daily source dated on its own
    night (``day_offset`` 0) for the labels and the first one dated later for the events to score.
    """
    daily = [s for s in uc.sources if s.kind == "daily"]
    names = {s.name for s in daily}

    def pick(table: str, offset_zero: bool) -> str | None:
        if table in names:
            return table
        for s in daily:
            if (s.day_offset == 0) == offset_zero:
                return s.name
        return daily[0].name if daily else None

    return pick(uc.label.table, True), pick(uc.scoring.table, False)


def _in_range(rows: dict[str, int], start: str | None, end: str | None) -> dict[str, int]:
    return {d: n for d, n in rows.items() if (start is None or d >= start) and (end is None or d <= end)}


def _from_lake(uc: Any, start: str | None, end: str | None) -> tuple[Calendar, Calendar] | None:
    """Rows per night of the published label and scoring tables, or of the landed raw files."""
    from glideslope.backlog import partition_rows
    from glideslope.lake import Lake

    lake = Lake.for_usecase(uc.name)

    def published(table: str) -> dict[str, int]:
        out = {}
        for night in lake.partitions(lake.curated(table)):
            out[night] = partition_rows(lake, lake.curated(table, night)) or 0
        return _in_range(out, start, end)

    labelled, scored = published(uc.label.table), published(uc.scoring.table)
    if labelled:
        def curated(table: str, rows: dict[str, int]) -> Calendar:
            return Calendar(f"curated/{table}", rows, uc.output_suites.get(f"curated/{table}"))

        return (curated(uc.label.table, labelled),
                curated(uc.scoring.table, scored) if scored else curated(uc.label.table, labelled))

    def landed(source: str) -> dict[str, int]:
        folder = f"{lake.base}/raw/{source}"
        if not lake.fs.exists(folder):
            return {}
        out = {}
        for p in lake.fs.ls(folder, detail=False):
            name = str(p).rstrip("/").rsplit("/", 1)[-1]
            raw = lake.raw(source, name[3:])
            if not name.startswith("ds=") or not lake.fs.exists(raw):
                continue
            # The gate's reading (Parquet) beside the file tells its rows from the footer; else count the CSV.
            rows = partition_rows(lake, lake.parsed(raw))
            out[name[3:]] = rows if rows is not None else csv_rows(lake.fs.cat_file(raw))
        return _in_range(out, start, end)

    label_source, scored_source = calendar_sources(uc)
    raw_labelled = landed(label_source) if label_source else {}
    if raw_labelled:
        raw_scored = landed(scored_source) if scored_source else {}
        return (Calendar(f"raw/{label_source}", raw_labelled, uc.source(label_source).suite),
                Calendar(f"raw/{scored_source}", raw_scored, uc.source(scored_source).suite) if raw_scored
                else Calendar(f"raw/{label_source}", raw_labelled, uc.source(label_source).suite))
    return None


def feed_range(uc: Any, start: str | None, end: str | None) -> tuple[str, str]:
    """The nights asked of the feed: the given ones; else the demo's history; else from start_date on,
    twice the longest window. Never past end_date; at most FEED_NIGHTS_MAX nights unless ``end`` is given."""
    longest = max(uc.training.window_days, uc.drift.reference_days)
    if start is None and end is None and uc.demo is not None:
        first, last = uc.demo.history_start, uc.demo.history_end
    else:
        first = date.fromisoformat(start) if start else uc.start_date
        last = date.fromisoformat(end) if end else first + timedelta(days=2 * longest - 1)
    if end is None:
        last = min(last, first + timedelta(days=FEED_NIGHTS_MAX - 1))
    if uc.end_date is not None:
        last = min(last, uc.end_date)
    return first.isoformat(), last.isoformat()


def _from_feed(uc: Any, start: str | None, end: str | None) -> tuple[Calendar, Calendar]:
    from glideslope.usecase_modules import load_module

    feed = load_module(uc, uc.feed)
    label_source, scored_source = calendar_sources(uc)
    first, last = feed_range(uc, start, end)
    labelled: dict[str, int] = {}
    scored: dict[str, int] = {}
    night = date.fromisoformat(first)
    while night <= date.fromisoformat(last):
        files = feed.deliveries(night.isoformat())
        # A source the feed does not deliver on a night (every_night: false) has no rows that night;
        # it is left out here, so that the nights of the range count it as quiet and rows.min does not.
        if label_source in files:
            labelled[night.isoformat()] = csv_rows(files[label_source])
        if scored_source in files:
            scored[night.isoformat()] = csv_rows(files[scored_source])
        night += timedelta(days=1)
    return (Calendar(f"{uc.feed}.deliveries() {label_source}", labelled,
                     uc.source(label_source).suite if label_source else None),
            Calendar(f"{uc.feed}.deliveries() {scored_source}", scored,
                     uc.source(scored_source).suite if scored_source else None))


def read_calendars(uc: Any, start: str | None = None, end: str | None = None) -> tuple[Calendar, Calendar]:
    """The label and scoring calendars of ``uc``: from the lake when it holds data, else from the feed."""
    return _from_lake(uc, start, end) or _from_feed(uc, start, end)


def calendar_step(uc: Any, start: str | None = None, end: str | None = None) -> tuple[str, list[str]]:
    """(the line that says what was read, the warnings). A feed not written yet is said, not failed."""
    try:
        labelled, scored = read_calendars(uc, start, end)
    except NotImplementedError:
        return f"not read: {uc.feed}.deliveries() is not written yet", []
    except Exception as e:  # the feed's own error, for a night it cannot deliver: show it, do not fail
        return "not read", [f"the calendar could not be read: {type(e).__name__}: {e}"]
    read = labelled.summary() if labelled.where == scored.where else f"{labelled.summary()}; {scored.summary()}"
    return read, window_warnings(uc, labelled, scored) + row_minimum_warnings(uc, [labelled, scored])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="glideslope check", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--usecase", default=None, help="use case (required when there is more than one)")
    ap.add_argument("--calendar-start", default=None, metavar="YYYY-MM-DD",
                    help="first night of the calendar check (default: all published nights, else the demo's "
                         "history or the first nights from start_date)")
    ap.add_argument("--calendar-end", default=None, metavar="YYYY-MM-DD", help="last night of the calendar check")
    ap.add_argument("--no-calendar", action="store_true",
                    help="skip the calendar check (reading the feed calls deliveries() once per night)")
    args = ap.parse_args(argv)

    from glideslope.config import SpecError, resolve_usecase
    from glideslope_local.env import embedded_airflow_env

    try:
        uc = resolve_usecase(args.usecase)
    except SpecError as e:
        print(f"✗ spec\n{e}", file=sys.stderr)
        return 1
    print(f"✓ spec                {uc.folder / 'usecase.yaml'} ({uc.label.task}, metric {uc.promotion.metric})")
    # Airflow reads its settings when first imported: the embedded profile's, not ~/airflow.
    for key, value in embedded_airflow_env().items():
        os.environ.setdefault(key, value)
    for title, step in _steps(uc):
        try:
            detail = step()
        except Exception as e:  # every step's error names its file; show it and stop
            print(f"✗ {title}\n{type(e).__name__}: {e}", file=sys.stderr)
            return 1
        print(f"✓ {title:<19} {detail}")
    warnings: list[str] = []
    if args.no_calendar:
        read = "not read (--no-calendar)"
    else:
        read, warnings = calendar_step(uc, args.calendar_start, args.calendar_end)
    print(f"{'⚠' if warnings else '✓'} {'calendar':<19} {read}")
    for warning in warnings:
        print(f"  ⚠ {warning}")
    note = f" ({len(warnings)} calendar warnings above)" if warnings else ""
    print(f"{uc.name} is ready{note}: its first ETL run checks the data contract (docs/usecase-guide.md)")
    return 0
