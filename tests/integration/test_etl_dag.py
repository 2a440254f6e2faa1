"""flight_delay__etl through Airflow (``dag.test()``) on real consecutive days."""

from __future__ import annotations

import hashlib
import os
import runpy
from pathlib import Path

import pendulum
import pytest

from glideslope.config import load_usecase
from glideslope.lake import Lake

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DAY1, DAY2, BAD_DAY = "2013-06-10", "2013-06-11", "2013-06-12"


@pytest.fixture(scope="module")
def lake(tmp_path_factory, airflow_db):
    root = tmp_path_factory.mktemp("etl_lake")
    old = os.environ.get("GLIDESLOPE_LAKE_ROOT")
    os.environ["GLIDESLOPE_LAKE_ROOT"] = str(root)  # read by settings() in-process and by spark-submit
    yield Lake(root=str(root), usecase="flight_delay")
    if old is None:
        os.environ.pop("GLIDESLOPE_LAKE_ROOT")
    else:
        os.environ["GLIDESLOPE_LAKE_ROOT"] = old


@pytest.fixture(scope="module")
def etl_dag(lake):
    return runpy.run_path(str(ROOT / "dags" / "etl.py"))["flight_delay__etl"]


def _run(dag, ds: str):
    y, m, d = map(int, ds.split("-"))
    return dag.test(logical_date=pendulum.datetime(y, m, d, 2, tz="UTC"))


def _states(dr) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dr.get_task_instances()}


def _digest(lake: Lake, ds: str) -> dict[str, str]:
    uc = load_usecase("flight_delay")
    return {out: hashlib.sha256(Path(lake.output(ds, out)).read_bytes()).hexdigest() for out in uc.output_suites}


@pytest.fixture(scope="module")
def two_days(etl_dag, lake):
    return [_run(etl_dag, DAY1), _run(etl_dag, DAY2)]


def test_two_consecutive_days_publish_every_output(two_days, lake):
    uc = load_usecase("flight_delay")
    for dr, ds in zip(two_days, (DAY1, DAY2), strict=True):
        assert dr.state == "success", _states(dr)
        for out in uc.output_suites:
            assert lake.exists(lake.output(ds, out)), out
        flights = lake.read_parquet(lake.output(ds, "curated/flights"))
        raw_rows = sum(1 for _ in open(lake.raw("flights", ds))) - 1
        assert len(flights) == raw_rows > 500
        assert set(flights["ds"]) == {ds}
    assert not list(Path(lake.base, "_staging").rglob("*.parquet")), "staging must be empty after publish"
    # Day 2's trailing windows include day 1: more flights per route than day 2 alone.
    routes = lake.read_parquet(lake.output(DAY2, "features/route_stats")).set_index("route")
    day2 = lake.read_parquet(lake.output(DAY2, "curated/flights"))
    assert (routes["route_flights_28d"].sum()) == len(day2) + len(lake.read_parquet(lake.output(DAY1, "curated/flights")))


def test_features_asset_event_carries_the_day(two_days):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(
            select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "flight_delay.features")
        ).all()
        days = {e.extra.get("ds") for e in events}
        assert {DAY1, DAY2} <= days
        ev = next(e for e in events if e.extra.get("ds") == DAY2)
        assert ev.extra["outputs"]["curated/flights"] > 500


def test_rerun_gives_byte_identical_partitions(two_days, etl_dag, lake):
    before = _digest(lake, DAY2)
    dr = _run(etl_dag, DAY2)
    assert dr.state == "success", _states(dr)
    assert _digest(lake, DAY2) == before


def test_bad_raw_file_is_quarantined_and_stops_the_run(two_days, etl_dag, lake, monkeypatch):
    from glideslope.usecase_modules import load_module

    # The provider delivers a weather file where five visibility readings are text.
    feed = load_module(load_usecase("flight_delay"), "feed")
    good = feed.deliveries(BAD_DAY)
    bad = good["weather"].replace(b",10,2013-06-12T", b",ten,2013-06-12T", 5)
    monkeypatch.setattr(feed, "deliveries", lambda ds: {**good, "weather": bad} if ds == BAD_DAY else good)
    published_before = _digest(lake, DAY2)

    dr = _run(etl_dag, BAD_DAY)
    states = _states(dr)
    assert dr.state == "failed"
    assert states["land_raw_day"] == "success"
    assert states["validate_raw_day"] == "failed"
    assert states["transform_with_spark"] == "upstream_failed"
    assert states["validate_and_publish"] == "upstream_failed"
    (slot,) = lake.quarantined("weather", BAD_DAY)
    assert Path(slot, "weather.csv").read_bytes() == bad, "the bad delivery is kept byte for byte"
    reason = lake.read_json(str(Path(slot, "_reason.json")))
    failure = next(f for f in reason["failures"] if f["column"] == "visib")
    assert failure["bad_rows"] == 5
    assert not lake.exists(lake.output(BAD_DAY, "features/origin_weather"))
    assert _digest(lake, DAY2) == published_before, "earlier good partitions are untouched"
