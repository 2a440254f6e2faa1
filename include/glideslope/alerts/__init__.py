"""Alerts: what happened, to whom it goes (routes per use case and severity), how it reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True)
class Alert:
    """One message about one use case and logical date.

    ``kind`` is one of: task_failed, quarantine, drift_detected, retrain_suppressed,
    promoted, rejected, rolled_back, escalated, acknowledged.
    """

    usecase: str
    ds: str
    kind: str
    severity: Severity
    title: str
    body: str
    links: dict[str, str] = field(default_factory=dict)
    facts: dict[str, object] = field(default_factory=dict)
