"""The plugin's endpoints: no login is 401, no read access to the use case's DAGs is 403."""

from __future__ import annotations

import pytest
from auth_support import bearer, install
from fastapi.testclient import TestClient

from glideslope.airflow.auth import usecase_dag_ids
from glideslope.airflow.reports import create_app
from glideslope.lake import Lake

pytestmark = pytest.mark.unit

DAY = "2013-06-19"


@pytest.fixture
def reports(tmp_path, monkeypatch, airflow_db):  # token checks read revoked tokens from the DB
    monkeypatch.setenv("GLIDESLOPE_LAKE_ROOT", str(tmp_path))
    lake = Lake(root=str(tmp_path), usecase="flight_delay")
    lake.publish_bytes(f"{lake.report_dir('drift', DAY)}/report.html", b"<html>evidently</html>")
    from glideslope.drift.state import update_state

    with update_state("flight_delay") as state:
        state["checks"][DAY] = {"status": "ok", "drift_share": 0.1, "drifted_columns": [], "champion_version": "1"}
    manager = install(monkeypatch, grants={
        "carol": set(usecase_dag_ids("flight_delay")),                 # every DAG of the use case
        "dave": {"flight_delay__monitor", "flight_delay__score"},      # only some of them
        "erin": set(),                                                 # none
    })
    return TestClient(create_app()), manager


def test_anonymous_and_bad_tokens_are_refused(reports):
    c, manager = reports
    for path in (f"/reports/flight_delay/drift/{DAY}", "/reports"):
        assert c.get(path).status_code == 401
        assert c.get(path, headers={"Authorization": "Bearer not-a-jwt"}).status_code in (401, 403)
    expired = bearer(manager, "viewer1", "viewer", expiration_time_in_seconds=-60)
    assert c.get(f"/reports/flight_delay/drift/{DAY}", headers=expired).status_code == 401


def test_a_viewer_of_the_simple_auth_manager_reads_the_report(reports):
    c, manager = reports
    r = c.get(f"/reports/flight_delay/drift/{DAY}", headers=bearer(manager, "viewer1", "viewer"))
    assert r.status_code == 200 and r.text == "<html>evidently</html>"
    c.cookies.set("_token", manager.generate_jwt(manager.deserialize_user({"sub": "v", "role": "viewer"})))
    assert c.get(f"/reports/flight_delay/drift/{DAY}").status_code == 200  # the UI's cookie works too


@pytest.mark.parametrize(("user", "code"), [("carol", 200), ("dave", 403), ("erin", 403)])
def test_reading_a_use_case_needs_read_access_to_all_its_dags(reports, user, code):
    c, manager = reports
    r = c.get(f"/reports/flight_delay/drift/{DAY}", headers=bearer(manager, user, "viewer"))
    assert r.status_code == code
    if code == 403:
        assert "flight_delay__etl" in r.json()["detail"] and user in r.json()["detail"]


def test_the_index_lists_only_readable_use_cases(reports):
    c, manager = reports
    assert "reports/flight_delay/drift/2013-06-19" in c.get("/reports", headers=bearer(manager, "carol", "viewer")).text
    page = c.get("/reports", headers=bearer(manager, "erin", "viewer"))
    assert page.status_code == 200 and "flight_delay" not in page.text
