"""Alert delivery through Airflow's provider notifiers and connections.

:func:`send_alert` routes an :class:`~glideslope.alerts.Alert` by the use case's ``alerts.routes``
for its severity and delivers it with the providers' ``SmtpNotifier`` (connection
``alerts.smtp_conn_id``, default ``smtp_default``) and ``SlackWebhookNotifier`` (connection
``alerts.slack_conn_id``, default ``slack_default``). The rendered text is final and handed to
``notify()`` directly, so nothing in an alert is re-templated.

:func:`task_failure_notifiers` is what every DAG puts in ``default_args["on_failure_callback"]``
(see :mod:`glideslope.airflow.dagkit`): a failed task sends a ``task_failed`` alert with the
exception and links to the run and the task.

Delivery contract, per channel of the route (email, Slack):

* **not configured** -- the connection does not exist, or has no SMTP host / no webhook URL (the
  compose default ``SLACK_WEBHOOK_URL=`` is this): the channel is skipped, a warning naming the
  connection and how to configure it is logged once per process, and nothing fails.
* **configured but failing** -- tried :data:`DELIVERY_ATTEMPTS` times with a growing pause, each
  failed attempt logged with the channel, the connection and the error. A channel that fails does
  not stop the other one; :class:`AlertDeliveryError` is raised after both were tried, so the task
  that wanted to alert fails visibly instead of losing the alert.
* **delivered** -- recorded per channel in the lake (``state/alert_deliveries/<key>.json``) when
  the alert is sent from a task: a retry of that task re-sends only to the channels that did not
  get it. The key is the task (dag, run, task, map index, the run's clear number and start) and
  the alert's content: retries share it, clearing the task makes a new one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseNotifier

from glideslope.alerts import Alert
from glideslope.config import UseCase, load_usecase

log = logging.getLogger(__name__)

# A configured channel gets this many tries per send_alert call, pausing RETRY_DELAY_SECONDS,
# then twice that, ... between them; the task's own retries come on top.
DELIVERY_ATTEMPTS = 3
RETRY_DELAY_SECONDS = 2.0

_HOW_TO_CONFIGURE = {
    "email": ("define the Airflow connection {conn!r} (type smtp) with the relay's host, e.g. "
              "AIRFLOW_CONN_{env}='{{\"conn_type\": \"smtp\", \"host\": \"smtp.example.com\", \"port\": 587}}' "
              "(docker-compose: SMTP_HOST in .env)"),
    "slack": ("define the Airflow connection {conn!r} (type slackwebhook) with the incoming-webhook URL "
              "https://hooks.slack.com/services/... as its password, e.g. "
              "AIRFLOW_CONN_{env}='{{\"conn_type\": \"slackwebhook\", \"password\": \"https://hooks...\"}}' "
              "(docker-compose: SLACK_WEBHOOK_URL in .env)"),
}
_reported_unconfigured: set[tuple[str, str]] = set()


class AlertDeliveryError(RuntimeError):
    """At least one configured channel of an alert's route could not be reached."""


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


def channel_problem(channel: str, conn_id: str) -> str | None:
    """Why ``channel`` cannot be used through connection ``conn_id``; ``None`` when it is configured."""
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as e:
        if type(e).__name__ == "AirflowNotFoundException":
            return f"connection {conn_id!r} does not exist"
        return None  # e.g. a secrets backend that is down: the delivery tries, retries and says so
    if channel == "email" and not (conn.host or "").strip():
        return f"connection {conn_id!r} has no host"
    if channel == "slack" and not (conn.password or "").strip():  # the Slack hook's own rule
        return f"connection {conn_id!r} has no webhook URL (its password is empty)"
    return None


def _report_unconfigured(channel: str, conn_id: str, problem: str, spec: UseCase, alert: Alert) -> None:
    key = (channel, conn_id)
    if key in _reported_unconfigured:
        log.info("alert %s not sent by %s: %s", alert.kind, channel, problem)
        return
    _reported_unconfigured.add(key)
    how = _HOW_TO_CONFIGURE[channel].format(conn=conn_id, env=conn_id.upper())
    log.warning("alert channel %s is not configured: %s; %s alerts of %s skip it (nothing fails). To "
                "configure it, %s; or remove it from alerts.routes in %s.", channel, problem, channel, spec.name,
                how, spec.folder / "usecase.yaml")


