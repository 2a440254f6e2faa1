"""The drift loop over several nights: checks recorded, triggers, suppression, escalation, acknowledgement.

The state lives in a real (temporary) lake; the checks' numbers are built by hand, so these tests
exercise the loop's bookkeeping and alerts without Evidently or MLflow.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from glideslope.config import load_usecase
from glideslope.drift.loop import acknowledge, decide_and_record, mark_sent, record_trigger_emitted
from glideslope.drift.state import load_state, record_retrain, retraining_paused, state_path
from glideslope.lake import Lake

pytestmark = pytest.mark.unit


@pytest.fixture
def lake(tmp_path):
    return Lake(root=str(tmp_path / "lake"), usecase="flight_delay")


@pytest.fixture(scope="module")
def uc():
    return load_usecase("flight_delay")


def day(n: int) -> str:
    return (date(2013, 6, 1) + timedelta(days=n)).isoformat()


def numbers(ds: str, status: str, drifted=("wx_temp_mean", "wx_humid_mean", "prediction", "distance"),
            performance: dict | None = None) -> dict:
    drifted = list(drifted) if status == "drift" else []
    return {"ds": ds, "report": f"/lake/reports/drift/ds={ds}/report.html", "champion": None,
            "performance": performance or {"rows": 2000, "roc_auc": 0.7},
            "verdict": {"status": status, "drift_share": len(drifted) / 10, "drifted_columns": drifted,
                        "data_drift": status == "drift", "performance_breach": False, "tested_columns": 10,
                        "reasons": [f"{len(drifted)} of 10 columns drifted"]}}


def night(uc, lake, n: int, status: str, *, train_active: bool = False) -> dict:
    d = decide_and_record(uc, day(n), numbers(day(n), status), train_active=train_active, lake=lake)
    if d["action"] == "trigger":
        record_trigger_emitted(uc, day(n), d, lake=lake)
    if d["alert"]:
        mark_sent(uc, day(n), d["alert"]["kind"], lake=lake)
    return d


def test_full_loop_trigger_suppress_escalate_ack(uc, lake):
    assert night(uc, lake, 0, "ok")["action"] == "none"
    first = night(uc, lake, 1, "drift")
    assert first["action"] == "wait" and first["alert"] is None          # one noisy day: quiet

    trig = night(uc, lake, 2, "drift")
    assert trig["action"] == "trigger"
    alert = trig["alert"]
    assert alert["kind"] == "drift_detected" and alert["severity"] == "warning"
    assert "wx_temp_mean" in alert["facts"]["drifted columns"]
    assert alert["links"]["Drift report"].endswith(f"/glideslope/reports/flight_delay/drift/{day(2)}")

    # the train DAG has not reported yet and drift goes on: cooldown suppresses, request kept
    sup = night(uc, lake, 3, "drift")
    assert sup["action"] == "suppress" and sup["alert"]["kind"] == "retrain_suppressed"
    assert any("cooldown" in r for r in sup["reasons"])
    state = load_state("flight_delay", lake)
    assert [(t["ds"], t["outcome"]) for t in state["triggers"]] == [(day(2), "emitted"), (day(3), "suppressed")]

    # the retrain ran (its challenger was rejected) and drift persists for 2 more checks
    record_retrain(uc, day(2), "rejected", model_version=2, run_id="abc", lake=lake)
    record_retrain(uc, day(2), "rejected", model_version=2, run_id="abc", lake=lake)  # retried task
    assert len(load_state("flight_delay", lake)["retrains"]) == 1
    esc = night(uc, lake, 4, "drift")
    assert esc["action"] == "escalate"
    assert esc["alert"]["kind"] == "escalated" and esc["alert"]["severity"] == "critical"
    assert "glideslope ack --usecase flight_delay" in esc["alert"]["body"]
    assert retraining_paused("flight_delay", lake)["ds"] == day(4)

    # paused: no retrain, no repeated alert
    paused = night(uc, lake, 5, "drift")
    assert paused["action"] == "paused" and paused["alert"] is None

    ack = acknowledge(uc, by="alice", note="summer storms; data are fine", ds=day(5), lake=lake, tag_mlflow=False)
    assert ack["was_paused"]["ds"] == day(4)
    assert ack["alert"]["kind"] == "acknowledged" and "alice" in ack["alert"]["title"]
    assert retraining_paused("flight_delay", lake) is None

    assert night(uc, lake, 6, "drift")["action"] == "wait"
    again = night(uc, lake, 7, "drift")
    assert again["action"] == "trigger"            # automatic retraining resumed

    history = [h["event"] for h in load_state("flight_delay", lake)["history"]]
    for event in ("decision:trigger", "drift_event_emitted", "decision:suppress", "retrain_recorded",
                  "decision:escalate", "decision:paused", "acknowledged", "alert_sent:escalated"):
        assert event in history, event


def test_rerun_of_a_day_does_not_trigger_or_alert_twice(uc, lake):
    night(uc, lake, 0, "drift")
    first = night(uc, lake, 1, "drift")
    assert first["action"] == "trigger"
    rerun = decide_and_record(uc, day(1), numbers(day(1), "drift"), train_active=False, lake=lake)
    assert rerun["action"] == "suppress" and any("already triggered" in r for r in rerun["reasons"])
    state = load_state("flight_delay", lake)
    assert [t["ds"] for t in state["triggers"] if t["outcome"] == "emitted"] == [day(1)]


def test_active_training_run_suppresses(uc, lake):
    night(uc, lake, 0, "drift")
    d = night(uc, lake, 1, "drift", train_active=True)
    assert d["action"] == "suppress" and any("already queued or running" in r for r in d["reasons"])


def test_insufficient_data_is_recorded_as_such(uc, lake):
    d = decide_and_record(uc, day(0), numbers(day(0), "insufficient_data"), train_active=False, lake=lake)
    assert d["action"] == "insufficient_data" and d["alert"] is None
    assert load_state("flight_delay", lake)["checks"][day(0)]["status"] == "insufficient_data"


def test_state_is_one_json_document_in_the_lake(uc, lake):
    night(uc, lake, 0, "ok")
    path = state_path("flight_delay", lake)
    assert path.endswith("/flight_delay/state/drift.json")
    doc = json.loads(open(path).read())
    assert doc["checks"][day(0)]["status"] == "ok"


def test_record_retrain_rejects_unknown_decisions(lake):
    with pytest.raises(ValueError, match="not one of"):
        record_retrain("flight_delay", day(0), "maybe", lake=lake)


def test_acknowledge_needs_a_name(uc, lake):
    with pytest.raises(ValueError, match="name of the person"):
        acknowledge(uc, by="  ", lake=lake, tag_mlflow=False)


def test_the_check_record_and_the_alert_name_the_use_cases_metric(uc, lake, tmp_path):
    from regression_data import regression_spec, write_spec

    from glideslope.config import parse_usecase

    binary = decide_and_record(uc, day(0), numbers(day(0), "drift"), train_active=False, lake=lake)
    assert binary["action"] == "wait"
    assert load_state("flight_delay", lake)["checks"][day(0)]["live_roc_auc"] == 0.7  # the key old lakes have

    reg = parse_usecase(write_spec(tmp_path / "usecases", regression_spec()))
    reg_lake = Lake(root=str(tmp_path / "lake"), usecase=reg.name)
    perf = {"rows": 2000, "rmse": 34.2, "mae": 21.0, "r2": 0.61}
    for n in (0, 1):
        d = decide_and_record(reg, day(n), numbers(day(n), "drift", performance=perf), train_active=False,
                              lake=reg_lake)
    check = load_state(reg.name, reg_lake)["checks"][day(1)]
    assert check["live_metric"] == "rmse" and check["live_rmse"] == 34.2 and "live_roc_auc" not in check
    assert d["action"] == "trigger"
    assert d["alert"]["facts"]["live RMSE"] == 34.2 and not any("ROC" in k for k in d["alert"]["facts"])
