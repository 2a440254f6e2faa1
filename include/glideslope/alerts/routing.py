"""Who receives an alert: the use case's route for the alert's severity (``alerts.routes``).

A severity without its own route falls back to the nearest lower severity that has one, so a
spec that only declares ``warning`` still delivers ``critical`` alerts somewhere. When no route
applies at all the caller gets ``None`` and must say so in its log: an alert is never dropped
silently.
"""

from __future__ import annotations

from glideslope.config import AlertRoute, UseCase

SEVERITY_ORDER = ("info", "warning", "critical")


def route_for(uc: UseCase, severity: str) -> AlertRoute | None:
    """The route for ``severity`` (or the nearest lower one); ``None`` if nothing is declared."""
    if severity not in SEVERITY_ORDER:
        raise ValueError(f"unknown alert severity {severity!r}; expected one of {SEVERITY_ORDER}")
    routes = uc.alerts.routes
    for level in reversed(SEVERITY_ORDER[: SEVERITY_ORDER.index(severity) + 1]):
        route = routes.get(level)  # type: ignore[call-overload]
        if route is not None and (route.email or route.slack):
            return route
    return None
