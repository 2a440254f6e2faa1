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


@pytest.fixture(scope="module")
def bad_day(two_days, etl_dag, lake):
    """BAD_DAY's run, where the provider delivers a weather file with five visibility readings as text."""
    from glideslope.usecase_modules import load_module

    feed = load_module(load_usecase("flight_delay"), "feed")
    good = feed.deliveries(BAD_DAY)
    bad = good["weather"].replace(b",10,2013-06-12T", b",ten,2013-06-12T", 5)
    published_before = _digest(lake, DAY2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(feed, "deliveries", lambda ds: {**good, "weather": bad} if ds == BAD_DAY else good)
        dr = _run(etl_dag, BAD_DAY)
    return dr, bad, published_before


def test_bad_raw_file_is_quarantined_and_stops_the_run(bad_day, lake):
    dr, bad, published_before = bad_day
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


def _events(glideslope_home: Path, lake: Lake) -> list[dict]:
    """The OpenLineage events the runs above sent to the session's file transport, for this lake."""
    from glideslope.lineage import EVENTS_DIR, read_events

    return [e for e in read_events(glideslope_home / EVENTS_DIR)
            if any(d["name"].startswith(lake.base) for d in e.get("inputs", []) + e.get("outputs", []))]


def test_each_task_reports_its_datasets_with_rows_schema_and_quality(two_days, lake, glideslope_home):
    uc = load_usecase("flight_delay")
    events = _events(glideslope_home, lake)
    publish = next(e for e in events if e["eventType"] == "COMPLETE"
                   and e["job"]["name"] == "flight_delay__etl.validate_and_publish"
                   and any(o["name"].endswith(f"ds={DAY2}") for o in e["outputs"]))
    outputs = {o["name"]: o for o in publish["outputs"]}
    for out in uc.output_suites:
        ds_dir = lake.output(DAY2, out).rsplit("/", 1)[0]
        o = outputs[ds_dir]
        assert o["namespace"] == "file"
        assert o["outputFacets"]["outputStatistics"]["rowCount"] == len(lake.read_parquet(lake.output(DAY2, out)))
        assert o["facets"]["schema"]["fields"], out
    # Day 2's trailing windows read day 1's raw flights: both are inputs of day 2's publication.
    inputs = {i["name"] for i in publish["inputs"]}
    assert {lake.raw("flights", DAY1).rsplit("/", 1)[0], lake.raw("flights", DAY2).rsplit("/", 1)[0]} <= inputs
    gate = next(e for e in events if e["eventType"] == "COMPLETE"
                and e["job"]["name"] == "flight_delay__etl.validate_raw_day"
                and any(i["name"].endswith(f"raw/weather/ds={DAY2}") for i in e["inputs"]))
    weather = next(i for i in gate["inputs"] if i["name"].endswith(f"raw/weather/ds={DAY2}"))
    assert all(a["success"] for a in weather["inputFacets"]["dataQualityAssertions"]["assertions"])


def test_a_quarantined_day_is_an_input_of_the_failed_run_and_of_nothing_after(bad_day, lake, glideslope_home):
    from glideslope.lineage import trace

    events = _events(glideslope_home, lake)
    failed = [e for e in events if e["eventType"] == "FAIL"]
    assert [e["job"]["name"] for e in failed] == ["flight_delay__etl.validate_raw_day"]
    weather = next(i for i in failed[0]["inputs"] if i["name"].endswith(f"raw/weather/ds={BAD_DAY}"))
    bad = [a for a in weather["inputFacets"]["dataQualityAssertions"]["assertions"] if not a["success"]]
    assert any(a["column"] == "visib" and a["actual"] == "5 bad rows" for a in bad), bad
    assert [o["facets"]["glideslope"]["kind"] for o in failed[0]["outputs"]] == ["quarantine"]
    assert not any(d["name"].endswith(f"ds={BAD_DAY}") for e in events if e["eventType"] == "COMPLETE"
                   for d in e["inputs"] if "/raw/weather/" in d["name"])
    t = trace(events, "flight_delay", BAD_DAY)
    assert t.stopped and t.downstream == [], t.lines()
