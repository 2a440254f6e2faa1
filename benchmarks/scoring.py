"""P1 batch scoring: the ``__score`` path against reading the features and xgboost ``inplace_predict``.

* **ours** -- :func:`glideslope.scoring.score_day` end to end, as ``__score`` runs it: load the
  champion, join the features point in time from Feast's offline store (our DuckDB ``ASOF`` join,
  :mod:`glideslope.features.asof`), predict through the registered MLflow model, validate every
  chunk with Great Expectations, write the staging file and publish it.
* **baseline** -- the raw work of the same night: read the same feature rows (the model's inputs,
  already encoded for the booster, float32, from a Parquet file) and ``Booster.inplace_predict``.

Both give the same predictions (checked to 1e-6). Also reported, as figures and not as the goal:
Feast's own ``get_historical_features`` on the same entity rows (the join this path used before),
and the fitted pipeline's ``predict_proba`` on the joined inputs.

Data: the ETL (``spark-submit``, ``local[2]``) of ten real days, 2013-07-01..10, a first champion
trained on them (xgboost only), and the 1,000-odd flights scheduled for 2013-07-11 repeated under
new keys (``<flight_id>-r<i>``) to reach the sizes. The curve is measured at three sizes.

    python benchmarks/scoring.py [--quick] [--json benchmarks/results/scoring.json]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchkit  # noqa: E402

DAYS = [f"2013-07-{d:02d}" for d in range(1, 11)]
DS = DAYS[-1]
SIZES = [100_000, 300_000, 1_000_000]
QUICK_SIZES = [20_000, 50_000, 100_000]
GOAL = 2.0  # ≥ 0.5× the baseline's rows/s == time ratio ≤ 2


def build_home(uc: Any) -> None:
    """ETL of :data:`DAYS`, the feature definitions, and a first champion (xgboost)."""
    from glideslope.etl.pipeline import run_days
    from glideslope.features.repo import apply_definitions
    from glideslope.registry.promotion import evaluate_challenger, promote
    from glideslope.training import train_candidates

    run_days(uc, DAYS)
    apply_definitions(uc)
    trained = train_candidates(uc, DAYS[-2], candidates=["xgboost"], window_days=8, holdout_days=2,
                               reason="benchmark")
    promote(uc, evaluate_challenger(uc, DAYS[-2], trained["challenger_version"]))  # the first clears the floor


def scale_night(uc: Any, lake: Any, day: Any, rows: int) -> None:
    """Publish ``rows`` entity rows for :data:`DS`: the day's schedule repeated under new keys."""
    import pandas as pd

    reps = -(-rows // len(day))
    scaled = pd.concat([day.assign(**{uc.entity_key: day[uc.entity_key] + f"-r{i}"}) for i in range(reps)],
                       ignore_index=True).head(rows)
    lake.publish_parquet(scaled, lake.curated(uc.scoring.table, DS))


def baseline_inputs(pipe: Any, predictions: Any, inputs: list[str], path: Path) -> None:
    """The night's model inputs, encoded for the booster, as a float32 Parquet file."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    encoded = np.asarray(pipe.named_steps["prep"].transform(predictions[inputs]), dtype=np.float32)
    pq.write_table(pa.table({f"f{i}": encoded[:, i] for i in range(encoded.shape[1])}), path)


def read_and_predict(booster: Any, path: Path) -> Any:
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    matrix = np.column_stack([c.to_numpy() for c in table.columns]).astype(np.float32, copy=False)
    return booster.inplace_predict(matrix)


def main(argv: list[str] | None = None) -> int:
    ap = benchkit.arguments(__doc__, "scoring")
    ap.add_argument("--home", type=Path, help="reuse the home a previous run built (development)")
    args = ap.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else SIZES
    home = benchkit.scratch_home("scoring")
    if args.home:
        os.environ["GLIDESLOPE_HOME"] = str(args.home)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{args.home / 'mlflow' / 'mlflow.db'}"
        home.rmdir()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow
    import numpy as np

    from glideslope.config import load_usecase
    from glideslope.features import store
    from glideslope.features.retrieval import historical_features, join_keys
    from glideslope.lake import Lake
    from glideslope.scoring import score_day
    from glideslope.scoring.models import champion_version, load_version
    from glideslope.scoring.score import feature_cutoff

    uc = load_usecase("flight_delay")
    lake = Lake.for_usecase(uc.name)
    if not args.home:
        print(f"P1: ETL of {DAYS[0]}..{DS} and a first champion in {home} ...", flush=True)
        build_home(uc)
    model = load_version(uc, champion_version(uc), None)
    pipe = mlflow.sklearn.load_model(model.uri)
    booster = pipe.named_steps["model"].get_booster()
    day = lake.read_parquet(lake.curated(uc.scoring.table, DS))
    fs = store(uc)
    rows_out: list[dict[str, Any]] = []
    curve = []
    for n in sizes:
        scale_night(uc, lake, day, n)
        benchkit.reset_peak_rss()
        before = benchkit.rss_mb()
        t_ours, summary = benchkit.best_of(lambda: score_day(uc, DS), 2)
        peak = benchkit.peak_rss_mb() - before
        published = lake.read_parquet(lake.predictions(DS))
        path = Path(os.environ["GLIDESLOPE_HOME"]) / f"baseline-{n}.parquet"
        baseline_inputs(pipe, published, model.inputs, path)
        t_base, p_base = benchkit.best_of(lambda p=path: read_and_predict(booster, p), 3)
        diff = float(np.abs(np.asarray(p_base, dtype="float64") - published["prediction"].to_numpy()).max())
        if diff > 1e-6:
            raise AssertionError(f"the score path and the booster disagree by {diff} at {n} rows")
        entities = lake.read_parquet(lake.curated(uc.scoring.table, DS))
        query = entities[[uc.entity_key, uc.event_timestamp, *join_keys(uc, fs)]].copy()
        as_of = feature_cutoff(uc, DS, lake)
        query[uc.event_timestamp] = as_of
        t_feast, _ = benchkit.best_of(lambda q=query: historical_features(uc, q, fs, engine="feast"), 1)
        t_duck, _ = benchkit.best_of(lambda q=query: historical_features(uc, q, fs, engine="duckdb"), 2)
        t_pipe, _ = benchkit.best_of(lambda x=published[model.inputs]: pipe.predict_proba(x)[:, 1], 2)
        print(f"  {n:>9,} rows: ours {t_ours:.2f} s ({n / t_ours:,.0f} rows/s), baseline {t_base:.2f} s, "
              f"ratio {t_ours / t_base:.1f}; joins: duckdb {t_duck:.2f} s, feast {t_feast:.2f} s; "
              f"pipeline predict_proba {t_pipe:.2f} s; peak +{peak:.0f} MB; max |diff| {diff:.1e}", flush=True)
        curve.append({"rows": n, "ours_s": round(t_ours, 3), "baseline_s": round(t_base, 3),
                      "duckdb_join_s": round(t_duck, 3), "feast_join_s": round(t_feast, 3),
                      "pipeline_predict_s": round(t_pipe, 3), "peak_rss_mb": round(peak, 1),
                      "chunks": summary["chunks"], "max_abs_diff": diff})
        if n == sizes[-1]:
            rows_out.append(benchkit.result(
                "P1 batch scoring", n, t_ours, t_base, "≥ 0.5× the baseline's rows/s (time ratio ≤ 2)", GOAL,
                peak_rss_mb=peak, notes=f"{len(day)} flights of {DS} repeated; chunks of {uc.scoring.chunk_rows}; "
                                        f"predictions equal to {diff:.1e}"))
            rows_out.append(benchkit.result(
                "P1 point-in-time join: DuckDB vs Feast", n, t_duck, t_feast,
                "our join not slower than Feast's (ratio ≤ 1)", 1.0, notes="same entity rows, same answer"))
    benchkit.write_results(args.json, "scoring", rows_out, curve=curve)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
