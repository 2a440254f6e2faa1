"""The ETL stage as plain functions; the Airflow DAG and the CLI both call these.

    land_day -> validate_raw (quarantine on failure) -> spark transform (staging)
             -> validate_and_publish (quarantine staged outputs on failure)
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import os
import re
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from glideslope.config import PROJECT_ROOT, SourceSpec, SpecError, UseCase, load_usecase, resolve_usecase
from glideslope.contract import check_outputs
from glideslope.data.landing import land_day
from glideslope.errors import PermanentError
from glideslope.lake import Lake, LakeBusy
from glideslope.quality.suites import Suite, load_suite
from glideslope.quality.validate import (
    DataQualityError,
    Failure,
    ValidationReport,
    bad_row_reasons,
    validate_frame,
)

log = logging.getLogger(__name__)

SPARK_JOB = PROJECT_ROOT / "spark_jobs" / "transform.py"


def _quarantine(lake: Lake, src: str, source: str, ds: str, report: ValidationReport) -> str:
    """Move ``src`` into a new quarantine slot of ``source``/``ds`` with the reason beside it.

    Every quarantined delivery gets its own slot, so a second bad delivery of the same day (or a
    failed output of a rerun) never overwrites the first. Nothing is deleted. A landed file leaves
    the raw zone with its manifest record (a fixed re-delivery then lands afresh).
    """
    from glideslope.data.landing import forget

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
    if src.startswith((f"{lake.base}/raw/", f"{lake.base}/reference/")):
        forget(lake, src)
    log.warning("quarantined %s -> %s", src, dest)
    return dest


def _delivery_day(ds: str, offset: int) -> str:
    return (date.fromisoformat(ds) + timedelta(days=offset)).isoformat()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _csv_fields(*values: Any) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(values)
    return buf.getvalue().encode()


def _quarantine_rows(lake: Lake, uc: UseCase, source: SourceSpec, ds: str, data: bytes,
                     report: ValidationReport, suite: Suite, parsed: Any = None) -> tuple[ValidationReport, Any] | None:
    """Under ``on_bad_rows: quarantine_rows``: keep the good rows of a delivery, quarantine the rest.

    Returns the report and the parsed table of the kept rows when that cures the delivery (every
    failure was row-level, at most ``max_bad_rows`` of the rows were bad, and the kept rows pass the
    whole suite), else None and the delivery is rejected as a whole. The delivery as it came, its
    bad rows (each with its reason) and ``_reason.json`` go to a new quarantine slot; the raw file
    then holds the good rows, byte for byte as delivered, recorded anew in the manifest.
    """
    from glideslope.data.landing import record
    from glideslope.quality.validate import parse_delivery, text_frame, validate_parsed

    if parsed is None:
        parsed = parse_delivery(data, report.file, source.null_markers)
    if parsed.table is None:
        return None  # not a readable table: nothing can be cut out of it
    day = _delivery_day(ds, source.day_offset)
    text = text_frame(parsed.table)
    reasons = bad_row_reasons(text, suite, day)
    bad = reasons != ""
    lines = data.split(b"\n")
    # One line per row (no quoted newlines), every line complete: rows can be cut out byte for byte.
    if not bad.any() or not data.endswith(b"\n") or len(lines) != len(text) + 2:
        return None
    if bad.sum() > source.max_bad_rows * len(text):
        log.warning("%s: %d of %d rows break row-level rules, more than max_bad_rows %.0f%%: the delivery is rejected",
                    report.file, int(bad.sum()), len(text), 100 * source.max_bad_rows)
        return None
    keep = [lines[0]] + [lines[i + 1] for i in range(len(text)) if not bad.iloc[i]] + [b""]
    kept = b"\n".join(keep)
    kept_parsed = parse_delivery(kept, report.file, source.null_markers)
    kept_report = validate_parsed(kept_parsed, suite, report.file, day=day)
    if not kept_report.success:
        return None
    bad_idx = [i for i in range(len(text)) if bad.iloc[i]]
    bad_lines = [lines[0].rstrip(b"\r") + b",_line,_reason"] + [
        lines[i + 1].rstrip(b"\r") + b"," + _csv_fields(i + 2, reasons.iloc[i]) for i in bad_idx]
    path = report.file
    slot = lake.quarantine_slot(source.name, ds)
    name = path.rsplit("/", 1)[1]
    lake.write_json(f"{slot}/_reason.json", {
        **report.summary(), "policy": "quarantine_rows", "rows_quarantined": int(bad.sum()),
        "rows_kept": kept_report.rows, "max_bad_rows": source.max_bad_rows, "moved_from": path,
        "delivery": f"{slot}/{name}", "bad_rows": f"{slot}/bad_rows.csv",
        "original_sha256": _sha256(data), "kept_sha256": _sha256(kept),
        "moved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    lake.publish_bytes(f"{slot}/bad_rows.csv", b"\n".join(bad_lines) + b"\n")
    lake.publish_bytes(f"{slot}/{name}", data)
    lake.publish_bytes(path, kept)  # last: until here the raw file is the delivery as it came
    record(lake, path, kept, delivered_sha256=_sha256(data), delivered_bytes=len(data), rows_quarantined_to=slot)
    log.warning("%s: quarantined %d of %d rows (%s) -> %s; %d rows kept", path, int(bad.sum()), len(text),
                "; ".join(sorted(set(reasons[bad])))[:300], slot, kept_report.rows)
    return kept_report, kept_parsed


def _keep_reading(lake: Lake, path: str, table: Any) -> str:
    """Write the gated reading of ``path`` beside it (Parquet, every column text) and record it."""
    import pyarrow.parquet as pq

    from glideslope.data.landing import record_parsed

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="snappy")
    data = buf.getvalue()
    lake.publish_bytes(lake.parsed(path), data)
    record_parsed(lake, path, data)
    return lake.parsed(path)


def validate_raw(uc: UseCase, ds: str, lake: Lake | None = None,
                 gated: dict[str, tuple[ValidationReport, Any]] | None = None) -> dict[str, Any]:
    """Gate day ``ds``'s raw files and the reference data in effect on ``ds``.

    Each file is first proven unchanged since it landed (its manifest checksum; a changed or
    missing file raises :class:`~glideslope.data.landing.RawFileChanged` or ``RawFileMissing``),
    then read once (:func:`~glideslope.quality.validate.parse_delivery`) and that table validated
    against the source's suite (a source without one: structure only). A file that passes gets its
    reading written beside it, ``<name>.parquet``, which is all the transform reads (ADR 0015). On
    failure every failing file goes to quarantine and :class:`DataQualityError` names file, column,
    rule and bad-row count.

    A source with ``on_bad_rows: quarantine_rows`` loses only its bad rows (to quarantine, with
    their reason) when they are few enough; see :func:`_quarantine_rows`.
    """
    from glideslope.data.landing import read_checked, reference_path
    from glideslope.quality.validate import validate_delivery

    lake = lake or Lake.for_usecase(uc.name)
    reports, failed, rows_quarantined, readings = [], [], {}, {}
    where: dict[str, tuple[str, str]] = {}  # file -> (source, day of its quarantine folder)
    with lake.day_lock(ds):
        for source in uc.sources:
            if source.kind == "daily":
                path, day = lake.raw(source.name, ds), _delivery_day(ds, source.day_offset)
                if not source.every_night and not lake.exists(path):
                    log.info("%s: no %r delivery on %s (every_night: false): a quiet night for this source",
                             uc.name, source.name, ds)
                    continue
                where[path] = (source.name, ds)
            else:
                path, day = reference_path(lake, source.name, ds), None
                where[path] = (source.name, path.rsplit("/", 2)[1].split("=", 1)[1])
            data = read_checked(lake, path)
            suite = load_suite(uc, source.suite) if source.suite else None
            if gated and path in gated:  # a range's gate (gate_raw_days) judged this file already
                report, parsed = gated[path]
            else:
                report, parsed = validate_delivery(data, suite, path, day=day, null_markers=source.null_markers)
            if not report.success and source.on_bad_rows == "quarantine_rows" and suite is not None:
                cured = _quarantine_rows(lake, uc, source, ds, data, report, suite, parsed)
                if cured is not None:
                    rows_quarantined[source.name] = report.rows - cured[0].rows
                    report, parsed = cured
            del data
            reports.append(report)
            log.info("validated %s: %d rows, %d expectations, %s", path, report.rows, report.evaluated,
                     "ok" if report.success else f"{len(report.failures)} failures")
            if report.success:
                readings[path] = _keep_reading(lake, path, parsed.table)
            else:
                failed.append(report)
            del parsed
        if failed:
            moved = [_quarantine(lake, r.file, *where[r.file], r) for r in failed]
            raise DataQualityError(failed, moved)
    summary: list[dict[str, Any]] = [
        {"file": r.file, "rows": r.rows, "expectations": r.evaluated, "reading": readings[r.file]} for r in reports]
    return {"ds": ds, "files": [f for f in summary if "/raw/" in f["file"]],
            "references": [f for f in summary if "/raw/" not in f["file"]],  # the versions in effect on ds
            **({"rows_quarantined": rows_quarantined} if rows_quarantined else {})}


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
        str(SPARK_JOB), "--usecase", uc.name, "--days", ",".join(days), *lake_args,
    ]


def spark_env() -> dict[str, str]:
    from glideslope.runtime import java_home

    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    if "JAVA_HOME" not in env and java_home():
        env["JAVA_HOME"] = java_home() or ""
    return env


def spark_failure_cause(output: str, keep: int = 12) -> str:
    """The part of a failed Spark job's output that says why: the last Python traceback (or Java
    exception) and our own progress lines, not the JVM's shutdown log."""
    lines = output.splitlines()
    ours = [line for line in lines if line.startswith("[glideslope]")]
    start = max((i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")),
                default=None)
    if start is not None:
        block = lines[start:]
        # The exception's line is the first one back at column 0 that names a class (JVM log lines
        # begin with a date); our own errors need not end in Error (RawFileMissing).
        end = next((i for i, line in enumerate(block[1:], 1)
                    if re.match(r"^[A-Za-z_][\w.]*(: |$)", line)), len(block) - 1)
        cause = block[:end + 1]
        if len(cause) > keep:
            cause = [cause[0], "  ...", *cause[-(keep - 2):]]
        return "\n".join(ours + cause)
    errors = [line for line in lines if re.search(r"(Error|Exception)\b", line)
              and not re.search(r"\b(INFO|DEBUG)\b", line)]
    return "\n".join(ours + (errors[:keep] or lines[-keep:]))


def transform(uc: UseCase, days: list[str], master: str = "local[2]", lake: Lake | None = None) -> None:
    """spark-submit the use case's transform for ``days`` (outside Airflow: CLI, demo, tests).

    The JVM is bound to this process: when it dies (``kill -9`` included) the kernel kills
    spark-submit, so no orphan keeps staging outputs after the run is gone.
    """
    from glideslope.runtime import die_with_parent_preexec

    cmd = spark_submit_command(uc, days, master, lake)
    log.info("running %s", " ".join(cmd))
    proc = subprocess.run(cmd, env=spark_env(), capture_output=True, text=True,
                          preexec_fn=die_with_parent_preexec())  # noqa: PLW1509 - it only calls prctl
    if proc.returncode != 0:
        cause = spark_failure_cause(proc.stdout + "\n" + proc.stderr)
        raise RuntimeError(f"spark-submit failed (rc={proc.returncode}) for {uc.name} {days}:\n{cause}")


def _built_from(uc: UseCase, ds: str, lake: Lake) -> str:
    """The raw deliveries an output of ``ds`` is built from, for error messages."""
    return ", ".join(lake.raw(s.name, ds) for s in uc.sources if s.kind == "daily")


def validate_and_publish(uc: UseCase, ds: str, lake: Lake | None = None,
                         gated: dict[str, ValidationReport] | None = None) -> dict[str, Any]:
    """Gate the staged outputs of ``ds``; publish all of them only if every one passes.

    A failure names the output, the day and the raw deliveries it was built from (not the staging
    path), and the staged file goes to quarantine. ``gated`` holds reports of a range's gate
    (:func:`gate_outputs`) for outputs already validated exactly as this day alone would be.
    """
    lake = lake or Lake.for_usecase(uc.name)
    with lake.day_lock(ds):
        staged = {out: lake.staging(ds, out) for out in uc.output_suites}
        missing = [p for p in staged.values() if not lake.exists(p)]
        if missing:
            done = [lake.output(ds, out) for out in uc.output_suites if lake.exists(lake.output(ds, out))]
            why = (f"; {len(done)} of {len(staged)} outputs of {ds} are published, so another ETL run "
                   f"of {ds} has already published what it staged. Rerun the whole ETL of {ds} to rebuild "
                   "(a rerun gives byte-identical outputs)" if done else "; rerun the transform of this day")
            raise FileNotFoundError(f"transform outputs of {uc.name} {ds} are not staged: {missing}{why}")
        reports, frames, labels = {}, {}, {}
        for out, p in staged.items():
            labels[out] = label = f"{uc.name} {out} of {ds} (built from {_built_from(uc, ds, lake)})"
            try:
                frames[out] = lake.read_parquet(p)
            except Exception as e:  # a torn or foreign file: say which one, keep the published day
                raise DataQualityError([ValidationReport(label, uc.output_suites[out], 0, failures=[
                    Failure(label, None, f"staged file {p} is readable Parquet ({type(e).__name__}: {e})",
                            None)])], []) from e
        check_outputs(uc, frames)  # a table a later stage cannot read fails here, naming it
        for out, frame in frames.items():
            label = labels[out]
            report = (gated or {}).get(out) or validate_frame(frame, load_suite(uc, uc.output_suites[out]), label)
            report.file = label
            reports[out] = report
        failed = [r for r in reports.values() if not r.success]
        if failed:
            moved = [_quarantine(lake, staged[out], out.replace("/", "__"), ds, r)
                     for out, r in reports.items() if not r.success]
            raise DataQualityError(failed, moved)
        lake.publish_together(ds, {path: lake.output(ds, out) for out, path in staged.items()})
        published = {out: {"path": lake.output(ds, out), "rows": reports[out].rows} for out in staged}
    return {"ds": ds, "outputs": published}


def days_between(start: str, end: str) -> list[str]:
    a, b = date.fromisoformat(start), date.fromisoformat(end)
    return [(a + timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]


class BackfillIncomplete(RuntimeError):
    """Some days of a multi-day ETL could not be published; every other day was."""

    def __init__(self, published: dict[str, Any], failed: dict[str, str]):
        self.published = published
        self.failed = failed
        lines = "\n".join(f"  {ds}: {why}" for ds, why in sorted(failed.items()))
        total = len(published) + len(failed)
        super().__init__(f"published {len(published)} of {total} days; could not publish {len(failed)}:\n{lines}")


def day_failure(err: BaseException) -> str:
    """What a person reads for a day that could not be published (a data-quality report names the
    file, column and rule; a missing or changed file names the file)."""
    return str(err) if isinstance(err, DataQualityError) else f"{type(err).__name__}: {err}"


# A day's own problems: its delivery is bad, missing or changed since it landed. They fail that
# day and the rest of a range goes on; anything else (a service down, a full disk) stops the run.
DAY_ERRORS: tuple[type[BaseException], ...] = (DataQualityError, PermanentError, FileNotFoundError)


def gate_raw_days(uc: UseCase, days: list[str], lake: Lake) -> dict[str, tuple[ValidationReport, Any]]:
    """The raw gate of many landed days at once (file -> (report, its reading)), each file judged
    exactly as it would be on its night (:mod:`glideslope.quality.batch`); a reference version in
    effect on many days is validated once. :func:`validate_raw` then uses these instead of running
    the suite again. A file that cannot be read here is left to :func:`validate_raw`, which names it.
    """
    from glideslope.data.landing import read_checked, reference_path
    from glideslope.quality.batch import failing_days
    from glideslope.quality.suites import text_expectations, value_expectations
    from glideslope.quality.validate import (
        cast_columns,
        day_failures,
        header_failures,
        parse_delivery,
        text_frame,
        validate_delivery,
        validate_parsed,
    )

    gated: dict[str, tuple[ValidationReport, Any]] = {}
    if len(days) < 2:
        return gated
    for source in uc.sources:
        suite = load_suite(uc, source.suite) if source.suite else None
        if source.kind != "daily":
            for path in sorted({reference_path(lake, source.name, ds) for ds in days}):
                try:
                    data = read_checked(lake, path)
                except DAY_ERRORS:
                    continue
                gated[path] = validate_delivery(data, suite, path, null_markers=source.null_markers)
            continue
        if suite is None:
            continue
        parsed: dict[str, Any] = {}
        files: dict[str, str] = {}
        for ds in days:
            path = lake.raw(source.name, ds)
            try:
                data = read_checked(lake, path)
            except DAY_ERRORS:
                continue
            parsed[ds], files[ds] = parse_delivery(data, path, source.null_markers), path
            del data
        delivery_day = {ds: _delivery_day(ds, source.day_offset) for ds in parsed}
        # Unreadable, misheaded or off-day files are validated on their own; the rest in batches.
        suspects = {ds for ds, p in parsed.items() if p.table is None or p.failures
                    or header_failures(p.header, suite, files[ds])}
        text = {ds: text_frame(p.table) for ds, p in parsed.items() if ds not in suspects}
        suspects |= {ds for ds, t in text.items() if day_failures(t, suite, files[ds], delivery_day[ds])}
        rest = {ds: t for ds, t in text.items() if ds not in suspects}
        text_rules, value_rules = text_expectations(suite), value_expectations(suite, typed=False)
        flagged = failing_days(rest, text_rules, suite.name)
        typed = {ds: cast_columns(t, suite) for ds, t in rest.items() if ds not in flagged}
        flagged |= failing_days(typed, value_rules, suite.name)
        del text, rest, typed
        for ds, p in parsed.items():
            if ds in suspects or ds in flagged:
                gated[files[ds]] = (validate_parsed(p, suite, files[ds], delivery_day[ds]), p)
            else:
                gated[files[ds]] = (ValidationReport(files[ds], suite.name, p.table.num_rows,
                                                     evaluated=len(text_rules) + len(value_rules)), p)
        log.info("%s: raw gate of %s for %d days: %d validated on their own", uc.name, source.name, len(parsed),
                 len(suspects | flagged))
    return gated


def land_and_gate(uc: UseCase, days: list[str], lake: Lake) -> tuple[list[str], dict[str, str], dict[str, Any]]:
    """Land and gate every day of ``days``: (the days that passed, day -> why it failed, day -> its gate result).

    A day whose delivery is rejected (quarantined), missing or changed since it landed fails on
    its own, named with its reason; the others go on.
    """
    good: list[str] = []
    failed: dict[str, str] = {}
    results: dict[str, Any] = {}
    t0 = time.monotonic()
    landed = []
    for ds in days:
        try:
            land_day(uc, ds, lake)
            landed.append(ds)
        except DAY_ERRORS as e:
            log.error("%s %s: day not landed, the others go on:\n%s", uc.name, ds, day_failure(e))
            failed[ds] = day_failure(e)
    if len(days) > 1:
        log.info("%s: landed %d of %d days in %.0fs", uc.name, len(landed), len(days), time.monotonic() - t0)
    gated = gate_raw_days(uc, landed, lake)
    for i, ds in enumerate(landed, 1):
        try:
            results[ds] = validate_raw(uc, ds, lake, gated)
            good.append(ds)
        except DAY_ERRORS as e:
            log.error("%s %s: day not published, the others go on:\n%s", uc.name, ds, day_failure(e))
            failed[ds] = day_failure(e)
        if len(landed) > 1 and (i % 20 == 0 or i == len(landed)):
            log.info("%s: gated %d of %d days (%d rejected) in %.0fs", uc.name, i, len(landed), len(failed),
                     time.monotonic() - t0)
    return good, failed, results


def gate_outputs(uc: UseCase, days: list[str], lake: Lake) -> dict[str, dict[str, ValidationReport]]:
    """The output gate of many days at once (day -> output -> report), each day judged exactly as
    if alone (:mod:`glideslope.quality.batch`): a few GX runs per output instead of one per day."""
    from glideslope.quality.batch import validate_by_day
    from glideslope.quality.suites import value_expectations

    out: dict[str, dict[str, ValidationReport]] = {ds: {} for ds in days}
    if len(days) < 2:
        return out  # a night: validate_and_publish runs the suite itself
    for output, suite_file in uc.output_suites.items():
        suite = load_suite(uc, suite_file)
        frames = {}
        for ds in days:
            path = lake.staging(ds, output)
            try:
                frames[ds] = lake.read_parquet(path)
            except Exception:  # noqa: BLE001 - missing or torn: validate_and_publish names it for that day
                continue
        labels = {ds: f"{uc.name} {output} of {ds}" for ds in frames}

        def exact(ds: str, frames: dict[str, Any] = frames, suite: Suite = suite,
                  labels: dict[str, str] = labels) -> ValidationReport:
            return validate_frame(frames[ds], suite, labels[ds])

        reports = validate_by_day(frames, value_expectations(suite, typed=True), suite.name, exact, labels)
        for ds, report in reports.items():
            out[ds][output] = report
        del frames
    return out


def publish_days(uc: UseCase, days: list[str], lake: Lake) -> tuple[dict[str, Any], dict[str, str]]:
    """Gate and publish the staged outputs of each of ``days``: (day -> what it published, day -> why not)."""
    published: dict[str, Any] = {}
    failed: dict[str, str] = {}
    t0 = time.monotonic()
    gated = gate_outputs(uc, days, lake)
    if len(days) > 1:
        log.info("%s: output gate of %d days in %.0fs", uc.name, len(days), time.monotonic() - t0)
    for ds in days:
        try:
            published[ds] = validate_and_publish(uc, ds, lake, gated.get(ds))
        except DAY_ERRORS as e:
            failed[ds] = day_failure(e)
    return published, failed


def run_days(uc: UseCase | str, days: list[str], master: str = "local[2]",
             lake: Lake | None = None, spark: Any = None) -> dict[str, Any]:
    """Land, gate, transform (one set-wise Spark pass for all days) and publish ``days``.

    A day whose raw delivery fails its gate (or is missing, or changed since it landed) is
    quarantined or named and skipped; every other day is transformed and published (a later day's
    trailing window then lacks the rejected delivery, as it would lack a day the feed never sent).
    When any day failed, :class:`BackfillIncomplete` is raised after the good days are published,
    naming each failed day and why. With ``spark`` (an open session) the transform runs on it
    instead of a spark-submit.
    """
    uc = load_usecase(uc) if isinstance(uc, str) else uc
    lake = lake or Lake.for_usecase(uc.name)
    days = sorted(set(days))
    with ExitStack() as locks:
        for ds in days:
            locks.enter_context(lake.day_lock(ds))
        good, failed, _ = land_and_gate(uc, days, lake)
        published: dict[str, Any] = {}
        if good and spark is not None:
            from glideslope.etl.spark_job import stage_days

            stage_days(spark, uc.name, good, lake)
        elif good:
            transform(uc, good, master, lake)
        published, not_published = publish_days(uc, good, lake)
        failed |= not_published
    if failed:
        raise BackfillIncomplete(published, failed)
    return published


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
    except BackfillIncomplete as e:
        print(json.dumps(e.published, indent=2))
        print(f"ETL incomplete: {len(e.published)} days published; could not publish {len(e.failed)}: "
              f"{', '.join(sorted(e.failed))}\n{e}", file=sys.stderr)
        return 1
    except (DataQualityError, LakeBusy) as e:
        print(str(e), file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2))
    return 0
