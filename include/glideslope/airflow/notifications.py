"""Alert delivery through Airflow's provider notifiers and connections.

:func:`send_alert` routes an :class:`~glideslope.alerts.Alert` by the use case's ``alerts.routes``
for its severity and delivers it with the providers' ``SmtpNotifier`` (connection
``alerts.smtp_conn_id``, default ``smtp_default``) and ``SlackWebhookNotifier`` (connection
``alerts.slack_conn_id``, default ``slack_default``). The rendered text is final and handed to
``notify()`` directly, so nothing in an alert is re-templated.

:func:`task_failure_notifiers` is what every DAG puts in ``default_args["on_failure_callback"]``
(see :mod:`glideslope.airflow.dagkit`): a failed task sends a ``task_failed`` alert with the
exception and links to the run and the task.

A channel that fails does not stop the other one; :class:`AlertDeliveryError` is raised after
both were tried, so the task that wanted to alert fails visibly instead of losing the alert.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseNotifier

from glideslope.alerts import Alert
from glideslope.config import UseCase, load_usecase

log = logging.getLogger(__name__)


class AlertDeliveryError(RuntimeError):
    """At least one channel of an alert's route could not be reached."""


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def run_links(context: Mapping[str, Any] | None) -> dict[str, str]:
    """Links to the Airflow run and task of ``context`` (empty outside a task)."""
    from glideslope.alerts.links import airflow_run_url

    if not context:
        return {}
    ti, dag_run = context.get("ti"), context.get("dag_run")
    dag_id = _get(ti, "dag_id") or _get(dag_run, "dag_id") or _get(context.get("dag"), "dag_id")
    run_id = _get(ti, "run_id") or _get(dag_run, "run_id") or context.get("run_id")
    if not dag_id or not run_id:
        return {}
    links = {"Airflow run": airflow_run_url(dag_id, run_id)}
    task_id = _get(ti, "task_id")
    if task_id:
        links["Airflow task"] = airflow_run_url(dag_id, run_id, task_id)
    return links


def send_alert(uc: UseCase | str, alert: Alert, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Deliver ``alert`` to its route; returns ``{"email": [recipients], "slack": bool}``.

    ``context`` (a task's Airflow context) adds links to the Airflow run and task unless the
    alert already has them.
    """
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    from glideslope.alerts.render import html_body, slack_text, subject
    from glideslope.alerts.routing import route_for

    spec = load_usecase(uc) if isinstance(uc, str) else uc
    alert = dataclasses.replace(alert, links={**run_links(context), **alert.links})
    route = route_for(spec, alert.severity)
    sent: dict[str, Any] = {"email": [], "slack": False}
    if route is None:
        log.warning("alert %s/%s (%s) for %s has no route in %s alerts.routes; not delivered: %s",
                    alert.ds, alert.kind, alert.severity, spec.name, spec.folder / "usecase.yaml", alert.title)
        return sent
    ctx: Any = dict(context or {})  # the notifiers only read it; a plain mapping is enough
    errors = []
    if route.email:
        try:
            SmtpNotifier(
                to=list(route.email), from_email=spec.alerts.from_email, subject=subject(alert),
                html_content=html_body(alert), smtp_conn_id=spec.alerts.smtp_conn_id,
            ).notify(ctx)
            sent["email"] = list(route.email)
            log.info("alert %s sent by email to %s: %s", alert.kind, ", ".join(route.email), subject(alert))
        except Exception as e:  # keep going: Slack may still reach someone
            log.exception("alert %s: email via connection %r failed", alert.kind, spec.alerts.smtp_conn_id)
            errors.append(f"email via {spec.alerts.smtp_conn_id!r}: {e}")
    if route.slack:
        try:
            SlackWebhookNotifier(slack_webhook_conn_id=spec.alerts.slack_conn_id, text=slack_text(alert)).notify(ctx)
            sent["slack"] = True
            log.info("alert %s sent to Slack via %r", alert.kind, spec.alerts.slack_conn_id)
        except Exception as e:
            log.exception("alert %s: Slack via connection %r failed", alert.kind, spec.alerts.slack_conn_id)
            errors.append(f"slack via {spec.alerts.slack_conn_id!r}: {e}")
    if errors:
        raise AlertDeliveryError(f"{spec.name} {alert.ds} {alert.kind} alert not fully delivered: {'; '.join(errors)}")
    return sent


def _context_ds(context: Mapping[str, Any]) -> str:
    params = context.get("params") or {}
    ds = params.get("ds") if isinstance(params, Mapping) else None
    ds = ds or context.get("ds")
    if not ds:  # asset-triggered runs have no logical date: use when the run was due
        when = _get(context.get("dag_run"), "run_after") or _get(context.get("dag_run"), "start_date")
        ds = when.date().isoformat() if when is not None else "unknown date"
    return str(ds)


class TaskFailureAlert(BaseNotifier):
    """``on_failure_callback`` that sends a ``task_failed`` alert for the task's use case."""

    template_fields = ()

    def __init__(self, usecase: str, severity: str = "warning") -> None:
        super().__init__()
        self.usecase = usecase
        self.severity = severity

    def notify(self, context: Any) -> None:
        ti = context.get("ti")
        dag_id = _get(ti, "dag_id") or _get(context.get("dag"), "dag_id") or "?"
        task_id = _get(ti, "task_id") or "?"
        exc = context.get("exception")
        attempt = _get(ti, "try_number")
        body = (f"Task {task_id} of {dag_id} failed"
                + (f" (attempt {attempt})" if attempt else "") + ".\n\n"
                + (f"{type(exc).__name__}: {exc}" if exc is not None else "No exception was recorded; see the log."))
        send_alert(self.usecase, Alert(
            usecase=self.usecase, ds=_context_ds(context), kind="task_failed", severity=self.severity,  # type: ignore[arg-type]
            title=f"{dag_id}.{task_id} failed", body=body,
            facts={"dag": dag_id, "task": task_id, "run": _get(ti, "run_id") or context.get("run_id") or "?"},
        ), context)


def task_failure_notifiers(uc: UseCase) -> list[Any]:
    """Failure callbacks for every task of ``uc``'s DAGs (``default_args``)."""
    return [TaskFailureAlert(uc.name)]
