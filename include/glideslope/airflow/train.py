"""Builds ``<uc>__train``: training set -> candidates -> champion vs challenger -> promote or keep -> notify.

The candidates are trained by the ``glideslope train`` command line: in-process in the embedded
profile, in a GPU pod when ``GLIDESLOPE_TRAINING_BACKEND=kubernetes`` (see :func:`training_task`).
"""

from __future__ import annotations

import importlib
from typing import Any

from glideslope.airflow.assets import drift_asset
from glideslope.airflow.dagkit import dag_kwargs
from glideslope.airflow.links import with_mlflow_links
from glideslope.airflow.request import queued_events, run_request
from glideslope.config import Severity, UseCase, settings

DOC = """\
# {uc.name} — train, compare with the champion, promote or keep

Runs on the cron `{uc.schedule.train}` (UTC; none when null), whenever `{uc.name}__monitor` reports drift (Asset
`{uc.name}.drift`), or by hand with Params. At most one run at a time.

1. `plan_training` — what this run does: the day D whose labels end the window (Param `ds`, else
   the newest day of the drift events, else the newest labelled day), the candidates, the window,
   the reason. A drift-triggered run answers every drift event not answered yet (events queued
   behind a running training are merged into one run and all listed). While an escalation has
   paused automatic retraining, drift and cron runs train nothing (the plan says why).
2. `build_training_set` — labelled events of the `window_days` days ending at D, joined point in
   time to the Feast feature service `{uc.features.service}`; the last `holdout_days` days are the
   holdout, never trained on. Written once to `training/ds=D/...` in the lake.
3. `train_candidates` — every candidate (xgboost, scikit-learn) is an MLflow
   run in experiment `{uc.name}` (params, holdout metrics, model with signature, datasets,
   feature service, window, package version, git commit). The best becomes a new version of the
   registered model `{uc.registered_model}` with alias `challenger`.
4. `evaluate_challenger` — challenger and champion scored on the same holdout; the policy
   (floor {uc.promotion.floor}, margin {uc.promotion.margin}, paired bootstrap CI of the
   {uc.promotion.metric} delta, no slice of {uc.promotion.slices} regressing by more than
   {uc.promotion.slice_tolerance}) decides.
5. `decide_promotion` branches: **`promote_champion`** runs (alias `champion` moves, unless it moved
   during the evaluation) *or* **`keep_champion`** runs (rejection recorded); the other is skipped.
   The decision, its numbers and reason are tags on both model versions and a JSON artifact on the
   challenger's run; the task buttons link to the MLflow run and model version.
   With `promotion.approval: required` (this use case: **{uc.promotion.approval}**) a passing
   decision first waits in **`request_approval`** (Airflow's Required actions): Approve runs
   `promote_champion`, Reject runs `keep_champion_after_review`; who answered, when and why is
   recorded. Without an answer within {uc.promotion.approval_timeout_hours:g} h the default
   `{uc.promotion.approval_default}` applies and the alert says so.
6. `notify` — an alert with the outcome, and the outcome recorded for the drift monitor
   (a failed training too: drift that outlives a failed retrain escalates).

**Params**: `candidates` (names or families; e.g. `["dummy"]` for a deliberately weak run),
`candidate_params` (per-candidate parameter overrides for this run), `window_days`, `holdout_days`,
`reason`, `ds`; `rollback` = true skips training and moves
`champion` back to the previous champion (`rollback_champion`), or to `rollback_to_version`.

**On failure**: `champion` is never moved by a failed or conflicting run; scoring keeps using it.
"""

# Hook for the kubernetes training backend: "module:function" building the GPU pod operator.
# It is called as factory(uc, task_id=..., arguments=[...]) and must run `glideslope train
# <arguments>` in the training image with do_xcom_push=True (arguments end with
# --result-file /airflow/xcom/return.json, so the pod's summary becomes the task's XCom).
TRAINING_POD_FACTORY = "glideslope.airflow.gpu:training_pod_operator"
POD_RESULT_FILE = "/airflow/xcom/return.json"


