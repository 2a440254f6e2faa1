"""Scoring throughput: the ``__score`` path against in-process xgboost and MLflow's ``spark_udf``.

Same champion, same rows, same machine, one process:

* ``__score path`` -- :func:`glideslope.scoring.score_day` end to end: load the champion, join the
  features point in time from Feast's offline store, predict, validate every chunk with Great
  Expectations, write the staging file and publish it;
* ``pyfunc predict`` -- the registered model through ``mlflow.pyfunc`` on the already-joined inputs;
* ``xgboost in-process`` -- the fitted pipeline's ``predict_proba`` on the same inputs (the limit
  for this model: no I/O, no join, no validation), and the bare booster on pre-encoded inputs;
* ``spark_udf`` -- ``mlflow.pyfunc.spark_udf`` over a Spark DataFrame of the same inputs
  (``local[2]``; session start-up reported separately, not counted).

One real day has about a thousand scheduled flights, too few to measure throughput, so the day's
schedule is repeated ``--scale`` times (distinct keys, same features) in a copy of the lake.

Needs a home with ETL output for ``--ds`` and a ``champion`` whose best candidate is xgboost::

    GLIDESLOPE_HOME=/path/to/home python benchmarks/scoring.py --ds 2013-07-10 --scale 50
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def _timed(fn, repeat: int):  # type: ignore[no-untyped-def]
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--usecase", default="flight_delay")
    ap.add_argument("--ds", default="2013-07-10")
    ap.add_argument("--scale", type=int, default=50, help="repeat the day's schedule this many times")
    ap.add_argument("--repeat", type=int, default=3, help="best of N for the in-memory paths")
    ap.add_argument("--no-spark", action="store_true")
    args = ap.parse_args(argv)

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import pandas as pd

    from glideslope.config import load_usecase, settings
    from glideslope.lake import Lake

    src_cfg = settings()
    uc = load_usecase(args.usecase)
    src = Lake.for_usecase(uc.name, src_cfg)
    if not src.exists(src.curated(uc.scoring.table, args.ds)):
        print(f"no {src.curated(uc.scoring.table, args.ds)}: run the ETL for {args.ds} first", file=sys.stderr)
        return 2

    # A scratch copy of the lake holds the scaled schedule; MLflow stays the source home's (read only).
    scratch = Path(tempfile.mkdtemp(prefix="glideslope-bench-"))
    os.environ["MLFLOW_TRACKING_URI"] = src_cfg.mlflow_tracking_uri
    os.environ["GLIDESLOPE_HOME"] = str(scratch)
    os.environ.pop("GLIDESLOPE_LAKE_ROOT", None)
    cfg = settings()
    lake = Lake.for_usecase(uc.name, cfg)
    shutil.copytree(f"{src.base}/features", f"{lake.base}/features")
    day = src.read_parquet(src.curated(uc.scoring.table, args.ds))
    scaled = pd.concat([day.assign(**{uc.entity_key: day[uc.entity_key] + f"-r{i}"}) for i in range(args.scale)],
                       ignore_index=True)
    lake.publish_parquet(scaled, lake.curated(uc.scoring.table, args.ds))
    rows = len(scaled)

    from glideslope.features.repo import apply_definitions
    from glideslope.scoring import score_day
    from glideslope.scoring.models import champion_version, load_version, scores

    apply_definitions(uc, cfg=cfg)
    version = champion_version(uc, cfg)
    print(f"{uc.name} champion v{version}; {rows} rows ({len(day)} scheduled flights of {args.ds} x {args.scale})")

    # Best of two: the first call also pays one-off imports (Great Expectations, Feast, MLflow).
    t_score, summary = _timed(lambda: score_day(uc, args.ds, cfg=cfg), 2)
    joined = lake.read_parquet(lake.predictions(args.ds))
    model = load_version(uc, version, cfg)
    X = joined[model.inputs]

    t_pyfunc, p_pyfunc = _timed(lambda: scores(model, X, uc.label.task), args.repeat)
    import mlflow

    pipe = mlflow.sklearn.load_model(model.uri)
    est = pipe.named_steps["model"]
    if not hasattr(est, "get_booster"):
        print(f"the champion is {type(est).__name__}, not xgboost: train with candidates=['xgboost']", file=sys.stderr)
        return 2
    t_pipe, p_pipe = _timed(lambda: pipe.predict_proba(X)[:, 1], args.repeat)
    Xt = pipe.named_steps["prep"].transform(X)
    booster = est.get_booster()
    t_booster, _ = _timed(lambda: booster.inplace_predict(Xt), args.repeat)
    assert abs(p_pipe - joined["prediction"].to_numpy()).max() < 1e-9, "the score path and the model disagree"
    assert abs(p_pyfunc - p_pipe).max() < 1e-9

    from glideslope.features import store
    from glideslope.features.retrieval import historical_features
    from glideslope.scoring.score import feature_cutoff

    fs = store(uc, cfg)
    query = scaled.copy()
    as_of = feature_cutoff(uc, args.ds, lake)
    query[uc.event_timestamp] = query[uc.event_timestamp].where(query[uc.event_timestamp] <= as_of, as_of)
    t_join, _ = _timed(lambda: historical_features(uc, query, fs), args.repeat)

    results = [("__score path (join + predict + GX + publish)", t_score),
               ("  of which: Feast point-in-time join, one chunk", t_join),
               ("pyfunc predict (joined inputs)", t_pyfunc),
               ("xgboost in-process: pipeline predict_proba (limit)", t_pipe),
               ("xgboost in-process: booster on encoded inputs", t_booster)]

    if not args.no_spark:
        from pyspark.sql import SparkSession
        from pyspark.sql import functions as F

        os.environ["PYSPARK_PYTHON"] = sys.executable  # Python workers need this venv's pandas and mlflow
        t0 = time.perf_counter()
        spark = (SparkSession.builder.master("local[2]").appName("glideslope-bench")
                 .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
                 .config("spark.sql.shuffle.partitions", "2")
                 .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
                 .getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
        sdf = spark.createDataFrame(X).repartition(2).cache()
        sdf.count()
        udf = mlflow.pyfunc.spark_udf(spark, model.uri, result_type="array<double>", env_manager="local")
        t_spark_setup = time.perf_counter() - t0

        def run_udf() -> None:
            sdf.select(udf(F.struct(*model.inputs)).getItem(1).alias("p")).write.format("noop").mode(
                "overwrite").save()

        t_spark, _ = _timed(run_udf, args.repeat)
        results.append(("MLflow spark_udf, local[2]", t_spark))
        spark.stop()

    limit = t_pipe
    print(f"\n{'path':<52} {'seconds':>9} {'rows/s':>12} {'vs limit':>9}")
    for name, t in results:
        print(f"{name:<52} {t:>9.3f} {rows / t:>12,.0f} {t / limit:>8.1f}x")
    if not args.no_spark:
        print(f"\n(spark session + udf setup, not counted above: {t_spark_setup:.1f} s)")
        print(f"__score path / spark_udf time ratio: {t_score / t_spark:.2f}")
    print(f"__score path chunks: {summary['chunks']} of <= {uc.scoring.chunk_rows} rows")
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
