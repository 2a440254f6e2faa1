"""What every Glideslope DAG shares: ids, owner, tags, retries, failure alerts, docs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum

from glideslope.config import UseCase


def default_args(uc: UseCase) -> dict[str, Any]:
    from glideslope.airflow.notifications import task_failure_notifiers

    return {
        "owner": uc.owner,
        "retries": 1,
        "retry_delay": timedelta(minutes=2),
        "on_failure_callback": task_failure_notifiers(uc),
    }


def dag_kwargs(uc: UseCase, stage: str, doc: str, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``DAG(...)`` shared by every stage of a use case."""
    kwargs: dict[str, Any] = {
        "dag_id": uc.dag_id(stage),
        "description": f"{stage} stage of {uc.name}: {uc.description.split('.')[0]}",
        "doc_md": doc.format(uc=uc, usecase=uc.name) if "{uc" in doc or "{usecase" in doc else doc,
        "start_date": pendulum.datetime(uc.start_date.year, uc.start_date.month, uc.start_date.day, tz="UTC"),
        "catchup": False,
        "max_active_runs": 1,
        "tags": ["glideslope", uc.name, stage],
        "default_args": default_args(uc),
    }
    kwargs.update(overrides)
    return kwargs


def ds_param() -> Any:
    from airflow.sdk import Param

    return Param(None, type=["null", "string"], format="date",
                 description="Logical day YYYY-MM-DD to process (default: the run's logical date).")
