"""The Spark side of the ETL (runs under spark-submit; see ``spark_jobs/transform.py``).

For a range of logical days it calls the use case's ``transform.build(inputs, days)`` once (the
raw deliveries of the range and its look-back window read once, every day built set-wise) and
writes every output as ONE Parquet file per day into the lake's staging area. A night is the range
of one day. Nothing is published here: the quality gate after the job decides what becomes
visible.
"""

from __future__ import annotations

import argparse
import logging
import re
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from glideslope.config import load_usecase, settings
from glideslope.lake import Lake
from glideslope.usecase_modules import load_module

log = logging.getLogger("glideslope.etl.spark_job")


DS_IN_PATH = r"/ds=(\d{4}-\d{2}-\d{2})/"


def _days_back(days: list[str], lookback_days: int) -> list[str]:
    """Each of ``days`` and the ``lookback_days`` before it (a range with a rejected day in it
    does not read that day's other files unless a later day's window does)."""
    out: set[str] = set()
    for d in days:
        day = date.fromisoformat(d)
        out.update((day - timedelta(days=i)).isoformat() for i in range(lookback_days + 1))
    return sorted(out)


def _ds_of(path: str) -> str | None:
    found = re.search(DS_IN_PATH, path)
    return found.group(1) if found else None


class SparkInputs:
    """Raw-zone readers handed to a use case's transform."""

    def __init__(self, spark: Any, lake: Lake, null_markers: dict[str, list[str]] | None = None,
                 uc: Any = None):
        self.spark = spark
        self.lake = lake
        self.uc = uc  # the use case: the suites that declare a source's columns
        self.ds: str | None = None  # the day whose reference versions are read (set by stage_days)
        self.lookback: dict[str, int] = {}  # source -> the longest look-back the transform asked for
        self.null_markers = null_markers or {}  # source -> its spec's null_markers
        self.read: list[str] = []  # every file handed to the transform: its lineage inputs

    def _read_landed(self, paths: list[str], source: str | None = None) -> Any:
        """The gated readings of landed files (``paths``: the delivered CSVs, or their readings).

        Nothing is parsed here: the raw gate read each delivery once and kept that table beside it
        as Parquet, every column text and the source's null markers already null (ADR 0015), so the
        transform reads exactly the rows and values the gate validated. Each reading is first proven
        to be the one the gate wrote (its manifest checksum); a changed or missing one fails naming
        the file (``RawFileChanged``/``RawFileMissing``). ``source`` only names it in errors.
        """
        from glideslope.data.landing import check_parsed

        delivered = [p[: -len(".parquet")] + ".csv" if p.endswith(".parquet") else p for p in paths]
        if not delivered:
            raise FileNotFoundError(f"no landed {source or ''} file to read".replace("  ", " "))
        readings = [check_parsed(self.lake, p) for p in delivered]
        self.read += [p for p in delivered if p not in self.read]  # lineage names the delivered files
        return self.spark.read.parquet(*readings)

    def raw(self, source: str, days: list[str], lookback_days: int = 0) -> Any:
        """Every landed (and not quarantined) file of ``source`` for ``days`` and the
        ``lookback_days`` before each of them, with a ``ds`` column: the day each row was
        delivered for. Days with no file are skipped (a quiet night, a rejected delivery); with
        no file at all the frame is empty, with the columns of the source's suite.
        """
        from pyspark.sql import functions as F

        span = _days_back(days, lookback_days)
        self.lookback[source] = max(lookback_days, self.lookback.get(source, 0))
        paths = [p for p in (self.lake.raw(source, d) for d in span) if self.lake.exists(p)]
        if not paths:
            return self._empty(source)
        frame = self._read_landed(paths, source)
        if "ds" in frame.columns:
            raise ValueError(f"raw source {source!r} has a column named 'ds', which the ETL reserves for the "
                             "delivery day: rename it in the feed")
        return frame.withColumn("ds", F.regexp_extract(F.input_file_name(), DS_IN_PATH, 1))

    def _empty(self, source: str) -> Any:
        """No delivery of ``source`` in the span: an empty frame of its declared columns (all text)."""
        from pyspark.sql.types import StringType, StructField, StructType

        suite = None
        if self.uc is not None:
            spec = next((s for s in self.uc.sources if s.name == source), None)
            if spec is not None and spec.suite:
                from glideslope.quality.suites import load_suite

                suite = load_suite(self.uc, spec.suite)
        if suite is None:
            raise FileNotFoundError(f"no raw {source!r} file landed under {self.lake.base}/raw/{source}, and no "
                                    "suite declares its columns")
        names = [*suite.columns, "ds"]
        return self.spark.createDataFrame([], StructType([StructField(c, StringType()) for c in names]))

    def inputs_of(self, ds: str) -> list[str]:
        """The files day ``ds``'s outputs were built from: each source's files of ``ds`` and its
        look-back window, and every reference file read."""
        out = []
        for path in self.read:
            day = _ds_of(path)
            if day is None:
                out.append(path)  # reference data
                continue
            source = path.split("/raw/", 1)[-1].split("/", 1)[0]
            first = (date.fromisoformat(ds) - timedelta(days=self.lookback.get(source, 0))).isoformat()
            if first <= day <= ds:
                out.append(path)
        return sorted(set(out))

    def reference(self, name: str, ds: str | None = None) -> Any:
        """The version of reference ``name`` in effect on day ``ds`` (default: the day being built,
        ``self.ds``, when the stage sets it; else the latest version), as the gate read it."""
        from glideslope.data.landing import reference_path

        day = ds or getattr(self, "ds", None)
        if day is None:
            versions = self.lake.reference_versions(name)
            day = versions[-1] if versions else "9999-12-31"
        path = reference_path(self.lake, name, day)
        return self._read_landed([path], name)


