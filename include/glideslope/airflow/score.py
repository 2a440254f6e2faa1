"""Builds ``<uc>__score``: the champion scores the next period; predictions to the lake and online."""

from __future__ import annotations

from typing import Any

from glideslope.airflow.assets import online_features_asset
from glideslope.airflow.dagkit import dag_kwargs, ds_param
from glideslope.airflow.features import requested_days
from glideslope.config import UseCase

DOC = """\
# {uc.name} — nightly precomputed scores

Runs when `{uc.name}__features` has loaded a new day (Asset `{uc.name}.online_features`), or by
hand for any day with the `ds` Param.

1. `score_next_period` — loads `models:/{uc.name}@champion` once (by version, recorded on every
   row) and scores `curated/{uc.scoring.table}/ds=D` in chunks of {uc.scoring.chunk_rows} rows. Features
   come from the Feast offline store, point in time as of the moment day D's features were
   published, so a rerun of D gives identical rows even after later days were loaded.
   Each chunk passes a Great Expectations gate (row count equals the input, no nulls,
   probabilities in [0, 1], unique keys) before it is written to a staging file; the complete file
   then replaces `predictions/ds=D/data.parquet` in one step.
2. `push_predictions_online` — writes the scores to the Feast view `{uc.features.prediction_view}`,
   where an application reads a score by `{uc.entity_key}`.

**No champion yet**: `score_next_period` is *skipped* with the reason in its log; nothing is
written. **On failure**: the previous predictions of D (if any) stay in place.
"""


def build_score_dag(uc: UseCase) -> Any:
    from airflow.sdk import DAG, task

    name = uc.name
    with DAG(schedule=[online_features_asset(name)], **dag_kwargs(
        uc, "score", DOC,
        params={"ds": ds_param()},
    )) as dag:

        @task(task_id="score_next_period")
        def score_next_period(**context: Any) -> list[dict]:
            from airflow.sdk.exceptions import AirflowSkipException

            from glideslope.config import load_usecase
            from glideslope.features.materialize import latest_feature_day
            from glideslope.scoring import NoChampion, score_day

            spec = load_usecase(name)
            days = requested_days(context, lambda: latest_feature_day(spec))
            if not days:
                raise AirflowSkipException(f"no feature partitions in the lake for {name} yet: nothing to score")
            try:
                return [score_day(spec, ds) for ds in days]
            except NoChampion as e:
                raise AirflowSkipException(str(e)) from e

        @task(task_id="push_predictions_online")
        def push_predictions_online(scored: Any) -> list[dict]:
            from glideslope.config import load_usecase
            from glideslope.scoring import push_predictions

            spec = load_usecase(name)
            return [push_predictions(spec, s["ds"]) for s in scored]

        push_predictions_online(score_next_period())
    return dag
