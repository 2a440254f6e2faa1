"""What the benchmarks share: the result record, a scratch home built from the bundled data, peak RSS.

A benchmark is a script ``benchmarks/<name>.py`` that accepts ``--json PATH`` and ``--quick`` and
writes the record :func:`write_results` documents (the shape ``benchmarks/run.py`` reads). Nothing
here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def arguments(doc: str, name: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--json", type=Path, default=RESULTS / f"{name}.json", help="where the record goes")
    ap.add_argument("--quick", action="store_true", help="small sizes, for development")
    return ap


def result(path: str, rows: int | None, ours_s: float, baseline_s: float, goal: str, max_ratio: float,
           *, peak_rss_mb: float | None = None, notes: str = "", **extra: Any) -> dict[str, Any]:
    """One row of the table. ``ratio`` is always our time / the baseline's time on the same work,
    so a throughput goal ("≥ 0.5× the baseline's rows/s") is the time ratio ≤ 2."""
    ratio = ours_s / baseline_s if baseline_s > 0 else float("inf")
    return {"path": path, "rows": rows, "ours_s": round(ours_s, 4), "baseline_s": round(baseline_s, 4),
            "ratio": round(ratio, 3), "goal": goal, "met": bool(ratio <= max_ratio),
            "peak_rss_mb": None if peak_rss_mb is None else round(peak_rss_mb, 1), "notes": notes, **extra}


def write_results(out: Path, benchmark: str, results: list[dict[str, Any]], **extra: Any) -> None:
    """``{"benchmark", "results": [row, ...], "machine", "peak_rss_mb", ...extra}`` at ``out``."""
    record = {"benchmark": benchmark, "results": results, "machine": machine(),
              "peak_rss_mb": round(peak_rss_mb(), 1), "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              **extra}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, default=str) + "\n")


def machine() -> dict[str, Any]:
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "mem_mb": mem, "python": platform.python_version(),
            "platform": platform.platform(), "load_avg_1m": round(os.getloadavg()[0], 2)}


# -- memory -----------------------------------------------------------------------------------

def _status_kb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1])
    return 0.0


def rss_mb() -> float:
    return _status_kb("VmRSS") / 1024


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM) since start or the last :func:`reset_peak_rss`."""
    return _status_kb("VmHWM") / 1024


def reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux ``clear_refs`` 5), so a step's own peak can be read."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def run_process(cmd: list[str], timeout: float, log: Path) -> tuple[int, float, float, Path]:
    """Run ``cmd`` in its own process group, output to ``log``: (exit code, wall s, peak RSS MB, log).

    The peak is ``wait4``'s ``ru_maxrss``: the largest resident set of the process or of any
    descendant it waited for (a spark-submit JVM counts). Past ``timeout`` the group is killed (124).
    """
    import subprocess

    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with log.open("wb") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                rc = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                os.killpg(proc.pid, 9)
                _, status, usage = os.wait4(proc.pid, 0)
                rc = 124
                break
            time.sleep(0.1)
        proc.returncode = rc
    return rc, time.monotonic() - t0, usage.ru_maxrss / 1024, log


# -- timing -----------------------------------------------------------------------------------

def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Best wall time of ``repeat`` calls (the machine is shared: the minimum is the cleanest figure)."""
    best, out = float("inf"), None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def median(values: list[float]) -> float:
    return statistics.median(values)


# -- a scratch home -----------------------------------------------------------------------------

def scratch_home(prefix: str) -> Path:
    """A new Glideslope home (embedded profile) in a temp dir, set in this process's environment."""
    home = Path(tempfile.mkdtemp(prefix=f"glideslope-bench-{prefix}-"))
    os.environ["GLIDESLOPE_HOME"] = str(home)
    os.environ["GLIDESLOPE_PROFILE"] = "embedded"
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    for var in ("GLIDESLOPE_LAKE_ROOT", "GLIDESLOPE_SPARK_CONNECT_CONN_ID"):
        os.environ.pop(var, None)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return home


def local_spark(app: str = "glideslope-bench") -> Any:
    """A classic in-process ``local[2]`` session with the ETL's session settings (a warm engine
    once it has run one query)."""
    from pyspark.sql import SparkSession

    from glideslope.etl.spark_job import SESSION_CONF

    builder = (SparkSession.builder.master("local[2]").appName(app)
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.driver.memory", "1g"))
    for key, value in SESSION_CONF.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def days_before(ds: str, n: int) -> list[str]:
    """The ``n`` days ending at ``ds``."""
    from datetime import date, timedelta

    d = date.fromisoformat(ds)
    return [(d - timedelta(days=i)).isoformat() for i in reversed(range(n))]


# -- the scaled feed (#18) ----------------------------------------------------------------------

# The suites whose bounds grow with the feed's scale: a day's flights and schedule, raw and curated.
SCALED_SUITES = ("raw_flights.yaml", "raw_schedule.yaml", "curated_flights.yaml", "curated_schedule.yaml")


def scaled_usecase(root: Path, scale: int, *, max_rows: int | None = None) -> Path:
    """A copy of the bundled flight_delay use case under ``root`` for the feed scaled ``scale`` times.

    The copy is the bundled folder with, in the suites of :data:`SCALED_SUITES`, the row bounds
    multiplied by ``scale`` and the flight numbers allowed up to ``10000 * scale - 1`` (copy k of a
    flight is numbered ``flight + 10000 * k``: include/usecases/flight_delay/feed.py), and
    ``training.max_rows`` set when given. The bundled use case is not touched. Sets, in this
    process's environment (children inherit it), ``GLIDESLOPE_USECASES_DIR`` to ``root`` and
    ``GLIDESLOPE_FEED_SCALE`` to ``scale``: every stage then reads the scaled feed and these suites.
    """
    import shutil

    import yaml

    from glideslope.config import DEFAULT_USECASES_DIR

    folder = root / "flight_delay"
    shutil.copytree(DEFAULT_USECASES_DIR / "flight_delay", folder, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in SCALED_SUITES:
        path = folder / "quality" / name
        suite = yaml.safe_load(path.read_text())
        suite["rows"]["max"] = int(suite["rows"]["max"]) * scale
        if "flight" in suite["columns"]:
            suite["columns"]["flight"]["max"] = 10000 * scale - 1
        path.write_text(f"# Generated by benchmarks/benchkit.py for the feed scaled ×{scale}: bounds × {scale}.\n"
                        + yaml.safe_dump(suite, sort_keys=False))
    if max_rows is not None:
        spec_path = folder / "usecase.yaml"
        spec = yaml.safe_load(spec_path.read_text())
        spec["training"]["max_rows"] = max_rows
        spec_path.write_text(f"# Generated by benchmarks/benchkit.py: the feed scaled ×{scale}.\n"
                             + yaml.safe_dump(spec, sort_keys=False))
    os.environ["GLIDESLOPE_USECASES_DIR"] = str(root)
    os.environ["GLIDESLOPE_FEED_SCALE"] = str(scale)
    return folder