def training_arguments(usecase: str, plan: dict[str, Any], training_set: str, result_file: str) -> list[str]:
    """``glideslope train`` arguments for a plan: the run request's fields, then the training options.

    The values may be Jinja templates (the pod's arguments are rendered from the plan's XCom).
    """
    return [
        "train", "--usecase", usecase, "--ds", plan["ds"], "--trigger", plan["request_trigger"],
        "--reason", plan["reason"], "--run-id", plan["run_id"], "--events", plan["events"],
        "--params", plan["params"],
        "--candidates", plan["candidates"], "--candidate-params", plan["candidate_params"],
        "--window-days", plan["window_days"], "--holdout-days", plan["holdout_days"],
        "--training-set", training_set, "--result-file", result_file,
    ]


def _templated_plan() -> dict[str, str]:
    def pull(key: str, fmt: str = "") -> str:
        return "{{ ti.xcom_pull(task_ids='plan_training')" + key + fmt + " }}"

    return {"ds": pull("['ds']"), "request_trigger": pull("['request']['trigger']"),
            "reason": pull("['reason']"), "run_id": pull("['request']['run_id']"),
            "events": pull("['request']['events']", " | tojson"), "params": pull("['request']['params']", " | tojson"),
            "candidates": pull("['candidates']", " | join(',')"),
            "candidate_params": pull("['candidate_params']", " | tojson"),
            "window_days": pull("['window_days']"), "holdout_days": pull("['holdout_days']")}


def training_task(uc: UseCase, plan: Any, training_set: Any) -> Any:
    """The `train_candidates` task for the configured backend."""
    from glideslope.airflow.dagkit import task

    if settings().training_backend == "kubernetes":
        module, func = TRAINING_POD_FACTORY.split(":")
        try:
            factory = getattr(importlib.import_module(module), func)
        except (ImportError, AttributeError) as e:
            raise RuntimeError(
                f"training_backend=kubernetes needs the GPU pod factory {TRAINING_POD_FACTORY}: {e}"
            ) from e
        args = training_arguments(uc.name, _templated_plan(),
                                  "{{ ti.xcom_pull(task_ids='build_training_set')['uri'] }}", POD_RESULT_FILE)
        pod = factory(uc, task_id="train_candidates", arguments=args[1:])
        [plan, training_set] >> pod
        return pod.output

    @task(task_id="train_candidates")
    def train_candidates(plan: dict, training_set: dict) -> dict:
        from glideslope.airflow.lineage import report
        from glideslope.lineage import training_lineage
        from glideslope.training import train_for_plan
        from glideslope.training.plan import TrainingPlan

        result = train_for_plan(uc, TrainingPlan.from_summary(plan), training_set=training_set["uri"])
        report(None, training_lineage, uc, result)
        return result

    return train_candidates(plan, training_set)


def _alert(name: str, result: dict[str, Any], kind: str) -> Any:
    from glideslope.alerts import Alert

    links = {k: result[v] for k, v in (("MLflow run", "run_url"), ("MLflow model version", "model_version_url"))
             if result.get(v)}
    if kind == "rolled_back":
        return Alert(usecase=name, ds=str(result.get("ds") or ""), kind=kind, severity="warning",
                     title=f"{name}: champion rolled back v{result['from_version']} -> v{result['to_version']}",
                     body=f"Reason: {result['reason']}", links=links,
                     facts={"from_version": result["from_version"], "to_version": result["to_version"]})
    promoted = kind == "promoted"
    v, champ = result["challenger_version"], result["champion_version"]
    if promoted:
        title = f"{name}: v{v} promoted to champion" + (f" (was v{champ})" if champ else "")
    else:
        title = f"{name}: challenger v{v} rejected, " + (f"champion v{champ} stays" if champ else "no champion yet")
    facts = {"challenger_version": v, "champion_version": champ, "reason": result["reason"]}
    review = result.get("review")
    if review:
        facts["review"] = review["summary"]
        title += " (approval timed out: default applied)" if review["timed_out"] else (
            f" ({'approved' if review['approved'] else 'rejected'} by {review['by']})")
    severity: Severity = ("warning" if not promoted and result["reason"] in ("below_floor", "approval_timed_out")
                          else "info")
    return Alert(usecase=name, ds=result["ds"], kind=kind, severity=severity,
                 title=title, body=f"{result['reason']}: {result['message']}", links=links, facts=facts)


