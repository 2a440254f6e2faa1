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
