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
serialises them with the use case's ``drift-state`` lock (:mod:`glideslope.locks`: a file lock on a
local lake, the lock server with a remote one) and publishes the document atomically. On S3 the
write is also conditional (``If-Match`` the ETag read under the lock, ``If-None-Match: *`` for
the first document), so a writer whose lock lease ran out fails instead of overwriting a newer
document (ADR 0011).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from glideslope.config import UseCase
from glideslope.lake import Lake
from glideslope.locks import exclusive

log = logging.getLogger(__name__)

STATE_NAME = "drift"
RETRAIN_DECISIONS = ("promoted", "rejected", "rolled_back", "failed")
LOCK_NAME = "drift-state"


class StateConflict(RuntimeError):
    """The state document changed under a writer that held the lock (its lease ran out)."""


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
    return _with_defaults(name, lake.read_json(lake.state(STATE_NAME), default=None))


def _with_defaults(name: str, state: dict[str, Any] | None) -> dict[str, Any]:
    base = empty_state(name)
    if state is not None:
        base.update(state)
    return base


def _precondition_failed(e: BaseException) -> bool:
    if isinstance(e, FileExistsError):
        return True
    response = getattr(e.__cause__, "response", None) or getattr(e, "response", None) or {}
    return str(response.get("Error", {}).get("Code")) in ("PreconditionFailed", "412")


def _read_remote(lake: Lake, path: str) -> tuple[dict[str, Any] | None, str | None]:
    """The document and the ETag it was read at (None, None when there is none yet)."""
    fs = lake.fs
    try:
        etag = fs.info(path, refresh=True)["ETag"]
    except FileNotFoundError:
        return None, None
    # Read after the ETag: a change in between makes the conditional write fail, never pass.
    return json.loads(fs.cat_file(path)), etag


def _write_remote(lake: Lake, path: str, state: dict[str, Any], etag: str | None) -> None:
    body = json.dumps(state, indent=2, sort_keys=True, default=str).encode()
    condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
    try:
        lake.fs.pipe_file(path, body, **condition)  # one PUT: readers see the old or the new document
    except OSError as e:
        if _precondition_failed(e):
            raise StateConflict(
                f"{path} changed while this update held the {LOCK_NAME!r} lock (read at ETag {etag}); "
                "this update was not written. Its lock lease ran out or a writer bypassed the lock: run the "
                "step again") from e
        raise


@contextlib.contextmanager
def update_state(uc: UseCase | str, lake: Lake | None = None) -> Iterator[dict[str, Any]]:
    """Read-modify-write the state under the use case's lock; the new document is published on clean exit."""
    name = _name(uc)
    lake = lake or Lake.for_usecase(name)
    path = lake.state(STATE_NAME)
    with exclusive(lake, LOCK_NAME):
        if lake.is_remote:
            raw, etag = _read_remote(lake, path)
            state = _with_defaults(name, raw)
            yield state
            _write_remote(lake, path, state, etag)
        else:
            state = load_state(name, lake)
            yield state
            lake.write_json(path, state)


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
