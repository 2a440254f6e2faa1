"""``/glideslope/metrics``: Prometheus' text, per use case, from what the stages recorded.

The app is mounted as the plugin mounts it (beside the reports app at ``/glideslope``, with the
root middleware that gives it its exact path), and read back with prometheus_client's parser.
"""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from glideslope.airflow.metrics_app import ExactPrefixPath
from glideslope.airflow.metrics_app import create_app as create_metrics_app
from glideslope.airflow.reports import create_app as create_reports_app
from glideslope.lake import Lake

pytestmark = pytest.mark.unit

UC = "flight_delay"


def scrape(client: TestClient, path: str = "/glideslope/metrics") -> dict[tuple[str, tuple], float]:
    r = client.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(r.text) for s in fam.samples}


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("GLIDESLOPE_LAKE_ROOT", str(tmp_path / "lake"))
    main = FastAPI()
    main.mount("/glideslope/metrics", create_metrics_app())
    main.mount("/glideslope", create_reports_app())
    main.add_middleware(ExactPrefixPath)
    return TestClient(main)


@pytest.fixture
def recorded(tmp_path):
    from glideslope.drift.state import update_state

    lake = Lake(root=str(tmp_path / "lake"), usecase=UC)
    lake.publish_parquet(pd.DataFrame({"flight_id": ["a", "b"], "prediction": [0.5, 0.5]}), lake.predictions("2013-06-18"))
    lake.publish_parquet(pd.DataFrame({"flight_id": ["a", "b", "c", "d"], "prediction": [0.1, 0.2, 0.3, 0.6]}),
                         lake.predictions("2013-06-19"))
    with update_state(UC, lake) as state:
        state["checks"]["2013-06-18"] = {"status": "ok", "drift_share": 0.0, "drifted_columns": [], "live_roc_auc": 0.66}
        state["checks"]["2013-06-19"] = {"status": "drift", "drift_share": 0.4, "drifted_columns": ["distance", "dep_hour"],
                                         "live_roc_auc": None}
        state["triggers"] = [{"ds": "2013-06-19", "outcome": "emitted"}, {"ds": "2013-06-10", "outcome": "emitted"}]
        state["paused"] = {"ds": "2013-06-19", "reason": "drift persisted after retraining"}
    return lake


def test_values_come_from_the_lake_and_the_drift_state(client, recorded):
    m = scrape(client)
    u = (("usecase", UC),)
    assert m[("glideslope_scored_rows", u)] == 4  # the newest night, not the older one
    assert m[("glideslope_mean_score", u)] == pytest.approx(0.3)
    assert m[("glideslope_scored_night_timestamp_seconds", u)] == pd.Timestamp("2013-06-19", tz="UTC").timestamp()
    assert 0 <= m[("glideslope_seconds_since_last_scoring", u)] < 3600
    assert m[("glideslope_drift_share", u)] == pytest.approx(0.4)
    assert m[("glideslope_drifted_columns", u)] == 2
    # weekly budget 2 (usecase.yaml), one trigger emitted in 06-13..06-19 (06-10 is outside the week)
    assert m[("glideslope_retrain_budget_left", u)] == 1
    assert m[("glideslope_escalation_open", u)] == 1 and m[("glideslope_retraining_paused", u)] == 1
    # the newest night has no labels yet: the live metric is the newest one known
    assert m[("glideslope_champion_live_metric", (("metric", "roc_auc"), ("usecase", UC)))] == pytest.approx(0.66)
    for source in ("lake", "state", "mlflow"):
        assert m[("glideslope_metrics_source_up", (("source", source), ("usecase", UC)))] == 1


def test_a_restart_loses_nothing(client, recorded):
    """Nothing is held in the app: a new app (a restarted API server) exports the same numbers."""
    first = scrape(client)
    again = TestClient(create_metrics_app())
    second = scrape(again, "/")
    volatile = {"glideslope_seconds_since_last_scoring", "glideslope_champion_age_seconds"}
    assert {k: v for k, v in first.items() if k[0] not in volatile} == \
        {k: v for k, v in second.items() if k[0] not in volatile}


def test_an_unreadable_source_is_reported_and_the_rest_is_still_served(client, recorded):
    recorded.publish_bytes(recorded.predictions("2013-06-20"), b"not parquet")  # a torn copy by hand
    m = scrape(client)
    u = (("usecase", UC),)
    assert m[("glideslope_metrics_source_up", (("source", "lake"), ("usecase", UC)))] == 0
    assert ("glideslope_scored_rows", u) not in m
    assert m[("glideslope_drift_share", u)] == pytest.approx(0.4)


def test_no_login_is_needed_while_the_reports_beside_it_still_need_one(client, recorded):
    """Decided: the endpoint is open to scrapers (aggregates only); the reports app is not."""
    assert client.get("/glideslope/metrics").status_code == 200
    assert client.get("/glideslope/reports").status_code == 401


def test_one_use_case_or_an_unknown_one(client, recorded):
    assert all(dict(k[1]).get("usecase") == UC for k in scrape(client, f"/glideslope/metrics?usecase={UC}"))
    r = client.get("/glideslope/metrics?usecase=nope")
    assert r.status_code == 404 and "nope" in r.text
