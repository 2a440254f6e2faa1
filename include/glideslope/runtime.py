"""The process environment of the production profile, and what every profile's workers share.

docker-compose, Helm values and the services tests set Airflow's variables from
:func:`production_airflow_env`; workers and the GPU pod get the Glideslope settings from
:func:`glideslope_env`. The embedded profile's environment (one machine, SQLite, loopback) is
tooling, not library: :mod:`glideslope_local.env`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from glideslope.config import PROJECT_ROOT, Settings, settings


def java_home() -> str | None:
    java = shutil.which("java")
    return str(Path(java).resolve().parents[1]) if java else None


FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"


def glideslope_env(cfg: Settings) -> dict[str, str]:
    """``GLIDESLOPE_*`` (and the MLflow/S3 variables their clients read) that reproduce ``cfg``."""
    env = {
        "GLIDESLOPE_PROFILE": cfg.profile,
        "GLIDESLOPE_HOME": str(cfg.home),
        "GLIDESLOPE_LAKE_ROOT": cfg.lake_root,
        "GLIDESLOPE_MLFLOW_TRACKING_URI": cfg.mlflow_tracking_uri,
        "GLIDESLOPE_MLFLOW_ARTIFACT_ROOT": cfg.mlflow_artifact_root,
        "GLIDESLOPE_FEAST_REGISTRY": cfg.feast_registry,
        "GLIDESLOPE_FEAST_ONLINE_STORE": cfg.feast_online_store,
        "GLIDESLOPE_FEAST_ONLINE_TYPE": cfg.feast_online_type,
        "GLIDESLOPE_SPARK_CONN_ID": cfg.spark_conn_id,
        "GLIDESLOPE_AIRFLOW_BASE_URL": cfg.airflow_base_url,
        "GLIDESLOPE_MLFLOW_UI_URL": cfg.mlflow_ui_url,
        "GLIDESLOPE_TRAINING_BACKEND": cfg.training_backend,
        "MLFLOW_TRACKING_URI": cfg.mlflow_tracking_uri,
        "GX_ANALYTICS_ENABLED": "false",
    }
    if cfg.image:
        env["GLIDESLOPE_IMAGE"] = cfg.image
    if cfg.lock_url:
        env["GLIDESLOPE_LOCK_URL"] = cfg.lock_url
    if cfg.openlineage_url:
        env["GLIDESLOPE_OPENLINEAGE_URL"] = cfg.openlineage_url
    if cfg.s3_endpoint_url:
        # Each S3 client reads its own variable: MLflow's artifact repo, boto3/s3fs, and ours.
        env["GLIDESLOPE_S3_ENDPOINT_URL"] = cfg.s3_endpoint_url
        env["MLFLOW_S3_ENDPOINT_URL"] = cfg.s3_endpoint_url
        env["AWS_ENDPOINT_URL_S3"] = cfg.s3_endpoint_url
        env["FEAST_S3_ENDPOINT_URL"] = cfg.s3_endpoint_url  # Feast's S3 registry store
    return env


def production_airflow_env(
    cfg: Settings | None = None,
    *,
    database_url: str,
    broker_url: str,
    execution_api_url: str,
    fernet_key: str,
    jwt_secret: str,
    spark_master: str | None = None,
    result_backend: str | None = None,
    worker_concurrency: int = 4,
) -> dict[str, str]:
    """Variables for distributed Airflow: PostgreSQL metadata, CeleryExecutor on a Redis broker.

    ``docker-compose.yaml`` sets the same keys (its static test checks it), Helm values set
    them for Kubernetes, and the services tests start real components with them on loopback.
    ``database_url`` is a SQLAlchemy URL (``postgresql+psycopg2://...``); the Celery result
    backend defaults to the same database. ``execution_api_url`` is the API server's root as
    workers reach it (``http://airflow-apiserver:8080`` in compose). The Fernet key and the JWT
    secret are passed in, never defaulted: every component must share the same values.
    """
    cfg = cfg or settings()
    if not fernet_key or not jwt_secret:
        raise ValueError("production Airflow needs a Fernet key and a JWT secret shared by every component")
    env = glideslope_env(cfg)
    env.update({
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__FERNET_KEY": fernet_key,
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{execution_api_url.rstrip('/')}/execution/",
        "AIRFLOW__API__BASE_URL": cfg.airflow_base_url,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend or f"db+{database_url}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(worker_concurrency),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
    })
    if cfg.openlineage_url:
        env.update(openlineage_env({"http": http_transport(cfg.openlineage_url)}))
    if spark_master:
        host, _, port = spark_master.rpartition(":")
        conn = {"conn_type": "spark", "host": host, "port": int(port), "extra": {"deploy-mode": "client"}}
        env[f"AIRFLOW_CONN_{cfg.spark_conn_id.upper()}"] = json.dumps(conn)
    jh = java_home()
    if jh:
        env["JAVA_HOME"] = jh
    return env


def openlineage_env(transports: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Airflow's OpenLineage settings: Glideslope's extractor, emission in a thread, ``transports``.

    One transport is used as it is; several go through a composite transport (each event to
    every one of them). The job namespace is ``glideslope``.
    """
    if not transports:
        return {"AIRFLOW__OPENLINEAGE__DISABLED": "True"}
    transport = (next(iter(transports.values())) if len(transports) == 1 else
                 {"type": "composite", "continue_on_failure": True, "transports": transports})
    return {
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "glideslope",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
        "AIRFLOW__OPENLINEAGE__EXTRACTORS": "glideslope.airflow.lineage.GlideslopeExtractor",
        # Emit from a thread of the task process, not a fork of it (the default): no second
        # process per task, and nothing forked from a process that holds Spark or MLflow clients.
        "AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD": "True",
    }


def file_transport(folder: str) -> dict[str, Any]:
    """OpenLineage's file transport: one JSON file an event, ``<folder>/ol-<time>.json``."""
    return {"type": "file", "log_file_path": f"{folder.rstrip('/')}/ol",
            "filesystem": "fsspec.implementations.local.LocalFileSystem", "fs_kwargs": {"auto_mkdir": True}}


def http_transport(url: str) -> dict[str, Any]:
    """OpenLineage's HTTP transport (Marquez, or any receiver of ``POST /api/v1/lineage``)."""
    return {"type": "http", "url": url.rstrip("/"), "endpoint": "api/v1/lineage", "timeout": 5}


def spark_s3a_conf(cfg: Settings | None = None) -> dict[str, str]:
    """Spark settings for a lake on S3: ``s3://`` paths through Hadoop's S3A connector.

    The connector (hadoop-aws + the AWS SDK v2 bundle) is not in the pyspark wheel; the image
    adds both jars to ``pyspark/jars``. Credentials are not set here: S3A's default chain reads
    ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (compose) or the pod's IAM role (Kubernetes).
    Empty when the lake is local.
    """
    cfg = cfg or settings()
    if not cfg.lake_root.startswith(("s3://", "s3a://")):
        return {}
    conf = {
        # The lake writes s3:// URIs; Spark maps that scheme to S3A (s3a:// works too).
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        # hadoop-aws 3.5 defaults to the "analytics" input stream, which needs one more jar.
        "spark.hadoop.fs.s3a.input.stream.type": "classic",
    }
    if cfg.s3_endpoint_url:  # MinIO or another S3-compatible store
        conf |= {
            "spark.hadoop.fs.s3a.endpoint": cfg.s3_endpoint_url,
            "spark.hadoop.fs.s3a.endpoint.region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "spark.hadoop.fs.s3a.path.style.access": "true",
            "spark.hadoop.fs.s3a.connection.ssl.enabled": str(cfg.s3_endpoint_url.startswith("https")).lower(),
        }
    return conf


def die_with_parent_preexec() -> Any:
    """A ``preexec_fn`` that asks Linux to SIGKILL the child when its parent dies (None elsewhere).

    The flag survives ``exec``, so it reaches the JVM that ``spark-submit`` execs into: a killed
    ETL process (``kill -9``, an OOM kill) leaves no JVM behind that keeps writing the day's
    outputs. Everything is looked up here, in the parent: between ``fork`` and ``exec`` the child
    of a threaded process must not import or take a lock (an import there can wait forever on a
    lock another thread held at the fork), so the returned function only calls ``prctl``.
    """
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    kill = int(signal.SIGKILL)

    def preexec() -> None:
        prctl(1, kill, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before the flag was set
            os.kill(os.getpid(), kill)

    return preexec


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (a no-op elsewhere).

    The Spark job calls it first thing: under spark-submit its parent is the JVM, whose death
    must end the driver too. (For a child about to ``exec``, use :func:`die_with_parent_preexec`.)
    """
    preexec = die_with_parent_preexec()
    if preexec is not None:
        preexec()
