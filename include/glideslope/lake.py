"""The lake: zones, partition paths and atomic publication, for local paths and ``s3://`` URIs.

Layout under ``<lake_root>/<usecase>/``::

    raw/<source>/ds=YYYY-MM-DD/<source>.csv      append-only landing zone (never rewritten)
    reference/<name>.csv                          slowly changing reference data
    quarantine/<source>/ds=YYYY-MM-DD/...         files that failed validation, with _reason.json
    _staging/ds=YYYY-MM-DD/<zone>/<table>/...      transform outputs waiting for their quality gate
    curated/<table>/ds=YYYY-MM-DD/data.parquet     cleaned tables (labels)
    features/<table>/ds=YYYY-MM-DD/data.parquet    feature tables read by Feast
    predictions/ds=YYYY-MM-DD/data.parquet         precomputed scores
    reports/<kind>/ds=YYYY-MM-DD/...               drift reports and their numbers
    state/                                         small JSON state (drift monitor, guards)

A partition is one file. Publication writes a staging file beside it and renames it into
place (``os.replace`` locally, copy-then-delete on S3), so a reader sees the old file or the
new one, never a half-written one.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec

from glideslope.config import Settings, settings


def filesystem(uri: str, s3_endpoint_url: str | None = None) -> fsspec.AbstractFileSystem:
    if uri.startswith("s3://"):
        kwargs: dict[str, Any] = {}
        if s3_endpoint_url:
            kwargs["client_kwargs"] = {"endpoint_url": s3_endpoint_url}
        return fsspec.filesystem("s3", **kwargs)
    return fsspec.filesystem("file")


def storage_options(uri: str, s3_endpoint_url: str | None = None) -> dict[str, Any]:
    """Options for pandas/pyarrow readers and writers of ``uri``."""
    if uri.startswith("s3://") and s3_endpoint_url:
        return {"client_kwargs": {"endpoint_url": s3_endpoint_url}}
    return {}


@dataclass(frozen=True)
class Lake:
    """Paths and atomic I/O for one use case's part of the lake."""

    root: str
    usecase: str
    s3_endpoint_url: str | None = None

    @classmethod
    def for_usecase(cls, usecase: str, cfg: Settings | None = None) -> Lake:
        cfg = cfg or settings()
        return cls(root=cfg.lake_root.rstrip("/"), usecase=usecase, s3_endpoint_url=cfg.s3_endpoint_url)

    # -- paths -------------------------------------------------------------------------------
    @property
    def base(self) -> str:
        return f"{self.root}/{self.usecase}"

    @property
    def is_remote(self) -> bool:
        return self.root.startswith("s3://")

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        return filesystem(self.root, self.s3_endpoint_url)

    @property
    def storage_options(self) -> dict[str, Any]:
        return storage_options(self.root, self.s3_endpoint_url)

    def raw(self, source: str, ds: str) -> str:
        return f"{self.base}/raw/{source}/ds={ds}/{source}.csv"

    def reference(self, name: str) -> str:
        return f"{self.base}/reference/{name}.csv"

    def quarantine(self, source: str, ds: str) -> str:
        return f"{self.base}/quarantine/{source}/ds={ds}"

    def curated(self, table: str, ds: str | None = None) -> str:
        return self._partitioned(f"{self.base}/curated/{table}", ds)

    def features(self, table: str, ds: str | None = None) -> str:
        return self._partitioned(f"{self.base}/features/{table}", ds)

    def features_glob(self, table: str) -> str:
        return f"{self.base}/features/{table}/ds=*/data.parquet"

    def predictions(self, ds: str | None = None) -> str:
        return self._partitioned(f"{self.base}/predictions", ds)

    def staging(self, ds: str, output: str) -> str:
        """Where the transform leaves ``output`` ("zone/table") of day ``ds`` until it is validated."""
        return f"{self.base}/_staging/ds={ds}/{output}/data.parquet"

    def output(self, ds: str, output: str) -> str:
        """Published path of a transform output "curated/<table>" or "features/<table>"."""
        zone, table = output.split("/", 1)
        if zone not in ("curated", "features"):
            raise ValueError(f"unknown output zone {zone!r} in {output!r}")
        return f"{self.base}/{zone}/{table}/ds={ds}/data.parquet"

    def report_dir(self, kind: str, ds: str) -> str:
        return f"{self.base}/reports/{kind}/ds={ds}"

    def state(self, name: str) -> str:
        return f"{self.base}/state/{name}.json"

    @staticmethod
    def _partitioned(table_dir: str, ds: str | None) -> str:
        return table_dir if ds is None else f"{table_dir}/ds={ds}/data.parquet"

    def partitions(self, table_dir: str) -> list[str]:
        """The ``ds`` values present under a partitioned table folder, sorted."""
        fs = self.fs
        if not fs.exists(table_dir):
            return []
        out = []
        for p in fs.ls(table_dir, detail=False):
            name = p.rstrip("/").rsplit("/", 1)[-1]
            if name.startswith("ds=") and fs.exists(f"{p}/data.parquet"):
                out.append(name[3:])
        return sorted(out)

    # -- I/O ---------------------------------------------------------------------------------
    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

    @contextmanager
    def publishing(self, final: str) -> Iterator[str]:
        """Yield a staging path; on clean exit it replaces ``final`` in one step.

        On an exception the staging file is removed and ``final`` is left as it was.
        """
        fs = self.fs
        parent = final.rsplit("/", 1)[0]
        fs.makedirs(parent, exist_ok=True)
        staging = f"{parent}/.staging-{uuid.uuid4().hex}-{final.rsplit('/', 1)[1]}"
        try:
            yield staging
            if self.is_remote:
                fs.copy(staging, final)  # S3 PUT of a whole object is atomic for readers
                fs.rm(staging)
            else:
                os.replace(staging, final)
        except BaseException:
            if fs.exists(staging):
                fs.rm(staging, recursive=True)
            raise

    def publish_bytes(self, final: str, data: bytes) -> None:
        with self.publishing(final) as staging, self.fs.open(staging, "wb") as f:
            f.write(data)

    def publish_file(self, local_file: str | Path, final: str) -> None:
        """Upload or move a local file into place atomically."""
        with self.publishing(final) as staging:
            self.fs.put_file(str(local_file), staging) if self.is_remote else os.replace(local_file, staging)

    def publish_parquet(self, df: Any, final: str) -> None:
        """Write a pandas DataFrame as one Parquet file (µs timestamps, so Spark reads it)."""
        import io

        buf = io.BytesIO()
        df.to_parquet(buf, index=False, coerce_timestamps="us", allow_truncated_timestamps=True)
        self.publish_bytes(final, buf.getvalue())

    def read_parquet(self, path: str, **kwargs: Any) -> Any:
        import pandas as pd

        return pd.read_parquet(path, storage_options=self.storage_options or None, **kwargs)

    def read_json(self, path: str, default: Any = None) -> Any:
        if not self.fs.exists(path):
            return default
        with self.fs.open(path, "rb") as f:
            return json.loads(f.read())

    def write_json(self, path: str, obj: Any) -> None:
        self.publish_bytes(path, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())

    def local_path(self, path: str) -> Path:
        """A local ``Path`` for a lake path; fails clearly for remote lakes."""
        if self.is_remote:
            raise ValueError(f"{path} is remote; this step needs a local path")
        return Path(path)
