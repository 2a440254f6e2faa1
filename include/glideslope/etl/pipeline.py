"""The ETL stage as plain functions; the Airflow DAG and the CLI both call these.

    land_day -> validate_raw (quarantine on failure) -> spark transform (staging)
             -> validate_and_publish (quarantine staged outputs on failure)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from glideslope.config import PROJECT_ROOT, SpecError, UseCase, load_usecase, resolve_usecase
from glideslope.contract import check_outputs
from glideslope.data.landing import land_day
from glideslope.lake import Lake
from glideslope.quality.suites import load_suite
from glideslope.quality.validate import DataQualityError, ValidationReport, validate_csv_bytes, validate_frame

log = logging.getLogger(__name__)

SPARK_JOB = PROJECT_ROOT / "spark_jobs" / "transform.py"


def _quarantine(lake: Lake, src: str, source: str, ds: str, report: ValidationReport) -> str:
    """Move ``src`` into a new quarantine slot of ``source``/``ds`` with the reason beside it.

    Every quarantined delivery gets its own slot, so a second bad delivery of the same day (or a
    failed output of a rerun) never overwrites the first. Nothing is deleted.
    """
    fs = lake.fs
    slot = lake.quarantine_slot(source, ds)
    dest = f"{slot}/{src.rsplit('/', 1)[1]}"
    # The reason first: a slot is never a file without its explanation.
    lake.write_json(f"{slot}/_reason.json", {**report.summary(), "moved_from": src, "moved_to": dest,
                                             "moved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    try:
        fs.mv(src, dest)
    except BaseException:
        fs.rm(slot, recursive=True)
        raise
    log.warning("quarantined %s -> %s", src, dest)
    return dest


def validate_raw(uc: UseCase, ds: str, lake: Lake | None = None) -> dict[str, Any]:
    """Gate day ``ds``'s raw files. On failure every failing file goes to quarantine and
    :class:`DataQualityError` names file, column, rule and bad-row count."""
    lake = lake or Lake.for_usecase(uc.name)
    reports, failed = [], []
    for source in uc.sources:
        if source.kind != "daily" or not source.suite:
            continue
        path = lake.raw(source.name, ds)
        if not lake.exists(path):
            raise FileNotFoundError(f"{path}: raw file for {source.name!r} on {ds} has not landed")
        with lake.fs.open(path, "rb") as f:
            data = f.read()
        report = validate_csv_bytes(data, load_suite(uc, source.suite), path, source.null_markers)
        reports.append(report)
        log.info("validated %s: %d rows, %d expectations, %s", path, report.rows, report.evaluated,
                 "ok" if report.success else f"{len(report.failures)} failures")
        if not report.success:
            failed.append(report)
    if failed:
        moved = [_quarantine(lake, r.file, Path(r.file).parent.parent.name, ds, r) for r in failed]
        raise DataQualityError(failed, moved)
    return {"ds": ds, "files": [{"file": r.file, "rows": r.rows, "expectations": r.evaluated} for r in reports]}


def spark_submit_command(uc: UseCase, days: list[str], master: str = "local[2]",
                         lake: Lake | None = None) -> list[str]:
    from glideslope.runtime import spark_s3a_conf

    bindir = Path(sys.executable).parent
    conf = {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
            "spark.pyspark.python": sys.executable, **spark_s3a_conf()}
    lake_args = ["--lake-root", lake.root] if lake else []
    return [
        str(bindir / "spark-submit"), "--master", master, "--deploy-mode", "client",
        "--name", f"{uc.name}-etl", "--driver-memory", "1g",
        *[a for k, v in conf.items() for a in ("--conf", f"{k}={v}")],
        str(SPARK_JOB), "--usecase", uc.name, *[a for d in days for a in ("--ds", d)], *lake_args,
    ]


def spark_env() -> dict[str, str]:
    from glideslope.runtime import java_home

    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    if "JAVA_HOME" not in env and java_home():
        env["JAVA_HOME"] = java_home() or ""
    return env


def transform(uc: UseCase, days: list[str], master: str = "local[2]", lake: Lake | None = None) -> None:
    """spark-submit the use case's transform for ``days`` (outside Airflow: CLI, demo, tests)."""
    cmd = spark_submit_command(uc, days, master, lake)
    log.info("running %s", " ".join(cmd))
    proc = subprocess.run(cmd, env=spark_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise RuntimeError(f"spark-submit failed (rc={proc.returncode}) for {uc.name} {days}:\n{tail}")


def validate_and_publish(uc: UseCase, ds: str, lake: Lake | None = None) -> dict[str, Any]:
    """Gate the staged outputs of ``ds``; publish all of them only if every one passes."""
    lake = lake or Lake.for_usecase(uc.name)
    staged = {out: lake.staging(ds, out) for out in uc.output_suites}
    missing = [p for p in staged.values() if not lake.exists(p)]
    if missing:
        raise FileNotFoundError(f"transform outputs for {ds} were not staged: {missing}")
    frames = {out: lake.read_parquet(p) for out, p in staged.items()}
    check_outputs(uc, frames)  # a table a later stage cannot read fails here, naming it
    reports = {out: validate_frame(frames[out], load_suite(uc, uc.output_suites[out]), p)
               for out, p in staged.items()}
    failed = [r for r in reports.values() if not r.success]
    if failed:
        moved = [_quarantine(lake, r.file, out.replace("/", "__"), ds, r)
                 for out, r in reports.items() if not r.success]
        raise DataQualityError(failed, moved)
    published = {}
    for out, path in staged.items():
        final = lake.output(ds, out)
        with lake.publishing(final) as tmp:
            lake.fs.mv(path, tmp)
        published[out] = {"path": final, "rows": reports[out].rows}
    return {"ds": ds, "outputs": published}


def days_between(start: str, end: str) -> list[str]:
    a, b = date.fromisoformat(start), date.fromisoformat(end)
    return [(a + timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]


def run_days(uc: UseCase | str, days: list[str], master: str = "local[2]",
             lake: Lake | None = None) -> dict[str, Any]:
    """Land, gate, transform (one spark-submit for all days) and publish ``days`` in order."""
    uc = load_usecase(uc) if isinstance(uc, str) else uc
    lake = lake or Lake.for_usecase(uc.name)
    days = sorted(days)
    for ds in days:
        land_day(uc, ds, lake)
        validate_raw(uc, ds, lake)
    transform(uc, days, master, lake)
    return {ds: validate_and_publish(uc, ds, lake) for ds in days}


def cli(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="glideslope etl", description="Run the ETL stage outside Airflow.")
    ap.add_argument("--usecase", default=None, help="use case (required when there is more than one)")
    ap.add_argument("--start", required=True, help="first logical day YYYY-MM-DD")
    ap.add_argument("--end", help="last logical day (default: --start)")
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        uc = resolve_usecase(args.usecase)
    except SpecError as e:
        print(f"glideslope etl: {e}", file=sys.stderr)
        return 2
    try:
        out = run_days(uc, days_between(args.start, args.end or args.start), args.master)
    except DataQualityError as e:
        print(str(e), file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2))
    return 0
