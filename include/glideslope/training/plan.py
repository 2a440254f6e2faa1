"""What one ``<uc>__train`` run does, decided from its request: :class:`TrainingPlan`.

Pure: the caller passes in what it read (the newest labelled day, whether automatic retraining is
paused), so every rule here is unit-tested without a scheduler, MLflow or a lake.

- The day D whose labels end the window: the ``ds`` Param, else the newest day named by the drift
  events (all of them: the ones that triggered the run and the ones found queued), else the
  newest labelled day.
- Queued drift events are one request: a run lists every event it answers, so three events
  queued behind a running training make one more run at most, and all three are recorded.
- While an escalation has paused automatic retraining, neither a drift event nor the weekly
  cron trains; only a person does (a manual run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from glideslope.config import UseCase
from glideslope.errors import PermanentError
from glideslope.runrequest import RunRequest


class NothingToTrain(PermanentError, LookupError):
    """The run has no labelled day to train on; the message says what to run first."""


@dataclass(frozen=True)
class TrainingPlan:
    request: RunRequest
    ds: str
    candidates: tuple[str, ...] = ()
    candidate_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    window_days: int = 28
    holdout_days: int = 3
    rollback: bool = False
    rollback_to_version: str | None = None
    skip: str | None = None  # why this run trains nothing (automatic retraining paused)

    @property
    def trigger(self) -> str:
        """``drift`` for a run asked for by drift events, else the request's trigger."""
        return "drift" if self.request.trigger == "asset" else self.request.trigger

    @property
    def reason(self) -> str:
        return self.request.reason

    def summary(self) -> dict[str, Any]:
        return {"ds": self.ds, "trigger": self.trigger, "reason": self.reason,
                "candidates": list(self.candidates), "candidate_params": self.candidate_params,
                "window_days": self.window_days, "holdout_days": self.holdout_days,
                "rollback": self.rollback, "rollback_to_version": self.rollback_to_version,
                "skip": self.skip, "drift_days": self.request.event_days(),
                "request": self.request.record()}

    @classmethod
    def from_summary(cls, d: dict[str, Any]) -> TrainingPlan:
        return cls(request=RunRequest.from_record(d["request"]), ds=d["ds"],
                   candidates=tuple(d.get("candidates") or ()), candidate_params=dict(d.get("candidate_params") or {}),
                   window_days=int(d["window_days"]), holdout_days=int(d["holdout_days"]),
                   rollback=bool(d.get("rollback")), rollback_to_version=d.get("rollback_to_version"),
                   skip=d.get("skip"))


def plan_training(uc: UseCase, req: RunRequest, *, latest_label_day: str | None,
                  paused: dict[str, Any] | None = None) -> TrainingPlan:
    params = req.params
    if req.trigger == "asset" and req.event_days():
        reasons = req.event_reasons()
        req = req.with_days(req.event_days()) if not params.get("ds") else req
        if not params.get("reason"):
            req = RunRequest(req.usecase, req.trigger, req.days,
                             f"drift detected ({', '.join(req.event_days())}, {len(req.events)} event(s))"
                             + (f": {'; '.join(reasons)}" if reasons else ""),
                             req.run_id, req.events, req.params)
    ds = req.param("ds") or (req.event_days()[-1] if req.event_days() else None) or latest_label_day
    if not ds:
        raise NothingToTrain(f"no labelled day for {uc.name} yet (curated/{uc.label.table} is empty): "
                             f"run {uc.dag_id('etl')} first")
    skip = None
    if paused and req.trigger in ("asset", "schedule"):
        skip = (f"automatic retraining of {uc.name} is paused since {paused.get('ds')} "
                f"({paused.get('reason') or 'escalated'}): a {req.trigger} run trains nothing; acknowledge the "
                f"escalation (glideslope ack) or start a manual run")
    return TrainingPlan(
        request=req.with_days([str(ds)]),
        ds=str(ds),
        candidates=tuple(params.get("candidates") or ()),
        candidate_params=dict(params.get("candidate_params") or {}),
        window_days=int(params.get("window_days") or uc.training.window_days),
        holdout_days=int(params.get("holdout_days") or uc.training.holdout_days),
        rollback=bool(params.get("rollback")),
        rollback_to_version=params.get("rollback_to_version"),
        skip=skip,
    )
