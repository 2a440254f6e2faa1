"""Days the calendar makes hard, and a backfill across a bad day of the real data."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from glideslope.etl.pipeline import BackfillIncomplete, run_days
from glideslope.lake import Lake

from .conftest import UC, assert_nothing_doubled, case, of_day, published, raw_lines

DST = {
    # day: the end of local day D (D+1 00:00 America/New_York) in UTC
    "2013-03-10": pd.Timestamp("2013-03-11 04:00", tz="UTC"),  # 23 local hours: clocks go forward at 02:00
    "2013-11-03": pd.Timestamp("2013-11-04 05:00", tz="UTC"),  # 25 local hours: 01:00 happens twice
}


def test_daylight_saving_days(spark: Any, tmp_path: Any) -> None:
    lake = Lake(root=str(tmp_path / "lake"), usecase=UC)
    run_days(UC, list(DST), lake=lake, spark=spark)  # one transform for both days
    for ds, end_of_day in DST.items():
        weather = lake.read_parquet(lake.output(ds, "features/origin_weather"))
        assert sorted(weather["origin"]) == ["EWR", "JFK", "LGA"]
        assert set(weather["event_timestamp"]) == {end_of_day}, f"{ds}: stamped at local midnight, in UTC"
        flights = lake.read_parquet(lake.output(ds, "curated/flights"))
        raw = pd.read_csv(lake.raw("flights", ds), na_values=["NA"])
        assert len(flights) == len(raw) and flights["flight_id"].is_unique
        assert len(of_day(published(lake), ds)) == 6
    assert_nothing_doubled(lake)


test_daylight_saving_days._fault_case = {  # type: ignore[attr-defined]
    "case": "the daylight-saving days (2013-03-10: 23 hours, 2013-11-03: 25 hours)",
    "before": "passed (the weather key is the UTC hour, so the repeated local 01:00 is no duplicate)",
    "after": "pass: every flight kept once, features stamped at local midnight in UTC (04:00Z / 05:00Z)",
}


@case("a backfill across the real data's absurd weather row (2013-02-12, wind_speed 1048)",
      before="the gate quarantined the whole weather delivery of 02-12 and `glideslope etl --start 2013-01-31 "
             "--end 2013-06-30` exited having published none of the eleven good days before it",
      after="every day publishes; the one reading of 02-12 is quarantined with its reason and the delivery "
            "as it came")
def test_backfill_across_the_absurd_weather_row(spark: Any, tmp_path: Any) -> None:
    lake = Lake(root=str(tmp_path / "lake"), usecase=UC)
    days = ["2013-02-11", "2013-02-12", "2013-02-13"]  # the bad row's day between good days, one backfill
    out = run_days(UC, days, lake=lake, spark=spark)
    assert sorted(out) == days
    for ds in days:
        assert len(of_day(published(lake), ds)) == 6, f"{ds} is not published whole"
    assert not lake.quarantined("weather", "2013-02-11") and not lake.quarantined("weather", "2013-02-13")
    (slot,) = lake.quarantined("weather", "2013-02-12")
    bad = pd.read_csv(f"{slot}/bad_rows.csv")
    assert bad[["origin", "hour", "wind_speed", "_reason"]].to_dict("records") == [
        {"origin": "EWR", "hour": 3, "wind_speed": 1048.36058, "_reason": "wind_speed above 200"}]
    assert_nothing_doubled(lake)


@case("a backfill with a rejected delivery in the middle",
      before="the backfill stopped at the bad day: none of the good days after it (nor, with one spark-submit "
             "for all days, before it) were published",
      after="every good day publishes; `BackfillIncomplete` (and the CLI, exit 1) names the day that could "
            "not and why; the re-delivered day then publishes")
def test_backfill_with_a_bad_day(spark: Any, tmp_path: Any, feed: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = Lake(root=str(tmp_path / "lake"), usecase=UC)
    days = ["2013-04-01", "2013-04-02"]
    bad_day = days[0]
    real = feed.deliveries
    lines = raw_lines(feed, "flights", bad_day)
    monkeypatch.setattr(feed, "deliveries", lambda ds: {**real(ds), **(
        {"flights": ("\n".join(lines[:1]) + "\n").encode()} if ds == bad_day else {})})
    with pytest.raises(BackfillIncomplete) as exc:
        run_days(UC, days, lake=lake, spark=spark)
    assert sorted(exc.value.published) == [days[1]]
    assert list(exc.value.failed) == [bad_day] and "observed 0 rows" in exc.value.failed[bad_day]
    assert f"published 1 of 2 days; could not publish 1:\n  {bad_day}: data-quality gate failed" in str(exc.value)
    first = published(lake)
    assert not of_day(first, bad_day) and len(of_day(first, days[1])) == 6
    monkeypatch.undo()
    run_days(UC, [bad_day], lake=lake, spark=spark)
    assert len(of_day(published(lake), bad_day)) == 6
    assert {k: v for k, v in published(lake).items() if k in first} == first
    assert_nothing_doubled(lake)
