"""The process environment Airflow runs with, per profile.

``make up``, ``make demo``, the CLI and the tests all build Airflow's environment here, so
there is one place that says which folders, executor and connections the embedded profile uses.
Production deployments set the same variables in docker-compose / Helm instead.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from glideslope.config import PROJECT_ROOT, Settings, settings


def java_home() -> str | None:
    java = shutil.which("java")
    return str(Path(java).resolve().parents[1]) if java else None


def embedded_airflow_env(cfg: Settings | None = None, port: int = 8080) -> dict[str, str]:
    """Variables for Airflow on one machine: SQLite metadata, LocalExecutor, loopback only."""
    cfg = cfg or settings()
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
        "GLIDESLOPE_AIRFLOW_BASE_URL": url,
        "MLFLOW_TRACKING_URI": cfg.mlflow_tracking_uri,
        "GX_ANALYTICS_ENABLED": "false",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
    }
    jh = java_home()
    if jh:
        env["JAVA_HOME"] = jh
    return env