APPROVAL_BODY = """\
{{% set e = ev['decision']['evidence'] %}}The promotion policy passed for **{name}**: challenger **v{{{{ ev['challenger_version'] }}}}** against
{{% if ev['champion_version'] %}}champion **v{{{{ ev['champion_version'] }}}}**{{% else %}}no champion yet (a first model){{% endif %}}
on the holdout {{{{ ev['holdout'] }}}} ({{{{ ev['holdout_rows'] }}}} rows).

* decision: `{{{{ ev['reason'] }}}}` — {{{{ ev['message'] }}}}
* {{{{ e['metric'] }}}}: challenger {{{{ e['challenger'] | round(4) if e['challenger'] is not none else '—' }}}}{{% if e['champion'] is not none %}},
  champion {{{{ e['champion'] | round(4) if e['champion'] is not none else '—' }}}}, delta {{{{ e['delta'] | round(4) if e['delta'] is not none else '—' }}}}
  (CI {{{{ e['ci_low'] | round(4) if e['ci_low'] is not none else '—' }}}} … {{{{ e['ci_high'] | round(4) if e['ci_high'] is not none else '—' }}}}){{% endif %}}
* [MLflow run]({{{{ ev['run_url'] }}}}) · [model version]({{{{ ev['model_version_url'] }}}}) ·
  [model health](/plugin/model-health)

**Approve** moves `champion` to v{{{{ ev['challenger_version'] }}}}; **Reject** keeps the champion and records
the rejection. Without an answer within {hours:g} h: **{default}** (promotion.approval_default).
"""


def approval_task(uc: UseCase) -> Any:
    """``request_approval``: Airflow's human-in-the-loop branch between a passing policy and the move."""
    from datetime import timedelta

    from airflow.sdk import Param

    from glideslope.airflow.hitl import AnsweredBranch
    from glideslope.registry.review import APPROVE, OPTIONS, REJECT, default_option

    rule = uc.promotion
    body = APPROVAL_BODY.format(name=uc.name, hours=rule.approval_timeout_hours, default=rule.approval_default)
    ev = "{% set ev = ti.xcom_pull(task_ids='evaluate_challenger') %}"
    return AnsweredBranch(
        task_id="request_approval",
        subject=ev + f"{uc.name}: promote v{{{{ ev['challenger_version'] }}}} to champion?",
        body=ev + body,
        options=OPTIONS,
        options_mapping={APPROVE: "promote_champion", REJECT: "keep_champion_after_review"},
        defaults=[default_option(rule)],
        response_timeout=timedelta(hours=rule.approval_timeout_hours),
        params={"note": Param("", type="string", description="Why (recorded on the model version and in the alert).")},
    )


def _review(uc: UseCase, ti: Any) -> Any:
    from glideslope.airflow.hitl import answer_of
    from glideslope.registry.review import review_from_answer

    return review_from_answer(answer_of(ti, "request_approval"), uc.promotion)


