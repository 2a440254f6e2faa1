"""Alerts reach a real SMTP server and a real Slack-style webhook on loopback, and say what happened.

The SMTP sink (aiosmtpd) and the webhook receiver are Glideslope's own local sinks; the messages go
through the providers' SmtpNotifier / SlackWebhookNotifier and the smtp_default / slack_default
connections, exactly as in a deployment.
"""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from drift_support import local_alert_sinks

from glideslope.airflow import notifications
from glideslope.airflow.notifications import AlertDeliveryError, TaskFailureAlert, send_alert
from glideslope.alerts import Alert
from glideslope.config import load_usecase
from glideslope_local.sinks import SmtpSink

pytestmark = pytest.mark.integration


@pytest.fixture
def sinks():
    with local_alert_sinks() as (smtp, hook):
        yield smtp, hook


@pytest.fixture(scope="module")
def uc():
    return load_usecase("flight_delay")


ESCALATION = Alert(
    usecase="flight_delay", ds="2013-07-01", kind="escalated", severity="critical",
    title="ESCALATION: drift persists after retraining; automatic retraining paused",
    body="drift persisted for 2 check(s) (2013-06-30..2013-07-01) after the retrain of 2013-06-29 (rejected)",
    links={"Drift report": "http://127.0.0.1:8080/glideslope/reports/flight_delay/drift/2013-07-01"},
    facts={"drifted columns": ["wx_temp_mean", "carrier_mean_arr_delay_7d"], "live ROC-AUC": 0.583},
)


def test_critical_alert_pages_team_and_oncall_by_mail_and_slack(uc, sinks):
    smtp, hook = sinks
    context = {"dag_run": {"dag_id": "flight_delay__monitor", "run_id": "manual__2013-07-01"},
               "ti": {"dag_id": "flight_delay__monitor", "run_id": "manual__2013-07-01", "task_id": "decide_action"}}
    sent = send_alert(uc, ESCALATION, context)
    assert sent == {"email": ["ml-team@localhost", "ml-oncall@localhost"], "slack": True,
                    "not_configured": [], "already_delivered": []}

    (mail,) = smtp.wait_for(1)
    assert mail["Subject"] == ("[glideslope][CRITICAL] flight_delay 2013-07-01: ESCALATION: drift persists after "
                               "retraining; automatic retraining paused")
    assert mail["From"] == "glideslope@localhost"
    assert set(mail["X-Envelope-To"].split(", ")) == {"ml-team@localhost", "ml-oncall@localhost"}
    html = SmtpSink.html_of(mail)
    assert "after the retrain of 2013-06-29 (rejected)" in html
    assert "wx_temp_mean, carrier_mean_arr_delay_7d" in html and "0.583" in html
    assert "http://127.0.0.1:8080/glideslope/reports/flight_delay/drift/2013-07-01" in html
    assert "/dags/flight_delay__monitor/runs/manual__2013-07-01/tasks/decide_action" in html  # from the context

    (post,) = hook.wait_for(1)
    assert hook.paths == ["/services/glideslope"]
    assert post["text"].startswith(":rotating_light: *ESCALATION")
    assert "*Use case:* flight_delay" in post["text"] and "*Date:* 2013-07-01" in post["text"]
    assert "|Drift report>" in post["text"]


def test_info_alert_is_mail_only_by_the_bundled_routes(uc, sinks):
    smtp, hook = sinks
    alert = Alert("flight_delay", "2013-06-30", "promoted", "info", "flight_delay: v3 promoted to champion (was v2)",
                  "roc_auc +0.021 on the 4-day holdout")
    assert send_alert("flight_delay", alert) == {"email": ["ml-team@localhost"], "slack": False,
                                                 "not_configured": [], "already_delivered": []}
    assert "v3 promoted" in smtp.wait_for(1)[0]["Subject"]
    assert hook.bodies == []


def test_a_dead_mail_server_still_lets_slack_through_then_fails_loudly(uc, sinks, monkeypatch):
    smtp, hook = sinks
    smtp.stop()
    with pytest.raises(AlertDeliveryError, match="email via 'smtp_default'"):
        send_alert(uc, ESCALATION, retry_delay=0)
    assert "ESCALATION" in hook.wait_for(1)[0]["text"]


def test_a_failing_task_alerts_through_the_dags_default_args(uc, sinks, airflow_db):
    """Every DAG gets dagkit.default_args, whose on_failure_callback sends a task_failed alert.

    The monitor DAG's acknowledgement task fails (no retry) when acknowledge=true lacks a name.
    """
    import runpy
    from pathlib import Path

    smtp, hook = sinks
    dag = runpy.run_path(str(Path(__file__).resolve().parents[2] / "dags" / "monitor.py"))["flight_delay__monitor"]
    dr = dag.test(run_conf={"ds": "2013-06-10", "acknowledge": True})
    assert dr.state == "failed"
    mail = smtp.wait_for(1)[0]
    assert mail["Subject"] == ("[glideslope][WARNING] flight_delay 2013-06-10: "
                               "flight_delay__monitor.acknowledge_escalation failed")
    html = SmtpSink.html_of(mail)
    assert "acknowledge=true needs the Param acknowledged_by" in html
    assert "/dags/flight_delay__monitor/runs/" in html
    assert "acknowledge_escalation failed" in hook.wait_for(1)[0]["text"]


