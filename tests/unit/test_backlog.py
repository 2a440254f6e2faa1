"""Days never skipped: each stage finds its work in the lake, whatever events reached it."""

from __future__ import annotations

from pathlib import Path

import pytest

from glideslope.backlog import features_to_load, nights_to_check, nights_to_score
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


def _publish_day(lake: Lake, ds: str) -> None:
    uc = load_usecase("flight_delay")
    for t in uc.features.tables:
        _touch(lake, lake.features(t, ds))
    _touch(lake, lake.curated(uc.scoring.table, ds))


def _event(ds: str) -> EventRef:
    return EventRef("flight_delay.online_features", {"ds": ds}, "flight_delay__features/r", ds)


def test_scoring_catches_up_every_night_whose_event_was_merged(lake: Lake):
    uc = load_usecase("flight_delay")
    for ds in ("2013-06-10", "2013-06-11", "2013-06-12", "2013-06-13"):
        _publish_day(lake, ds)
    _touch(lake, lake.predictions("2013-06-10"))
    # Events for 06-12 and 06-13 were posted while a scoring run was active; the next run was
    # given only the first (apache/airflow#56050). Every ready night is scored all the same.
    req = build("flight_delay", run_type="asset_triggered", events=[_event("2013-06-12")])
    assert nights_to_score(uc, req, lake) == ["2013-06-11", "2013-06-12", "2013-06-13"]


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
