"""Builds ``<uc>__escalation``: a person answers the escalation in the Airflow UI, the DAG carries it out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from glideslope.airflow.assets import escalation_asset
from glideslope.airflow.dagkit import dag_kwargs
from glideslope.config import UseCase

DOC = """\
# {uc.name} — what to do about an escalation

Runs when `{uc.name}__monitor` escalates (Asset `{uc.name}.escalation`): drift outlived a
retrain and automatic retraining is paused. It is its own DAG so that the nightly monitor never
waits for a person.

1. `summarize_escalation` — the open escalation (night, reasons, drifted columns), the champion
   and the versions it can roll back to. Skipped when nothing is paused any more (someone
   acknowledged meanwhile).
2. **`decide_escalation`** (Airflow's *Required actions*, human-in-the-loop) asks which of:
   - **Retrain with another window or candidates** → `request_retraining` records the answer,
     resumes automatic retraining and triggers `{uc.name}__train` (run `escalation__<this run>`)
     with the Params given (`window_days`, `candidates`);
   - **Roll back to an earlier version** → `roll_back` moves `champion` to `to_version` (or the
     previous champion), recorded like every move, and resumes;
   - **Accept the current data as the new reference** → `accept_reference`: the champion's last
     {uc.drift.reference_days} prediction nights become its reference sample, and resumes;
   - **Keep paused** → `keep_paused` records the answer; nothing else changes.
   Without an answer within {uc.drift.escalation_timeout_hours:g} h (`drift.escalation_timeout_hours`)
   the default **Keep paused** applies, and the alert says so.
3. `notify` — the `escalation_answered` alert: what was chosen, by whom, why, what was done.

Every answer is recorded in the drift state (`decisions`, with who, when, why and the outcome) and
shown on the model-health page. `glideslope ack` and the monitor's `acknowledge` Param stay for
scripts.
"""

BODY = """\
**Drift outlived a retrain** on {{{{ s['ds'] }}}}; automatic retraining of {name} is paused.

* Reasons: {{{{ s['reasons'] | join('; ') }}}}
* Drifted columns: {{{{ s['drifted_columns'] | join(', ') or '—' }}}}
* Champion: v{{{{ s['champion_version'] }}}}; earlier champions: {{{{ s['earlier_versions'] | join(', ') or 'none' }}}}
* [Drift report]({{{{ s['report_url'] }}}}) · [model health](/plugin/model-health)

**Retrain** uses the Params `window_days` and `candidates` (empty: the spec's);
**Roll back** uses `to_version` (empty: the previous champion); **Accept** makes the last
{days} prediction nights the champion's reference. Without an answer within {hours:g} h:
**Keep paused**.
"""

TASKS = {"retrain": "request_retraining", "rollback": "roll_back", "accept_reference": "accept_reference",
         "keep_paused": "keep_paused"}


def build_escalation_dag(uc: UseCase) -> Any:
    from airflow.sdk import DAG, Param

    from glideslope.airflow.dagkit import task
    from glideslope.airflow.hitl import AnsweredBranch
    from glideslope.drift.escalation import KEEP, KINDS, OPTIONS

    name = uc.name
    with DAG(schedule=[escalation_asset(name)], **dag_kwargs(uc, "escalation", DOC)) as dag:

        @task(task_id="summarize_escalation")
        def summarize_escalation(**context: Any) -> dict:
            from airflow.sdk.exceptions import AirflowSkipException

            from glideslope.alerts.links import report_url
            from glideslope.drift.escalation import open_escalation
            from glideslope.drift.state import load_state
            from glideslope.registry.promotion import champion_history
            from glideslope.training import tracking

            paused = open_escalation(name)
            if not paused:
                raise AirflowSkipException(f"{name}: automatic retraining is not paused (acknowledged meanwhile?)")
            client = tracking.client()
            champion = None
            try:
                champion = str(client.get_model_version_by_alias(uc.registered_model, "champion").version)
            except Exception:  # no champion: nothing to roll back to
                champion = None
            earlier = [v for v in champion_history(client, uc.registered_model) if v != champion]
            check = load_state(name)["checks"].get(paused["ds"], {})
            return {"ds": paused["ds"], "reasons": [paused.get("reason", "")], "champion_version": champion,
                    "earlier_versions": earlier[::-1], "drifted_columns": check.get("drifted_columns", []),
                    "report_url": report_url(name, paused["ds"])}

        summary = "{% set s = ti.xcom_pull(task_ids='summarize_escalation') %}"
        decide_escalation = AnsweredBranch(
            task_id="decide_escalation",
            subject=summary + f"{name}: drift persists after retraining (since {{{{ s['ds'] }}}}). What now?",
            body=summary + BODY.format(name=name, days=uc.drift.reference_days,
                                       hours=uc.drift.escalation_timeout_hours),
            options=OPTIONS,
            options_mapping={option: TASKS[KINDS[option]] for option in OPTIONS},
            defaults=[KEEP],
            response_timeout=timedelta(hours=uc.drift.escalation_timeout_hours),
            params={
                "window_days": Param(None, type=["null", "integer"], minimum=3,
                                     description="Retrain: days of history (empty: the spec's training.window_days)."),
                "candidates": Param([], type="array", items={"type": "string"},
                                    description="Retrain: candidate names or families (empty: the spec's)."),
                "to_version": Param(None, type=["null", "string"],
                                    description="Roll back: the version to restore (empty: the previous champion)."),
                "note": Param("", type="string", description="Why (recorded and sent in the alert)."),
            },
        )

        def _answer(context: Any) -> Any:
            from glideslope.airflow.hitl import answer_of
            from glideslope.drift.escalation import answer_from_hitl

            return answer_from_hitl(answer_of(context["ti"], "decide_escalation"))

        @task(task_id="request_retraining")
        def request_retraining(**context: Any) -> dict:
            from airflow.sdk.exceptions import DagRunTriggerException

            from glideslope.drift.escalation import open_escalation, record, retrain_request

            answer = _answer(context)
            conf = retrain_request(uc, answer, (open_escalation(name) or {}).get("ds"))
            train_run = f"escalation__{context['run_id']}"
            entry = record(name, answer, {"train_dag": uc.dag_id("train"), "train_run": train_run, "conf": conf},
                           resume=True)
            context["ti"].xcom_push(key="decision", value=entry)
            # What Airflow's TriggerDagRunOperator raises: the task runner creates the train run.
            # (The operator itself would cost every parse of this file 0.3 s of imports.)
            raise DagRunTriggerException(
                trigger_dag_id=uc.dag_id("train"), dag_run_id=train_run, conf=conf, reset_dag_run=False,
                skip_when_already_exists=True, wait_for_completion=False, allowed_states=["success"],
                failed_states=["failed"], poke_interval=60, deferrable=False,
                note=f"requested by {answer.who()} in answer to the escalation",
            )

        @task(task_id="roll_back")
        def roll_back(**context: Any) -> dict:
            from glideslope.drift.escalation import roll_back as carry_out

            entry, result = carry_out(uc, _answer(context))
            context["ti"].xcom_push(key="decision", value=entry)
            return result

        @task(task_id="accept_reference")
        def accept_reference(**context: Any) -> dict:
            from glideslope.drift.escalation import accept_reference as accept
            from glideslope.drift.escalation import open_escalation, record
            from glideslope.drift.state import load_state

            answer = _answer(context)
            paused = open_escalation(name) or {}
            ds = max(load_state(name)["checks"], default=None) or paused.get("ds")
            if not ds:
                raise ValueError(f"{name}: no drift check recorded; there are no recent nights to accept")
            override = accept(uc, str(ds), answer)
            entry = record(name, answer, {"reference": override["path"], "reference_rows": override["rows"],
                                          "champion_version": override["version"]}, resume=True)
            context["ti"].xcom_push(key="decision", value=entry)
            return override

        @task(task_id="keep_paused")
        def keep_paused(**context: Any) -> dict:
            from glideslope.drift.escalation import record

            entry = record(name, _answer(context), {"paused": True}, resume=False)
            context["ti"].xcom_push(key="decision", value=entry)
            return {"paused": True}

        @task(task_id="notify", trigger_rule="none_failed_min_one_success")
        def notify(**context: Any) -> dict:
            from glideslope.airflow.notifications import send_alert
            from glideslope.drift.escalation import answer_alert

            ti = context["ti"]
            entry = next((e for e in (ti.xcom_pull(task_ids=t, key="decision") for t in TASKS.values()) if e), None)
            if entry is None:
                return {"sent": None}
            delivered = send_alert(uc, answer_alert(uc, entry), context)
            return {"sent": "escalation_answered", "kind": entry["kind"], "delivered": delivered}

        branches = [request_retraining(), roll_back(), accept_reference(), keep_paused()]
        summarize_escalation() >> decide_escalation >> branches
        branches >> notify()
    return dag
