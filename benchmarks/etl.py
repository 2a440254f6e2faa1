"""P3 one night's ETL for one day: our ETL path against the transform's Spark work alone, warm engine.

* **baseline** -- the use case's ``transform.build(inputs, ds)`` and a plain Spark write of each
  output (``coalesce(1).write.parquet``) on a warm ``local[2]`` session: the Spark work of the day
  and nothing else.
* **ours, warm engine** -- what ``run_days`` does for the day on the same open session, step by
  step: land the feed's files, the raw gate (Great Expectations suites), the transform into the
  staging area (the Spark work, plus the single-file Parquet that makes a rerun byte-identical),
  then the output gate and the atomic publish. This is the library work of ``__etl``'s four tasks
  on a Spark Connect server; Airflow's own cost per task (about 1 s each, ``benchmarks/night.py``)
  is not in it.
* **ours, spark-submit** (not with ``--quick``) -- the same day through ``run_days`` with a
  spark-submit (a JVM and a Spark session of its own), the form ``glideslope etl`` and an ETL DAG
  without Spark Connect use.

The days are real (2013-07-09 warms the engine; 2013-07-10 and 07-11 are measured, best kept).

    python benchmarks/etl.py [--quick] [--json benchmarks/results/etl.json]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchkit  # noqa: E402

WARM_DAY = "2013-07-09"
DAYS = ["2013-07-10", "2013-07-11"]
SUBMIT_DAY = "2013-07-12"
GOAL = 3.0


def spark_alone(spark: Any, uc: Any, lake: Any, ds: str) -> dict[str, int]:
    """The baseline: the transform and a plain write of its outputs (raw files already landed)."""
    from glideslope.etl.spark_job import SparkInputs
    from glideslope.usecase_modules import load_module

    transform = load_module(uc, uc.transform)
    inputs = SparkInputs(spark, lake, {s.name: s.null_markers for s in uc.sources})
    rows = {}
    with tempfile.TemporaryDirectory(prefix="spark-alone-") as tmp:
        for name, df in transform.build(inputs, ds).items():
            df.coalesce(1).write.mode("overwrite").parquet(f"{tmp}/{name.replace('/', '_')}")
            rows[name] = -1
    return rows


def our_path(spark: Any, uc: Any, lake: Any, ds: str) -> dict[str, float]:
    """``run_days`` for one good day on an open session, each step timed."""
    from glideslope.data.landing import land_day
    from glideslope.etl.pipeline import validate_and_publish, validate_raw
    from glideslope.etl.spark_job import stage_days

    steps: dict[str, float] = {}
    with lake.day_lock(ds):
        for name, fn in (("land", lambda: land_day(uc, ds, lake)), ("raw gate", lambda: validate_raw(uc, ds, lake)),
                         ("transform", lambda: stage_days(spark, uc.name, [ds], lake)),
                         ("output gate + publish", lambda: validate_and_publish(uc, ds, lake))):
            t = time.perf_counter()
            fn()
            steps[name] = time.perf_counter() - t
    return steps


def main(argv: list[str] | None = None) -> int:
    ap = benchkit.arguments(__doc__, "etl")
    args = ap.parse_args(argv)
    benchkit.scratch_home("etl")

    from glideslope.config import load_usecase
    from glideslope.etl.pipeline import run_days
    from glideslope.lake import Lake

    uc = load_usecase("flight_delay")
    lake = Lake.for_usecase(uc.name)
    t0 = time.perf_counter()
    spark = benchkit.local_spark()
    start_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    our_path(spark, uc, lake, WARM_DAY)
    spark_alone(spark, uc, lake, WARM_DAY)
    warm_s = time.perf_counter() - t0

    ours, base, rows = [], [], 0
    for ds in DAYS:
        steps = our_path(spark, uc, lake, ds)
        t = time.perf_counter()
        spark_alone(spark, uc, lake, ds)
        base.append(time.perf_counter() - t)
        ours.append(steps)
        rows = max(rows, len(lake.read_parquet(lake.curated("flights", ds))))
    spark.stop()
    best = min(range(len(DAYS)), key=lambda i: sum(ours[i].values()))
    ours_s, base_s = sum(ours[best].values()), min(base)
    split = ", ".join(f"{k} {v:.2f} s" for k, v in ours[best].items())
    results = [benchkit.result("P3 ETL one day, warm engine (library path)", rows, ours_s, base_s, f"≤ {GOAL}×", GOAL,
                               notes=f"{split}; session start {start_s:.1f} s and first day {warm_s:.1f} s not counted",
                               steps={k: round(v, 3) for k, v in ours[best].items()})]
    print(f"warm path {ours_s:.2f} s ({split}) vs Spark alone {base_s:.2f} s", flush=True)
    if not args.quick:
        t = time.perf_counter()
        run_days(uc, [SUBMIT_DAY], lake=lake)
        submit_s = time.perf_counter() - t
        results.append(benchkit.result("P3 ETL one day, spark-submit (cold JVM)", rows, submit_s, base_s,
                                       f"≤ {GOAL}×", GOAL, notes=f"{SUBMIT_DAY}: run_days with its own spark-submit"))
        print(f"spark-submit path {submit_s:.2f} s", flush=True)
    benchkit.write_results(args.json, "etl", results, session_start_s=round(start_s, 2), warm_day_s=round(warm_s, 2),
                           samples=[{"ds": d, "ours": o, "baseline_s": b} for d, o, b in zip(DAYS, ours, base, strict=True)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
