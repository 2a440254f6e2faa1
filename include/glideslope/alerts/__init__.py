"""Alerts: what happened (:class:`Alert`), to whom it goes, how it reads.

* :mod:`glideslope.alerts.routing` — the use case's route for a severity (``alerts.routes``);
* :mod:`glideslope.alerts.render` — email subject and HTML, Slack text;
* :mod:`glideslope.alerts.links` — Airflow, MLflow and drift-report URLs.

Delivery through Airflow's notifiers is :func:`glideslope.airflow.notifications.send_alert`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True)
class Alert:
    """One message about one use case and logical date.

    ``kind`` is one of: task_failed, quarantine, drift_detected, retrain_suppressed,
    promoted, rejected, rolled_back, escalated, acknowledged, escalation_answered, scoring_late.
    """

    usecase: str
    ds: str
    kind: str
    severity: Severity
    title: str
    body: str
    links: dict[str, str] = field(default_factory=dict)
    facts: dict[str, object] = field(default_factory=dict)
