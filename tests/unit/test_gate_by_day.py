"""A range's gate runs a few GX validations for all its days, and every day's outcome is the
outcome it would have alone (glideslope.quality.batch)."""

from __future__ import annotations

import pandas as pd
import pytest

from glideslope.quality.batch import validate_by_day
from glideslope.quality.suites import Suite, value_expectations
from glideslope.quality.validate import validate_frame

pytestmark = pytest.mark.unit

SUITE = Suite.model_validate({
    "name": "carrier_stats",
    "rows": {"min": 2, "max": 10},
    "columns": {"carrier": {"type": "str", "not_null": True},
                "rate": {"type": "float", "min": 0, "max": 1, "max_null_share": 0.5},
                "age": {"type": "float", "min_null_share": 0.2}},
    "unique": [["carrier"]],
    "mean": {"rate": {"min": 0.1, "max": 0.9}},
})


def _day(rates, carriers=None, ages=None):
    carriers = carriers or [f"C{i}" for i in range(len(rates))]
    ages = ages if ages is not None else [None] + [5.0] * (len(rates) - 1)
    return pd.DataFrame({"carrier": carriers, "rate": rates, "age": ages})


def _frames():
    good = _day([0.2, 0.5, 0.4])
    return {
        "2013-01-01": good,
        "2013-01-02": good.copy(),                          # the same keys as the day before: fine
        "2013-01-03": _day([0.2, 1.7, 0.4]),                # a rate out of range
        "2013-01-04": _day([0.2, 0.5], carriers=["AA", "AA"]),  # a key twice in one day
        "2013-01-05": _day([0.3]),                          # too few rows
        "2013-01-06": _day([0.95, 0.97, 0.99]),             # mean out of range
        "2013-01-07": _day([0.2, 0.5, 0.4], ages=[1.0, 2.0, 3.0]),  # no unknown age: invented
        "2013-01-08": _day([None, None, 0.4]),              # too many nulls
        "2013-01-09": good.copy(),
    }


def test_each_day_gets_the_outcome_and_message_it_would_get_alone():
    frames = _frames()
    exps = value_expectations(SUITE, typed=True)
    alone = {d: validate_frame(df, SUITE, f"file of {d}") for d, df in frames.items()}
    exact_calls: list[str] = []

    def exact(d):
        exact_calls.append(d)
        return validate_frame(frames[d], SUITE, f"file of {d}")

    batched = validate_by_day(frames, exps, SUITE.name, exact, {d: f"file of {d}" for d in frames})
    assert {d: r.success for d, r in batched.items()} == {d: r.success for d, r in alone.items()}
    assert [d for d, r in alone.items() if not r.success] == ["2013-01-03", "2013-01-04", "2013-01-05",
                                                               "2013-01-06", "2013-01-07", "2013-01-08"]
    for d, r in alone.items():
        if not r.success:
            assert [str(f) for f in batched[d].failures] == [str(f) for f in r.failures], d
    # Only the days that break a rule pay a validation of their own.
    assert sorted(exact_calls) == [d for d, r in alone.items() if not r.success]
    assert batched["2013-01-09"].rows == 3 and batched["2013-01-09"].file == "file of 2013-01-09"


def test_a_range_of_good_days_needs_no_validation_per_day():
    frames = {f"2013-02-{i:02d}": _day([0.2, 0.5, 0.4]) for i in range(1, 21)}
    calls: list[str] = []
    reports = validate_by_day(frames, value_expectations(SUITE, typed=True), SUITE.name,
                              lambda d: calls.append(d) or validate_frame(frames[d], SUITE, d), {d: d for d in frames})
    assert all(r.success for r in reports.values()) and calls == []
