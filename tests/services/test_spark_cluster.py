"""The ETL's Spark step on a standalone cluster gives the same partition as ``local[*]``.

The cluster output is the one the Celery-run ETL wrote (SparkSubmitOperator with
``spark_default`` = ``spark://127.0.0.1:<port>``); the same day is then transformed again with
``local[*]`` from the same raw files into a second lake, and every table is compared.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from glideslope.config import load_usecase
from glideslope.lake import Lake

pytestmark = pytest.mark.services


def test_cluster_partition_equals_local(etl_run, spark_cluster, production_lake, tmp_path, monkeypatch, timing):
    from glideslope.etl.pipeline import transform

    assert etl_run["state"] == "success", "the cluster run of the ETL failed; see test_airflow_celery"
    uc = load_usecase("flight_delay")
    ds = etl_run["ds"]

    apps = [a for a in spark_cluster.applications() if a["name"] == f"{uc.name}-etl"]
    assert apps and apps[0]["state"] == "FINISHED", f"no finished {uc.name}-etl app on {spark_cluster.master_url}"

    # The same raw inputs and the gate's readings of them, with the manifest that proves them
    # (copied, so only the Spark step differs), transformed with local[*].
    local_root = tmp_path / "lake-local"
    for zone in ("raw", "reference", "_manifest"):
        shutil.copytree(production_lake / uc.name / zone, local_root / uc.name / zone)
    # spark_jobs/transform.py reads the lake root from the environment, like every stage.
    monkeypatch.setenv("GLIDESLOPE_LAKE_ROOT", str(local_root))
    t0 = time.monotonic()
    transform(uc, [ds], master="local[*]")
    timing("spark: same day with local[*] (spark-submit)", t0)

    cluster_lake, local_lake = Lake(str(production_lake), uc.name), Lake(str(local_root), uc.name)
    for output in uc.output_suites:
        on_cluster = pd.read_parquet(cluster_lake.output(ds, output))
        local = pd.read_parquet(local_lake.staging(ds, output))
        assert len(on_cluster) > 0, output
        pd.testing.assert_frame_equal(on_cluster, local, obj=output)
        # The job re-encodes its output deterministically, so "same partition" holds byte for byte.
        assert (Path(cluster_lake.output(ds, output)).read_bytes()
                == Path(local_lake.staging(ds, output)).read_bytes()), output
