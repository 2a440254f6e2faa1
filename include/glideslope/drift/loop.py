"""Closing the loop: record a check, decide (trigger / suppress / escalate / wait), acknowledge.

These functions glue the pure policy (:mod:`glideslope.drift.policy`) to the persisted state
(:mod:`glideslope.drift.state`) and build the alert each outcome deserves. They never talk to
Airflow: the monitor DAG asks Airflow whether a training run is active and passes the answer in,
emits the Asset event when the decision is ``trigger``, and delivers the alert.

Every step lands in the state's ``history``, in the task log (logger ``glideslope.drift``), in the
alert, and on the champion model version's MLflow tags (``glideslope.drift.*``).
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from glideslope.alerts import Alert
from glideslope.alerts.links import mlflow_model_version_url, report_url
from glideslope.config import UseCase, load_usecase
from glideslope.drift.policy import decide
from glideslope.drift.state import (
    add_history,
    alert_already_sent,
    load_state,
    mark_alert_sent,
    update_state,
    utc_now,
)
from glideslope.lake import Lake
from glideslope.metrics import label as metric_label

log = logging.getLogger(__name__)


def _uc(uc: UseCase | str) -> UseCase:
    return load_usecase(uc) if isinstance(uc, str) else uc


def check_record(numbers: dict[str, Any], metric: str) -> dict[str, Any]:
    """The part of a check's numbers the state keeps (small; the full numbers stay in the report dir).

    ``metric`` is the use case's ``promotion.metric``: its live value is kept as ``live_<metric>``
    (``live_roc_auc`` for a binary use case, the key older states have too).
    """
    v = numbers["verdict"]
    perf = numbers.get("performance") or {}
    champ = numbers.get("champion") or {}
    return {"status": v["status"], "drift_share": v["drift_share"], "drifted_columns": v["drifted_columns"],
            "data_drift": v["data_drift"], "performance_breach": v["performance_breach"], "reasons": v["reasons"],
            "performance_unchecked": v.get("performance_unchecked"),
            "current_rows": numbers.get("current_rows"), "live_metric": metric, f"live_{metric}": perf.get(metric),
            "labelled_rows": perf.get("rows"), "champion_version": champ.get("version"),
            "report": numbers.get("report"), "numbers": numbers.get("numbers_path")}


def decide_and_record(uc: UseCase | str, ds: str, numbers: dict[str, Any], *, train_active: bool,
                      lake: Lake | None = None) -> dict[str, Any]:
    """Record ``ds``'s check, decide, record the decision; returns the decision and its alert.

    Result: ``{"action", "reasons", "streak", "ds", "drifted_columns", "report", "alert": Alert-dict|None}``.
    For ``trigger`` the caller emits the Asset event, then calls :func:`record_trigger_emitted`:
    a run that dies in between is simply decided again on rerun.
    """
    spec = _uc(uc)
    with update_state(spec.name, lake) as state:
        state["checks"][ds] = check_record(numbers, spec.promotion.metric)
        add_history(state, ds, "checked", {k: state["checks"][ds][k] for k in ("status", "drift_share",
                                                                                "drifted_columns")})
        decision = decide(ds, state, spec.drift, train_active=train_active)
        out = {"ds": ds, "usecase": spec.name, **decision.to_dict(),
               "drifted_columns": numbers["verdict"]["drifted_columns"], "report": numbers.get("report"),
               "report_url": report_url(spec.name, ds), "champion": numbers.get("champion")}
        if decision.action == "suppress":
            # A suppressed request is kept (one per day), so nothing a guard stopped is lost.
            state["triggers"] = [t for t in state["triggers"] if not (t["ds"] == ds and t["outcome"] == "suppressed")]
            state["triggers"].append({"ds": ds, "outcome": "suppressed", "reasons": decision.reasons,
                                      "drifted_columns": out["drifted_columns"], "at": utc_now()})
        if decision.action == "escalate":
            state["paused"] = {"ds": ds, "reason": decision.reasons[0], "retrain": decision.retrain}
        add_history(state, ds, f"decision:{decision.action}", decision.reasons)
        alert = _alert_for(spec, out, numbers)
        if alert is not None and alert_already_sent(state, ds, alert.kind):
            log.info("%s %s: %s alert already sent for this day; not repeating it", spec.name, ds, alert.kind)
            alert = None
        out["alert"] = None if alert is None else _alert_dict(alert)
    if decision.action == "escalate" and numbers.get("champion"):
        tag_champion(spec, numbers["champion"], {"glideslope.drift.escalated": f"{ds}: {decision.reasons[0]}",
                                     "glideslope.drift.auto_retrain": "paused"})
    log.info("drift decision %s %s: %s — %s", spec.name, ds, decision.action, "; ".join(decision.reasons))
    return out


def _alert_dict(alert: Alert) -> dict[str, Any]:
    return {"usecase": alert.usecase, "ds": alert.ds, "kind": alert.kind, "severity": alert.severity,
            "title": alert.title, "body": alert.body, "links": dict(alert.links), "facts": dict(alert.facts)}


def alert_from_dict(d: dict[str, Any]) -> Alert:
    return Alert(**d)


def _links(spec: UseCase, ds: str, numbers: dict[str, Any]) -> dict[str, str]:
    links = {"Drift report": report_url(spec.name, ds)}
    champ = numbers.get("champion") or {}
    if champ.get("version"):
        links["Champion model"] = mlflow_model_version_url(champ["name"], champ["version"])
    mlf = numbers.get("mlflow") or {}
    if mlf.get("run_id"):
        from glideslope.alerts.links import mlflow_run_url

        links["Monitoring run"] = mlflow_run_url(mlf["experiment_id"], mlf["run_id"])
    return links


def _alert_for(spec: UseCase, out: dict[str, Any], numbers: dict[str, Any]) -> Alert | None:
    ds, action = out["ds"], out["action"]
    facts: dict[str, object] = {
        "drifted columns": out["drifted_columns"] or "none",
        "drift share": numbers["verdict"]["drift_share"],
        "consecutive drifted checks": len(out["streak"]),
        "report file": numbers.get("report") or "",
    }
    perf = numbers.get("performance") or {}
    metric = spec.promotion.metric
    if perf.get(metric) is not None:
        facts[f"live {metric_label(metric)}"] = perf[metric]
        facts["labelled rows"] = perf.get("rows", 0)
    champ = numbers.get("champion") or {}
    if champ.get("version"):
        facts["champion"] = f"{champ['name']} v{champ['version']}"
    why = "\n\n".join(out["reasons"] + numbers["verdict"]["reasons"][:1])
    links = _links(spec, ds, numbers)
    if action == "trigger":
        return Alert(spec.name, ds, "drift_detected", "warning",
                     "drift detected, retraining triggered",
                     f"{why}\n\nThe drift event was emitted; {spec.dag_id('train')} will train a challenger and "
                     f"promote it only if it beats the champion.", links, facts)
    if action == "suppress":
        return Alert(spec.name, ds, "retrain_suppressed", "warning",
                     "drift detected, retraining suppressed",
                     f"{why}\n\nThe retrain request is recorded in the drift state and was not sent. A person can "
                     f"trigger {spec.dag_id('train')} by hand if it should not wait.", links, facts)
    if action == "escalate":
        retrain = out.get("retrain") or {}
        facts["retrain"] = f"{retrain.get('ds')} ({retrain.get('decision')})"
        return Alert(spec.name, ds, "escalated", "critical",
                     "ESCALATION: drift persists after retraining; automatic retraining paused",
                     f"{why}\n\nRetraining did not remove the drift, so automatic retraining of {spec.name} is "
                     f"paused. Look at the drift report and the data; when done, acknowledge with\n\n"
                     f"glideslope ack --usecase {spec.name} --by YOUR_NAME --note '...'\n\n"
                     f"or trigger {spec.dag_id('monitor')} with the Params acknowledge=true and acknowledged_by.",
                     links, facts)
    return None


def tag_champion(spec: UseCase, champion: dict[str, Any] | None, tags: dict[str, str]) -> None:
    """Put decision tags on the champion's model version (best effort: the state is the record).

    ``champion`` is ``{"name", "version"}`` from the check's numbers; ``None`` looks it up.
    """
    try:
        from glideslope.drift.monitor import find_champion, mlflow_client

        client = mlflow_client()
        if champion is None:
            found = find_champion(spec, client)
            champion = None if found is None else {"name": found.name, "version": found.version}
        if not champion or not champion.get("version"):
            return
        for k, v in tags.items():
            client.set_model_version_tag(champion["name"], champion["version"], k, v[:5000])
    except Exception:
        log.exception("could not tag the champion of %s with %s", spec.name, tags)


def acknowledge(uc: UseCase | str, by: str, note: str = "", ds: str | None = None,
                lake: Lake | None = None, *, tag_mlflow: bool = True) -> dict[str, Any]:
    """A person acknowledges the escalation: automatic retraining resumes, streaks start afresh.

    ``ds`` is the logical day the acknowledgement applies from (default: the last checked day,
    or today when nothing was checked). Returns ``{"ack": {...}, "was_paused": {...}|None, "alert": ...}``.
    """
    spec = _uc(uc)
    if not by or not by.strip():
        raise ValueError("an acknowledgement needs the name of the person (--by / acknowledged_by)")
    with update_state(spec.name, lake) as state:
        # The alert names a night, never the wall-clock date; the state keeps a day either way.
        night = ds or max(state["checks"], default=None) or "no night checked yet"
        ds = ds or max(state["checks"], default=date.today().isoformat())
        was = state.get("paused")
        ack = {"ds": ds, "by": by.strip(), "note": note or "", "was_paused": was}
        ack["at"] = utc_now()
        state["acks"].append(ack)
        state["paused"] = None
        add_history(state, ds, "acknowledged", {"by": ack["by"], "note": ack["note"], "was_paused": bool(was)})
        alert = Alert(spec.name, night, "acknowledged", "info",
                      f"escalation acknowledged by {ack['by']}; automatic retraining resumed" if was else
                      f"acknowledged by {ack['by']} (nothing was paused)",
                      (f"{ack['by']} acknowledged" + (f" the escalation of {was['ds']}" if was else "")
                       + (f": {ack['note']}" if ack["note"] else ".")
                       + "\n\nDrift checks count afresh from the next day; a new persistent drift triggers retraining "
                         "again (cooldown and weekly budget apply)."),
                      {"Drift report": report_url(spec.name, ds)},
                      {"acknowledged by": ack["by"], "note": ack["note"] or "—",
                       "escalated on": was["ds"] if was else "—"})
    if tag_mlflow:
        tag_champion(spec, None, {"glideslope.drift.acknowledged": f"{ds} by {ack['by']}: {ack['note']}",
                                  "glideslope.drift.auto_retrain": "active"})
    log.info("drift escalation of %s acknowledged by %s (%s)", spec.name, ack["by"], ack["note"])
    return {"ack": ack, "was_paused": was, "alert": _alert_dict(alert)}


def record_trigger_emitted(uc: UseCase | str, ds: str, decision: dict[str, Any],
                           lake: Lake | None = None) -> dict[str, Any]:
    """Record that the drift Asset event for ``ds`` was emitted (cooldown and budget count these)."""
    entry = {"ds": ds, "outcome": "emitted", "reasons": decision.get("reasons", []),
             "drifted_columns": decision.get("drifted_columns", []), "at": utc_now()}
    with update_state(_uc(uc).name, lake) as state:
        if not any(t["ds"] == ds and t["outcome"] == "emitted" for t in state["triggers"]):
            state["triggers"].append(entry)
            add_history(state, ds, "drift_event_emitted", {"drifted_columns": entry["drifted_columns"]})
    return entry


def mark_sent(uc: UseCase | str, ds: str, kind: str, lake: Lake | None = None) -> None:
    with update_state(_uc(uc).name, lake) as state:
        mark_alert_sent(state, ds, kind)
        add_history(state, ds, f"alert_sent:{kind}")


def status(uc: UseCase | str, lake: Lake | None = None) -> dict[str, Any]:
    """A short summary of the loop's state for people (CLI, demo)."""
    state = load_state(_uc(uc).name, lake)
    checks = state["checks"]
    last = max(checks, default=None)
    return {"usecase": state["usecase"], "last_check": last and {"ds": last, **checks[last]},
            "paused": state["paused"], "triggers": state["triggers"][-5:], "retrains": state["retrains"][-5:],
            "acks": state["acks"][-3:]}
