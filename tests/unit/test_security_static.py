"""What a reviewer checks in the deployment files: no default credential, MLflow behind a login."""

from __future__ import annotations

import configparser
import re

import pytest
import yaml

from glideslope.config import PROJECT_ROOT

pytestmark = pytest.mark.unit

COMPOSE = PROJECT_ROOT / "docker-compose.yaml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
MAKEFILE = PROJECT_ROOT / "Makefile"
SECRETISH = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY$")
_VAR = re.compile(r"\$\{(\w+)(:?[-?])?([^}]*)\}")


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _required(value: str) -> str | None:
    """The variable a value takes without a default (``${NAME:?...}``), else None."""
    m = re.fullmatch(r"\$\{(\w+):\?[^}]*\}", str(value))
    return m.group(1) if m else None


def test_mlflow_answers_nobody_without_credentials() -> None:
    compose = _compose()
    mlflow = compose["services"]["mlflow"]
    assert "--app-name=basic-auth" in mlflow["command"], "MLflow must run its basic-auth app"
    env = mlflow["environment"]
    assert _required(env["MLFLOW_AUTH_ADMIN_PASSWORD"]), "the admin password has no default"
    assert _required(env["MLFLOW_FLASK_SERVER_SECRET_KEY"])
    (cfg,) = [c for c in mlflow["configs"] if c["target"] == env["MLFLOW_AUTH_CONFIG_PATH"]]
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(compose["configs"][cfg["source"]]["content"])
    auth = ini["mlflow"]
    assert "admin_password" not in auth, "no password is written into the auth config"
    assert auth["authorization_function"] == "mlflow.server.auth:authenticate_request_basic_auth"
    assert auth["database_uri"].startswith("postgresql") and "mlflow_auth" in auth["database_uri"]
    assert "CREATE DATABASE mlflow_auth" in compose["configs"]["postgres-mlflow-db"]["content"]
    assert mlflow["ports"] == ["${GLIDESLOPE_BIND_ADDRESS:-127.0.0.1}:5000:5000"]
    # Every client logs in as that admin; its password is the one the server creates.
    common = compose["x-airflow-common"]["environment"]
    assert _required(common["MLFLOW_TRACKING_PASSWORD"]) == _VAR.match(env["MLFLOW_AUTH_ADMIN_PASSWORD"]).group(1)
    assert common["MLFLOW_TRACKING_USERNAME"] == "${MLFLOW_TRACKING_USERNAME:-glideslope}"
    assert "${MLFLOW_TRACKING_USERNAME:-glideslope}" in auth["admin_username"]


def test_no_secret_has_a_default_and_make_env_generates_each_one() -> None:
    text = COMPOSE.read_text().replace("$$", "")
    secrets_used = set()
    for name, op, default in _VAR.findall(text):
        if SECRETISH.search(name):
            assert not (op in (":-", "-") and default), f"docker-compose.yaml gives {name} a default ({default!r})"
            secrets_used.add(name)
    example = dict(re.findall(r"^(\w+)=(.*)$", ENV_EXAMPLE.read_text(), re.M))
    generated = set(re.findall(r'"(\w+)": lambda', MAKEFILE.read_text()))
    for name in sorted(secrets_used):
        assert example.get(name) == "", f".env.example must list {name} empty (make .env fills it)"
        optional = re.search(rf"\$\{{{name}:-\}}", text) or re.search(rf"\$\{{{name}\}}", text)
        assert name in generated or optional, f"compose requires {name} but `make .env` does not generate it"
    for name in ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY", "POSTGRES_PASSWORD",
                 "MINIO_ROOT_PASSWORD", "AIRFLOW_ADMIN_PASSWORD"):
        assert name in generated, name


def test_the_image_and_the_helm_example_carry_no_credential() -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    for m in re.finditer(r"^\s*(?:ENV|ARG)\s+(.+)$", dockerfile, re.M):
        for name in re.findall(r"(\w+)=", m.group(1)):
            assert not SECRETISH.search(name), f"Dockerfile bakes {name} into the image"
    guide = (PROJECT_ROOT / "docs" / "production.md").read_text()
    assert not re.search(r"(PASSWORD|SECRET)\w*, value:", guide), "credentials belong in Secrets, not values"