# What docker-compose.yaml defines when SLACK_WEBHOOK_URL is left empty, as .env.example has it.
COMPOSE_DEFAULT_SLACK = json.dumps({"conn_type": "slackwebhook", "password": ""})


def _task_context(task_id: str = "send_alerts") -> dict:
    run_id = f"scheduled__2013-07-01T00:00:00+00:00-{uuid.uuid4().hex[:6]}"
    return {"dag_run": {"dag_id": "flight_delay__monitor", "run_id": run_id},
            "ti": {"dag_id": "flight_delay__monitor", "run_id": run_id, "task_id": task_id, "try_number": 1}}


def _warnings_about(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and text in r.getMessage()]


@pytest.mark.parametrize("slack_conn", [COMPOSE_DEFAULT_SLACK, None], ids=["empty-webhook", "no-connection"])
def test_an_unconfigured_slack_is_reported_once_and_fails_nothing(uc, sinks, monkeypatch, caplog, slack_conn):
    smtp, hook = sinks
    if slack_conn is None:
        monkeypatch.delenv("AIRFLOW_CONN_SLACK_DEFAULT")
    else:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_conn)
    monkeypatch.setattr(notifications, "_reported_unconfigured", set())
    caplog.set_level(logging.INFO, logger=notifications.__name__)

    for _ in range(2):
        sent = send_alert(uc, ESCALATION, _task_context("decide_action"))
        assert sent == {"email": ["ml-team@localhost", "ml-oncall@localhost"], "slack": False,
                        "not_configured": ["slack"], "already_delivered": []}
    # The failure callback of a task goes the same way: mail goes out, the callback does not raise.
    TaskFailureAlert("flight_delay").notify({**_task_context("check_drift"), "exception": RuntimeError("boom")})
    assert len(smtp.wait_for(3)) == 3
    assert hook.bodies == [] and hook.rejected == []

    (warning,) = _warnings_about(caplog, "not configured")
    assert "alert channel slack is not configured: connection 'slack_default'" in warning
    assert ("has no webhook URL" if slack_conn else "does not exist") in warning
    assert "SLACK_WEBHOOK_URL" in warning and "slackwebhook" in warning and "usecase.yaml" in warning


def test_a_failing_webhook_is_retried_and_each_failure_is_logged(uc, sinks, caplog):
    smtp, hook = sinks
    hook.fail_next(2)  # Slack answers 500 twice, then recovers
    caplog.set_level(logging.INFO, logger=notifications.__name__)
    sent = send_alert(uc, ESCALATION, retry_delay=0)
    assert sent["slack"] is True and sent["email"] == ["ml-team@localhost", "ml-oncall@localhost"]
    assert len(hook.rejected) == 2 and len(hook.wait_for(1)) == 1
    assert len(smtp.wait_for(1)) == 1
    failures = _warnings_about(caplog, "slack via connection 'slack_default' failed")
    assert [f.split("(attempt ")[1][:6] for f in failures] == ["1 of 3", "2 of 3"]
    assert all("500" in f for f in failures), failures


def test_a_channel_that_stays_down_fails_loudly_after_its_retries(uc, sinks, caplog):
    smtp, hook = sinks
    hook.fail_next(10)
    with pytest.raises(AlertDeliveryError, match=r"after 3 attempts per channel\): slack via 'slack_default'"):
        send_alert(uc, ESCALATION, retry_delay=0)
    assert len(hook.rejected) == 3 and hook.bodies == []
    assert len(smtp.wait_for(1)) == 1, "mail still went out"
    assert _warnings_about(caplog, "(attempt 3 of 3)")


def test_a_retried_task_does_not_resend_to_the_channels_that_got_the_alert(uc, sinks):
    """Try 1 of send_alerts reaches Slack but not the mail server; try 2 sends the mail only."""
    smtp, hook = sinks
    context = _task_context()
    smtp.stop()
    with pytest.raises(AlertDeliveryError, match="email via 'smtp_default'"):
        send_alert(uc, ESCALATION, context, retry_delay=0)
    assert len(hook.wait_for(1)) == 1

    smtp.start()  # the mail server is back when Airflow retries the task
    retried = send_alert(uc, ESCALATION, {**context, "ti": {**context["ti"], "try_number": 2}}, retry_delay=0)
    assert retried == {"email": ["ml-team@localhost", "ml-oncall@localhost"], "slack": True,
                       "not_configured": [], "already_delivered": ["slack"]}
    assert len(smtp.wait_for(1)) == 1
    assert len(hook.bodies) == 1, "Slack got the alert once"

    again = send_alert(uc, ESCALATION, context, retry_delay=0)  # a third try of the same task
    assert again["already_delivered"] == ["email", "slack"]
    assert len(smtp.messages) == 1 and len(hook.bodies) == 1

    # A person clears the task (Airflow bumps the run's clear_number): that is a new delivery.
    cleared = {**context, "dag_run": {**context["dag_run"], "clear_number": 1}}
    assert send_alert(uc, ESCALATION, cleared, retry_delay=0)["already_delivered"] == []
    assert len(smtp.wait_for(2)) == 2 and len(hook.wait_for(2)) == 2
    other = send_alert(uc, ESCALATION, _task_context(), retry_delay=0)  # another run is another alert
    assert other["already_delivered"] == []
    assert len(smtp.wait_for(3)) == 3 and len(hook.wait_for(3)) == 3