# Session settings the transform relies on (time zone, output encoding); valid for a classic
# session and for a Spark Connect session alike.
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.parquet.compression.codec": "snappy",
}


def spark_session(app_name: str, remote: str | None = None) -> Any:
    """A classic session (under spark-submit), or one on a Spark Connect server at ``remote``."""
    from pyspark.sql import SparkSession

    if remote:
        spark = SparkSession.builder.remote(remote).appName(app_name).getOrCreate()
        for key, value in SESSION_CONF.items():
            spark.conf.set(key, value)
        return spark
    return (
        SparkSession.builder.appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.parquet.compression.codec", "snappy")
        .getOrCreate()
    )


def _canonical(table: Any) -> Any:
    """``table`` in one row order whatever order Spark produced: sorted by its columns, left to
    right (nested columns cannot be sorted and are left out of the key). A day's partition is then
    the same bytes whether it was built alone or inside a range."""
    import pyarrow as pa

    keys = [(f.name, "ascending") for f in table.schema if not pa.types.is_nested(f.type)]
    return table.sort_by(keys) if keys and table.num_rows > 1 else table


def _stable_write(table: Any, lake: Lake, final: str, scratch: Path) -> int:
    """Write ``table`` to ``final`` through pyarrow (atomic publish); return its row count.

    Re-encoded with pyarrow: parquet-mr orders column encodings by JVM identity hash, so the same
    data written twice differs in a few bytes. pyarrow's output is byte-for-byte reproducible,
    which makes "rerun day D" verifiable by checksum.
    """
    import pyarrow.parquet as pq

    stable = scratch / (final.replace("/", "_") + ".stable.parquet")
    pq.write_table(table.replace_schema_metadata(None), stable, compression="snappy")
    lake.publish_file(stable, final)
    return int(table.num_rows)