def build_train_dag(uc: UseCase) -> Any:
    from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, Param

    from glideslope.airflow.dagkit import task

    name = uc.name
    drift = drift_asset(name)
    families = sorted({c.family for c in uc.training.candidates} | {"dummy"})
    schedule: Any = [drift]
    if uc.schedule.train:
        schedule = AssetOrTimeSchedule(timetable=CronTriggerTimetable(uc.schedule.train, timezone="UTC"),
                                       assets=[drift])
    with DAG(schedule=schedule, **dag_kwargs(
        uc, "train", DOC,
        params={
            "ds": Param(None, type=["null", "string"], format="date",
                        description="Day whose labels end the window (default: newest labelled day)."),
            "candidates": Param([], type="array", items={"type": "string"},
                                description=f"Candidate names {[c.name for c in uc.training.candidates]} "
                                            f"or families {families}; empty = every candidate of the spec."),
            "candidate_params": Param({}, type="object",
                                      description='Per-candidate parameters for this run only, e.g. '
                                                  '{"xgboost": {"n_estimators": 50}}.'),
            "window_days": Param(None, type=["null", "integer"], minimum=3,
                                 description=f"Days of labels (default {uc.training.window_days})."),
            "holdout_days": Param(None, type=["null", "integer"], minimum=1,
                                  description=f"Most recent days held out (default {uc.training.holdout_days})."),
            "reason": Param("", type="string", description="Why this run (recorded in MLflow and the alert)."),
            "rollback": Param(False, type="boolean",
                              description="Skip training; move champion back to the previous champion."),
            "rollback_to_version": Param(None, type=["null", "string"],
                                         description="With rollback: this version instead of the previous one."),
        },
    )) as dag:

        @task(task_id="plan_training", inlets=[drift])
        def plan_training(**context: Any) -> dict:
            from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

            from glideslope.drift.state import drift_events_consumed_until, retraining_paused
            from glideslope.training.dataset import latest_label_day
            from glideslope.training.plan import NothingToTrain
            from glideslope.training.plan import plan_training as plan

            req = run_request(name, context)
            if req.trigger == "asset":
                # Events queued behind a running training are attached only in part
                # (apache/airflow#56050): answer every event not answered yet, in one run.
                req = req.with_events(queued_events(context, drift, drift_events_consumed_until(uc)))
            try:
                result = plan(uc, req, latest_label_day=latest_label_day(uc), paused=retraining_paused(uc))
            except NothingToTrain as e:
                if req.trigger in ("schedule", "asset"):
                    raise AirflowSkipException(str(e)) from e
                raise AirflowFailException(str(e)) from e  # a person asked: retrying cannot help
            if result.skip:
                print(f"nothing to train: {result.skip}")
            return result.summary()

        @task.branch(task_id="choose_path")
        def choose_path(plan: Any) -> str | None:
            if plan["skip"]:
                return None  # every training task is skipped; notify says why
            return "rollback_champion" if plan["rollback"] else "build_training_set"

        @task(task_id="build_training_set")
        def build_training_set(plan: Any) -> dict:
            from glideslope.airflow.lineage import report
            from glideslope.lineage import training_set_lineage
            from glideslope.training import build_training_set as build

            result = build(uc, plan["ds"], plan["window_days"], plan["holdout_days"])
            report(None, training_set_lineage, uc, result)
            return result

        @task(task_id="evaluate_challenger")
        def evaluate_challenger(plan: Any, trained: Any) -> dict:
            from glideslope.registry.promotion import evaluate_challenger as evaluate

            return evaluate(uc, plan["ds"], challenger_version=trained["challenger_version"])

        approval = uc.promotion.approval == "required"

        @task.branch(task_id="decide_promotion")
        def decide_promotion(evaluation: Any) -> str:
            if not evaluation["decision"]["promote"]:
                return "keep_champion"
            return "request_approval" if approval else "promote_champion"

        @task(task_id="promote_champion")
        def promote_champion(evaluation: Any, **context: Any) -> dict:
            from airflow.sdk.exceptions import AirflowFailException

            from glideslope.airflow.lineage import report
            from glideslope.lineage import promotion_lineage
            from glideslope.registry.promotion import PromotionConflict, promote

            review = _review(uc, context["ti"]).to_dict() if approval else None
            try:
                result = promote(uc, evaluation, review=review)
            except PromotionConflict as e:  # retrying would promote against a stale evaluation
                raise AirflowFailException(str(e)) from e
            report(None, promotion_lineage, uc, {**evaluation, **result})
            return result

        @task(task_id="keep_champion_after_review")
        def keep_champion_after_review(evaluation: Any, **context: Any) -> dict:
            from glideslope.registry.promotion import reject
            from glideslope.registry.review import reviewed_rejection

            review = _review(uc, context["ti"])
            return reject(uc, reviewed_rejection(evaluation, review), review=review.to_dict())

        @task(task_id="keep_champion")
        def keep_champion(evaluation: Any) -> dict:
            from glideslope.registry.promotion import reject

            return reject(uc, evaluation)

        @task(task_id="rollback_champion")
        def rollback_champion(plan: Any) -> dict:
            from airflow.sdk.exceptions import AirflowFailException

            from glideslope.registry.promotion import NoPreviousChampion, PromotionConflict, rollback

            try:
                return rollback(uc, plan["reason"], plan["rollback_to_version"], plan["ds"])
            except (NoPreviousChampion, PromotionConflict) as e:
                raise AirflowFailException(str(e)) from e

        # all_done: a failed training is recorded too, so drift that outlives it escalates.
        @task(task_id="notify", trigger_rule="all_done")
        def notify(**context: Any) -> dict:
            from airflow.sdk.exceptions import AirflowFailException

            from glideslope.airflow.notifications import send_alert
            from glideslope.drift.state import mark_drift_events_consumed, record_retrain

            ti = context["ti"]
            plan = ti.xcom_pull(task_ids="plan_training") or {}
            if not plan:
                raise AirflowFailException("plan_training produced no plan: nothing ran")
            events = [e["timestamp"] for e in plan["request"]["events"] if e.get("timestamp")]
            if plan.get("skip"):
                mark_drift_events_consumed(uc, events, context.get("run_id"))  # answered: retraining is paused
                return {"kind": "skipped", "reason": plan["skip"], "events": len(events)}
            for task_id, kind in (("promote_champion", "promoted"), ("keep_champion", "rejected"),
                                  ("keep_champion_after_review", "rejected"), ("rollback_champion", "rolled_back")):
                result = ti.xcom_pull(task_ids=task_id)
                if result:
                    # The drift monitor escalates when drift outlives a retrain: tell it one ran.
                    record_retrain(uc, plan.get("ds") or result.get("ds"), kind,
                                   model_version=result.get("challenger_version") or result.get("version"),
                                   run_id=context.get("run_id"))
                    mark_drift_events_consumed(uc, events, context.get("run_id"))
                    alert = _alert(name, result, kind)
                    send_alert(uc, alert, context)
                    return {"kind": alert.kind, "title": alert.title, "drift_days": plan.get("drift_days", [])}
            record_retrain(uc, plan["ds"], "failed", run_id=context.get("run_id"),
                           note="training or promotion failed; see the failed task's log")
            mark_drift_events_consumed(uc, events, context.get("run_id"))
            raise AirflowFailException(f"{name} training for {plan['ds']} failed: no promotion, rejection or "
                                       "rollback result; the failure is recorded for the drift monitor")

        plan = plan_training()
        path = choose_path(plan)
        training_set = build_training_set(plan)
        path >> training_set
        trained = with_mlflow_links(training_task(uc, plan, training_set))
        evaluation = with_mlflow_links(evaluate_challenger(plan, trained))
        branch = decide_promotion(evaluation)
        promoted = with_mlflow_links(promote_champion(evaluation))
        kept = with_mlflow_links(keep_champion(evaluation))
        rolled = with_mlflow_links(rollback_champion(plan))
        path >> rolled
        done = notify()
        if approval:
            ask = approval_task(uc)
            kept_after_review = with_mlflow_links(keep_champion_after_review(evaluation))
            branch >> [ask, kept]
            ask >> [promoted, kept_after_review]
            kept_after_review >> done
        else:
            branch >> [promoted, kept]
        [promoted, kept, rolled] >> done
    return dag
