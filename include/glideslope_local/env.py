"""The process environment Airflow runs with on one machine (the embedded profile).

``make up``, ``make demo`` and the tests all build Airflow's environment here, so there is one
place that says which folders, executor and connections the embedded profile uses.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from glideslope.config import PROJECT_ROOT, Settings, settings
from glideslope.lineage import EVENTS_DIR
from glideslope.runtime import file_transport, http_transport, java_home, openlineage_env

DEFAULT_AIRFLOW_PORT = 8080
DEFAULT_SMTP_PORT = 8025
DEFAULT_WEBHOOK_PORT = 8099
DEFAULT_SPARK_CONNECT_PORT = 15002
SPARK_CONNECT_CONN_ID = "spark_connect_default"


def _env_port(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected a TCP port number") from None


def airflow_port() -> int:
    """The API server / UI port: ``GLIDESLOPE_AIRFLOW_PORT``, else 8080."""
    return _env_port("GLIDESLOPE_AIRFLOW_PORT", DEFAULT_AIRFLOW_PORT)


def embedded_airflow_env(cfg: Settings | None = None, port: int | None = None) -> dict[str, str]:
    """Variables for Airflow on one machine: SQLite metadata, LocalExecutor, loopback only.

    The ``smtp_default`` and ``slack_default`` connections point at the local mail sink and
    webhook receiver (ports ``GLIDESLOPE_SMTP_PORT`` / ``GLIDESLOPE_WEBHOOK_PORT``), so alerts
    of the embedded profile never leave the machine.
    """
    cfg = cfg or settings()
    port = airflow_port() if port is None else port
    smtp_port = _env_port("GLIDESLOPE_SMTP_PORT", DEFAULT_SMTP_PORT)
    webhook_port = _env_port("GLIDESLOPE_WEBHOOK_PORT", DEFAULT_WEBHOOK_PORT)
    home = cfg.home / "airflow"
    url = f"http://127.0.0.1:{port}"
    env = {
        "GLIDESLOPE_PROFILE": cfg.profile,
        "GLIDESLOPE_HOME": str(cfg.home),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port + 713),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(port + 714),
        # The log servers listen on 127.0.0.1 only (airflow_config/airflow_local_settings.py):
        # task instances record that address, so the UI fetches running tasks' logs there.
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "glideslope_local.env.loopback_hostname",
        "GLIDESLOPE_AIRFLOW_BASE_URL": url,
        "MLFLOW_TRACKING_URI": cfg.mlflow_tracking_uri,
        "GX_ANALYTICS_ENABLED": "false",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        "GLIDESLOPE_SMTP_PORT": str(smtp_port),
        "GLIDESLOPE_WEBHOOK_PORT": str(webhook_port),
        # The local sink speaks plain SMTP: with SSL or STARTTLS on (the hook's defaults) every
        # mail fails with WRONG_VERSION_NUMBER / "STARTTLS extension not supported".
        "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps({
            "conn_type": "smtp", "host": "127.0.0.1", "port": smtp_port,
            "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "glideslope@localhost",
                      "timeout": 10, "retry_limit": 1},
        }),
        # A full http URL in the password is used as the webhook URL verbatim.
        "AIRFLOW_CONN_SLACK_DEFAULT": json.dumps({
            "conn_type": "slackwebhook", "password": f"http://127.0.0.1:{webhook_port}/services/glideslope",
        }),
    }
    # Lineage: every task's OpenLineage events to files under $GLIDESLOPE_HOME/lineage (read by
    # `glideslope lineage`), and to an HTTP receiver too when GLIDESLOPE_OPENLINEAGE_URL names one.
    transports: dict[str, dict] = {"file": file_transport(str(cfg.home / EVENTS_DIR))}
    if cfg.openlineage_url:
        transports["http"] = http_transport(cfg.openlineage_url)
        env["GLIDESLOPE_OPENLINEAGE_URL"] = cfg.openlineage_url
    env.update(openlineage_env(transports))
    jh = java_home()
    if jh:
        env["JAVA_HOME"] = jh
    return env


LOCAL_SETTINGS_DIR = Path(__file__).resolve().parent / "airflow_config"


def loopback_hostname() -> str:
    """Airflow's ``[core] hostname_callable`` in the embedded stack: everything runs on 127.0.0.1."""
    return "127.0.0.1"


def preload_env(base: dict[str, str]) -> dict[str, str]:
    """Put the embedded ``airflow_local_settings`` on the path: the scheduler preloads the task
    libraries, and SQLite waits longer for its one writer (``airflow_config/airflow_local_settings.py``)."""
    path = base.get("PYTHONPATH", "")
    env = {"PYTHONPATH": str(LOCAL_SETTINGS_DIR) + (os.pathsep + path if path else ""),
           "GLIDESLOPE_PRELOAD_TASK_LIBRARIES": base.get("GLIDESLOPE_PRELOAD_TASK_LIBRARIES", "true")}
    if base.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "").startswith("sqlite"):
        # A longer SQLite busy timeout (see airflow_config/airflow_local_settings.py).
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] = "airflow_local_settings.connect_args"
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC"] = "airflow_local_settings.connect_args"
    return env


def spark_connect_port() -> int:
    """The local Spark Connect server's port: ``GLIDESLOPE_SPARK_CONNECT_PORT``, else 15002."""
    return _env_port("GLIDESLOPE_SPARK_CONNECT_PORT", DEFAULT_SPARK_CONNECT_PORT)


def spark_connect_env(port: int) -> dict[str, str]:
    """What Airflow needs to send the ETL transform to the local Spark Connect server."""
    return {
        f"AIRFLOW_CONN_{SPARK_CONNECT_CONN_ID.upper()}": json.dumps(
            {"conn_type": "spark_connect", "host": "127.0.0.1", "port": port}),
        "GLIDESLOPE_SPARK_CONNECT_CONN_ID": SPARK_CONNECT_CONN_ID,
    }