def write_day_partitions(df: Any, lake: Lake, output: str, days: list[str], scratch: Path) -> dict[str, int]:
    """Write output ``output`` of a transform (one frame for every day, routed by its ``ds``
    column) as one staged Parquet file per day of ``days``; return each day's row count.

    One Spark write for the whole range (partitioned by ``ds``), then each day's file is put in
    canonical row order and re-encoded. A curated table keeps ``ds`` as a column (the label and
    scoring tables are read by day); a feature table's day is its ``event_timestamp``, so ``ds``
    is dropped. A day with no rows gets a file with no rows and the same schema.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if "ds" not in df.columns:
        raise ValueError(f"transform output {output!r} has no 'ds' column: every output frame says which day each "
                         "row belongs to (docs/usecase-guide.md#the-transform)")
    columns = list(df.columns)
    keep_ds = output.startswith("curated/")
    out = scratch / output.replace("/", "_")
    df.repartition("ds").write.mode("overwrite").partitionBy("ds").parquet(str(out))
    written = {p.name.removeprefix("ds="): p for p in out.glob("ds=*")}
    stray = sorted(set(written) - set(days))
    if stray:
        raise ValueError(f"transform output {output!r} has rows for day(s) {stray[:5]} outside the days built "
                         f"({days[0]}..{days[-1]}): filter each output to the requested days")
    empty_schema = None
    counts: dict[str, int] = {}
    for ds in days:
        parts = sorted(written[ds].glob("part-*.parquet")) if ds in written else []
        if parts:
            table = pa.concat_tables([pq.read_table(p) for p in parts])
        else:
            if empty_schema is None:
                empty_schema = _empty_schema(df, out.with_name(out.name + "_empty"))
            table = empty_schema.empty_table()
        if keep_ds:
            table = table.add_column(columns.index("ds"), "ds", pa.array([ds] * table.num_rows, pa.string()))
        counts[ds] = _stable_write(_canonical(table), lake, lake.staging(ds, output), scratch)
    return counts


def _empty_schema(df: Any, folder: Path) -> Any:
    """The Parquet schema Spark writes for ``df`` without its ``ds`` column (for a day with no rows)."""
    import pyarrow.parquet as pq

    df.drop("ds").limit(0).coalesce(1).write.mode("overwrite").parquet(str(folder))
    parts = sorted(folder.glob("part-*.parquet"))
    if not parts:
        raise RuntimeError(f"Spark wrote no file for the empty frame in {folder}")
    return pq.read_schema(parts[0]).remove_metadata()


def reference_groups(uc: Any, days: list[str], lake: Lake) -> list[list[str]]:
    """``days`` cut into runs of consecutive days that use the same version of every reference
    source (a re-issued reference takes effect on a day: the days before keep the old one)."""
    refs = [s.name for s in uc.sources if s.kind == "reference"]
    if not refs or not days:
        return [days] if days else []
    from glideslope.data.landing import reference_path

    def versions(ds: str) -> tuple[str, ...]:
        return tuple(reference_path(lake, name, ds) if lake.reference_versions(name) else "" for name in refs)

    groups: list[list[str]] = []
    last: tuple[str, ...] | None = None
    for ds in days:
        key = versions(ds)
        if key != last:
            groups.append([])
            last = key
        groups[-1].append(ds)
    return groups


def run(usecase: str, days: list[str], lake_root: str | None = None,
        remote: str | None = None) -> dict[str, dict[str, int]]:
    """Transform ``days`` into the staging area; on a Spark Connect server when ``remote`` is set."""
    uc = load_usecase(usecase)
    cfg = settings()
    lake = Lake(root=(lake_root or cfg.lake_root).rstrip("/"), usecase=uc.name, s3_endpoint_url=cfg.s3_endpoint_url)
    spark = spark_session(f"{uc.name}-etl", remote)
    try:
        return stage_days(spark, uc.name, days, lake)
    finally:
        spark.stop()


def stage_days(spark: Any, usecase: str, days: list[str], lake: Lake) -> dict[str, dict[str, int]]:
    """Transform ``days`` into the staging area of ``lake`` on an open session (left open).

    Set-wise: the transform builds every day of the range at once (``build(inputs, days)``), its
    raw deliveries read once; each output is written by one Spark job and cut into one staged file
    per day. A range whose reference data changes version on a day is built in one pass per
    version.
    """
    uc = load_usecase(usecase)
    transform = load_module(uc, uc.transform)
    days = sorted(set(days))
    summary: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="glideslope-spark-") as tmp:
        for group in reference_groups(uc, days, lake):
            t0 = time.monotonic()
            inputs = SparkInputs(spark, lake, {s.name: s.null_markers for s in uc.sources}, uc=uc)
            inputs.ds = group[-1]  # the reference versions of this group are those of any of its days
            outputs = transform.build(inputs, group)
            counts: dict[str, dict[str, int]] = {}
            for name, df in outputs.items():
                t1 = time.monotonic()
                counts[name] = write_day_partitions(df, lake, name, group, Path(tmp))
                print(f"[glideslope] {uc.name} {group[0]}..{group[-1]} staged {name}: "
                      f"{sum(counts[name].values())} rows in {len(group)} day(s), {time.monotonic() - t1:.1f}s",
                      flush=True)
            for ds in group:
                summary[ds] = {name: c[ds] for name, c in counts.items()}
                # What the outputs were made from (the trailing window's raw days, the reference
                # data), for the publishing task's lineage: glideslope.lineage.publication.
                lake.write_json(lake.staging_inputs(ds), inputs.inputs_of(ds))
            log.info("transformed %d day(s) %s..%s in %.1fs", len(group), group[0], group[-1], time.monotonic() - t0)
    return summary


def parse_days(ds: list[str] | None, days: str | None, start: str | None, end: str | None) -> list[str]:
    """The days of a job's arguments: repeated ``--ds``, a comma list ``--days``, or ``--start``/``--end``."""
    out = list(ds or []) + [d.strip() for d in (days or "").split(",") if d.strip()]
    if start or end:
        from glideslope.runrequest import day_range

        out += day_range(start, end)
    for d in out:
        date.fromisoformat(d)
    return sorted(set(out))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run a use case's Spark transform for one or more days.")
    ap.add_argument("--usecase", required=True)
    ap.add_argument("--ds", action="append", help="logical day YYYY-MM-DD (repeatable)")
    ap.add_argument("--days", help="comma-separated logical days")
    ap.add_argument("--start", help="first day of a range")
    ap.add_argument("--end", help="last day of a range")
    ap.add_argument("--lake-root", default=None, help="override GLIDESLOPE_LAKE_ROOT")
    args = ap.parse_args(argv)
    days = parse_days(args.ds, args.days, args.start, args.end)
    if not days:
        ap.error("no day given: --ds, --days or --start/--end")
    from glideslope.runtime import die_with_parent

    die_with_parent()  # under spark-submit the parent is the JVM: its death ends this driver too
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(args.usecase, days, args.lake_root)
    return 0
