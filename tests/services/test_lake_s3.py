"""The lake on ``s3://`` (moto's S3 server): every Python-side read and write of the stages.

Landing (write-once), the raw gate and its quarantine move, the ETL's publish of staged outputs,
reports and small state files all go through :class:`glideslope.lake.Lake` with
``s3_endpoint_url``, as they do against MinIO in docker-compose. Feast's DuckDB offline store reads
the feature partitions on ``s3://`` (httpfs from the ``duckdb-extension-httpfs`` wheel): the
point-in-time training set and the nightly ``score_day`` run on the S3 lake and must give what they
give on a local lake. (Spark's own ``s3a://`` access needs the hadoop-aws jars the image adds; here
Spark's output is staged into S3 from a local run and published by the ETL's own gate.)
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pandas as pd
import pytest

from glideslope.config import load_usecase, settings
from glideslope.lake import Lake

pytestmark = pytest.mark.services

# Three real days: a 3-day training set with a 1-day holdout, and the last day scored.
DAYS = ["2013-03-04", "2013-03-05", "2013-03-06"]


@pytest.fixture(scope="module")
def two_lakes(s3, tmp_path_factory, timing) -> dict[str, Lake]:
    """The same ETL days published to a local lake and to a lake on S3, each by our own code.

    Landing, the raw gate and Spark (local, one spark-submit) stage the outputs in the local lake;
    on S3 the staged files are put into ``_staging``, as the image's Spark leaves them through s3a.
    Both lakes then publish them through the ETL's output gate, ``validate_and_publish``.
    """
    import time

    from glideslope.data.landing import land_day
    from glideslope.etl.pipeline import transform, validate_and_publish, validate_raw

    t0 = time.monotonic()
    uc = load_usecase("flight_delay")
    local = Lake(str(tmp_path_factory.mktemp("lake-local")), uc.name)
    remote = Lake(f"s3://{s3.bucket}/lake-{uuid.uuid4().hex[:8]}", uc.name, s3_endpoint_url=s3.endpoint_url)
    for ds in DAYS:  # the raw gate on S3 is tested above; here the raw zone is Spark's input only
        land_day(uc, ds, local)
        validate_raw(uc, ds, local)
    timing(f"lake on S3: {len(DAYS)} days landed and gated", t0)
    t1 = time.monotonic()
    transform(uc, DAYS, "local[2]", local)
    timing(f"lake on S3: spark-submit local[2] of {len(DAYS)} days", t1)
    t2 = time.monotonic()
    for ds in DAYS:
        for output in uc.output_suites:
            remote.fs.put_file(local.staging(ds, output), remote.staging(ds, output))
        validate_and_publish(uc, ds, local)
        validate_and_publish(uc, ds, remote)
    timing("lake on S3: outputs gated and published on both lakes", t2)
    return {"local": local, "s3": remote}


def _profile(monkeypatch: pytest.MonkeyPatch, home: Path, lake: Lake, s3) -> None:
    """Production settings on ``lake``: its own home, Feast registry and MLflow store."""
    from glideslope.features.store import feast_env

    env = {"GLIDESLOPE_PROFILE": "production", "GLIDESLOPE_HOME": str(home), "GLIDESLOPE_LAKE_ROOT": lake.root,
           "GLIDESLOPE_FEAST_REGISTRY": str(home / "feast" / "registry.db"),
           "GLIDESLOPE_FEAST_ONLINE_TYPE": "sqlite",
           "GLIDESLOPE_FEAST_ONLINE_STORE": str(home / "feast" / "online_store.db"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
           "GLIDESLOPE_MLFLOW_ARTIFACT_ROOT": str(home / "artifacts")}
    if lake.is_remote:
        env["GLIDESLOPE_S3_ENDPOINT_URL"] = s3.endpoint_url
    else:
        monkeypatch.delenv("GLIDESLOPE_S3_ENDPOINT_URL", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for k in feast_env(load_usecase("flight_delay")):  # store() exports these; give them back at teardown
        monkeypatch.setenv(k, "")


def _training_set(monkeypatch: pytest.MonkeyPatch, home: Path, lake: Lake, s3) -> tuple[pd.DataFrame, dict]:
    from glideslope.features.repo import apply_definitions
    from glideslope.training.dataset import build_training_set, load_training_set

    _profile(monkeypatch, home, lake, s3)
    uc, cfg = load_usecase("flight_delay"), settings()
    assert cfg.lake_root == lake.root
    apply_definitions(uc, cfg=cfg)
    summary = build_training_set(uc, DAYS[-1], window_days=3, holdout_days=1, cfg=cfg)
    df, _ = load_training_set(summary["uri"], cfg)
    return df, summary


def test_offline_store_on_s3_builds_the_training_set_the_local_lake_builds(two_lakes, s3, tmp_path, monkeypatch,
                                                                        timing):
    import time

    from glideslope.features import store

    t0 = time.monotonic()
    on_s3, summary = _training_set(monkeypatch, tmp_path / "s3", two_lakes["s3"], s3)
    timing("lake on S3: feast apply + point-in-time training set (DuckDB httpfs)", t0)
    assert summary["uri"].startswith("s3://") and summary["missing_days"] == []
    # The registry holds the S3 glob: DuckDB really read the feature partitions on S3.
    fs = store("flight_delay")
    sources = {v.name: v.batch_source.path for v in fs.list_feature_views()}
    uc = load_usecase("flight_delay")
    assert {t: sources.get(t) for t in uc.features.tables} == {
        t: f"{two_lakes['s3'].base}/features/{t}/ds=*/data.parquet" for t in uc.features.tables}
    feature_cols = [c for c in summary["inputs"] if c in on_s3.columns and c.endswith("_7d")]
    assert feature_cols and on_s3[feature_cols].notna().mean().min() > 0.5, "features were not joined"

    local, _ = _training_set(monkeypatch, tmp_path / "local", two_lakes["local"], s3)
    assert len(on_s3) == summary["rows"] == len(local) > 1000
    pd.testing.assert_frame_equal(on_s3, local, check_dtype=False)


def test_score_day_on_s3_publishes_the_predictions_of_the_champion(two_lakes, s3, redis_url, tmp_path, monkeypatch):
    from glideslope.registry.promotion import evaluate_challenger, promote
    from glideslope.scoring.score import PREDICTION, score_day
    from glideslope.training.trainer import train_candidates

    lake, ds = two_lakes["s3"], DAYS[-1]
    _training_set(monkeypatch, tmp_path, lake, s3)
    monkeypatch.setenv("GLIDESLOPE_LOCK_URL", f"{redis_url}/2")  # champion moves on a remote lake (ADR 0011)
    uc, cfg = load_usecase("flight_delay"), settings()
    trained = train_candidates(uc, ds, candidates=["logistic_regression"], window_days=3, holdout_days=1, cfg=cfg,
                               reason="first model on the S3 lake")
    evaluation = evaluate_challenger(uc, ds, cfg=cfg)
    assert evaluation["decision"]["promote"], evaluation["reason"]
    promote(uc, evaluation, cfg)

    result = score_day(uc, ds, cfg=cfg)
    assert result["path"] == lake.predictions(ds) and result["path"].startswith("s3://")
    assert result["model_version"] == str(trained["challenger_version"]) == str(evaluation["challenger_version"])
    schedule = lake.read_parquet(lake.curated(uc.scoring.table, ds))
    back = lake.read_parquet(lake.predictions(ds))
    assert len(back) == result["rows"] == len(schedule)
    assert set(back[uc.entity_key]) == set(schedule[uc.entity_key])
    assert back[PREDICTION].between(0, 1).all() and back[PREDICTION].nunique() > 10
    assert str(back[uc.event_timestamp].dt.tz) == "UTC"
    assert lake.partitions(lake.predictions()) == [ds]
    assert not [k for k in s3.keys(lake.predictions().split(f"{s3.bucket}/", 1)[1]) if "/.staging-" in k]


@pytest.fixture
def s3_lake(s3) -> Lake:
    return Lake(f"s3://{s3.bucket}/lake", "flight_delay", s3_endpoint_url=s3.endpoint_url)


def test_landing_and_raw_gate_on_s3(s3, s3_lake, timing):
    import time

    from glideslope.data.landing import land_day, record
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
        record(lake, lake.raw(name, bad_day), data)  # landed as landing records it (the manifest)
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
