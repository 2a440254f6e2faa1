"""The drift monitor on real 2013 days: checks, reports, MLflow numbers, and the loop through Airflow.

Real ETL output of late May (the champion's season) and early July (after the season change),
a real champion with its reference sample in a real MLflow registry, and nightly predictions
in the scoring format (see drift_support.py). ``flight_delay__monitor`` runs under ``dag.test()``
against a real SMTP sink and webhook receiver. The real scheduler turning the drift Asset event
into exactly one ``flight_delay__train`` run is exercised end to end by the demo, not here.
"""

from __future__ import annotations

import json
import os
import runpy
from pathlib import Path

import pendulum
import pytest
from drift_support import days, local_alert_sinks, score_nights, train_champion

from glideslope.config import load_usecase
from glideslope.lake import Lake

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MAY = days("2013-05-23", "2013-05-31")       # champion trained on the flights of 05-24..05-31
JULY = days("2013-07-01", "2013-07-04")      # after the season change (the storms of July 1-2)
MAY_NIGHTS = days("2013-05-25", "2013-05-30")
JULY_NIGHTS = JULY


@pytest.fixture(scope="module")
def env(tmp_path_factory, airflow_db):
    """A lake and an MLflow store of this module's own (other modules register models too)."""
    root = tmp_path_factory.mktemp("monitor")
    values = {"GLIDESLOPE_LAKE_ROOT": str(root / "lake"),
              "GLIDESLOPE_MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
              "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
              "GLIDESLOPE_MLFLOW_ARTIFACT_ROOT": str(root / "artifacts")}
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    yield Lake(root=str(root / "lake"), usecase="flight_delay")
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def uc():
    return load_usecase("flight_delay")


@pytest.fixture(scope="module")
def world(env, uc):
    from glideslope.etl.pipeline import run_days

    run_days(uc, MAY, lake=env)
    run_days(uc, JULY, lake=env)  # a run of its own: July's trailing windows start on 07-01
    champ = train_champion(uc, env, "2013-05-24", "2013-05-31")
    score_nights(uc, env, champ, MAY_NIGHTS + JULY_NIGHTS)
    return champ


@pytest.fixture(scope="module")
def sinks():
    with local_alert_sinks() as pair:
        yield pair


@pytest.fixture(scope="module")
def monitor_dag(world, sinks):
    return runpy.run_path(str(ROOT / "dags" / "monitor.py"))["flight_delay__monitor"]


def run_monitor(dag, ds: str, **conf):
    y, m, d = map(int, ds.split("-"))
    dr = dag.test(logical_date=pendulum.datetime(y, m, d, 5, tz="UTC"), run_conf={"ds": ds, **conf})
    return dr, {ti.task_id: ti.state for ti in dr.get_task_instances()}


def drift_events(ds: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(AssetEvent.extra).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                               .where(AssetModel.name == "flight_delay.drift")).scalars().all()
    return [e for e in rows if (e or {}).get("ds") == ds]


def xcom(dr, task_id: str, key: str):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.execute(select(XComModel).where(XComModel.run_id == dr.run_id, XComModel.dag_id == dr.dag_id,
                                                      XComModel.task_id == task_id, XComModel.key == key)).scalar_one()
        return XComModel.deserialize_value(row)


# -- one check, as a library call ------------------------------------------------------------

def test_in_season_check_is_ok_with_report_and_mlflow_numbers(uc, env, world):
    from mlflow.tracking import MlflowClient

    from glideslope.drift.monitor import run_check

    n = run_check(uc, "2013-05-30", env)
    assert n["verdict"]["status"] == "ok", n["verdict"]
    assert n["current_rows"] > 4000 and n["window_days_present"] == MAY_NIGHTS
    assert n["champion"]["version"] == world["version"]
    assert n["performance"]["rows"] > 4000 and 0.6 < n["performance"]["roc_auc"] <= 1.0
    by_col = {c["column"]: c for c in n["columns"]}
    assert set(by_col) == {*uc.drift.columns, "prediction"}
    assert all(c["method"] == "wasserstein" and c["threshold"] == 1.0 for c in by_col.values())  # the spec's test
    # the policy's verdict per column agrees with Evidently's own test outcome
    assert all(c["drifted"] == (c["evidently_test"] == "FAIL") for c in by_col.values())

    html = Path(n["report"]).read_text()
    assert len(html) > 100_000 and "wx_temp_mean" in html  # the self-contained Evidently page
    assert json.loads(Path(n["numbers_path"]).read_text())["verdict"]["status"] == "ok"
    assert Path(n["performance_report"]).exists()

    client = MlflowClient()
    run = client.get_run(n["mlflow"]["run_id"])
    assert run.data.tags["glideslope.model_version"] == world["version"]
    history = client.get_metric_history(run.info.run_id, "drift_share")
    assert [m.step for m in history] == [15855]  # days since 1970-01-01 of 2013-05-30
    assert "live.roc_auc" in run.data.metrics and "drift_score.wx_temp_mean" in run.data.metrics
    # The monitoring run's artifacts live under the profile's artifact root, never ./mlruns of the cwd.
    from glideslope.config import settings

    exp = client.get_experiment(run.info.experiment_id)
    assert exp.artifact_location.removeprefix("file://").startswith(settings().mlflow_artifact_root), exp
    assert not (Path.cwd() / "mlruns").exists()
    mv = client.get_model_version("flight_delay", world["version"])
    assert mv.tags["glideslope.monitor.last_ds"] == "2013-05-30"
    assert mv.tags["glideslope.monitor.last_status"] == "ok"


