"""Builds ``<uc>__etl``: land day D -> gate raw -> Spark transform -> gate outputs -> publish."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pendulum

from glideslope.airflow.assets import features_asset
from glideslope.airflow.dagkit import dag_kwargs, ds_param
from glideslope.airflow.request import run_request
from glideslope.config import PROJECT_ROOT, UseCase, settings

DOC = """\
# {uc.name} — nightly ETL, and range runs

{uc.description}

**What it does, for logical day D** (nightly at `{uc.schedule.etl}`; the feed covers
{uc.start_date} … {uc.end_date}), **or for every day of a range in one run** (trigger with the
Params `start` and `end`: a year's history is one run and one set-wise Spark pass; one day with
the `ds` Param):

1. `land_raw_day` — the feed's files of each day land in the append-only raw zone
   (`raw/<source>/ds=D/`); a day that already landed is left untouched.
2. `validate_raw_day` — Great Expectations checks schema, types, nulls, ranges and keys
   (suites in `include/usecases/{uc.name}/quality/`) on the one reading of each file that the
   transform will read.
3. `transform_with_spark` — the use case's Spark transform builds the label table and the
   feature tables of every gated day at once (trailing windows use only days ≤ D) into a
   staging area, one file per day: on a warm Spark Connect server when
   `GLIDESLOPE_SPARK_CONNECT_CONN_ID` names one (`make up` starts one on loopback), else
   `spark-submit spark_jobs/transform.py` on the Spark connection (`spark_default`).
4. `validate_and_publish` — each day's outputs are checked, then published atomically to
   `curated/<table>/ds=D/` and `features/<table>/ds=D/`, and the Asset `{uc.name}.features` is
   updated once, listing every published day, which schedules `{uc.name}__features` (and, after
   it, scoring and monitoring catch up on those days).
5. `check_every_day_published` — a range in which some day could not be published ends red here,
   naming each such day and why; the other days were published and went downstream.

**Inputs**: the feed (module `{uc.feed}.py`). **Outputs**: one Parquet file per table and day.

