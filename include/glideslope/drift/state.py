"""The drift monitor's memory: one JSON document per use case at ``Lake.state("drift")``.

It holds what the policy needs across nights and what a person needs to reconstruct why the
system acted::

    checks    {ds: {status, drift_share, drifted_columns, performance, champion_version, report, ...}}
    triggers  [{ds, outcome: emitted|suppressed, reasons, at}]   every retrain request, kept or not
    retrains  [{ds, decision, model_version, run_id, at}]         written by the train stage
    paused    null | {ds, reason, at}                            set on escalation, cleared on ack
    acks      [{ds, by, note, at}]
    alerts    {"<ds>/<kind>": at}                                alerts already sent (reruns stay quiet)
    history   [{at, ds, event, detail}]                           append-only log of every step

Writers (the monitor, the train stage, ``glideslope ack``) go through :func:`update_state`, which
serialises them with a lock file on a local lake and publishes the document atomically.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from glideslope.config import UseCase
from glideslope.lake import Lake

log = logging.getLogger(__name__)

STATE_NAME = "drift"
RETRAIN_DECISIONS = ("promoted", "rejected", "rolled_back", "failed")


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _name(uc: UseCase | str) -> str:
    return uc if isinstance(uc, str) else uc.name


def empty_state(usecase: str) -> dict[str, Any]:
    return {"usecase": usecase, "checks": {}, "triggers": [], "retrains": [], "paused": None, "acks": [],
            "alerts": {}, "history": []}


def state_path(uc: UseCase | str, lake: Lake | None = None) -> str:
    lake = lake or Lake.for_usecase(_name(uc))
    return lake.state(STATE_NAME)


def load_state(uc: UseCase | str, lake: Lake | None = None) -> dict[str, Any]:
    name = _name(uc)
    lake = lake or Lake.for_usecase(name)
    state = lake.read_json(lake.state(STATE_NAME), default=None)
    if state is None:
        return empty_state(name)
    base = empty_state(name)
    base.update(state)
    return base


@contextlib.contextmanager
def _lock(lake: Lake) -> Iterator[None]:
    if lake.is_remote:
        # S3 has no locks: the monitor DAG (max_active_runs=1) and the train stage write at different
        # times of the night; the document is still replaced atomically.
        yield
        return
    path = Path(lake.state(STATE_NAME) + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def update_state(uc: UseCase | str, lake: Lake | None = None) -> Iterator[dict[str, Any]]:
    """Read-modify-write the state under a lock; the new document is published on clean exit."""
    name = _name(uc)
    lake = lake or Lake.for_usecase(name)
    with _lock(lake):
        state = load_state(name, lake)
        yield state
        lake.write_json(lake.state(STATE_NAME), state)


def add_history(state: dict[str, Any], ds: str, event: str, detail: Any = None) -> None:
    entry = {"at": utc_now(), "ds": ds, "event": event, "detail": detail}
    state.setdefault("history", []).append(entry)
    log.info("drift state %s %s: %s %s", state.get("usecase"), ds, event, detail if detail is not None else "")


def record_retrain(
    uc: UseCase | str,
    ds: str,
    decision: str,
    *,
    model_version: str | int | None = None,
    run_id: str | None = None,
    note: str | None = None,
    lake: Lake | None = None,
) -> dict[str, Any]:
    """Record that a retrain for logical day ``ds`` finished with ``decision``.

    Called by the train stage once its promotion decision is taken (``promoted`` / ``rejected``),
    and for ``rolled_back`` / ``failed`` when that happens. ``ds`` is the day the training
    data ends on: for a run scheduled by a drift event, the event's ``ds``. Recording the same
    (ds, decision, model_version) twice keeps one entry, so a retried task is harmless.
    """
    if decision not in RETRAIN_DECISIONS:
        raise ValueError(f"record_retrain: decision {decision!r} is not one of {RETRAIN_DECISIONS}")
    entry = {"ds": ds, "decision": decision, "model_version": None if model_version is None else str(model_version),
             "run_id": run_id, "note": note, "at": utc_now()}
    with update_state(uc, lake) as state:
        same = [r for r in state["retrains"] if (r["ds"], r["decision"], r.get("model_version"))
                == (ds, decision, entry["model_version"])]
        if not same:
            state["retrains"].append(entry)
            add_history(state, ds, "retrain_recorded",
                        {k: v for k, v in entry.items() if k not in ("ds", "at") and v is not None})
    return entry


def retraining_paused(uc: UseCase | str, lake: Lake | None = None) -> dict[str, Any] | None:
    """The escalation that paused automatic retraining (``{ds, reason, at}``), or None when active.

    The train stage's scheduled (cron) runs may consult this too: while paused, only a person
    should start training.
    """
    return load_state(uc, lake).get("paused")


def alert_already_sent(state: dict[str, Any], ds: str, kind: str) -> bool:
    return f"{ds}/{kind}" in state.get("alerts", {})


def mark_alert_sent(state: dict[str, Any], ds: str, kind: str) -> None:
    state.setdefault("alerts", {})[f"{ds}/{kind}"] = utc_now()


def drift_events_consumed_until(uc: UseCase | str, lake: Lake | None = None) -> str | None:
    """Timestamp of the newest drift Asset event a finished training run answered (None: none yet)."""
    return load_state(uc, lake).get("drift_events_consumed_until")


def mark_drift_events_consumed(uc: UseCase | str, timestamps: list[str], run_id: str | None = None,
                               lake: Lake | None = None) -> str | None:
    """Record that a training run answered the drift events with these timestamps.

    The next training run reads every event after the newest of them (see
    :func:`glideslope.airflow.request.queued_events`), so queued events are never lost and never
    answered twice.
    """
    if not timestamps:
        return drift_events_consumed_until(uc, lake)
    newest = max(timestamps)
    with update_state(uc, lake) as state:
        if newest > (state.get("drift_events_consumed_until") or ""):
            state["drift_events_consumed_until"] = newest
            add_history(state, newest[:10], "drift_events_consumed",
                        {"events": len(timestamps), "until": newest, "run_id": run_id})
    return newest