def test_july_is_drift_in_the_season_columns(uc, env, world):
    from glideslope.drift.monitor import run_check

    n = run_check(uc, "2013-07-03", env)
    v = n["verdict"]
    assert v["status"] == "drift" and v["data_drift"], v
    assert "wx_temp_mean" in v["drifted_columns"]
    assert v["drift_share"] >= uc.drift.drift_share
    assert n["window_days_present"] == days("2013-07-01", "2013-07-03")
    # night 07-03's flights fly on 07-04: their labels are in the lake, but not yet on 07-03
    assert env.exists(env.curated("flights", "2013-07-04"))
    assert n["performance"]["days"] == days("2013-07-01", "2013-07-02")


def test_too_few_rows_is_insufficient_data_not_drift(uc, env, world):
    from glideslope.drift.monitor import run_check

    night = env.read_parquet(env.predictions("2013-07-01")).head(300).assign(ds="2013-06-15")
    env.publish_parquet(night, env.predictions("2013-06-15"))  # a short night, far from the others
    n = run_check(uc, "2013-06-15", env)
    assert n["verdict"]["status"] == "insufficient_data"
    assert "current 300" in n["verdict"]["reasons"][0] and "min_rows 500" in n["verdict"]["reasons"][0]
    assert "insufficient data" in Path(n["report"]).read_text()

    empty = run_check(uc, "2013-06-25", env)  # no prediction night in the window at all
    assert empty["verdict"]["status"] == "insufficient_data" and empty["current_rows"] == 0


def test_a_a_split_of_one_window_does_not_fire(uc, env, world):
    from drift_support import aa_checks

    results = aa_checks(uc, env, ("2013-05-24", "2013-05-31"), seeds=2)
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert all(r["share"] == 0 for r in results)


# -- the loop through Airflow ------------------------------------------------------------------

def test_first_drifted_night_waits_for_persistence(monitor_dag, sinks):
    smtp, hook = sinks
    smtp.clear()
    hook.clear()
    dr, states = run_monitor(monitor_dag, "2013-07-01")
    assert dr.state == "success"
    assert states["no_action"] == "success" and states["trigger_retraining"] == "skipped"
    assert drift_events("2013-07-01") == []
    assert smtp.messages == [] and hook.bodies == []


def test_persistent_drift_emits_one_drift_event_and_alerts(monitor_dag, sinks, env):
    smtp, hook = sinks
    dr, states = run_monitor(monitor_dag, "2013-07-02")
    assert dr.state == "success" and states["trigger_retraining"] == "success", states
    (event,) = drift_events("2013-07-02")
    assert "wx_temp_mean" in event["drifted_columns"]
    assert event["report"].endswith("/reports/drift/ds=2013-07-02/report.html")
    assert event["report_url"].endswith("/glideslope/reports/flight_delay/drift/2013-07-02")

    mail = smtp.wait_for(1)[0]
    assert mail["Subject"] == ("[glideslope][WARNING] flight_delay 2013-07-02: drift detected, "
                               "retraining triggered")
    body = mail.get_body(preferencelist=("html",)).get_content()
    assert "wx_temp_mean" in body and "drift on 2 consecutive checks (2013-07-01..2013-07-02)" in body
    assert "flight_delay__train" in body and "/dags/flight_delay__monitor/runs/" in body
    assert "drift detected, retraining triggered" in hook.wait_for(1)[0]["text"]

    link = xcom(dr, "check_drift", "_link_DriftReportLink")  # the "Drift report" button
    assert link.endswith("/glideslope/reports/flight_delay/drift/2013-07-02")


def test_rerun_of_the_same_night_does_not_emit_again(monitor_dag, sinks):
    smtp, _ = sinks
    smtp.clear()
    dr, states = run_monitor(monitor_dag, "2013-07-02")
    assert states["suppress_retraining"] == "success" and states["trigger_retraining"] == "skipped"
    assert len(drift_events("2013-07-02")) == 1
    mail = smtp.wait_for(1)[0]
    assert "retraining suppressed" in mail["Subject"]
    assert "a retrain was already triggered for 2013-07-02" in mail.get_body(("html",)).get_content()


# Drift that outlives a real retrain, the escalation and its acknowledgement through the DAG run
# under the real scheduler in tests/integration/test_loop_e2e.py (no faked retrain here).


def test_cli_acknowledgement_is_recorded(env, world):
    from glideslope.cli import main
    from glideslope.drift.state import load_state

    assert main(["ack", "--usecase", "flight_delay", "--by", "bob", "--note", "checked", "--no-alert"]) == 0
    assert load_state("flight_delay", env)["acks"][-1]["by"] == "bob"
