"""Operator extra links: from a task to MLflow (its run, its model version) and to its drift report.

Airflow 3 computes extra links in the worker right after the task ran and stores them as XCom;
these links read the task's own return value (a small JSON summary with ``run_url`` /
``model_version_url`` / ``report_url``), so any task whose library function returns those keys
gets the buttons. The plugin (``plugins/glideslope_plugin.py``) registers the classes and serves
the drift reports the "Drift report" button opens.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink


def _url_from_result(ti_key: Any, key: str) -> str:
    from airflow.sdk.execution_time.xcom import XCom  # the configured XCom backend

    value = XCom.get_value(ti_key=ti_key, key="return_value")
    if isinstance(value, dict):
        url = value.get(key) or (value.get("result") or {}).get(key)
        return str(url) if url else ""
    return ""


class MlflowRunLink(BaseOperatorLink):
    """The MLflow run this task logged or judged."""

    name = "MLflow run"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return _url_from_result(ti_key, "run_url")


class MlflowModelVersionLink(BaseOperatorLink):
    """The registered model version this task registered, promoted, rejected or restored."""

    name = "MLflow model version"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return _url_from_result(ti_key, "model_version_url")


def with_mlflow_links(task_ref: Any) -> Any:
    """Give a ``@task`` (its XComArg or operator) the MLflow buttons; returns what it was given."""
    op = getattr(task_ref, "operator", task_ref)
    op.operator_extra_links = [MlflowRunLink(), MlflowModelVersionLink()]
    return task_ref


class DriftReportLink(BaseOperatorLink):
    """The drift report (Evidently HTML) of the monitor run's logical day, served by the plugin."""

    name = "Drift report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return _url_from_result(ti_key, "report_url")


def with_drift_report_link(task_ref: Any) -> Any:
    """Give a ``@task`` whose result carries ``report_url`` the "Drift report" button."""
    op = getattr(task_ref, "operator", task_ref)
    op.operator_extra_links = [*getattr(op, "operator_extra_links", ()), DriftReportLink()]
    return task_ref
