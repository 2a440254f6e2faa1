"""The Spark side of the ETL (runs under spark-submit; see ``spark_jobs/transform.py``).

For each logical day it calls the use case's ``transform.build(inputs, ds)`` and writes every
output as ONE Parquet file into the lake's staging area. Nothing is published here: the quality
gate after the job decides what becomes visible.
"""

from __future__ import annotations

import argparse
import glob
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from glideslope.config import load_usecase, settings
from glideslope.lake import Lake
from glideslope.usecase_modules import load_module

log = logging.getLogger("glideslope.etl.spark_job")


class SparkInputs:
    """Raw-zone readers handed to a use case's transform."""

    def __init__(self, spark: Any, lake: Lake, null_markers: dict[str, list[str]] | None = None):
        self.spark = spark
        self.lake = lake
        self.null_markers = null_markers or {}  # source -> its spec's null_markers
        self.read: list[str] = []  # every file handed to the transform: its lineage inputs

    def _read_csv(self, paths: list[str], null_markers: list[str] | None = None) -> Any:
        """Every column as text; a cell that is one of ``null_markers`` (default ``NA``) or empty is null.

        enforceSchema=False: every file's header is checked against the columns (Spark otherwise
        maps the columns of every file by the position of the first file's header).
        """
        from pyspark.sql import functions as F

        df = self.spark.read.csv(paths, header=True, emptyValue=None, mode="FAILFAST", enforceSchema=False)
        markers = [m for m in (["NA", ""] if null_markers is None else null_markers) if m != ""]
        if not markers:
            return df
        return df.select([F.when(F.col(f"`{c}`").isin(markers), F.lit(None)).otherwise(F.col(f"`{c}`")).alias(c)
                          for c in df.columns])

    def raw(self, source: str, days: list[str]) -> Any:
        """Every landed (and not quarantined) file of ``source`` for ``days``; missing days are skipped."""
        paths = [p for p in (self.lake.raw(source, d) for d in days) if self.lake.exists(p)]
        if not paths:
            raise FileNotFoundError(f"no raw {source!r} file landed for {days[0]}..{days[-1]} under "
                                    f"{self.lake.base}/raw/{source}")
        self.read += paths
        return self._read_csv(paths, self.null_markers.get(source))

    def reference(self, name: str) -> Any:
        path = self.lake.reference(name)
        if not self.lake.exists(path):
            raise FileNotFoundError(f"reference data {name!r} has not landed: {path}")
        self.read.append(path)
        return self._read_csv([path])


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


def write_single_parquet(df: Any, lake: Lake, final: str, scratch: Path) -> int:
    """Write ``df`` (already ordered) as one Parquet file at ``final`` (atomic); return its row count."""
    out = scratch / final.replace("/", "_")
    df.coalesce(1).write.mode("overwrite").parquet(str(out))
    parts = sorted(glob.glob(str(out / "part-*.parquet")))
    if len(parts) != 1:
        raise RuntimeError(f"expected one Parquet part in {out}, found {len(parts)}")
    # Re-encode with pyarrow: parquet-mr orders column encodings by JVM identity hash, so the same
    # data written twice differs in a few bytes. pyarrow's output is byte-for-byte reproducible,
    # which makes "rerun day D" verifiable by checksum.
    import pyarrow.parquet as pq

    table = pq.read_table(parts[0])
    stable = out.with_suffix(".stable.parquet")
    pq.write_table(table.replace_schema_metadata(None), stable, compression="snappy")
    lake.publish_file(stable, final)
    return table.num_rows


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
    """Transform ``days`` into the staging area of ``lake`` on an open session (left open)."""
    uc = load_usecase(usecase)
    transform = load_module(uc, uc.transform)
    inputs = SparkInputs(spark, lake, {s.name: s.null_markers for s in uc.sources})
    summary: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="glideslope-spark-") as tmp:
        for ds in days:
            t0 = time.monotonic()
            inputs.read = []
            outputs = transform.build(inputs, ds)
            summary[ds] = {name: write_single_parquet(df, lake, lake.staging(ds, name), Path(tmp))
                           for name, df in outputs.items()}
            # What the outputs were made from (the trailing window's raw days, the reference
            # data), for the publishing task's lineage: glideslope.lineage.publication.
            lake.write_json(lake.staging_inputs(ds), sorted(set(inputs.read)))
            log.info("transformed %s in %.1fs: %s", ds, time.monotonic() - t0, summary[ds])
            print(f"[glideslope] {uc.name} {ds} staged {summary[ds]}", flush=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run a use case's Spark transform for one or more days.")
    ap.add_argument("--usecase", required=True)
    ap.add_argument("--ds", action="append", required=True, help="logical day YYYY-MM-DD (repeatable)")
    ap.add_argument("--lake-root", default=None, help="override GLIDESLOPE_LAKE_ROOT")
    args = ap.parse_args(argv)
    from glideslope.runtime import die_with_parent

    die_with_parent()  # under spark-submit the parent is the JVM: its death ends this driver too
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(args.usecase, sorted(set(args.ds)), args.lake_root)
    return 0
