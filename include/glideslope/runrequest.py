"""What a run is for, said once: :class:`RunRequest`.

A run of any stage is asked for by a schedule, an Asset event (or several queued ones), a person
(a manual trigger with Params, the CLI) or a backfill. The Airflow layer builds the request once
from the task context (:func:`glideslope.airflow.request.run_request`); the CLI and the GPU pod's
entry point parse the same fields from their arguments (:func:`add_arguments` /
:func:`from_arguments`). Library stages take ``(spec, request)``; everything a run writes (MLflow
tags, the lake's JSON, alerts) records :meth:`RunRequest.record`.

Pure: no Airflow, no I/O.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from glideslope.errors import PermanentError

Trigger = Literal["schedule", "asset", "manual", "backfill"]
TRIGGERS: tuple[Trigger, ...] = ("schedule", "asset", "manual", "backfill")


class RequestError(PermanentError, ValueError):
    """A run request is incomplete or contradictory; the message says which field."""


@dataclass(frozen=True)
class EventRef:
    """One Asset event a run was triggered by (or, for queued events, found waiting)."""

    asset: str
    extra: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""  # "<dag_id>/<run_id>" of the producer, "" for an event posted through the API
    timestamp: str = ""

    @property
    def ds(self) -> str | None:
        value = self.extra.get("ds")
        return str(value) if value else None

    @property
    def days(self) -> list[str]:
        """Every day the event is about: a range run's event lists them in ``days``; a night's
        names its one day in ``ds``."""
        listed = self.extra.get("days")
        if isinstance(listed, list | tuple) and listed:
            return sorted({str(d) for d in listed})
        return [self.ds] if self.ds else []

    def to_dict(self) -> dict[str, Any]:
        return {"asset": self.asset, "extra": dict(self.extra), "source": self.source, "timestamp": self.timestamp}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EventRef:
        return cls(asset=str(d["asset"]), extra=dict(d.get("extra") or {}), source=str(d.get("source") or ""),
                   timestamp=str(d.get("timestamp") or ""))


def _check_day(value: Any, what: str) -> str:
    text = str(value)
    try:
        date.fromisoformat(text)
    except ValueError:
        raise RequestError(f"{what}: {text!r} is not a day YYYY-MM-DD") from None
    return text


@dataclass(frozen=True)
class RunRequest:
    """A stage run's purpose: use case, the logical day(s), why, and the person's Params.

    ``days`` is sorted and free of duplicates; it may be empty when nothing named a day (a
    manual run without ``ds``): each stage then says what its default is (e.g. the newest day
    in the lake) and :meth:`with_days` records the choice.
    """

    usecase: str
    trigger: Trigger
    days: tuple[str, ...] = ()
    reason: str = ""
    run_id: str = ""
    events: tuple[EventRef, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.trigger not in TRIGGERS:
            raise RequestError(f"trigger: {self.trigger!r} is not one of {', '.join(TRIGGERS)}")
        if not self.usecase:
            raise RequestError("usecase: empty")
        days = tuple(sorted({_check_day(d, "days") for d in self.days}))
        object.__setattr__(self, "days", days)
        object.__setattr__(self, "events", tuple(self.events))
        object.__setattr__(self, "params", dict(self.params))

    # -- what a stage asks -----------------------------------------------------------------
    @property
    def ds(self) -> str | None:
        """The (last) logical day of the run, or None when nothing named one."""
        return self.days[-1] if self.days else None

    def require_ds(self) -> str:
        if self.ds is None:
            raise RequestError(f"run {self.run_id or '?'} of {self.usecase} names no day: "
                               "trigger it with a logical date or set the 'ds' Param")
        return self.ds

    def require_days(self) -> tuple[str, ...]:
        """Every day of the run (a night's one day, or a range run's days)."""
        self.require_ds()
        return self.days

    def param(self, name: str, default: Any = None) -> Any:
        value = self.params.get(name)
        return default if value is None or value == "" else value

    def event_days(self) -> list[str]:
        return sorted({d for e in self.events for d in e.days})

    def event_reasons(self) -> list[str]:
        return [str(r) for e in self.events for r in (e.extra.get("reasons") or [])]

    def with_days(self, days: Sequence[str], why: str = "") -> RunRequest:
        """The same request for these days (a stage's default, or the days it found pending)."""
        reason = self.reason if not why else (f"{self.reason}; {why}" if self.reason else why)
        return RunRequest(self.usecase, self.trigger, tuple(days), reason, self.run_id, self.events, self.params)

    def with_events(self, events: Sequence[EventRef]) -> RunRequest:
        """Add events found queued for this run (deduplicated by source and timestamp)."""
        seen = {(e.asset, e.source, e.timestamp) for e in self.events}
        more = [e for e in events if (e.asset, e.source, e.timestamp) not in seen]
        return RunRequest(self.usecase, self.trigger, self.days, self.reason, self.run_id,
                          self.events + tuple(more), self.params)

    # -- what a run records ------------------------------------------------------------------
    def record(self) -> dict[str, Any]:
        """The JSON-able form, recorded on everything the run writes and passed between tasks."""
        return {"usecase": self.usecase, "trigger": self.trigger, "days": list(self.days), "reason": self.reason,
                "run_id": self.run_id, "events": [e.to_dict() for e in self.events], "params": dict(self.params)}

    summary = record

    @classmethod
    def from_record(cls, d: Mapping[str, Any]) -> RunRequest:
        return cls(usecase=str(d["usecase"]), trigger=d["trigger"], days=tuple(d.get("days") or ()),
                   reason=str(d.get("reason") or ""), run_id=str(d.get("run_id") or ""),
                   events=tuple(EventRef.from_dict(e) for e in d.get("events") or ()),
                   params=dict(d.get("params") or {}))

    def tags(self, prefix: str = "glideslope.") -> dict[str, str]:
        """MLflow tags (strings, 5000 chars at most) that say why a run happened."""
        tags = {f"{prefix}trigger": self.trigger, f"{prefix}reason": self.reason or self.trigger,
                f"{prefix}airflow_run_id": self.run_id}
        if self.days:
            tags[f"{prefix}days"] = ",".join(self.days)
        if self.events:
            tags[f"{prefix}events"] = json.dumps([e.to_dict() for e in self.events], default=str)[:5000]
        return {k: v for k, v in tags.items() if v}

    # -- the command line ------------------------------------------------------------------
    def to_arguments(self) -> list[str]:
        """Arguments that :func:`from_arguments` turns back into this request."""
        argv = ["--usecase", self.usecase, "--trigger", self.trigger, "--reason", self.reason]
        for d in self.days:
            argv += ["--ds", d]
        if self.run_id:
            argv += ["--run-id", self.run_id]
        if self.events:
            argv += ["--events", json.dumps([e.to_dict() for e in self.events], default=str)]
        if self.params:
            argv += ["--params", json.dumps(dict(self.params), default=str)]
        return argv


def add_arguments(ap: argparse.ArgumentParser, *, ds_required: bool = False) -> None:
    """The request's fields as command-line options (``glideslope train``, the GPU pod)."""
    ap.add_argument("--usecase", required=True, help="use case name (folder under the use-cases root)")
    ap.add_argument("--ds", action="append", required=ds_required, default=None,
                    help="logical day YYYY-MM-DD (repeatable)")
    ap.add_argument("--trigger", default="manual", choices=TRIGGERS, help="what asked for the run")
    ap.add_argument("--reason", default="", help="why this run (recorded on everything it writes)")
    ap.add_argument("--run-id", default="", help="the Airflow run this command belongs to, if any")
    ap.add_argument("--events", default="[]", help="JSON list of the Asset events that triggered the run")
    ap.add_argument("--params", default="{}", help="JSON object of the run's Params")


def from_arguments(args: argparse.Namespace) -> RunRequest:
    try:
        events = json.loads(args.events or "[]")
        params = json.loads(args.params or "{}")
    except json.JSONDecodeError as e:
        raise RequestError(f"--events/--params: not valid JSON ({e})") from None
    if not isinstance(events, list) or not isinstance(params, dict):
        raise RequestError("--events must be a JSON list and --params a JSON object")
    return RunRequest(usecase=args.usecase, trigger=args.trigger, days=tuple(args.ds or ()), reason=args.reason,
                      run_id=args.run_id, events=tuple(EventRef.from_dict(e) for e in events), params=params)


def day_range(start: Any, end: Any) -> tuple[str, ...]:
    """The days ``start`` … ``end`` (both included) of a range run's Params."""
    if not start or not end:
        raise RequestError(f"a range run needs both Params start and end (got start={start!r}, end={end!r})")
    first, last = date.fromisoformat(_check_day(start, "Param start")), date.fromisoformat(_check_day(end, "Param end"))
    if last < first:
        raise RequestError(f"Param end {last} is before Param start {first}")
    return tuple((first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1))


def build(usecase: str, *, run_type: str, run_id: str = "", logical_ds: str | None = None,
          params: Mapping[str, Any] | None = None, events: Sequence[EventRef] = ()) -> RunRequest:
    """The request of a run, from what Airflow says about it (the one place that decides).

    Days: the ``ds`` Param, else the range of the ``start``/``end`` Params (both days included),
    else the days the Asset events carry, else the run's logical day.
    Trigger: from the run type (``asset_triggered`` -> asset, ``scheduled`` -> schedule,
    ``backfill_job`` -> backfill, anything else -> manual). Reason: the ``reason`` Param, else
    one sentence from the trigger and the events' own reasons.
    """
    params = {k: v for k, v in (params or {}).items() if v is not None}
    trigger: Trigger = {"asset_triggered": "asset", "scheduled": "schedule",
                        "backfill_job": "backfill", "backfill": "backfill"}.get(run_type.split(".")[-1].lower(), "manual")  # type: ignore[assignment]
    if params.get("ds") and (params.get("start") or params.get("end")):
        raise RequestError("Params ds and start/end contradict each other: give one day (ds) or a range "
                           "(start and end)")
    if params.get("ds"):
        days: tuple[str, ...] = (_check_day(params["ds"], "Param ds"),)
    elif params.get("start") or params.get("end"):
        days = day_range(params.get("start"), params.get("end"))
    else:
        event_days = tuple(sorted({d for e in events for d in e.days}))
        days = event_days or ((logical_ds,) if logical_ds and trigger != "asset" else ())
    req = RunRequest(usecase, trigger, days, "", run_id, tuple(events), params)
    reason = str(params.get("reason") or "")
    if not reason:
        if trigger == "asset":
            assets = sorted({e.asset for e in events})
            extra = "; ".join(req.event_reasons())
            reason = (f"{len(events)} event(s) of {', '.join(assets) or 'an asset'}"
                      + (f" for {', '.join(req.event_days())}" if req.event_days() else "")
                      + (f": {extra}" if extra else ""))
        else:
            reason = {"schedule": "scheduled run", "backfill": "backfill", "manual": "manual run"}[trigger]
    return RunRequest(usecase, trigger, days, reason, run_id, tuple(events), params)