def _task_identity(context: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The task instance an alert is sent from (``None`` outside a task).

    The retries of a task share it. Clearing tasks of a run bumps the run's ``clear_number`` (and
    restarts it), so a person who clears a task to run it again gets its alerts again.
    """
    if not context:
        return None
    ti, dag_run = context.get("ti"), context.get("dag_run")
    started = _get(dag_run, "start_date")
    ident = {"dag_id": _get(ti, "dag_id") or _get(dag_run, "dag_id"),
             "run_id": _get(ti, "run_id") or _get(dag_run, "run_id") or context.get("run_id"),
             "task_id": _get(ti, "task_id"), "map_index": _get(ti, "map_index"),
             "clear_number": _get(dag_run, "clear_number"), "run_started": str(started) if started else None}
    if not (ident["dag_id"] and ident["run_id"] and ident["task_id"]):
        return None
    if not isinstance(ident["map_index"], int):
        ident["map_index"] = -1
    return ident


class DeliveryRecord:
    """Which channels already got one alert from one task instance, kept in the lake."""

    def __init__(self, spec: UseCase, alert: Alert, task: dict[str, Any]):
        from glideslope.lake import Lake

        content = {"task": task, "alert": dataclasses.asdict(alert)}
        key = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:32]
        self.lake = Lake.for_usecase(spec.name)
        self.path = self.lake.state(f"alert_deliveries/{key}")
        self.doc: dict[str, Any] = {"task": task, "kind": alert.kind, "ds": alert.ds, "title": alert.title,
                                    "channels": {}}
        try:
            self.doc = self.lake.read_json(self.path, default=None) or self.doc
        except Exception:
            log.warning("could not read the delivery record %s; every channel will be tried", self.path,
                        exc_info=True)

    def delivered(self, channel: str) -> dict[str, Any] | None:
        got = self.doc["channels"].get(channel)
        return got if isinstance(got, dict) else None

    def mark(self, channel: str, **detail: Any) -> None:
        self.doc["channels"][channel] = {"at": datetime.now(UTC).isoformat(), **detail}
        try:
            self.lake.write_json(self.path, self.doc)
        except Exception:  # the alert is out; a retry may repeat it, which beats losing it
            log.warning("could not record the %s delivery in %s; a retry may send it again", channel, self.path,
                        exc_info=True)


def _deliver(channel: str, conn_id: str, alert: Alert, send: Callable[[], None], attempts: int,
             retry_delay: float) -> str | None:
    """Try ``send`` up to ``attempts`` times; return the last error, or ``None`` once delivered."""
    error = None
    for attempt in range(1, attempts + 1):
        try:
            send()
            return None
        except Exception as e:
            error = f"{type(e).__name__}: {e}"
            if attempt < attempts:
                pause = retry_delay * 2 ** (attempt - 1)
                log.warning("alert %s: %s via connection %r failed (attempt %d of %d): %s; retrying in %.1fs",
                            alert.kind, channel, conn_id, attempt, attempts, error, pause)
                time.sleep(pause)
            else:
                log.error("alert %s: %s via connection %r failed (attempt %d of %d): %s; giving up",
                          alert.kind, channel, conn_id, attempt, attempts, error, exc_info=True)
    return error


def send_alert(uc: UseCase | str, alert: Alert, context: Mapping[str, Any] | None = None, *,
               attempts: int = DELIVERY_ATTEMPTS, retry_delay: float = RETRY_DELAY_SECONDS) -> dict[str, Any]:
    """Deliver ``alert`` to its route; returns what each channel got.

    ``{"email": [recipients], "slack": bool, "not_configured": [channels], "already_delivered":
    [channels]}`` -- ``email``/``slack`` say who has the alert now, including channels that got it
    on an earlier try of the same task (listed in ``already_delivered``). ``context`` (a task's
    Airflow context) adds links to the Airflow run and task unless the alert already has them,
    and identifies the task for the delivery record. See the module docstring for the contract.
    """
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    from glideslope.alerts.render import html_body, slack_text, subject
    from glideslope.alerts.routing import route_for

    spec = load_usecase(uc) if isinstance(uc, str) else uc
    alert = dataclasses.replace(alert, links={**run_links(context), **alert.links})
    route = route_for(spec, alert.severity)
    sent: dict[str, Any] = {"email": [], "slack": False, "not_configured": [], "already_delivered": []}
    if route is None:
        log.warning("alert %s/%s (%s) for %s has no route in %s alerts.routes; not delivered: %s",
                    alert.ds, alert.kind, alert.severity, spec.name, spec.folder / "usecase.yaml", alert.title)
        return sent
    ctx: Any = dict(context or {})  # the notifiers only read it; a plain mapping is enough
    task = _task_identity(context)
    record = DeliveryRecord(spec, alert, task) if task else None
    channels: list[tuple[str, str, Callable[[], None]]] = []
    if route.email:
        channels.append(("email", spec.alerts.smtp_conn_id, lambda: SmtpNotifier(
            to=list(route.email), from_email=spec.alerts.from_email, subject=subject(alert),
            html_content=html_body(alert), smtp_conn_id=spec.alerts.smtp_conn_id,
        ).notify(ctx)))
    if route.slack:
        channels.append(("slack", spec.alerts.slack_conn_id, lambda: SlackWebhookNotifier(
            slack_webhook_conn_id=spec.alerts.slack_conn_id, text=slack_text(alert)).notify(ctx)))
    errors = []
    for channel, conn_id, send in channels:
        got: Any = list(route.email) if channel == "email" else True
        if record is not None and record.delivered(channel):
            log.info("alert %s already went by %s on an earlier try of this task; not sent again", alert.kind, channel)
            sent[channel] = got
            sent["already_delivered"].append(channel)
            continue
        problem = channel_problem(channel, conn_id)
        if problem:
            _report_unconfigured(channel, conn_id, problem, spec, alert)
            sent["not_configured"].append(channel)
            continue
        error = _deliver(channel, conn_id, alert, send, attempts, retry_delay)
        if error:  # keep going: the other channel may still reach someone
            errors.append(f"{channel} via {conn_id!r}: {error}")
            continue
        sent[channel] = got
        if record is not None:
            record.mark(channel, connection=conn_id, **({"to": list(route.email)} if channel == "email" else {}))
        log.info("alert %s sent by %s via %r: %s", alert.kind, channel, conn_id, subject(alert))
    if errors:
        raise AlertDeliveryError(f"{spec.name} {alert.ds} {alert.kind} alert not fully delivered "
                                 f"(after {attempts} attempts per channel): {'; '.join(errors)}")
    return sent


def nights_label(days: list[str]) -> str:
    """How an alert names the nights of a run: one night, a few, or a range."""
    days = sorted(set(days))
    if len(days) <= 3:
        return ", ".join(days)
    return f"{days[0]}…{days[-1]} ({len(days)} nights)"


def _planned_nights(context: Mapping[str, Any]) -> list[str]:
    """The nights the failing task had planned (its XCom ``plan``, pushed before it started work)."""
    ti = context.get("ti")
    try:
        plan = ti.xcom_pull(task_ids=ti.task_id, key="plan") if ti is not None else None
    except Exception:
        return []
    if not isinstance(plan, Mapping):
        return []
    return [str(d) for d in (plan.get("own") or plan.get("nights") or [])]


def _context_ds(context: Mapping[str, Any], usecase: str = "glideslope") -> str:
    """The night (or nights) the run of ``context`` is for, never the wall-clock date.

    The ``ds`` Param; else the nights the triggering Asset events carry; else the nights the
    failing task had planned (XCom ``plan``: a run by hand without ``ds`` works on the lake's
    backlog, not on its logical date); else the logical date of a scheduled or manual run; else
    "no night named". An asset-triggered run has no logical date: the day it ran on is not the
    night it was for.
    """
    from glideslope.airflow.request import run_request

    params = context.get("params") or {}
    try:
        req = run_request(usecase, context)
    except Exception:  # a malformed ds Param must not stop the failure alert itself
        req = None
    if req is None or (isinstance(params, Mapping) and params.get("ds")):
        days = [str(params["ds"])] if isinstance(params, Mapping) and params.get("ds") else []
    else:
        days = req.event_days() or _planned_nights(context) or list(req.days)
    return nights_label(days) if days else "no night named"


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
            usecase=self.usecase, ds=_context_ds(context, self.usecase), kind="task_failed", severity=self.severity,  # type: ignore[arg-type]
            title=f"{dag_id}.{task_id} failed", body=body,
            facts={"dag": dag_id, "task": task_id, "run": _get(ti, "run_id") or context.get("run_id") or "?"},
        ), context)


def task_failure_notifiers(uc: UseCase) -> list[Any]:
    """Failure callbacks for every task of ``uc``'s DAGs (``default_args``)."""
    return [TaskFailureAlert(uc.name)]
