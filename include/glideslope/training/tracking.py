"""MLflow wiring: tracking URI, one experiment per use case, tags every run carries, UI links.

The tracking URI is always set from Settings: without it MLflow 3 silently creates ``mlflow.db``
in whatever the working directory of the worker happens to be.
"""

from __future__ import annotations

import os
import subprocess
from functools import lru_cache
from typing import Any

from glideslope.config import PROJECT_ROOT, Settings, UseCase, settings

TAG_PREFIX = "glideslope."


def configure(cfg: Settings | None = None) -> Settings:
    """Point MLflow (fluent API and new clients) at the profile's tracking store."""
    import mlflow

    cfg = cfg or settings()
    if cfg.mlflow_tracking_uri.startswith("sqlite:///"):
        from pathlib import Path

        Path(cfg.mlflow_tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(cfg.mlflow_tracking_uri)
    mlflow.set_registry_uri(cfg.mlflow_tracking_uri)
    if cfg.s3_endpoint_url:
        os.environ.setdefault("MLFLOW_S3_ENDPOINT_URL", cfg.s3_endpoint_url)
    return cfg


class TrackingServerUnavailable(ConnectionError):
    """The MLflow tracking server does not answer: nothing was read or written; a retry may succeed."""


def require_server(cfg: Settings | None = None, what: str = "this stage", timeout: float = 10.0) -> None:
    """Fail at once, naming the server, when the profile's MLflow tracking server does not answer.

    Without it a stage meets a dead server deep inside MLflow, whose HTTP client retries each call
    for minutes and then reports a bare connection error. A local store (``sqlite:``, a folder)
    needs no check.
    """
    import requests

    cfg = cfg or settings()
    uri = cfg.mlflow_tracking_uri.rstrip("/")
    if not uri.startswith(("http://", "https://")):
        return
    try:
        r = requests.get(f"{uri}/health", timeout=timeout)
    except requests.RequestException as e:
        raise TrackingServerUnavailable(
            f"MLflow tracking server {uri} is not reachable ({type(e).__name__}: {e}); {what} read and wrote "
            "nothing (the champion, the registry and the lake are as they were); the task is retried"
        ) from e
    if r.status_code >= 500:
        raise TrackingServerUnavailable(
            f"MLflow tracking server {uri} answered {r.status_code} on /health; {what} read and wrote nothing; "
            "the task is retried")


def client(cfg: Settings | None = None) -> Any:
    from mlflow import MlflowClient

    cfg = configure(cfg)
    return MlflowClient(tracking_uri=cfg.mlflow_tracking_uri, registry_uri=cfg.mlflow_tracking_uri)


def artifact_location(uc: UseCase, cfg: Settings) -> str:
    root = cfg.mlflow_artifact_root.rstrip("/")
    if "://" not in root:
        root = f"file://{root}"
    return f"{root}/{uc.name}"


def experiment_id(uc: UseCase, cfg: Settings | None = None) -> str:
    """The use case's experiment (named after it), created with the profile's artifact root."""
    import mlflow

    cfg = configure(cfg)
    exp = mlflow.get_experiment_by_name(uc.name)
    if exp is not None:
        return str(exp.experiment_id)
    try:
        return str(mlflow.create_experiment(uc.name, artifact_location=artifact_location(uc, cfg),
                                            tags={"glideslope.usecase": uc.name, "owner": uc.owner}))
    except Exception:
        # Another worker created it between our lookup and create.
        exp = mlflow.get_experiment_by_name(uc.name)
        if exp is None:
            raise
        return str(exp.experiment_id)


@lru_cache(maxsize=1)
def git_commit() -> str:
    """Commit of the deployed code: GLIDESLOPE_GIT_COMMIT (set in images), else git, else 'unknown'."""
    if os.environ.get("GLIDESLOPE_GIT_COMMIT"):
        return os.environ["GLIDESLOPE_GIT_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def run_url(cfg: Settings, experiment: str, run_id: str) -> str:
    return f"{cfg.mlflow_ui_url.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"


def model_version_url(cfg: Settings, name: str, version: str | int) -> str:
    return f"{cfg.mlflow_ui_url.rstrip('/')}/#/models/{name}/versions/{version}"
