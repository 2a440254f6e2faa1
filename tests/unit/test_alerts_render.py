"""Alerts read right and go to the right people: routing per severity, subject, HTML and Slack text."""

from __future__ import annotations

import pytest

from glideslope.alerts import Alert
from glideslope.alerts.links import airflow_run_url, mlflow_model_version_url, mlflow_run_url, report_url
from glideslope.alerts.render import html_body, slack_text, subject
from glideslope.alerts.routing import route_for
from glideslope.config import AlertRoute, load_usecase, settings

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def uc():
    return load_usecase("flight_delay")


def with_routes(uc, routes):
    return uc.model_copy(update={"alerts": uc.alerts.model_copy(update={"routes": routes})})


ALERT = Alert(
    usecase="flight_delay", ds="2013-06-19", kind="escalated", severity="critical",
    title="ESCALATION: drift persists after retraining",
    body="drift persisted for 2 checks after the retrain of 2013-06-16 (rejected)\n\nglideslope ack <usecase>",
    links={"Drift report": "http://127.0.0.1:8080/glideslope/reports/flight_delay/drift/2013-06-19",
           "Airflow run": "http://127.0.0.1:8080/dags/flight_delay__monitor/runs/manual__x"},
    facts={"drifted columns": ["wx_temp_mean", "carrier_late_rate_7d"], "drift share": 0.2, "live ROC-AUC": 0.5712},
)


def test_bundled_routes_send_critical_to_oncall_and_slack(uc):
    crit = route_for(uc, "critical")
    assert "ml-oncall@localhost" in crit.email and crit.slack
    assert route_for(uc, "info").slack is False


def test_missing_severity_falls_back_to_the_nearest_lower_route(uc):
    only_warning = with_routes(uc, {"warning": AlertRoute(email=["team@x"], slack=True)})
    assert route_for(only_warning, "critical").email == ["team@x"]
    assert route_for(only_warning, "info") is None          # never upwards: info does not page the team
    assert route_for(with_routes(uc, {}), "critical") is None


def test_unknown_severity_is_an_error(uc):
    with pytest.raises(ValueError, match="unknown alert severity 'urgent'"):
        route_for(uc, "urgent")


def test_subject_names_severity_use_case_date_and_what_happened():
    assert subject(ALERT) == ("[glideslope][CRITICAL] flight_delay 2013-06-19: "
                              "ESCALATION: drift persists after retraining")


def test_html_carries_why_facts_and_links_escaped():
    html = html_body(ALERT)
    assert "flight_delay" in html and "2013-06-19" in html and "escalation" in html
    assert "after the retrain of 2013-06-16 (rejected)" in html
    assert "wx_temp_mean, carrier_late_rate_7d" in html and "0.5712" in html
    assert "href='http://127.0.0.1:8080/glideslope/reports/flight_delay/drift/2013-06-19'" in html
    assert "glideslope ack &lt;usecase&gt;" in html and "<usecase>" not in html


def test_slack_text_is_mrkdwn_with_links():
    text = slack_text(ALERT)
    assert text.startswith(":rotating_light: *ESCALATION")
    assert "*Use case:* flight_delay" in text and "*Date:* 2013-06-19" in text
    assert "<http://127.0.0.1:8080/glideslope/reports/flight_delay/drift/2013-06-19|Drift report>" in text
    assert "glideslope ack &lt;usecase&gt;" in text


def test_link_builders_follow_settings():
    cfg = settings({"GLIDESLOPE_HOME": "/tmp/x", "GLIDESLOPE_AIRFLOW_BASE_URL": "https://af.example/",
                    "GLIDESLOPE_MLFLOW_UI_URL": "https://ml.example"})
    assert airflow_run_url("uc__monitor", "scheduled__2013-06-19T05:00:00+00:00", "check_drift", cfg) == (
        "https://af.example/dags/uc__monitor/runs/scheduled__2013-06-19T05%3A00%3A00%2B00%3A00/tasks/check_drift")
    assert mlflow_run_url("3", "abc", cfg) == "https://ml.example/#/experiments/3/runs/abc"
    assert mlflow_model_version_url("flight_delay", 4, cfg) == "https://ml.example/#/models/flight_delay/versions/4"
    assert report_url("flight_delay", "2013-06-19", cfg=cfg) == (
        "https://af.example/glideslope/reports/flight_delay/drift/2013-06-19")


# --- every alert names the night, never the wall-clock date (#21) --------------------------------

class _Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class _TI(_Obj):
    def xcom_pull(self, task_ids=None, key=None):
        return self.__dict__.get("xcoms", {}).get(key)


WALL_CLOCK = "2026-12-07"


def _context(run_type: str, *, events=(), params=None, logical=None, xcoms=None) -> dict:
    from datetime import datetime

    ran = datetime.fromisoformat(f"{WALL_CLOCK}T02:10:00+00:00")
    dag_run = _Obj(run_type=run_type, run_after=ran, start_date=ran, dag_id="flight_delay__score",
                   run_id=f"{run_type}__{WALL_CLOCK}T02:10:00+00:00", clear_number=0)
    ti = _TI(dag_id="flight_delay__score", task_id="score_next_period", run_id=dag_run.run_id, map_index=-1,
             try_number=2, xcoms=xcoms or {})
    key = _Obj(name="flight_delay.online_features")
    return {"dag_run": dag_run, "ti": ti, "params": params or {}, "run_id": dag_run.run_id,
            "logical_date": logical, "triggering_asset_events": {key: list(events)} if events else {}}


