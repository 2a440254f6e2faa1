"""Builds ``<uc>__monitor``: check drift -> decide -> emit the drift event / suppress / escalate -> alert."""

from __future__ import annotations

from typing import Any

from glideslope.airflow.assets import drift_asset, escalation_asset, predictions_asset
from glideslope.airflow.dagkit import dag_kwargs, ds_param
from glideslope.airflow.links import with_drift_report_link
from glideslope.airflow.request import run_request
from glideslope.config import UseCase

DOC = """\
# {uc.name} — nightly drift monitor

Runs whenever `{uc.name}__score` has published predictions (Asset `{uc.name}.predictions`), or
by hand with Params. It checks every predicted night after the newest check (so a night whose
event was merged into another is not skipped), or the night of the `ds` Param; the branch below
acts on the newest night, and every night's check and decision is recorded in the drift state.
For night D:

1. `acknowledge_escalation` — only with the Param `acknowledge` = true: records that
   `acknowledged_by` looked at the escalation (with `note`), resumes automatic retraining and
   sends an `acknowledged` alert. Otherwise it does nothing.
2. `check_drift` — Evidently compares the inputs and scores of the last
   {uc.drift.reference_days} nights with predictions (nights with events: quiet nights do not
   count; rows the current champion scored; each event once, by `{uc.entity_key}` and event time,
   so a re-delivered event never counts twice) with the champion's reference sample, and computes live performance where labels already exist.
   The HTML report and `numbers.json` land in `reports/drift/ds=D/` (button **Drift report**);
   the numbers are logged to MLflow (experiment `{uc.name}-monitoring`, one run per champion
   version, one step per day).
3. `decide_action` — the drift policy: a check is *drift* when at least {uc.drift.drift_share}
   of the tested columns drifted or live {uc.promotion.metric} is worse than the floor
   {uc.drift.performance_floor} (`drift.performance_floor`, in the metric's direction; a floor
   that cannot be checked yet is said so); fewer than {uc.drift.min_rows} rows is *insufficient data*.
   Only {uc.drift.persistence} consecutive drifted checks act. Then exactly one of:
   - `trigger_retraining` — emits the Asset `{uc.name}.drift` (extra: ds, report URI, drifted
     columns), which schedules `{uc.name}__train`;
   - `suppress_retraining` — a retrain was due but a guard stopped it: automatic retraining
     paused, a training run already queued/running, already triggered for D, cooldown
     ({uc.drift.cooldown_days} days after a retrain) or the weekly budget
     ({uc.drift.weekly_retrain_budget}); the request is kept in the drift state;
   - `escalate` — drift outlived a retrain (promoted or rejected) by {uc.drift.persistence}
     checks: automatic retraining is paused, and the Asset `{uc.name}.escalation` schedules
     `{uc.name}__escalation`, which asks a person what to do (retrain otherwise, roll back,
     accept the data as the new reference, keep paused);
   - `no_action` — no drift, waiting for persistence, insufficient data, or already paused.
4. `send_alerts` — the decision's alert (`drift_detected`, `retrain_suppressed`, `escalated`) to
   the route of its severity; an alert already sent for D is not repeated on a rerun.

**Params**: `ds` (night to check), `acknowledge`, `acknowledged_by`, `note`.
Acknowledge from a shell instead: `glideslope ack --usecase {uc.name} --by NAME --note "..."`.

**State**: `state/drift.json` in the lake keeps every check, trigger (emitted or suppressed),
retrain, escalation and acknowledgement with its reason.

**On failure**: nothing is emitted and the task alerts; a rerun for D repeats the check and
decides again (no second drift event for the same day).
"""

BRANCHES = {"trigger": "trigger_retraining", "suppress": "suppress_retraining", "escalate": "escalate"}


