"""URLs an alert (or a UI link) points a person to: Airflow runs, MLflow runs and models, reports.

Pure string building from :func:`glideslope.config.settings`; nothing here calls a service.
The drift report URL is served by the Glideslope Airflow plugin (``/glideslope/reports/...``)
from the lake, so it works the same for a local lake and for S3.
"""

from __future__ import annotations

from urllib.parse import quote

from glideslope.config import Settings, settings

REPORTS_PREFIX = "/glideslope/reports"


def _base(url: str) -> str:
    return url.rstrip("/")


def airflow_run_url(dag_id: str, run_id: str, task_id: str | None = None, cfg: Settings | None = None) -> str:
    """The Airflow 3 UI page of a DAG run, or of one task in it."""
    cfg = cfg or settings()
    url = f"{_base(cfg.airflow_base_url)}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
    return f"{url}/tasks/{quote(task_id, safe='')}" if task_id else url


def mlflow_run_url(experiment_id: str, run_id: str, cfg: Settings | None = None) -> str:
    cfg = cfg or settings()
    return f"{_base(cfg.mlflow_ui_url)}/#/experiments/{experiment_id}/runs/{run_id}"


def mlflow_model_version_url(name: str, version: str | int, cfg: Settings | None = None) -> str:
    cfg = cfg or settings()
    return f"{_base(cfg.mlflow_ui_url)}/#/models/{quote(name, safe='')}/versions/{version}"


def report_url(usecase: str, ds: str, kind: str = "drift", cfg: Settings | None = None) -> str:
    """The HTML report of ``kind`` for one use case and day, served by the Airflow plugin."""
    cfg = cfg or settings()
    return f"{_base(cfg.airflow_base_url)}{REPORTS_PREFIX}/{usecase}/{kind}/{ds}"
