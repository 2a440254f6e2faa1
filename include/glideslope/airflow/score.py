"""Builds ``<uc>__score``: the champion scores the next period; predictions to the lake and online."""

from __future__ import annotations

from typing import Any

from glideslope.airflow.assets import online_features_asset, predictions_asset
from glideslope.airflow.dagkit import dag_kwargs, ds_param
from glideslope.airflow.request import run_request
from glideslope.config import UseCase

DOC = """\
# {uc.name} — nightly precomputed scores

Runs when `{uc.name}__features` has loaded a new day (Asset `{uc.name}.online_features`), or by
hand for any day with the `ds` Param. Without `ds` it scores every night after the newest
predicted night that has its entities and features (a night whose event was merged into
another, or a gap, is caught up); with no predictions yet, only the newest night.

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

**No champion yet**: `score_next_period` is *skipped* with the reason in its log; nothing is
written. **On failure**: the previous predictions of D (if any) stay in place.
"""


def build_score_dag(uc: UseCase) -> Any:
    from airflow.sdk import DAG, Metadata

    from glideslope.airflow.dagkit import task

    name = uc.name
    predictions = predictions_asset(name)
    with DAG(schedule=[online_features_asset(name)], **dag_kwargs(
        uc, "score", DOC,
        params={"ds": ds_param()},
    )) as dag:

        @task(task_id="score_next_period")
        def score_next_period(**context: Any) -> list[dict]:
            from airflow.sdk.exceptions import AirflowSkipException

            from glideslope.backlog import nights_to_score
            from glideslope.lake import Lake
            from glideslope.scoring import NoChampion, score_day

            req = run_request(name, context)
            days = nights_to_score(uc, req, Lake.for_usecase(name))
            if not days:
                raise AirflowSkipException(f"no night of {name} with features and entities left to score")
            from glideslope.airflow.lineage import report
            from glideslope.lineage import scoring_lineage

            try:
                scored = [score_day(uc, ds) for ds in days]
            except NoChampion as e:
                raise AirflowSkipException(str(e)) from e
            for s in scored:
                report(context, scoring_lineage, uc, s)
            return scored

        @task(task_id="push_predictions_online", outlets=[predictions])
        def push_predictions_online(scored: Any, **context: Any):  # type: ignore[no-untyped-def]
            from glideslope.airflow.lineage import report
            from glideslope.lineage import push_lineage
            from glideslope.scoring import push_predictions

            pushed = [push_predictions(uc, s["ds"]) for s in scored]
            report(context, push_lineage, uc, [s["ds"] for s in scored])
            yield Metadata(predictions, extra={
                "ds": scored[-1]["ds"], "days": [s["ds"] for s in scored],
                "model_version": scored[-1]["model_version"], "rows": sum(s["rows"] for s in scored),
                "run_id": context.get("run_id")})
            return pushed

        push_predictions_online(score_next_period())
    return dag