def build_monitor_dag(uc: UseCase) -> Any:
    from airflow.sdk import DAG, Metadata, Param

    from glideslope.airflow.dagkit import task

    name = uc.name
    asset = drift_asset(name)
    train_dag_id = uc.dag_id("train")
    with DAG(schedule=[predictions_asset(name)], **dag_kwargs(
        uc, "monitor", DOC,
        params={
            "ds": ds_param(),
            "acknowledge": Param(False, type="boolean",
                                 description="Acknowledge an escalation and resume automatic retraining."),
            "acknowledged_by": Param(None, type=["null", "string"],
                                     description="Who acknowledges (required with acknowledge)."),
            "note": Param("", type="string", description="What was found; recorded and sent in the alert."),
        },
    )) as dag:

        @task(task_id="acknowledge_escalation")
        def acknowledge_escalation(**context: Any) -> dict:
            from airflow.sdk.exceptions import AirflowFailException

            params = context["params"]
            if not params.get("acknowledge"):
                return {"acknowledged": False}
            by = (params.get("acknowledged_by") or "").strip()
            if not by:
                raise AirflowFailException("acknowledge=true needs the Param acknowledged_by (who acknowledges)")
            from glideslope.airflow.notifications import send_alert
            from glideslope.drift.loop import acknowledge, alert_from_dict

            spec = uc
            result = acknowledge(spec, by=by, note=params.get("note") or "", ds=run_request(name, context).ds)
            send_alert(spec, alert_from_dict(result["alert"]), context)
            return {"acknowledged": True, "by": by, "was_paused": result["was_paused"]}

        @task(task_id="check_drift")
        def check_drift(**context: Any) -> dict:
            from airflow.sdk.exceptions import AirflowSkipException

            from glideslope.backlog import nights_to_check
            from glideslope.drift.monitor import run_check
            from glideslope.drift.state import load_state
            from glideslope.lake import Lake

            req = run_request(name, context)
            from glideslope.airflow.notes import push_note

            nights = nights_to_check(req, Lake.for_usecase(name), load_state(name).get("checks", {}))
            if not nights:
                reason = f"no predicted night of {name} to check"
                push_note(context, [f"skipped: {reason}"])
                raise AirflowSkipException(reason)
            from glideslope.airflow.lineage import report
            from glideslope.lineage import drift_lineage

            earlier = [run_check(uc, ds) for ds in nights[:-1]]
            context["ti"].xcom_push(key="earlier_checks", value=earlier)
            latest = run_check(uc, nights[-1])
            for numbers in [*earlier, latest]:
                report(context, drift_lineage, uc, numbers)
            push_note(context, [f"checked {n['ds']}: {n['verdict']['status']} "
                                f"({n.get('current_rows', 0)} rows in the nights {', '.join(n.get('window') or [])})"
                                for n in [*earlier, latest]])
            return latest

        @task.branch(task_id="decide_action")
        def decide_action(numbers: dict, **context: Any) -> str:
            from glideslope.drift.loop import decide_and_record

            ti = context["ti"]
            # One training run per use case: a queued or running train run suppresses a new trigger.
            active = ti.get_dr_count(dag_id=train_dag_id, states=["queued", "running"]) > 0
            for earlier in ti.xcom_pull(task_ids="check_drift", key="earlier_checks") or []:
                decide_and_record(uc, earlier["ds"], earlier, train_active=active)
            decision = decide_and_record(uc, numbers["ds"], numbers, train_active=active)
            ti.xcom_push(key="decision", value=decision)
            return BRANCHES.get(decision["action"], "no_action")

        @task(task_id="trigger_retraining", outlets=[asset])
        def trigger_retraining(**context: Any):  # type: ignore[no-untyped-def]
            from glideslope.drift.loop import record_trigger_emitted

            decision = context["ti"].xcom_pull(task_ids="decide_action", key="decision")
            yield Metadata(asset, extra={
                "ds": decision["ds"], "report": decision["report"], "report_url": decision["report_url"],
                "drifted_columns": decision["drifted_columns"], "reasons": decision["reasons"],
                "champion_version": (decision.get("champion") or {}).get("version"),
            })
            record_trigger_emitted(name, decision["ds"], decision)
            return {"emitted": asset.name, "ds": decision["ds"]}

        @task(task_id="suppress_retraining")
        def suppress_retraining(**context: Any) -> dict:
            decision = context["ti"].xcom_pull(task_ids="decide_action", key="decision")
            print(f"retraining suppressed for {decision['ds']}: " + "; ".join(decision["reasons"]))
            return {"suppressed": True, "reasons": decision["reasons"]}

        escalation = escalation_asset(name)

        @task(task_id="escalate", outlets=[escalation])
        def escalate(**context: Any):  # type: ignore[no-untyped-def]
            decision = context["ti"].xcom_pull(task_ids="decide_action", key="decision")
            print(f"ESCALATED on {decision['ds']}; automatic retraining of {name} paused: "
                  + "; ".join(decision["reasons"]))
            yield Metadata(escalation, extra={
                "ds": decision["ds"], "reasons": decision["reasons"], "report_url": decision["report_url"],
                "drifted_columns": decision["drifted_columns"],
                "champion_version": (decision.get("champion") or {}).get("version"),
            })
            return {"escalated": True, "reasons": decision["reasons"], "asked_in": uc.dag_id("escalation")}

        @task(task_id="no_action")
        def no_action(**context: Any) -> dict:
            decision = context["ti"].xcom_pull(task_ids="decide_action", key="decision")
            print(f"{decision['action']}: " + "; ".join(decision["reasons"]))
            return {"action": decision["action"]}

        @task(task_id="send_alerts", trigger_rule="none_failed_min_one_success")
        def send_alerts(**context: Any) -> dict:
            from glideslope.airflow.notifications import send_alert
            from glideslope.drift.loop import alert_from_dict, mark_sent

            decision = context["ti"].xcom_pull(task_ids="decide_action", key="decision")
            if not decision.get("alert"):
                return {"sent": None, "action": decision["action"]}
            alert = alert_from_dict(decision["alert"])
            delivered = send_alert(name, alert, context)
            mark_sent(name, alert.ds, alert.kind)
            return {"sent": alert.kind, "severity": alert.severity, "delivered": delivered}

        ack = acknowledge_escalation()
        numbers = with_drift_report_link(check_drift())
        ack >> numbers
        branch = decide_action(numbers)
        outcomes = [trigger_retraining(), suppress_retraining(), escalate(), no_action()]
        branch >> outcomes
        outcomes >> send_alerts()
    return dag
