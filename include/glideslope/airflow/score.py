"""Builds ``<uc>__score``: the champion scores the next period; predictions to the lake and online."""

from __future__ import annotations

from typing import Any

from glideslope.airflow.assets import online_features_asset, predictions_asset
from glideslope.airflow.dagkit import dag_kwargs, ds_param
from glideslope.airflow.deadline import scoring_deadline
from glideslope.airflow.request import run_request
from glideslope.config import UseCase

DOC = """\
# {uc.name} — nightly precomputed scores

Runs when `{uc.name}__features` has loaded a new day (Asset `{uc.name}.online_features`), or by
hand for any day with the `ds` Param. **A run is about its own night**: the night of its event
(with any event merged into it while it waited), or the `ds` Param. It also catches up, *explicitly*,
every earlier night nobody scored yet (an earlier run failed, an event was lost) — never a night
after its own, even on a retry: that night is its own run's. With no predictions yet, only its own
night is scored. A run by hand without `ds` scores every unscored night (all as catch-up), or the
newest one when nothing was ever predicted. The run's note, the XCom `plan` (own, catch-up,
quiet nights) and each predictions file's metadata (run id, own night or catch-up) record which
night was scored by which run.

**Quiet nights**: a night whose `curated/{uc.scoring.table}` partition has 0 rows (an empty
delivery) has nothing to score: it is *skipped* with the reason in the task log, the run's note
and the lineage — no failure, no alert, no retry, no `predictions/ds=D` folder.

1. `score_next_period` — for each of those nights loads `models:/{uc.name}@champion` once (by version, recorded on every
   row) and scores `curated/{uc.scoring.table}/ds=D` in chunks of {uc.scoring.chunk_rows} rows. Features
   come from the Feast offline store, point in time as of the moment day D's features were
   published, so a rerun of D gives identical rows even after later days were loaded.
   Each chunk passes a Great Expectations gate (row count equals the input, no nulls,
   probabilities in [0, 1], unique keys) before it is written to a staging file; the complete file
   then replaces `predictions/ds=D/data.parquet` in one step.
2. `push_predictions_online` — writes the scores to the Feast view `{uc.features.prediction_view}`,
   where an application reads a score by `{uc.entity_key}`, and updates the Asset
   `{uc.name}.predictions` (extra: the nights, the model version), which schedules
   `{uc.name}__monitor`.

**Deadline**: a run not finished {uc.scoring.deadline_minutes} minutes after it was queued
(`scoring.deadline_minutes`; none when null) sends a `scoring_late` warning through the alert
routes (Airflow Deadline Alerts, reference: the run's queue time).

**No champion yet** or **nothing to score**: `score_next_period` is *skipped* with the reason in its
log and the run's note; nothing is written and the monitor does not run. **On failure**: the previous predictions of D (if any) stay in place.
"""


def merged_events(context: Any, asset: Any) -> list[Any]:
    """Events of ``asset`` posted after the run was due and before it started: merged into this run.

    Airflow gives a run the events up to its ``run_after``; an event posted while the run waited
    (a consumer was running) may get no run of its own (apache/airflow#56050), so the run takes
    its night too. An event posted after the run started (e.g. while a try waited for its retry)
    has a run of its own, and its night is that run's. A task's retries keep the run's start, so
    every try of a run is for the same nights.
    """
    from datetime import datetime

    from glideslope.airflow.request import queued_events

    dag_run = context.get("dag_run")
    due, started = getattr(dag_run, "run_after", None), getattr(dag_run, "start_date", None)
    if due is None or started is None or str(getattr(dag_run, "run_type", "")).split(".")[-1].lower() != (
            "asset_triggered"):
        return []
    if getattr(dag_run, "clear_number", 0):
        # Clearing a finished run restarts it now (a new start_date): later events, with runs of
        # their own, would fall in the window. A cleared run keeps to the events it was given.
        return []
    try:
        events = queued_events(context, asset, due.isoformat())
    except Exception:  # the events are hints; the lake is the backlog
        import logging

        logging.getLogger(__name__).warning("could not read the queued events of %s", asset, exc_info=True)
        return []

    def when(ts: str) -> datetime | None:
        try:
            return datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            return None

    return [e for e in events if (t := when(e.timestamp)) is not None and due < t <= started]


def skipped_night_lineage(uc: UseCase, ds: str, reason: str) -> tuple[list[dict], list[dict]]:
    """A night scoring skipped: its entities partition in (rows 0, the reason), nothing out."""
    from glideslope.lake import Lake
    from glideslope.lineage import zone_partition

    lake = Lake.for_usecase(uc.name)
    return [zone_partition(lake, f"curated/{uc.scoring.table}", ds, rows=0, skipped=reason)], []


def build_score_dag(uc: UseCase) -> Any:
    from airflow.sdk import DAG, Metadata

    from glideslope.airflow.dagkit import task

    name = uc.name
    predictions = predictions_asset(name)
    online = online_features_asset(name)
    with DAG(schedule=[online], **dag_kwargs(
        uc, "score", DOC,
        params={"ds": ds_param()},
        deadline=scoring_deadline(uc),
    )) as dag:

        @task(task_id="score_next_period", inlets=[online])
        def score_next_period(**context: Any) -> list[dict]:
            from airflow.sdk.exceptions import AirflowSkipException

            from glideslope.airflow.lineage import report
            from glideslope.airflow.notes import push_note
            from glideslope.backlog import plan_scoring
            from glideslope.lake import Lake
            from glideslope.lineage import scoring_lineage
            from glideslope.scoring import NoChampion, score_run

            req = run_request(name, context).with_events(merged_events(context, online))
            plan = plan_scoring(uc, req, Lake.for_usecase(name))
            # Recorded before anything is scored: a failure alert names the run's nights from it.
            context["ti"].xcom_push(key="plan", value=plan.summary())
            try:
                run = score_run(uc, req, plan=plan)
            except NoChampion as e:
                push_note(context, [f"skipped: {e}"])
                raise AirflowSkipException(str(e)) from e
            for ds, reason in run.skipped:
                report(context, skipped_night_lineage, uc, ds, reason)
            for s in run.scored:
                report(context, scoring_lineage, uc, s)
            push_note(context, run.lines)
            if not run.scored:
                raise AirflowSkipException("nothing scored: " + ("; ".join(run.lines) or "no night left to score"))
            return run.scored

        @task(task_id="push_predictions_online", outlets=[predictions])
        def push_predictions_online(scored: Any, **context: Any):  # type: ignore[no-untyped-def]
            from glideslope.airflow.lineage import report
            from glideslope.lineage import push_lineage
            from glideslope.scoring import push_predictions

            pushed = [push_predictions(uc, s["ds"]) for s in scored]
            report(context, push_lineage, uc, [s["ds"] for s in scored])
            yield Metadata(predictions, extra={
                "ds": scored[-1]["ds"], "days": [s["ds"] for s in scored],
                "catch_up": [s["ds"] for s in scored if s.get("role") == "catch_up"],
                "model_version": scored[-1]["model_version"], "rows": sum(s["rows"] for s in scored),
                "run_id": context.get("run_id")})
            return pushed

        push_predictions_online(score_next_period())
    return dag
