"""The embedded stack's admin password: random, owner-only, and kept so by Airflow."""

from __future__ import annotations

import json
import stat

import pytest

from glideslope_local import stack

pytestmark = pytest.mark.unit


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_password_file_is_random_and_owner_only(tmp_path) -> None:
    a = stack.ensure_password_file({"AIRFLOW_HOME": str(tmp_path / "a")})
    b = stack.ensure_password_file({"AIRFLOW_HOME": str(tmp_path / "b")})
    assert _mode(a) == _mode(b) == 0o600
    pa, pb = json.loads(a.read_text())["admin"], json.loads(b.read_text())["admin"]
    assert pa != pb and len(pa) >= 20 and pa not in ("admin", "airflow", "password")


def test_an_existing_file_keeps_its_password_and_loses_other_access(tmp_path) -> None:
    path = tmp_path / "simple_auth_manager_passwords.json.generated"
    path.write_text(json.dumps({"admin": "chosen-before"}))
    path.chmod(0o644)
    assert stack.ensure_password_file({"AIRFLOW_HOME": str(tmp_path)}) == path
    assert _mode(path) == 0o600 and json.loads(path.read_text()) == {"admin": "chosen-before"}


def test_airflow_keeps_the_file_as_the_stack_wrote_it(tmp_path, monkeypatch) -> None:
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    path = tmp_path / "passwords.json"
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(path))
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    stack.ensure_password_file({"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(path)})
    ours = path.read_text()
    SimpleAuthManager().init()
    assert path.read_text() == ours and _mode(path) == 0o600
