"""The answer to an escalation: what a person chose, recorded, then carried out.

When drift outlives a retrain the monitor pauses automatic retraining and emits the Asset
``<uc>.escalation``; ``<uc>__escalation`` asks a person (Airflow's human-in-the-loop branch) to
choose one of :data:`OPTIONS`:

* **retrain** with another window or candidate set -- the pause ends and ``<uc>__train`` runs with
  that request (its ``window_days`` / ``candidates`` Params);
* **roll back** to a named earlier version (or the previous champion) -- the champion moves back,
  recorded like every move, and the pause ends;
* **accept the current data as the new reference** -- the champion's recent prediction nights
  become its reference sample (:func:`accept_reference`); later checks compare against them and
  the pause ends;
* **keep paused** -- nothing changes; the choice is recorded. It is also what an unanswered
  question falls back to after ``drift.escalation_timeout_hours``.

Every answer is recorded in the drift state (``decisions``: who, when, why, what was done) and in
its history; ``glideslope ack`` stays for scripts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from glideslope.config import UseCase, load_usecase
from glideslope.drift.state import add_history, load_state, update_state, utc_now
from glideslope.lake import Lake

log = logging.getLogger(__name__)

RETRAIN = "Retrain with another window or candidates"
ROLL_BACK = "Roll back to an earlier version"
ACCEPT = "Accept the current data as the new reference"
KEEP = "Keep paused"
OPTIONS = [RETRAIN, ROLL_BACK, ACCEPT, KEEP]
KINDS = {RETRAIN: "retrain", ROLL_BACK: "rollback", ACCEPT: "accept_reference", KEEP: "keep_paused"}


@dataclass
class Answer:
    """A person's answer to the escalation question (or the timeout's default, ``by`` None)."""

    choice: str
    by: str | None
    at: str | None
    note: str = ""
    window_days: int | None = None
    candidates: list[str] = field(default_factory=list)
    to_version: str | None = None

    @property
    def kind(self) -> str:
        return KINDS[self.choice]

    @property
    def timed_out(self) -> bool:
        return self.by is None

    def who(self) -> str:
        return self.by or "nobody (the question timed out; default applied)"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kind": self.kind, "timed_out": self.timed_out}


def answer_from_hitl(answer: Mapping[str, Any] | None) -> Answer:
    """The :class:`Answer` in a human-in-the-loop task's result (``chosen_options``, ``params_input``, ...)."""
    from glideslope.registry.review import read_answer

    choice, by, at, params = read_answer(answer, OPTIONS, "escalation question")
    window = params.get("window_days")
    candidates = params.get("candidates") or []
    if isinstance(candidates, str):
        candidates = [c.strip() for c in candidates.split(",") if c.strip()]
    version = params.get("to_version")
    return Answer(choice=choice, by=by, at=at, note=str(params.get("note") or "").strip(),
                  window_days=int(window) if window not in (None, "") else None,
                  candidates=[str(c) for c in candidates],
                  to_version=str(version).strip().lstrip("v") if version not in (None, "") else None)


def open_escalation(uc: UseCase | str, lake: Lake | None = None) -> dict[str, Any] | None:
    """The pause the monitor set when it escalated, or ``None`` when retraining is not paused."""
    return load_state(uc, lake).get("paused")


def record(uc: UseCase | str, answer: Answer, outcome: dict[str, Any], lake: Lake | None = None,
           *, resume: bool) -> dict[str, Any]:
    """Record the answer and what was done; with ``resume`` the pause ends (as an acknowledgement)."""
    name = uc if isinstance(uc, str) else uc.name
    with update_state(name, lake) as state:
        was = state.get("paused")
        ds = (was or {}).get("ds") or max(state["checks"], default=None)
        decisions = state.setdefault("decisions", [])
        same = next((d for d in decisions if d.get("at") == answer.at and d.get("by") == answer.by
                     and d.get("kind") == answer.kind and answer.at is not None), None)
        if same is not None:  # a retried task records its answer once
            return same
        entry = {"ds": ds, **answer.to_dict(), "outcome": outcome, "recorded_at": utc_now(), "was_paused": was}
        decisions.append(entry)
        if resume:
            state["acks"].append({"ds": ds, "by": answer.who(), "note": answer.note, "was_paused": was,
                                  "at": utc_now(), "decision": answer.kind})
            state["paused"] = None
        add_history(state, ds or "", "escalation_decision",
                    {"kind": answer.kind, "by": answer.who(), "note": answer.note, "outcome": outcome,
                     "resumed": resume})
    log.info("%s: escalation answered %r by %s (%s): %s", name, answer.kind, answer.who(), answer.note, outcome)
    return entry


