"""Distributed Airflow runs the ETL: PostgreSQL metadata, CeleryExecutor, Redis broker.

A run of ``flight_delay__etl`` for a real day is triggered through the REST API, the scheduler
queues its tasks, a Celery worker executes every one, and the Spark step is submitted to the
standalone cluster.
"""

from __future__ import annotations

import pandas as pd
import pytest

from glideslope.config import load_usecase
from glideslope.lake import Lake

pytestmark = pytest.mark.services

ETL_TASKS = {"land_raw_day", "validate_raw_day", "transform_with_spark", "validate_and_publish",
             "check_every_day_published"}


def test_etl_day_succeeds_on_celery(etl_run, production_lake):
    uc = load_usecase("flight_delay")
    states = {t["task_id"]: t["state"] for t in etl_run["task_instances"]}
    assert etl_run["state"] == "success", f"{states}\n" + "\n".join(etl_run["failed_task_logs"].values())
    assert states == dict.fromkeys(ETL_TASKS, "success")
    ds = etl_run["ds"]
    assert etl_run["logical_date"][:10] == ds

    # Every task was executed by the Celery worker (the only executor configured).
    for task_id in ETL_TASKS:
        assert f"task_id='{task_id}'" in etl_run["worker_log"], f"the Celery worker never ran {task_id}"

    lake = Lake(str(production_lake), uc.name)
    for output in uc.output_suites:
        df = pd.read_parquet(lake.output(ds, output))
        assert len(df) > 0, f"{output} for {ds} is empty"
    flights = pd.read_parquet(lake.output(ds, "curated/flights"))
    assert set(flights["ds"]) == {ds}

    # The run updated the features Asset, which is what schedules flight_delay__features.
    extras = [e["extra"] for e in etl_run["asset_events"] if e["source_run_id"] == etl_run["dag_run_id"]]
    assert extras and extras[0]["ds"] == ds
