"""The model-health page's JSON: what each night, each decision and each guard shows, per use case."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from auth_support import bearer, install
from fastapi.testclient import TestClient
from ml_data import isolated_home

from glideslope.airflow.auth import usecase_dag_ids
from glideslope.config import load_usecase
from glideslope.lake import Lake

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """Three versions recorded by the real promotion code: v1 and v2 promoted, v3 rejected, v2 rolled back."""
    from glideslope.registry.promotion import promote, reject, rollback
    from glideslope.training import tracking

    with isolated_home(tmp_path_factory.mktemp("health_home")) as home:
        uc = load_usecase("flight_delay")
        client = tracking.client()
        exp = client.create_experiment("flight_delay-health-test")
        client.create_registered_model("flight_delay")

        def version() -> tuple[str, str]:
            run = client.create_run(exp)
            mv = client.create_model_version("flight_delay", f"{home}/model", run_id=run.info.run_id)
            return str(mv.version), run.info.run_id

        def evaluation(chall: tuple[str, str], champ: str | None, ds: str, promote_it: bool) -> dict:
            ev = {"metric": "roc_auc", "rows": 400, "challenger": 0.71, "champion": 0.69, "delta": 0.02,
                  "ci_low": 0.005, "ci_high": 0.035, "confidence": 0.95,
                  "slices": [{"column": "origin", "value": "JFK", "rows": 120, "champion": 0.7,
                              "challenger": 0.72, "delta": 0.02}]}
            reason = "better" if promote_it else "not_better"
            return {"usecase": "flight_delay", "ds": ds, "registered_model": "flight_delay",
                    "challenger_version": chall[0], "champion_version": champ, "challenger_run_id": chall[1],
                    "holdout": "a..b", "decision": {"promote": promote_it, "evidence": ev, "checks": [],
                                                    "worst_slice": ev["slices"][0]},
                    "outcome": "promote" if promote_it else "reject", "reason": reason,
                    "message": f"{reason} on the holdout", "run_url": "", "model_version_url": ""}

        v1, v2, v3 = version(), version(), version()
        promote(uc, evaluation(v1, None, "2013-06-03", True))
        promote(uc, evaluation(v2, "1", "2013-06-10", True))
        reject(uc, evaluation(v3, "2", "2013-06-14", False))
        rollback(uc, "drift outlived the retrain", ds="2013-06-16")
        yield home


@pytest.fixture
def client(registry, monkeypatch, airflow_db, tmp_path):
    from glideslope.airflow.health import create_app

    monkeypatch.setenv("GLIDESLOPE_LAKE_ROOT", str(tmp_path / "lake"))  # each test its own nights
    manager = install(monkeypatch, grants={"outsider": {"other__etl"}})
    return TestClient(create_app()), manager


def _lake_with_nights(home: Path) -> Lake:
    """Three nights as the stages leave them: checks, predictions, one quarantined delivery."""
    from glideslope.drift.state import update_state

    lake = Lake.for_usecase("flight_delay")
    for ds, status, share, auc in (("2013-06-14", "ok", 0.1, 0.70), ("2013-06-15", "drift", 0.6, 0.61),
                                   ("2013-06-16", "drift", 0.7, 0.58)):
        with update_state("flight_delay", lake) as state:
            state["checks"][ds] = {"status": status, "drift_share": share,
                                   "drifted_columns": ["wx_temp_mean"] if status == "drift" else [],
                                   "live_metric": "roc_auc", "live_roc_auc": auc, "labelled_rows": 700,
                                   "champion_version": "2", "report": f"{lake.report_dir('drift', ds)}/report.html"}
        lake.publish_parquet(pd.DataFrame({"flight_id": [1, 2, 3, 4], "prediction": [0.1, 0.2, 0.3, 0.4],
                                           "model_version": ["2"] * 4}), lake.predictions(ds))
    with update_state("flight_delay", lake) as state:
        state["triggers"].append({"ds": "2013-06-15", "outcome": "emitted", "reasons": ["drift"]})
        state["retrains"].append({"ds": "2013-06-15", "decision": "rejected", "model_version": "3"})
        state["paused"] = {"ds": "2013-06-16", "reason": "drift persisted after a retrain on 2013-06-15"}
    lake.write_json(f"{lake.quarantine_slot('flights', '2013-06-16')}/_reason.json", {
        "file": "raw/flights/ds=2013-06-16/flights.csv", "moved_from": "raw/flights/ds=2013-06-16/flights.csv",
        "failures": [{"file": "flights.csv", "column": "dep_delay", "rule": "expect_column_values_to_be_between",
                      "bad_rows": 12, "examples": [9999]}]})
    return lake


def test_nights_show_metric_drift_predictions_and_quality(client, registry):
    c, manager = client
    _lake_with_nights(registry)
    body = c.get("/api/flight_delay/nights", headers=bearer(manager, "v", "viewer")).json()
    by_day = {n["ds"]: n for n in body["nights"]}
    assert list(by_day) == ["2013-06-14", "2013-06-15", "2013-06-16"] and body["metric"] == "roc_auc"
    night = by_day["2013-06-16"]
    assert night["check"]["live_metric"] == 0.58 and night["check"]["drifted_columns"] == ["wx_temp_mean"]
    assert night["check"]["report_url"] == "/glideslope/reports/flight_delay/drift/2013-06-16"
    assert night["predictions"]["rows"] == 4 and night["predictions"]["mean_score"] == 0.25
    assert night["quality"]["status"] == "quarantined"
    failure = night["quality"]["failures"][0]
    assert (failure["source"], failure["column"], failure["rule"], failure["bad_rows"]) == (
        "flights", "dep_delay", "expect_column_values_to_be_between", 12)
    assert by_day["2013-06-14"]["quality"]["status"] is None  # nothing landed in this test's lake
    only = c.get("/api/flight_delay/nights?start=2013-06-15&end=2013-06-15", headers=bearer(manager, "v", "viewer"))
    assert [n["ds"] for n in only.json()["nights"]] == ["2013-06-15"]
    assert c.get("/api/flight_delay/nights?start=june", headers=bearer(manager, "v", "viewer")).status_code == 422


def test_summary_names_the_spec_metric_and_the_guards(client, registry):
    c, manager = client
    _lake_with_nights(registry)
    body = c.get("/api/flight_delay/summary", headers=bearer(manager, "v", "viewer")).json()
    uc = load_usecase("flight_delay")
    assert body["metric"] == {"name": "roc_auc", "label": "ROC-AUC", "higher_is_better": True}
    assert body["performance_floor"] == uc.drift.performance_floor
    assert body["drift_share_threshold"] == uc.drift.drift_share
    g = body["guards"]
    assert g["as_of"] == "2013-06-16" and g["last_retrain"] == "2013-06-15"
    assert g["cooldown_until"] == f"2013-06-{15 + uc.drift.cooldown_days}"
    assert g["budget_left"] == uc.drift.weekly_retrain_budget - 1 and g["retrains_this_week"] == ["2013-06-15"]
    assert g["paused"] is True and g["escalation"]["ds"] == "2013-06-16"


def test_timeline_tells_promotions_rejection_and_rollback(client):
    c, manager = client
    body = c.get("/api/flight_delay/timeline", headers=bearer(manager, "v", "viewer")).json()
    assert body["champion"] == "1"  # rolled back from v2
    kinds = [(e["kind"], e["version"], e["ds"]) for e in body["events"]]
    assert kinds == [("promoted", "1", "2013-06-03"), ("promoted", "2", "2013-06-10"),
                     ("rejected", "3", "2013-06-14"), ("rolled_back", "2", "2013-06-16")]
    second = body["events"][1]
    assert second["previous_champion"] == "1" and second["reason"] == "better"
    assert second["evidence"]["delta"] == 0.02 and second["evidence"]["ci_low"] == 0.005
    assert second["evidence"]["slices"][0]["column"] == "origin"
    assert "#/experiments/" in second["run_url"] and body["events"][3]["to_version"] == "1"
    ranged = c.get("/api/flight_delay/timeline?start=2013-06-09&end=2013-06-14", headers=bearer(manager, "v", "viewer"))
    assert [e["version"] for e in ranged.json()["events"]] == ["2", "3"]


def test_every_route_checks_login_and_the_use_cases_dags(client):
    c, manager = client
    for path in ("/api/flight_delay/summary", "/api/flight_delay/nights", "/api/flight_delay/timeline"):
        assert c.get(path).status_code == 401
        r = c.get(path, headers=bearer(manager, "outsider", "viewer"))
        assert r.status_code == 403 and "flight_delay__train" in r.json()["detail"]
    assert c.get("/api/usecases").status_code == 401
    assert c.get("/api/usecases", headers=bearer(manager, "outsider", "viewer")).json() == {"usecases": []}
    assert "flight_delay" in c.get("/api/usecases", headers=bearer(manager, "v", "viewer")).json()["usecases"]
    assert c.get("/static/model-health.js").status_code == 401
    assert set(usecase_dag_ids("flight_delay")) >= {"flight_delay__score", "flight_delay__monitor"}


def test_the_page_bundle_is_served_and_registered_with_the_plugin(client):
    import importlib.util

    spec = importlib.util.spec_from_file_location("glideslope_plugin", ROOT / "plugins" / "glideslope_plugin.py")
    assert spec and spec.loader
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    c, manager = client
    js = c.get("/static/model-health.js", headers=bearer(manager, "v", "viewer"))
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    # UMD: the host's React (globalThis.React, ReactJSXRuntime) is used, the component lands on AirflowPlugin.
    assert ".AirflowPlugin=" in js.text and "ReactJSXRuntime" in js.text
    apps = {a["destination"]: a for a in plugin.GlideslopePlugin.react_apps}
    assert set(apps) == {"nav", "dag"} and apps["nav"]["bundle_url"] != apps["dag"]["bundle_url"]
    for app in apps.values():
        assert app["bundle_url"].split("?")[0] == "/glideslope-health/static/model-health.js"


def test_the_committed_bundle_is_built_from_the_committed_sources():
    from glideslope.airflow.health import BUNDLE_STAMP, ui_sources_digest

    assert BUNDLE_STAMP.read_text().strip() == ui_sources_digest(ROOT / "include" / "ui" / "model-health"), (
        "include/ui/model-health changed since include/glideslope/airflow/static/model-health.js was built: "
        "run `make ui` and commit the bundle and its stamp")
