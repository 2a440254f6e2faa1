"""Where a replayed night's wall time goes under Airflow's scheduler.

Reads what a finished ``glideslope demo`` left in its home: ``demo/summary.json`` (each night's
wall time from creating the ETL run to the end of its last run, and the runs) and the task logs
under ``airflow/logs`` (JSON lines with timestamps). For every task of every run of the replayed
nights it splits the task's span into

* **start**: from the task process's first line to the end of "Pre Execute" — the supervisor's
  start-up call to the API server and the DAG file parse in the worker (``dag_file_parse_ms``);
* **work**: from there to the last line — our library code (imports included) and Spark,
  Feast, MLflow, Evidently;

and the night's rest is **scheduling**: the time between tasks and runs (queueing, the
scheduler creating asset-triggered runs, the LocalExecutor picking tasks up).

The figure the demo is judged by is the ratio *night wall / work* (1.0 = no overhead at all);
the baseline is the work itself, measured in the same runs. Nothing is asserted::

    python benchmarks/night.py --home .glideslope [--json benchmarks/results/night.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
from datetime import datetime
from pathlib import Path
from typing import Any


def _ts(line: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(line["timestamp"]).replace("Z", "+00:00")).timestamp()


def task_split(log: Path) -> dict[str, float] | None:
    """start / parse / work seconds of one task attempt, from its log."""
    lines = []
    for raw in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if isinstance(entry, dict) and "timestamp" in entry:
            lines.append(entry)
    if len(lines) < 2:
        return None
    first, last = _ts(lines[0]), _ts(lines[-1])
    pre_end = next((_ts(e) for e in lines if e.get("event") == "::endgroup::"), first)
    parse_ms = next((float(e.get("dag_file_parse_ms") or 0) for e in lines
                     if e.get("event") == "Worker startup parse complete"), 0.0)
    return {"start": pre_end - first, "parse": parse_ms / 1000.0, "work": last - pre_end}


def night_breakdown(home: Path) -> dict[str, Any]:
    summary = json.loads((home / "demo" / "summary.json").read_text())
    logs = home / "airflow" / "logs"
    nights = []
    for night in summary["nights"]:
        per_stage: dict[str, dict[str, float]] = {}
        for stage, run in night["runs"].items():
            dag_id = f"{summary['usecase']}__{stage}"
            folder = logs / f"dag_id={dag_id}" / f"run_id={run['run_id']}"
            splits = [s for s in (task_split(p) for p in sorted(folder.glob("task_id=*/attempt=*.log"))) if s]
            per_stage[stage] = {k: sum(s[k] for s in splits) for k in ("start", "parse", "work")}
            per_stage[stage]["tasks"] = len(splits)
            per_stage[stage]["run_wall"] = float(run["seconds"])
        work = sum(s["work"] for s in per_stage.values())
        start = sum(s["start"] for s in per_stage.values())
        wall = float(night.get("wall_seconds") or sum(s["run_wall"] for s in per_stage.values()))
        nights.append({"ds": night["ds"], "wall": wall, "work": work, "task_start": start,
                       "parse": sum(s["parse"] for s in per_stage.values()),
                       "scheduling": max(wall - work - start, 0.0),
                       "tasks": sum(int(s["tasks"]) for s in per_stage.values()),
                       "ratio": wall / work if work else float("nan"), "stages": per_stage})
    return {"usecase": summary["usecase"], "nights": nights}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", default=".glideslope", help="the demo's GLIDESLOPE_HOME")
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args(argv)
    out = night_breakdown(Path(args.home).resolve())
    nights = out["nights"]
    if not nights:
        print("no replayed nights in the summary")
        return 1
    print(f"{'night':<12}{'wall s':>8}{'work s':>8}{'start s':>9}{'parse s':>9}{'sched s':>9}{'tasks':>7}"
          f"{'wall/work':>11}")
    for n in nights:
        print(f"{n['ds']:<12}{n['wall']:8.1f}{n['work']:8.1f}{n['task_start']:9.1f}{n['parse']:9.1f}"
              f"{n['scheduling']:9.1f}{n['tasks']:7d}{n['ratio']:11.2f}")
    med = {k: statistics.median(n[k] for n in nights) for k in ("wall", "work", "task_start", "scheduling", "ratio")}
    print(f"{'median':<12}{med['wall']:8.1f}{med['work']:8.1f}{med['task_start']:9.1f}{'':>9}"
          f"{med['scheduling']:9.1f}{'':>7}{med['ratio']:11.2f}")
    stages = sorted({s for n in nights for s in n["stages"]})
    print("\nper stage, median over the nights (s):  run wall | task start | work")
    for s in stages:
        rows = [n["stages"][s] for n in nights if s in n["stages"]]
        print(f"  {s:<10} {statistics.median(r['run_wall'] for r in rows):8.1f} "
              f"{statistics.median(r['start'] for r in rows):11.1f} {statistics.median(r['work'] for r in rows):7.1f}")
    out["median"] = med
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
