"""Builds ``<uc>__etl``: land day D -> gate raw -> Spark transform -> gate outputs -> publish."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pendulum

from glideslope.airflow.assets import features_asset
from glideslope.airflow.dagkit import dag_kwargs, ds_param
from glideslope.airflow.request import DS_TEMPLATE, run_request
from glideslope.config import PROJECT_ROOT, UseCase, settings

DOC = """\
# {uc.name} — nightly ETL

{uc.description}

**What it does, for logical day D** (nightly at `{uc.schedule.etl}`; the feed covers
{uc.start_date} … {uc.end_date}; backfill with `airflow backfill create --dag-id {uc.name}__etl
--from-date … --to-date …`, or trigger one day with the `ds` Param):

1. `land_raw_day` — the feed's files for D land in the append-only raw zone
   (`raw/<source>/ds=D/`); a day that already landed is left untouched.
2. `validate_raw_day` — Great Expectations checks schema, types, nulls, ranges and keys
   (suites in `include/usecases/{uc.name}/quality/`).
3. `transform_with_spark` — the use case's Spark transform builds the label table and the
   feature tables (trailing windows use only days ≤ D) into a staging area: on a warm Spark
   Connect server when `GLIDESLOPE_SPARK_CONNECT_CONN_ID` names one (`make up` starts one on
   loopback), else `spark-submit spark_jobs/transform.py` on the Spark connection (`spark_default`).
4. `validate_and_publish` — the outputs are checked, then published atomically to
   `curated/<table>/ds=D/` and `features/<table>/ds=D/`, and the Asset `{uc.name}.features` is
   updated, which schedules `{uc.name}__features`.

**Inputs**: the feed (module `{uc.feed}.py`). **Outputs**: one Parquet file per table and day.

**On failure**: a file that fails a gate is moved to `quarantine/` with `_reason.json` (nothing is
deleted), the task fails with the file, column, rule and bad-row count, a `quarantine` alert goes
out, and nothing downstream runs; the previous good partitions stay readable. A rerun of D gives
byte-identical outputs.
"""


def _quarantine_alert(uc: UseCase, ds: str, err: Exception, context: Any) -> None:
    import logging

    from glideslope.airflow.notifications import send_alert
    from glideslope.alerts import Alert

    quarantined = getattr(err, "quarantined", [])
    try:
        send_alert(uc, Alert(
            usecase=uc.name, ds=ds, kind="quarantine", severity="warning",
            title=f"{uc.name} {ds}: data quarantined, ETL stopped",
            body=str(err), facts={"quarantined": quarantined},
        ), context)
    except Exception:  # a broken alert channel must not hide the data-quality failure itself
        logging.getLogger(__name__).exception("could not send the quarantine alert for %s %s", uc.name, ds)


def _spark_conf() -> dict[str, str]:
    conf = {"spark.pyspark.python": sys.executable}
    if settings().profile == "embedded":  # one machine: keep the driver on loopback
        conf |= {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
    from glideslope.runtime import spark_s3a_conf

    return conf | spark_s3a_conf()  # a lake on s3:// (empty for a local lake)


def build_etl_dag(uc: UseCase) -> Any:
    from airflow.sdk import DAG, Metadata
    from airflow.sdk.exceptions import AirflowFailException

    from glideslope.airflow.dagkit import task

    name = uc.name
    end = uc.end_date
    with DAG(schedule=uc.schedule.etl, **dag_kwargs(
        uc, "etl", DOC,
        # Backfills are explicit (`airflow backfill create`), so unpausing the DAG does not
        # replay the whole feed at once.
        catchup=False,
        end_date=pendulum.datetime(end.year, end.month, end.day, tz="UTC") if end else None,
        params={"ds": ds_param()},
    )) as dag:

        @task(task_id="land_raw_day")
        def land_raw_day(**context: Any) -> list[dict]:
            from glideslope.data.landing import land_day

            return land_day(uc, run_request(name, context).require_ds())

        @task(task_id="validate_raw_day")
        def validate_raw_day(**context: Any) -> dict:
            from glideslope import lineage
            from glideslope.airflow.lineage import report
            from glideslope.etl.pipeline import validate_raw
            from glideslope.quality import DataQualityError

            spec, ds = uc, run_request(name, context).require_ds()
            try:
                result = validate_raw(spec, ds)
            except DataQualityError as e:
                report(context, lineage.quarantined, spec, ds, e.reports, e.quarantined)
                _quarantine_alert(spec, ds, e, context)
                raise AirflowFailException(str(e)) from e  # bad data: retrying cannot help
            report(context, lineage.raw_validation, spec, ds, result)
            return result

        connect_conn_id = settings().spark_connect_conn_id
        if connect_conn_id:
            # A warm Spark Connect server: the transform's queries run there, so a night pays
            # no JVM start (the provider's spark_connect connection says where it listens).
            @task(task_id="transform_with_spark")
            def transform_with_spark(**context: Any) -> dict:
                from airflow.providers.apache.spark.hooks.spark_connect import SparkConnectHook

                from glideslope.etl.spark_job import run

                ds = run_request(name, context).require_ds()
                url = SparkConnectHook(conn_id=connect_conn_id).get_connection_url()
                return run(name, [ds], remote=url)

            transform: Any = transform_with_spark()
        else:
            # Imported only here: the provider's hook imports the Kubernetes clients at module level
            # (about 1 s per parse on 2 cores), which a DAG file on Spark Connect never needs.
            from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

            bindir = Path(sys.executable).parent
            transform = SparkSubmitOperator(  # noqa: AIR001 - one name for either form of the task
                task_id="transform_with_spark",
                application=str(PROJECT_ROOT / "spark_jobs" / "transform.py"),
                application_args=["--usecase", name, "--ds", DS_TEMPLATE],
                conn_id=settings().spark_conn_id,
                name=f"{name}-etl",
                spark_binary=str(bindir / "spark-submit"),
                driver_memory="1g",
                conf=_spark_conf(),
                env_vars={"PYSPARK_PYTHON": sys.executable},
                verbose=False,
            )

        features = features_asset(name)

        @task(task_id="validate_and_publish", outlets=[features])
        def validate_and_publish(**context: Any):  # type: ignore[no-untyped-def]
            from glideslope import lineage
            from glideslope.airflow.lineage import report
            from glideslope.etl.pipeline import validate_and_publish as publish
            from glideslope.quality import DataQualityError

            req = run_request(name, context)
            spec, ds = uc, req.require_ds()
            try:
                result = publish(spec, ds)
            except DataQualityError as e:
                report(context, lineage.quarantined, spec, ds, e.reports, e.quarantined)
                _quarantine_alert(spec, ds, e, context)
                raise AirflowFailException(str(e)) from e
            report(context, lineage.publication, spec, ds, result)
            yield Metadata(features, extra={"ds": ds, "outputs": {k: v["rows"] for k, v in result["outputs"].items()},
                                            "trigger": req.trigger, "run_id": req.run_id})
            return result

        land_raw_day() >> validate_raw_day() >> transform >> validate_and_publish()
    return dag
