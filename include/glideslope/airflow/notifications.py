"""Alert notifiers attached to DAGs and tasks (filled in by the alerts layer)."""

from __future__ import annotations

from typing import Any

from glideslope.config import UseCase


def task_failure_notifiers(uc: UseCase) -> list[Any]:
    return []