**On failure**: a file that fails a gate is moved to `quarantine/` with `_reason.json` (nothing is
deleted), the day fails with the file, column, rule and bad-row count, and a `quarantine` alert
goes out; in a range the other days go on. A night whose delivery fails stops there and nothing
downstream runs; the previous good partitions stay readable. A rerun of D gives byte-identical
outputs, whether D is rebuilt alone or inside a range.
"""


# The days the raw gate passed, for spark-submit's arguments (a comma list).
GATED_DAYS_TEMPLATE = "{{ ti.xcom_pull(task_ids='validate_raw_day')['days'] | join(',') }}"


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


def _day_by_day(uc: UseCase, days: list[str], context: Any, done_event: Any,
                step: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """``step(ds)`` for each of ``days``: (day -> its result, day -> why it failed).

    A day whose data fails a gate is reported to lineage as quarantined and alerted; a day whose
    delivery is missing or changed is named; either way the other days go on. A day that passes
    is reported with ``done_event`` (a glideslope.lineage event builder).
    """
    from glideslope import lineage
    from glideslope.airflow.lineage import report
    from glideslope.etl.pipeline import DAY_ERRORS, day_failure
    from glideslope.quality import DataQualityError

    done: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for i, ds in enumerate(days, 1):
        try:
            done[ds] = result = step(ds)
        except DataQualityError as e:
            report(context, lineage.quarantined, uc, ds, e.reports, e.quarantined)
            _quarantine_alert(uc, ds, e, context)
            failed[ds] = day_failure(e)
            continue
        except DAY_ERRORS as e:
            failed[ds] = day_failure(e)
            continue
        report(context, done_event, uc, ds, result)
        if len(days) > 1 and (i % 20 == 0 or i == len(days)):
            print(f"{i} of {len(days)} days done ({len(failed)} failed)", flush=True)
    return done, failed


def _spark_conf() -> dict[str, str]:
    conf = {"spark.pyspark.python": sys.executable}
    if settings().profile == "embedded":  # one machine: keep the driver on loopback
        conf |= {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
    from glideslope.runtime import spark_s3a_conf

    return conf | spark_s3a_conf()  # a lake on s3:// (empty for a local lake)


def build_etl_dag(uc: UseCase) -> Any:
    from airflow.sdk import DAG, Metadata
    from airflow.sdk.exceptions import AirflowFailException

    from glideslope.airflow.dagkit import day_param, task

    name = uc.name
    end = uc.end_date
    with DAG(schedule=uc.schedule.etl, **dag_kwargs(
        uc, "etl", DOC,
        # Backfills are explicit (a range run, or `airflow backfill create`), so unpausing the DAG
        # does not replay the whole feed at once.
        catchup=False,
        end_date=pendulum.datetime(end.year, end.month, end.day, tz="UTC") if end else None,
        params={"ds": ds_param(),
                "start": day_param("First day of a range run (with end): every day start … end in one run."),
                "end": day_param("Last day of a range run (with start).")},
    )) as dag:

        @task(task_id="land_raw_day")
        def land_raw_day(**context: Any) -> dict:
            from glideslope.data.landing import land_day
            from glideslope.etl.pipeline import DAY_ERRORS, day_failure
            from glideslope.lake import Lake

            days = list(run_request(name, context).require_days())
            lake = Lake.for_usecase(name)
            landed: dict[str, Any] = {}
            failed: dict[str, str] = {}
            for ds in days:
                try:
                    landed[ds] = land_day(uc, ds, lake)
                except DAY_ERRORS as e:
                    if len(days) == 1:
                        raise  # a night: its own error, as it is
                    failed[ds] = day_failure(e)
            if not landed:
                raise AirflowFailException(f"no day of {days[0]} … {days[-1]} could land:\n"
                                           + "\n".join(f"  {d}: {why}" for d, why in failed.items()))
            return {"days": sorted(landed), "failed": failed,
                    "files": sum(len(v) for v in landed.values())}

        @task(task_id="validate_raw_day")
        def validate_raw_day(**context: Any) -> dict:
            from glideslope import lineage
            from glideslope.etl.pipeline import gate_raw_days, validate_raw
            from glideslope.lake import Lake

            landed = context["ti"].xcom_pull(task_ids="land_raw_day")
            lake = Lake.for_usecase(name)
            gated = gate_raw_days(uc, landed["days"], lake)  # a range: a few GX runs for all its days
            passed, failed = _day_by_day(uc, landed["days"], context, lineage.raw_validation,
                                         lambda ds: validate_raw(uc, ds, lake, gated))
            failed = {**landed["failed"], **failed}
            good = sorted(passed)
            if not good:  # bad data: retrying cannot help
                raise AirflowFailException("\n".join(failed.values()) if len(failed) == 1 else
                                           "no day passed the raw gate:\n" + "\n".join(
                                               f"  {d}: {why}" for d, why in sorted(failed.items())))
            return {"days": good, "failed": failed}

        connect_conn_id = settings().spark_connect_conn_id
        if connect_conn_id:
            # A warm Spark Connect server: the transform's queries run there, so a night pays
            # no JVM start (the provider's spark_connect connection says where it listens).
            @task(task_id="transform_with_spark")
            def transform_with_spark(**context: Any) -> dict:
                from airflow.providers.apache.spark.hooks.spark_connect import SparkConnectHook

                from glideslope.etl.spark_job import run

                days = context["ti"].xcom_pull(task_ids="validate_raw_day")["days"]
                url = SparkConnectHook(conn_id=connect_conn_id).get_connection_url()
                return run(name, days, remote=url)

            transform: Any = transform_with_spark()
        else:
            # Imported only here: the provider's hook imports the Kubernetes clients at module level
            # (about 1 s per parse on 2 cores), which a DAG file on Spark Connect never needs.
            from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

            bindir = Path(sys.executable).parent
            transform = SparkSubmitOperator(  # noqa: AIR001 - one name for either form of the task
                task_id="transform_with_spark",
                application=str(PROJECT_ROOT / "spark_jobs" / "transform.py"),
                application_args=["--usecase", name, "--days", GATED_DAYS_TEMPLATE],
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
            from glideslope.etl.pipeline import gate_outputs
            from glideslope.etl.pipeline import validate_and_publish as publish
            from glideslope.lake import Lake

            req = run_request(name, context)
            days = context["ti"].xcom_pull(task_ids="validate_raw_day")["days"]
            lake = Lake.for_usecase(name)
            gated = gate_outputs(uc, days, lake)  # a range: a few GX runs per output for all its days
            published, failed = _day_by_day(uc, days, context, lineage.publication,
                                            lambda ds: publish(uc, ds, lake, gated.get(ds)))
            if not published:
                raise AirflowFailException("\n".join(failed.values()))
            rows: dict[str, Any] = {}
            for result in published.values():
                for out, v in result["outputs"].items():
                    rows[out] = rows.get(out, 0) + v["rows"]
            # One event for the whole run: downstream stages read every day it published from
            # "days" (a night's event names its one day in "ds" as well). ADR 0016.
            extra: dict[str, Any] = {"ds": max(published), "days": sorted(published), "outputs": rows,
                                     "trigger": req.trigger, "run_id": req.run_id}
            yield Metadata(features, extra=extra)
            return {"days": sorted(published), "failed": failed,
                    **({"outputs": published[days[0]]["outputs"]} if len(days) == 1 else {})}

        @task(task_id="check_every_day_published")
        def check_every_day_published(**context: Any) -> dict:
            """A range run that published some days but not all ends red, naming each day and why;
            the days it did publish have gone downstream already."""
            ti = context["ti"]
            failed = {**ti.xcom_pull(task_ids="validate_raw_day")["failed"],
                      **ti.xcom_pull(task_ids="validate_and_publish")["failed"]}
            published = ti.xcom_pull(task_ids="validate_and_publish")["days"]
            if failed:
                total = len(published) + len(failed)
                raise AirflowFailException(
                    f"published {len(published)} of {total} days; could not publish {len(failed)}:\n"
                    + "\n".join(f"  {d}: {why}" for d, why in sorted(failed.items())))
            return {"published": len(published)}

        land_raw_day() >> validate_raw_day() >> transform >> validate_and_publish() >> check_every_day_published()
    return dag
