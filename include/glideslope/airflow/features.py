"""Builds ``<uc>__features``: apply changed Feast definitions, load the new days into the online store."""

from __future__ import annotations

from typing import Any

from glideslope.airflow.assets import features_asset, online_features_asset
from glideslope.airflow.dagkit import dag_kwargs, ds_param
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

**Params**: `ds` — load this day (default: the day(s) named by the ETL's Asset event, else the
newest day in the lake); `force_apply` — apply even if nothing changed.

**On failure**: the online store keeps the previous day's values; nothing downstream runs. A
skipped `materialize_new_interval` means there was nothing newer to load.
"""


def triggering_days(context: Any) -> list[str]:
    """The ``ds`` values carried by the Asset events that triggered this run, sorted."""
    days: set[str] = set()
    events = context.get("triggering_asset_events") or {}
    for _asset, evs in events.items():
        for ev in evs:
            ds = (getattr(ev, "extra", None) or {}).get("ds")
            if ds:
                days.add(str(ds))
    return sorted(days)


def requested_days(context: Any, fallback: Any) -> list[str]:
    """Param ``ds`` > days of the triggering Asset events > ``fallback()`` (e.g. newest day in the lake)."""
    ds = (context.get("params") or {}).get("ds")
    if ds:
        return [str(ds)]
    days = triggering_days(context)
    if days:
        return days
    latest = fallback()
    return [latest] if latest else []


def build_features_dag(uc: UseCase) -> Any:
    from airflow.sdk import DAG, Metadata, Param, task

    name = uc.name
    online = online_features_asset(name)
    with DAG(schedule=[features_asset(name)], **dag_kwargs(
        uc, "features", DOC,
        params={"ds": ds_param(),
                "force_apply": Param(False, type="boolean", description="Run feast apply even if unchanged.")},
    )) as dag:

        @task(task_id="apply_feature_definitions")
        def apply_feature_definitions(**context: Any) -> dict:
            from glideslope.config import load_usecase
            from glideslope.features.repo import apply_definitions

            return apply_definitions(load_usecase(name), force=bool(context["params"].get("force_apply")))

        @task(task_id="materialize_new_interval", outlets=[online])
        def materialize_new_interval(**context: Any):  # type: ignore[no-untyped-def]
            from airflow.sdk.exceptions import AirflowSkipException

            from glideslope.config import load_usecase
            from glideslope.features.materialize import latest_feature_day, materialize_days

            spec = load_usecase(name)
            days = requested_days(context, lambda: latest_feature_day(spec))
            if not days:
                raise AirflowSkipException(f"no feature partitions in the lake for {name} yet: nothing to load")
            result = materialize_days(spec, days)
            if not result["loaded"]:
                raise AirflowSkipException(
                    f"days {days} are not newer than the online store's watermark {result['watermark']}: "
                    "the online store already holds newer values"
                )
            yield Metadata(online, extra={"ds": result["watermark"], "days": result["days"]})
            return result

        apply_feature_definitions() >> materialize_new_interval()
    return dag
