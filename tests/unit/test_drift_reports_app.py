"""The reports app behind the "Drift report" button: serves a day's files, refuses anything else."""

from __future__ import annotations

import pytest
from auth_support import ADMIN, install
from fastapi.testclient import TestClient

from glideslope.airflow.reports import create_app, require_user
from glideslope.lake import Lake

pytestmark = pytest.mark.unit


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("GLIDESLOPE_LAKE_ROOT", str(tmp_path))
    lake = Lake(root=str(tmp_path), usecase="flight_delay")
    lake.publish_bytes(f"{lake.report_dir('drift', '2013-06-19')}/report.html", b"<html>evidently</html>")
    lake.publish_bytes(f"{lake.report_dir('drift', '2013-06-19')}/numbers.json", b'{"ds": "2013-06-19"}')
    install(monkeypatch)  # the admin below may read every use case
    app = create_app()
    yield TestClient(app), app


def test_login_is_required(client):
    c, _ = client
    assert c.get("/reports/flight_delay/drift/2013-06-19").status_code == 401


def test_serves_the_days_report_and_numbers(client):
    c, app = client
    app.dependency_overrides[require_user] = lambda: ADMIN
    r = c.get("/reports/flight_delay/drift/2013-06-19")
    assert r.status_code == 200 and r.text == "<html>evidently</html>" and r.headers["content-type"].startswith(
        "text/html")
    assert c.get("/reports/flight_delay/drift/2013-06-19/numbers.json").json() == {"ds": "2013-06-19"}


@pytest.mark.parametrize("path", [
    "/reports/flight_delay/drift/2013-06-20",                 # no report that day
    "/reports/nope/drift/2013-06-19",                         # unknown use case
    "/reports/flight_delay/drift/2013-06-19/..%2F..%2Fstate", # only fixed file names
    "/reports/flight_delay/training/2013-06-19",              # only drift reports
    "/reports/flight_delay/drift/june",                       # a day is YYYY-MM-DD
])
def test_anything_else_is_not_found(client, path):
    c, app = client
    app.dependency_overrides[require_user] = lambda: ADMIN
    assert c.get(path).status_code == 404


def test_index_lists_checks(client, tmp_path):
    from glideslope.drift.state import update_state

    c, app = client
    app.dependency_overrides[require_user] = lambda: ADMIN
    with update_state("flight_delay") as state:
        state["checks"]["2013-06-19"] = {"status": "drift", "drift_share": 0.3, "drifted_columns": ["wx_temp_mean"],
                                         "live_roc_auc": 0.61, "champion_version": "2"}
    page = c.get("/reports").text
    assert "reports/flight_delay/drift/2013-06-19" in page and "wx_temp_mean" in page and "0.610" in page


def test_index_names_each_use_cases_metric(client, tmp_path, monkeypatch):
    import yaml
    from regression_data import regression_spec, write_spec

    from glideslope.config import DEFAULT_USECASES_DIR
    from glideslope.drift.state import update_state

    c, app = client
    app.dependency_overrides[require_user] = lambda: ADMIN
    root = tmp_path / "usecases"
    write_spec(root, yaml.safe_load((DEFAULT_USECASES_DIR / "flight_delay" / "usecase.yaml").read_text()))
    write_spec(root, regression_spec())
    (root / "broken").mkdir()
    (root / "broken" / "usecase.yaml").write_text("name: broken\n")
    monkeypatch.setenv("GLIDESLOPE_USECASES_DIR", str(root))
    with update_state("flight_delay") as state:  # a check recorded before metrics were named per use case
        state["checks"]["2013-06-19"] = {"status": "ok", "drift_share": 0.1, "drifted_columns": [],
                                         "live_roc_auc": 0.61, "champion_version": "2"}
    with update_state("arrival_delay") as state:
        state["checks"]["2013-06-19"] = {"status": "drift", "drift_share": 0.0, "drifted_columns": [],
                                         "live_metric": "rmse", "live_rmse": 34.2, "champion_version": "1"}
    page = c.get("/reports").text
    sections = {part.split("</h2>")[0]: part for part in page.split("<h2>")[1:]}
    assert list(sections) == ["arrival_delay", "broken", "flight_delay"]
    assert "live ROC-AUC" in sections["flight_delay"] and "0.610" in sections["flight_delay"]
    assert "live RMSE" in sections["arrival_delay"] and "34.200" in sections["arrival_delay"]
    assert "ROC" not in sections["arrival_delay"]
    assert "usecase.yaml" in sections["broken"]  # one broken spec does not take the page down
