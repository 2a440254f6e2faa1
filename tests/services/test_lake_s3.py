"""The lake on ``s3://`` (moto's S3 server): every Python-side read and write of the stages.

Landing (write-once), the raw gate and its quarantine move, the ETL's publish of staged outputs,
predictions, reports and small state files all go through :class:`glideslope.lake.Lake` with
``s3_endpoint_url``, as they do against MinIO in docker-compose. (Spark's own ``s3a://`` access
needs the hadoop-aws jars the image adds; here Spark's output is staged into S3 from the local
cluster run.)
"""

from __future__ import annotations

import io

import pandas as pd
import pytest

from glideslope.config import load_usecase
from glideslope.lake import Lake

pytestmark = pytest.mark.services


@pytest.fixture
def s3_lake(s3) -> Lake:
    return Lake(f"s3://{s3.bucket}/lake", "flight_delay", s3_endpoint_url=s3.endpoint_url)


def test_landing_and_raw_gate_on_s3(s3, s3_lake, timing):
    import time

    from glideslope.data.landing import land_day
    from glideslope.etl.pipeline import validate_raw
    from glideslope.quality import DataQualityError
    from glideslope.usecase_modules import load_module

    t0 = time.monotonic()
    uc, lake = load_usecase("flight_delay"), s3_lake
    first = land_day(uc, "2013-02-01", lake)
    assert {r["status"] for r in first} == {"landed"}
    assert "lake/flight_delay/raw/flights/ds=2013-02-01/flights.csv" in s3.keys("lake/flight_delay/raw/")
    again = land_day(uc, "2013-02-01", lake)  # a rerun of the night leaves the raw zone as it was
    assert {r["status"] for r in again} == {"already-landed"}
    assert validate_raw(uc, "2013-02-01", lake)["ds"] == "2013-02-01"

    # A delivery that breaks a rule is moved to quarantine on S3, with the reason beside it.
    bad_day = "2013-02-02"
    feed = load_module(uc, uc.feed)
    for name, data in feed.deliveries(bad_day).items():
        if name == "flights":
            df = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
            df.loc[0, "origin"] = "BOS"
            data = df.to_csv(index=False).encode()
        lake.publish_bytes(lake.raw(name, bad_day), data)
    with pytest.raises(DataQualityError, match="origin"):
        validate_raw(uc, bad_day, lake)
    (qdir,) = lake.quarantined("flights", bad_day)
    assert not lake.exists(lake.raw("flights", bad_day))
    assert lake.exists(f"{qdir}/flights.csv")
    reason = lake.read_json(f"{qdir}/_reason.json")
    assert reason["moved_from"] == lake.raw("flights", bad_day)
    assert lake.exists(lake.raw("weather", bad_day))  # only the failing file moves
    timing("lake on S3: land, gate, quarantine", t0)


def test_publish_outputs_predictions_reports_on_s3(etl_run, production_lake, s3, s3_lake):
    from glideslope.etl.pipeline import validate_and_publish

    uc, lake = load_usecase("flight_delay"), s3_lake
    ds = etl_run["ds"]
    local = Lake(str(production_lake), uc.name)
    # What spark_jobs/transform.py writes through s3a in the image: the day's outputs, staged.
    for output in uc.output_suites:
        lake.fs.put_file(local.output(ds, output), lake.staging(ds, output))
    published = validate_and_publish(uc, ds, lake)
    for output in uc.output_suites:
        pd.testing.assert_frame_equal(lake.read_parquet(lake.output(ds, output)),
                                      pd.read_parquet(local.output(ds, output)), obj=output)
        assert published["outputs"][output]["path"].startswith("s3://")
    assert not [k for k in s3.keys(f"lake/{uc.name}/_staging/ds={ds}/") if k.endswith(".parquet")]
    for table in uc.features.tables:
        assert lake.partitions(lake.features(table)) == [ds]

    # Predictions: atomic publish of a scored batch, read back with its UTC timestamps intact.
    schedule = lake.read_parquet(lake.output(ds, "curated/schedule"))
    scores = schedule[["flight_id", "event_timestamp"]].assign(score=0.25, model_version="1")
    lake.publish_parquet(scores, lake.predictions(ds))
    back = lake.read_parquet(lake.predictions(ds))
    pd.testing.assert_frame_equal(back, scores)
    assert str(back["event_timestamp"].dt.tz) == "UTC"
    assert lake.partitions(lake.predictions()) == [ds]

    # Reports and state: an HTML file and JSON numbers next to it.
    report = lake.report_dir("drift", ds)
    lake.publish_bytes(f"{report}/report.html", b"<html>drift</html>")
    lake.write_json(f"{report}/summary.json", {"drifted_share": 0.25, "ds": ds})
    with lake.fs.open(f"{report}/report.html", "rb") as f:
        assert f.read() == b"<html>drift</html>"
    assert lake.read_json(f"{report}/summary.json") == {"drifted_share": 0.25, "ds": ds}
    assert lake.read_json(lake.state("never_written"), default={}) == {}


def test_staging_objects_of_dead_writers_are_swept_on_s3(s3, s3_lake):
    """A killed writer's staging object is removed by the next publish of its folder; a live one stays."""
    import os
    import subprocess
    import sys

    from glideslope import lake as lake_module

    lake = s3_lake
    final = lake.predictions("2013-02-03")
    folder = final.rsplit("/", 1)[0]
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead = f"{folder}/.staging-{lake_module._HOST}-{int(gone.stdout)}-{'d' * 32}-data.parquet"
    live = f"{folder}/.staging-{lake_module._HOST}-{os.getppid()}-{'e' * 32}-data.parquet"
    for key in (dead, live):
        with lake.fs.open(key, "wb") as f:
            f.write(b"half")
    lake.publish_bytes(final, b"whole")
    keys = s3.keys(final.split(f"{s3.bucket}/", 1)[1].rsplit("/", 1)[0] + "/")
    names = sorted(k.rsplit("/", 1)[1] for k in keys)
    assert names == sorted(["data.parquet", live.rsplit("/", 1)[1]])
    with lake.fs.open(final, "rb") as f:
        assert f.read() == b"whole"
