"""Turn a task's Airflow context into the run's :class:`~glideslope.runrequest.RunRequest`.

The one place that reads ``params``, ``dag_run.run_type``, the logical date and
``triggering_asset_events``; every task of every stage calls :func:`run_request` and hands the
result to the library.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from glideslope.runrequest import EventRef, RunRequest, build

# The logical day a templated field (spark-submit arguments) works on: the ``ds`` Param, else the
# run's logical date. Task bodies use run_request(...).days instead.
DS_TEMPLATE = "{{ params.ds if params.ds else ds }}"


def _iso(value: Any) -> str:
    iso = getattr(value, "isoformat", None)
    return iso() if callable(iso) else str(value or "")


def event_ref(asset_name: str, ev: Any) -> EventRef:
    """An :class:`EventRef` from an Asset event of the Task SDK (triggering or inlet event)."""
    source = "/".join(x for x in (getattr(ev, "source_dag_id", None), getattr(ev, "source_run_id", None)) if x)
    return EventRef(asset=asset_name, extra=dict(getattr(ev, "extra", None) or {}), source=source,
                    timestamp=_iso(getattr(ev, "timestamp", None)))


def _asset_name(key: Any) -> str:
    return str(getattr(key, "name", None) or getattr(key, "uri", None) or key)


def triggering_events(context: Any) -> list[EventRef]:
    refs: list[EventRef] = []
    for key, evs in (context.get("triggering_asset_events") or {}).items():
        refs.extend(event_ref(_asset_name(key), ev) for ev in evs)
    return refs


def run_request(usecase: str, context: Any) -> RunRequest:
    """The request of the run this task belongs to."""
    dag_run = context.get("dag_run")
    run_type = str(getattr(dag_run, "run_type", "") or "manual")
    logical = context.get("logical_date")
    return build(
        usecase,
        run_type=run_type,
        run_id=str(context.get("run_id") or ""),
        logical_ds=logical.date().isoformat() if logical is not None else (context.get("ds") or None),
        params=dict(context.get("params") or {}),
        events=triggering_events(context),
    )


def queued_events(context: Any, asset: Any, after: str | None) -> list[EventRef]:
    """Events of ``asset`` newer than ``after`` (ISO timestamp), read through the task's inlets.

    A run attaches only part of the events queued behind a running consumer
    (apache/airflow#56050); a stage that must see all of them reads them here. The task must
    declare ``asset`` in its ``inlets``.
    """
    accessor = context["inlet_events"][asset]
    events: Iterable[Any] = accessor.after(after) if after else accessor
    name = _asset_name(asset)
    return [ref for ref in (event_ref(name, ev) for ev in events) if not after or ref.timestamp > after]
