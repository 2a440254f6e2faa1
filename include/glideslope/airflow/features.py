"""Builds ``<uc>__features``: apply changed Feast definitions, load the new days into the online store."""

from __future__ import annotations

from typing import Any

from glideslope.airflow.assets import features_asset, online_features_asset
from glideslope.airflow.dagkit import dag_kwargs, ds_param
from glideslope.airflow.request import run_request
from glideslope.config import UseCase

DOC = """\
# {uc.name} — features to the online store

Runs whenever `{uc.name}__etl` publishes a day (Asset `{uc.name}.features`), or by hand.

1. `apply_feature_definitions` — `feast apply` of `include/usecases/{uc.name}/{uc.features.repo}/`,
   only when the repository (or the locations it resolves to) changed since the last apply: the
   hash of the files is compared with the one recorded at the last apply.
2. `materialize_new_interval` — loads the feature rows of the newly published day(s) into the
   online store: exactly their event-timestamp interval, never a day older than the one already
   loaded (a backfilled old day would make the online store go back in time, so it is skipped).
   On success it updates the Asset `{uc.name}.online_features`, which schedules `{uc.name}__score`.

**Params**: `ds` — load this day (default: every published day after the online store's
watermark, up to the newest — Asset events are not trusted to list them all, since queued
events can be merged); `force_apply` — apply even if nothing changed.

**Quiet nights**: a night whose feature partitions have 0 rows (an empty delivery) loads nothing —
the task log, the run's note and the lineage say so — and the online store keeps the values of
the last night with events. The Asset event still goes out (extra `quiet`), so
`{uc.name}__score` decides for that night: it skips with its reason when there is nothing to score.

**On failure**: the online store keeps the previous day's values; nothing downstream runs. A
skipped `materialize_new_interval` means there was nothing newer to load.
"""


def build_features_dag(uc: UseCase) -> Any:
    from airflow.sdk import DAG, Metadata, Param

    from glideslope.airflow.dagkit import task

    name = uc.name
    online = online_features_asset(name)
    with DAG(schedule=[features_asset(name)], **dag_kwargs(
        uc, "features", DOC,
        params={"ds": ds_param(),
                "force_apply": Param(False, type="boolean", description="Run feast apply even if unchanged.")},
    )) as dag:

        @task(task_id="apply_feature_definitions")
        def apply_feature_definitions(**context: Any) -> dict:
            from glideslope.features.repo import apply_definitions

            return apply_definitions(uc, force=bool(context["params"].get("force_apply")))

        @task(task_id="materialize_new_interval", outlets=[online])
        def materialize_new_interval(**context: Any):  # type: ignore[no-untyped-def]
            from airflow.sdk.exceptions import AirflowSkipException

            from glideslope.backlog import features_to_load
            from glideslope.features.materialize import materialize_days
            from glideslope.lake import Lake

            req = run_request(name, context)
            days = features_to_load(uc, req, Lake.for_usecase(name))
            if not days:
                raise AirflowSkipException(f"no feature partitions in the lake for {name} yet: nothing to load")
            result = materialize_days(uc, days)
            from glideslope.airflow.notes import push_note

            if not result["loaded"] and not result.get("quiet"):
                reason = (f"days {days} are not newer than the online store's watermark {result['watermark']}: "
                          "the online store already holds newer values")
                push_note(context, [f"skipped: {reason}"])
                raise AirflowSkipException(reason)
            from glideslope.airflow.lineage import report
            from glideslope.lineage import materialization

            report(context, materialization, uc, result)
            # A quiet night loads nothing but is handed on all the same: scoring decides for the
            # night (its entities may exist although nothing happened on it) and says why it skips.
            push_note(context, [result["reason"]] if result.get("quiet") else
                      [f"loaded {', '.join(result['days'])} into the online store"])
            yield Metadata(online, extra={"ds": result["watermark"], "days": result["days"],
                                          "quiet": result.get("quiet", []),
                                          "trigger": req.trigger, "run_id": req.run_id})
            return result

        apply_feature_definitions() >> materialize_new_interval()
    return dag