def retrain_request(uc: UseCase, answer: Answer, ds: str | None) -> dict[str, Any]:
    """The ``<uc>__train`` Params for a retrain the person asked for."""
    from glideslope.training.models import resolve_candidates

    if answer.window_days is not None and answer.window_days < 3:
        raise ValueError(f"window_days must be at least 3, not {answer.window_days}")
    resolve_candidates(uc.training.candidates, answer.candidates or None)  # names each unknown one
    conf: dict[str, Any] = {"reason": f"escalation answered by {answer.who()}: {answer.note or 'retrain'}"}
    if ds:
        conf["ds"] = ds
    if answer.window_days is not None:
        conf["window_days"] = answer.window_days
    if answer.candidates:
        conf["candidates"] = answer.candidates
    return conf


def roll_back(uc: UseCase, answer: Answer, lake: Lake | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Move ``champion`` back (to ``answer.to_version`` or the previous champion), record it, resume.

    Returns the recorded decision and :func:`glideslope.registry.promotion.rollback`'s record. The
    decision's outcome names the champion now and the version it replaced, as the alert shows them.
    """
    from glideslope.registry.promotion import rollback

    ds = (open_escalation(uc, lake) or {}).get("ds")
    result = rollback(uc, f"escalation answered by {answer.who()}: {answer.note or 'roll back'}",
                      to_version=answer.to_version, ds=ds)
    entry = record(uc, answer, {"champion_version": result["to_version"],
                                "rolled_back_from": result["from_version"]}, lake, resume=True)
    return entry, result


def accept_reference(uc: UseCase | str, ds: str, answer: Answer, lake: Lake | None = None) -> dict[str, Any]:
    """Make the champion's recent prediction nights (the window ending at ``ds``) its reference sample.

    The sample is the rows the champion scored on the ``drift.reference_days`` nights ending at
    ``ds``, with their labels where known, written to ``state/reference/v<version>/ds=<ds>.parquet``;
    the drift state points at it for that version, so a later champion gets its own training
    reference again.
    """
    from glideslope.drift.monitor import attach_labels, find_champion, load_window, mlflow_client

    spec = load_usecase(uc) if isinstance(uc, str) else uc
    lake = lake or Lake.for_usecase(spec.name)
    champ = find_champion(spec, mlflow_client())
    if champ is None:
        raise ValueError(f"{spec.name} has no champion: there is no reference to replace")
    window = load_window(spec, ds, lake)
    if "model_version" in window.columns:
        window = window[window["model_version"].astype(str) == champ.version]
    if len(window) < spec.drift.min_rows:
        raise ValueError(f"{spec.name}: only {len(window)} rows scored by v{champ.version} in the "
                         f"{spec.drift.reference_days} nights ending {ds} (drift.min_rows {spec.drift.min_rows}); "
                         "too few to become the reference")
    sample = attach_labels(spec, window, lake, ds) if spec.label.column not in window.columns else window
    labelled = sample if len(sample) >= spec.drift.min_rows else window
    path = f"{lake.base}/state/reference/v{champ.version}/ds={ds}.parquet"
    lake.publish_parquet(labelled.reset_index(drop=True), path)
    override = {"version": champ.version, "path": path, "ds": ds, "rows": int(len(labelled)),
                "labelled": spec.label.column in labelled.columns, "by": answer.who(), "at": utc_now()}
    with update_state(spec.name, lake) as state:
        state["reference"] = override
    return override


def reference_override(uc: UseCase | str, version: str, lake: Lake | None = None) -> dict[str, Any] | None:
    """The accepted reference of champion ``version``, if a person accepted one."""
    ref = load_state(uc, lake).get("reference")
    return ref if ref and str(ref.get("version")) == str(version) else None


_DONE = {
    "retrain": "automatic retraining resumed; {train} runs with the requested window and candidates",
    "rollback": "champion rolled back; automatic retraining resumed",
    "accept_reference": "the recent nights are the champion's reference now; automatic retraining resumed",
    "keep_paused": "nothing changed: automatic retraining stays paused",
}


def answer_alert(uc: UseCase, entry: Mapping[str, Any]) -> Any:
    """The alert that says what was chosen, by whom, and what was done."""
    from glideslope.alerts import Alert
    from glideslope.alerts.links import report_url

    kind = entry["kind"]
    ds = entry.get("ds") or ""
    done = _DONE[kind].format(train=uc.dag_id("train"))
    timed_out = entry.get("timed_out")
    title = f"escalation answered: {entry['choice'].lower()}" + (" (no answer: default applied)" if timed_out else "")
    outcome = entry.get("outcome") or {}
    body = (f"{'Nobody answered within the timeout; the default applies' if timed_out else entry['by'] + ' chose'}: "
            f"**{entry['choice']}**" + (f" — {entry['note']}" if entry.get("note") else "") + f".\n\n{done}.")
    facts: dict[str, object] = {"answered by": entry.get("by") or "— (timed out)", "note": entry.get("note") or "—",
                                "escalated on": ds or "—"}
    facts.update({k: v for k, v in outcome.items() if v not in (None, "", [])})
    return Alert(uc.name, ds, "escalation_answered", "warning" if kind == "keep_paused" else "info", title, body,
                 {"Drift report": report_url(uc.name, ds)} if ds else {}, facts)
