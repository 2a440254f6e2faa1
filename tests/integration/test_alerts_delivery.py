"""Alerts reach a real SMTP server and a real Slack-style webhook on loopback, and say what happened.

The SMTP sink (aiosmtpd) and the webhook receiver are Glideslope's own local sinks; the messages go
through the providers' SmtpNotifier / SlackWebhookNotifier and the smtp_default / slack_default
connections, exactly as in a deployment.
"""

from __future__ import annotations

import pytest
from drift_support import local_alert_sinks

from glideslope.airflow.notifications import AlertDeliveryError, send_alert
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
    assert sent == {"email": ["ml-team@localhost", "ml-oncall@localhost"], "slack": True}

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
    assert send_alert("flight_delay", alert) == {"email": ["ml-team@localhost"], "slack": False}
    assert "v3 promoted" in smtp.wait_for(1)[0]["Subject"]
    assert hook.bodies == []


def test_a_dead_mail_server_still_lets_slack_through_then_fails_loudly(uc, sinks, monkeypatch):
    smtp, hook = sinks
    smtp.stop()
    with pytest.raises(AlertDeliveryError, match="email via 'smtp_default'"):
        send_alert(uc, ESCALATION)
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
