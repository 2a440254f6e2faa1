"""Days never skipped: each stage finds its work in the lake, whatever events reached it."""

from __future__ import annotations

from pathlib import Path

import pytest

from glideslope.backlog import features_to_load, nights_to_check, nights_to_score, plan_scoring
from glideslope.config import load_usecase
from glideslope.lake import Lake
from glideslope.runrequest import EventRef, build

pytestmark = pytest.mark.unit


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(root=str(tmp_path / "lake"), usecase="flight_delay")


def _touch(lake: Lake, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(b"x")


def _entities(lake: Lake, path: str, rows: int) -> None:
    import pandas as pd

    lake.publish_parquet(pd.DataFrame({"flight_id": [f"f{i}" for i in range(rows)]}), path)


def _publish_day(lake: Lake, ds: str, rows: int = 3) -> None:
    uc = load_usecase("flight_delay")
    for t in uc.features.tables:
        _touch(lake, lake.features(t, ds))
    _entities(lake, lake.curated(uc.scoring.table, ds), rows)


def _event(ds: str) -> EventRef:
    return EventRef("flight_delay.online_features", {"ds": ds}, "flight_delay__features/r", ds)


def test_scoring_catches_up_earlier_nights_explicitly_and_never_a_later_one(lake: Lake):
    uc = load_usecase("flight_delay")
    for ds in ("2013-06-10", "2013-06-11", "2013-06-12", "2013-06-13"):
        _publish_day(lake, ds)
    _touch(lake, lake.predictions("2013-06-10"))
    # The event of 06-11 was lost; the run for 06-12 catches 06-11 up and says so. 06-13 is the
    # night of its own run, even though its features are in the lake already.
    req = build("flight_delay", run_type="asset_triggered", events=[_event("2013-06-12")])
    plan = plan_scoring(uc, req, lake)
    assert (plan.own, plan.catch_up) == (("2013-06-12",), ("2013-06-11",))
    assert nights_to_score(uc, req, lake) == ["2013-06-11", "2013-06-12"]
    assert (plan.role("2013-06-11"), plan.role("2013-06-12")) == ("catch_up", "own")


def test_an_event_merged_into_a_run_makes_its_night_the_runs_own(lake: Lake):
    uc = load_usecase("flight_delay")
    for ds in ("2013-06-10", "2013-06-11", "2013-06-12"):
        _publish_day(lake, ds)
    _touch(lake, lake.predictions("2013-06-10"))
    # Events for 06-11 and 06-12 were posted while a scoring run was active; the next run was
    # given only the first (apache/airflow#56050) and finds the second queued behind it.
    req = build("flight_delay", run_type="asset_triggered", events=[_event("2013-06-11")])
    req = req.with_events([EventRef("flight_delay.online_features", {"ds": "2013-06-12"}, "flight_delay__features/r2",
                                    "2013-06-12T02:00:00+00:00")])
    plan = plan_scoring(uc, req, lake)
    assert plan.own == ("2013-06-11", "2013-06-12") and plan.catch_up == ()


def test_the_retry_of_a_failed_night_scores_that_night_not_the_next(lake: Lake):
    """The sequence of #21: the first champion's night D fails; D+1's features land; D's retry runs."""
    uc = load_usecase("flight_delay")
    _publish_day(lake, "2013-06-10")
    run_d = build("flight_delay", run_type="asset_triggered", run_id="asset_triggered__d",
                  events=[_event("2013-06-10")])
    assert nights_to_score(uc, run_d, lake) == ["2013-06-10"]
    # attempt 1 fails (nothing published); then the features of D+1 are published
    _publish_day(lake, "2013-06-11")
    assert nights_to_score(uc, run_d, lake) == ["2013-06-10"], "a retry never changes which night a run is for"
    _touch(lake, lake.predictions("2013-06-10"))
    run_d1 = build("flight_delay", run_type="asset_triggered", run_id="asset_triggered__d1",
                   events=[_event("2013-06-11")])
    assert nights_to_score(uc, run_d1, lake) == ["2013-06-11"]


def test_a_quiet_night_is_skipped_with_its_reason_and_not_caught_up_later(lake: Lake):
    uc = load_usecase("flight_delay")
    _publish_day(lake, "2013-06-10")
    _touch(lake, lake.predictions("2013-06-10"))
    _publish_day(lake, "2013-06-11", rows=0)   # an empty delivery: 0-row partitions
    quiet = plan_scoring(uc, build("flight_delay", run_type="asset_triggered", events=[_event("2013-06-11")]), lake)
    assert quiet.nights == [] and quiet.quiet == ("2013-06-11",)
    assert quiet.reasons() == ["2013-06-11: quiet night, its entities partition has 0 rows: nothing to score"]
    _publish_day(lake, "2013-06-12")
    nxt = plan_scoring(uc, build("flight_delay", run_type="asset_triggered", events=[_event("2013-06-12")]), lake)
    assert nxt.nights == ["2013-06-12"] and nxt.catch_up == () and nxt.quiet == ()


def test_the_first_scoring_does_not_score_history_after_the_fact(lake: Lake):
    uc = load_usecase("flight_delay")
    for ds in ("2013-06-10", "2013-06-11", "2013-06-12"):
        _publish_day(lake, ds)
    req = build("flight_delay", run_type="asset_triggered", events=[_event("2013-06-12")])
    assert nights_to_score(uc, req, lake) == ["2013-06-12"]


def test_a_ds_param_means_exactly_that_night(lake: Lake):
    uc = load_usecase("flight_delay")
    _publish_day(lake, "2013-06-10")
    req = build("flight_delay", run_type="manual", params={"ds": "2013-06-01"})
    assert nights_to_score(uc, req, lake) == ["2013-06-01"]
    assert features_to_load(uc, req, lake) == ["2013-06-01"]
    assert nights_to_check(req, lake, checked=["2013-06-10"]) == ["2013-06-01"]


def test_features_load_the_newest_published_day_even_without_its_event(lake: Lake):
    uc = load_usecase("flight_delay")
    for ds in ("2013-06-10", "2013-06-11"):
        _publish_day(lake, ds)
    req = build("flight_delay", run_type="asset_triggered", events=[_event("2013-06-10")])
    assert features_to_load(uc, req, lake) == ["2013-06-10", "2013-06-11"]


def test_the_monitor_checks_every_predicted_night_after_the_last_check(lake: Lake):
    for ds in ("2013-06-10", "2013-06-11", "2013-06-12"):
        _touch(lake, lake.predictions(ds))
    req = build("flight_delay", run_type="asset_triggered", events=[_event("2013-06-11")])
    assert nights_to_check(req, lake, checked=["2013-06-10"]) == ["2013-06-11", "2013-06-12"]
    # A repeated event for a night checked already checks it again rather than nothing.
    again = build("flight_delay", run_type="asset_triggered", events=[_event("2013-06-12")])
    assert nights_to_check(again, lake, checked=["2013-06-12"]) == ["2013-06-12"]


def test_a_run_by_hand_without_ds_works_on_the_lake_not_on_its_logical_date(lake: Lake):
    uc = load_usecase("flight_delay")
    for ds in ("2013-06-10", "2013-06-11"):
        _publish_day(lake, ds)
        _touch(lake, lake.predictions(ds))
    today = build("flight_delay", run_type="manual", logical_ds="2026-12-01")
    assert features_to_load(uc, today, lake) == ["2013-06-11"]
    assert nights_to_score(uc, today, lake) == []
    assert nights_to_check(today, lake, checked=["2013-06-11"]) == []