def _event(ds: str):
    from datetime import datetime

    return _Obj(extra={"ds": ds}, source_dag_id="flight_delay__features", source_run_id="r",
                timestamp=datetime.fromisoformat(f"{WALL_CLOCK}T02:00:00+00:00"))


def test_a_task_failed_alert_of_an_asset_triggered_run_names_its_night(monkeypatch):
    from datetime import datetime

    from glideslope.airflow import notifications

    sent = []
    monkeypatch.setattr(notifications, "send_alert", lambda uc, alert, context=None: sent.append(alert))
    notifications.TaskFailureAlert("flight_delay").notify(
        {**_context("asset_triggered", events=[_event("2009-02-06")]), "exception": RuntimeError("boom")})
    (alert,) = sent
    assert alert.kind == "task_failed" and alert.ds == "2009-02-06"
    assert subject(alert).startswith("[glideslope][WARNING] flight_delay 2009-02-06: ")
    ctx = notifications._context_ds
    # The ds Param, the logical date of a scheduled run, the plan of a run without events, none at all.
    assert ctx(_context("manual", params={"ds": "2013-06-19"}), "flight_delay") == "2013-06-19"
    assert ctx(_context("scheduled", logical=datetime.fromisoformat("2013-06-20T02:00:00+00:00")),
               "flight_delay") == "2013-06-20"
    assert ctx(_context("asset_triggered", xcoms={"plan": {"own": [], "nights": ["2013-06-21"]}}),
               "flight_delay") == "2013-06-21"
    assert ctx(_context("asset_triggered"), "flight_delay") == "no night named"
    # A run by hand without ds works on the lake's backlog: its plan names the nights, not its logical date.
    by_hand = _context("manual", logical=datetime.fromisoformat(f"{WALL_CLOCK}T02:10:00+00:00"),
                       xcoms={"plan": {"own": [], "nights": ["2013-06-22"]}})
    assert ctx(by_hand, "flight_delay") == "2013-06-22"
    merged = _context("asset_triggered", events=[_event(d) for d in ("2013-06-01", "2013-06-02", "2013-06-03",
                                                                     "2013-06-04")])
    assert ctx(merged, "flight_delay") == "2013-06-01…2013-06-04 (4 nights)"


def test_the_scoring_late_alert_names_the_nights_the_run_owes(tmp_path, monkeypatch):
    from pathlib import Path

    import pandas as pd

    from glideslope.airflow.deadline import missed_deadline_alert
    from glideslope.lake import Lake

    monkeypatch.setenv("GLIDESLOPE_HOME", str(tmp_path))
    lake = Lake.for_usecase("flight_delay")
    uc = load_usecase("flight_delay")
    for ds in ("2013-06-19", "2013-06-20"):
        for t in uc.features.tables:
            Path(lake.features(t, ds)).parent.mkdir(parents=True, exist_ok=True)
            Path(lake.features(t, ds)).write_bytes(b"x")
        lake.publish_parquet(pd.DataFrame({"flight_id": ["a", "b"]}), lake.curated(uc.scoring.table, ds))
    lake.publish_parquet(pd.DataFrame({"flight_id": ["a"]}), lake.predictions("2013-06-19"))
    context = {"dag_run": {"dag_id": "flight_delay__score", "dag_run_id": "asset_triggered__x", "state": "running",
                           "queued_at": f"{WALL_CLOCK}T02:10:00Z", "logical_date": None, "conf": {}},
               "deadline": {"deadline_time": f"{WALL_CLOCK}T05:10:00Z"}}
    assert missed_deadline_alert("flight_delay", 180, context).ds == "2013-06-20"


def test_drift_and_acknowledgement_alerts_name_the_checked_night(tmp_path):
    from glideslope.drift.loop import _alert_for, acknowledge
    from glideslope.lake import Lake

    uc = load_usecase("flight_delay")
    numbers = {"verdict": {"drift_share": 0.3, "reasons": ["3 of 10 columns drifted"]}, "report": "r"}
    for action, kind in (("trigger", "drift_detected"), ("suppress", "retrain_suppressed"),
                         ("escalate", "escalated")):
        out = {"ds": "2013-06-19", "action": action, "drifted_columns": ["x"], "streak": ["2013-06-18"],
               "reasons": ["drift"], "retrain": {"ds": "2013-06-16", "decision": "rejected"}}
        alert = _alert_for(uc, out, numbers)
        assert (alert.kind, alert.ds) == (kind, "2013-06-19")
    lake = Lake(root=str(tmp_path / "lake"), usecase=uc.name)
    ack = acknowledge(uc, by="alice", lake=lake, tag_mlflow=False)
    assert ack["alert"]["ds"] == "no night checked yet", "never today's date"
    assert acknowledge(uc, by="alice", ds="2013-06-20", lake=lake, tag_mlflow=False)["alert"]["ds"] == "2013-06-20"
