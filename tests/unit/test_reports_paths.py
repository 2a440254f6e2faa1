"""The reports app's path parameters cannot reach a file outside the use case's lake."""

from __future__ import annotations

import os

import pytest
from auth_support import ADMIN, install
from fastapi.testclient import TestClient

from glideslope.airflow.reports import create_app, require_user
from glideslope.lake import Lake

pytestmark = pytest.mark.unit

SECRET = b"outside-the-lake"
DS = "2013-06-19"


@pytest.fixture
def lake_and_client(tmp_path, monkeypatch):
    root = tmp_path / "lake"
    monkeypatch.setenv("GLIDESLOPE_LAKE_ROOT", str(root))
    lake = Lake(root=str(root), usecase="flight_delay")
    lake.publish_bytes(f"{lake.report_dir('drift', DS)}/report.html", b"<html>evidently</html>")
    lake.publish_bytes(lake.state("drift"), b'{"inside": "state, not a report"}')
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("report.html", "numbers.json", "passwd"):
        (outside / name).write_bytes(SECRET)
    install(monkeypatch)  # Airflow's auth manager: the admin below may read every use case
    app = create_app()
    app.dependency_overrides[require_user] = lambda: ADMIN
    return lake, outside, TestClient(app)


def _refused(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404, (path, r.status_code, r.text[:200])
    assert SECRET not in r.content and b"state, not a report" not in r.content


@pytest.mark.parametrize("path", [
    f"/reports/flight_delay/drift/{DS}/..%2F..%2F..%2Fstate%2Fdrift.json",
    f"/reports/flight_delay/drift/{DS}/%2E%2E%2F%2E%2E%2F%2E%2E%2Fstate%2Fdrift.json",
    f"/reports/flight_delay/drift/{DS}%2F..%2F..%2F..%2Fstate/numbers.json",
    "/reports/flight_delay/drift/..%2F..%2Fstate/report.html",
    "/reports/..%2Fflight_delay/drift/2013-06-19",
    f"/reports/flight_delay/drift/{DS}/%2Fetc%2Fpasswd",
    "/reports/%2Fetc/drift/2013-06-19/passwd",
    f"/reports/flight_delay/..%2F..%2Fstate/{DS}/report.html",
])
def test_dot_dot_encoded_and_absolute_paths_are_not_served(lake_and_client, path):
    _lake, outside, client = lake_and_client
    _refused(client, path)
    _refused(client, path.replace("%2Fetc%2Fpasswd", f"{str(outside).replace('/', '%2F')}%2Fpasswd"))


def test_a_symlinked_report_pointing_outside_the_lake_is_not_served(lake_and_client):
    lake, outside, client = lake_and_client
    day = "2013-06-20"
    folder = lake.report_dir("drift", day)
    os.makedirs(folder)
    os.symlink(outside / "report.html", f"{folder}/report.html")
    os.symlink(outside / "numbers.json", f"{folder}/numbers.json")
    _refused(client, f"/reports/flight_delay/drift/{day}")
    _refused(client, f"/reports/flight_delay/drift/{day}/numbers.json")


def test_a_symlinked_day_folder_pointing_outside_is_not_served(lake_and_client):
    lake, outside, client = lake_and_client
    day = "2013-06-21"
    os.makedirs(os.path.dirname(lake.report_dir("drift", day)), exist_ok=True)
    os.symlink(outside, lake.report_dir("drift", day))
    _refused(client, f"/reports/flight_delay/drift/{day}")


def test_a_link_that_stays_inside_the_lake_still_works(lake_and_client):
    lake, _outside, client = lake_and_client
    day = "2013-06-22"
    folder = lake.report_dir("drift", day)
    os.makedirs(folder)
    os.symlink(f"{lake.report_dir('drift', DS)}/report.html", f"{folder}/report.html")
    r = client.get(f"/reports/flight_delay/drift/{day}")
    assert r.status_code == 200 and r.text == "<html>evidently</html>"
