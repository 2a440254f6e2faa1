"""#18: a year of history through the loop's library functions, measured stage by stage.

The real 2013 days (scale 1, no synthetic rows), each step in its own process with its wall time
and peak RSS (``wait4``'s ``ru_maxrss``, a spark-submit JVM included):

1. **ETL, one range run** -- ``run_days`` over the whole history in one call (what the
   ``<uc>__etl`` run with a ``start``/``end`` range does in Airflow);
2. **features** -- the feature definitions, then ``materialize_days`` over the history;
3. **training** -- ``train_candidates`` (xgboost) on a long window ending at the history's last
   day (:data:`WINDOW_DAYS`, or the whole history when shorter), ``training.max_rows`` =
   :data:`MAX_ROWS` in a copy of the use case (:func:`benchkit.scaled_usecase` at scale 1: the
   bundled suites, the real feed); the challenger is then promoted (or, below the floor, set as
   champion by the benchmark, said in the notes), since the nights need a champion;
4. **nights** -- the nights after the history, each one process running what the scheduler runs
   for a night: ``run_days([d])``, ``materialize_days([d])``, ``score_day``, ``run_check``.

Outside Airflow's scheduler: no scheduling overhead (``benchmarks/night.py`` measures that on a
demo's nights). The goal of #18 for the year's ETL is 5 minutes on 2 cores; the reduced run
judges nothing (``met?`` empty) and says how many days it ran.

    python benchmarks/year.py [--quick | --scale-full] [--days N] [--nights K] [--json PATH]

Days of history: 28 by default, 10 with ``--quick``, the whole of 2013 up to the last nights with
``--scale-full`` (2013-01-01 .. 2013-12-27, then 3 nights).
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchkit  # noqa: E402

FIRST = "2013-01-01"
LAST_NIGHT = "2013-12-30"  # the feed's last day with a next-day schedule
WINDOW_DAYS = 90
HOLDOUT_DAYS = 4
MAX_ROWS = 200_000
YEAR_ETL_GOAL_S = 300


def _days(first: str, n: int) -> list[str]:
    d = date.fromisoformat(first)
    return [(d + timedelta(days=i)).isoformat() for i in range(n)]


def step(name: str, days: list[str], window: int) -> dict[str, Any]:
    """One step in this process; what it reports."""
    from glideslope.config import load_usecase

    uc = load_usecase("flight_delay")
    if name == "etl":
        from glideslope.etl.pipeline import run_days

        published = run_days(uc, days)
        return {"rows": sum(o["rows"] for day in published.values() for out, o in day["outputs"].items()
                            if out == f"curated/{uc.label.table}"), "days": len(published)}
    if name == "features":
        from glideslope.features.materialize import materialize_days
        from glideslope.features.repo import apply_definitions

        apply_definitions(uc)
        t = time.perf_counter()
        out = materialize_days(uc, days)
        return {"materialize_s": round(time.perf_counter() - t, 2), "summary": out}
    if name == "training":
        from glideslope.registry.promotion import evaluate_challenger, promote
        from glideslope.scoring.models import CHAMPION
        from glideslope.training import tracking, train_candidates

        trained = train_candidates(uc, days[-1], candidates=["xgboost"], window_days=window,
                                   holdout_days=HOLDOUT_DAYS, reason="benchmark")
        evaluation = evaluate_challenger(uc, days[-1], trained["challenger_version"])
        if evaluation["decision"]["promote"]:
            promote(uc, evaluation)
            how = "promoted"
        else:
            tracking.client().set_registered_model_alias(uc.registered_model, CHAMPION, trained["challenger_version"])
            how = f"set as champion by the benchmark (the policy said: {evaluation['reason']})"
        return {"rows": trained["train_rows"], "train_rows_available": trained["train_rows_available"],
                "max_rows": trained["max_rows"], "window": trained["window"], "champion": how,
                "fit_s": sum(c["fit_seconds"] for c in trained["candidates"])}
    if name == "night":
        from glideslope.drift.monitor import run_check
        from glideslope.etl.pipeline import run_days
        from glideslope.features.materialize import materialize_days
        from glideslope.scoring import score_day

        (ds,) = days
        split: dict[str, float] = {}
        t = time.perf_counter()
        run_days(uc, [ds])
        split["etl_s"] = time.perf_counter() - t
        t = time.perf_counter()
        materialize_days(uc, [ds])
        split["materialize_s"] = time.perf_counter() - t
        t = time.perf_counter()
        scored = score_day(uc, ds)
        split["score_s"] = time.perf_counter() - t
        t = time.perf_counter()
        run_check(uc, ds)
        split["drift_s"] = time.perf_counter() - t
        return {"rows": scored["rows"], **{k: round(v, 2) for k, v in split.items()}}
    raise ValueError(f"unknown step {name!r}")


def run_step(name: str, days: list[str], window: int, home: Path, timeout: float) -> dict[str, Any]:
    out = home / f"step-{name}-{days[-1]}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--step", name, "--day-list", ",".join(days),
           "--window", str(window), "--out", str(out)]
    rc, wall, peak_mb, log = benchkit.run_process(cmd, timeout, home / f"{out.stem}.log")
    result: dict[str, Any] = {"step": name, "wall_s": round(wall, 2), "peak_rss_mb": round(peak_mb, 1), "rc": rc}
    if out.exists():
        result.update(json.loads(out.read_text()))
    if rc != 0:
        result["error"] = f"exit {rc}; last lines of {log}:\n    " + "\n    ".join(
            log.read_text(errors="replace").splitlines()[-5:])
    print(f"{name:<9} {days[0]}..{days[-1]} ({len(days)} days): {wall:8.1f} s, peak {peak_mb:6.0f} MB"
          + ("" if rc == 0 else f"  FAILED (rc {rc})"), flush=True)
    return result


def rows_for(steps: list[dict[str, Any]], history: list[str], full: bool) -> list[dict[str, Any]]:
    label = (f"year 2013 ({len(history)} days)" if full
             else f"year, reduced: {len(history)} days from {history[0]}")
    out = []
    for s in steps:
        notes = [f"{k} {v}" for k, v in s.items() if k.endswith("_s") and k != "wall_s"]
        if s["step"] == "training":
            notes.append(f"window {s.get('window')}, fit on {s.get('rows')} of {s.get('train_rows_available')} rows "
                         f"(max_rows {s.get('max_rows')}); the challenger {s.get('champion')}")
        if s.get("error"):
            notes.append(s["error"])
        name = {"etl": "ETL, one range run", "features": "features (apply + materialize)",
                "training": "training on a long window", "night": f"a night after it ({s.get('night')})"}[s["step"]]
        if s["step"] == "etl":
            row = benchkit.result(f"{label}: {name}", s.get("rows"), s["wall_s"], YEAR_ETL_GOAL_S,
                                  f"year ≤ {YEAR_ETL_GOAL_S // 60} min", 1.0, peak_rss_mb=s["peak_rss_mb"],
                                  notes="; ".join(notes + ["baseline = the goal's 300 s"]))
            row["met"] = (s["rc"] == 0 and s["wall_s"] <= YEAR_ETL_GOAL_S) if full else None
        else:
            row = benchkit.result(f"{label}: {name}", s.get("rows") if isinstance(s.get("rows"), int) else None,
                                  s["wall_s"], s["wall_s"], "—", float("inf"), peak_rss_mb=s["peak_rss_mb"],
                                  notes="; ".join(notes))
            row.update(baseline_s=None, ratio=None, met=None if s["rc"] == 0 else False)
        out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = benchkit.arguments(__doc__, "year")
    ap.add_argument("--scale-full", action="store_true", help="the whole of 2013 (up to the last nights)")
    ap.add_argument("--days", type=int, default=None, help="days of history (default 28, --quick 10)")
    ap.add_argument("--nights", type=int, default=None, help="nights after the history (default 3, --quick 1)")
    ap.add_argument("--step-timeout", type=float, default=3 * 3600, help="seconds per step process")
    ap.add_argument("--step", help=_hidden())
    ap.add_argument("--day-list", help=_hidden())
    ap.add_argument("--window", type=int, default=WINDOW_DAYS, help=_hidden())
    ap.add_argument("--out", type=Path, help=_hidden())
    args = ap.parse_args(argv)
    if args.step:
        args.out.write_text(json.dumps(step(args.step, args.day_list.split(","), args.window), default=str) + "\n")
        return 0
    nights = args.nights or (1 if args.quick else 3)
    if args.scale_full:
        last = date.fromisoformat(LAST_NIGHT) - timedelta(days=nights)
        n = (last - date.fromisoformat(FIRST)).days + 1
    else:
        n = args.days or (10 if args.quick else 28)
    history = _days(FIRST, n)
    after = _days((date.fromisoformat(history[-1]) + timedelta(days=1)).isoformat(), nights)
    window = min(WINDOW_DAYS, n)
    home = benchkit.scratch_home("year")
    benchkit.scaled_usecase(home / "usecases", 1, max_rows=MAX_ROWS)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    print(f"history {history[0]}..{history[-1]} ({n} days), then {len(after)} nights, in {home}", flush=True)
    steps = []
    for name, days in (("etl", history), ("features", history), ("training", history)):
        steps.append(run_step(name, days, window, home, args.step_timeout))
        if steps[-1]["rc"] != 0:
            break
    else:
        for ds in after:
            steps.append({**run_step("night", [ds], window, home, args.step_timeout), "night": ds})
            if steps[-1]["rc"] != 0:
                break
    benchkit.write_results(args.json, "year", rows_for(steps, history, args.scale_full), steps=steps,
                           history=[history[0], history[-1]], nights=after, window_days=window,
                           max_rows=MAX_ROWS, home=str(home))
    return 0 if all(s["rc"] == 0 for s in steps) else 1


def _hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
