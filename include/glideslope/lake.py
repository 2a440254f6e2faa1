"""The lake: zones, partition paths and atomic publication, for local paths and ``s3://`` URIs.

Layout under ``<lake_root>/<usecase>/``::

    raw/<source>/ds=YYYY-MM-DD/<source>.csv      append-only landing zone (never rewritten)
    raw/<source>/ds=YYYY-MM-DD/<source>.parquet  the gated reading of that delivery (what Spark reads)
    reference/<name>/since=YYYY-MM-DD/<name>.csv  reference data, one folder per version and the day
                                                  it took effect (and its .parquet, as for raw)
    _manifest/<path under the use case>.json      sha256 and size of each landed file and its reading
    quarantine/<source>/ds=YYYY-MM-DD/<slot>/...  each file that failed validation, with _reason.json
    _staging/ds=YYYY-MM-DD/<zone>/<table>/...      transform outputs waiting for their quality gate
    curated/<table>/ds=YYYY-MM-DD/data.parquet     cleaned tables (labels)
    features/<table>/ds=YYYY-MM-DD/data.parquet    feature tables read by Feast
    predictions/ds=YYYY-MM-DD/data.parquet         precomputed scores
    reports/<kind>/ds=YYYY-MM-DD/...               drift reports and their numbers
    state/                                         small JSON state (drift monitor, guards)

A partition is one file. Publication writes a hidden staging file beside it (the same folder,
so the same filesystem), fsyncs it and renames it into place (``os.replace`` locally,
copy-then-delete on S3), so a reader sees the old file or the new one, never a half-written one.
A file made elsewhere (a temp folder, which may be a tmpfs) is *copied* into that staging file,
never renamed across filesystems. A writer killed half-way leaves its ``.staging-*`` file behind;
the next writer of that folder sweeps it (see :meth:`Lake.sweep_staging`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec

from glideslope.config import Settings, settings

log = logging.getLogger(__name__)

STAGING_PREFIX = ".staging-"
# A staging file of another host's writer that has not changed for this long is abandoned.
STALE_STAGING_SECONDS = 6 * 3600.0
_HOST = socket.gethostname().replace("-", "_").replace("/", "_") or "host"


class LakeBusy(RuntimeError):
    """Another writer holds the lock of a day (e.g. a second ETL run of the same day)."""




def _staging_name(name: str) -> str:
    """``.staging-<host>-<pid>-<uuid>-<name>``: hidden, unique, and says who writes it."""
    return f"{STAGING_PREFIX}{_HOST}-{os.getpid()}-{uuid.uuid4().hex}-{name}"


def _staging_owner(base: str) -> tuple[str | None, int | None]:
    parts = base[len(STAGING_PREFIX):].split("-", 3)
    if len(parts) == 4 and parts[1].isdigit() and len(parts[2]) == 32:
        return parts[0], int(parts[1])
    return None, None  # an older or foreign name: judged by age only


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _mtime(value: Any) -> float:
    return value.timestamp() if hasattr(value, "timestamp") else float(value)


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: str) -> None:
    """Make a rename in ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
    # Lock server of the writers that share this lake (see glideslope.locks); None: file locks.
    lock_url: str | None = None

    @classmethod
    def for_usecase(cls, usecase: str, cfg: Settings | None = None) -> Lake:
        cfg = cfg or settings()
        return cls(root=cfg.lake_root.rstrip("/"), usecase=usecase, s3_endpoint_url=cfg.s3_endpoint_url,
                   lock_url=cfg.lock_url)

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

    def reference_version(self, name: str, since: str) -> str:
        """The delivered file of the version of reference ``name`` that took effect on ``since``."""
        return f"{self.base}/reference/{name}/since={since}/{name}.csv"

    def reference_versions(self, name: str) -> list[str]:
        """The days on which a version of reference ``name`` took effect, oldest first."""
        folder = f"{self.base}/reference/{name}"
        fs = self.fs
        if not fs.exists(folder):
            return []
        out = []
        for p in fs.ls(folder, detail=False):
            entry = str(p).rstrip("/").rsplit("/", 1)[-1]
            if entry.startswith("since=") and fs.exists(f"{p}/{name}.csv"):
                out.append(entry[len("since="):])
        return sorted(out)

    @staticmethod
    def parsed(path: str) -> str:
        """The gated reading (Parquet, every column text) kept beside a delivered CSV ``path``."""
        return path[: -len(".csv")] + ".parquet" if path.endswith(".csv") else f"{path}.parquet"

    def manifest(self, path: str) -> str:
        """Where landing records the checksum and size of the lake file ``path`` (and of its reading)."""
        if not path.startswith(self.base + "/"):
            raise ValueError(f"{path} is not a file of {self.base}")
        return f"{self.base}/_manifest/{path[len(self.base) + 1:]}.json"

    def quarantine(self, source: str, ds: str) -> str:
        """The folder of everything quarantined for ``source`` on day ``ds`` (one subfolder each)."""
        return f"{self.base}/quarantine/{source}/ds={ds}"

    def quarantine_slot(self, source: str, ds: str) -> str:
        """A new, unique subfolder of :meth:`quarantine` for one quarantined file and its reason.

        Named ``<UTC time>-<random>``, so the slots of a day sort by when they were quarantined and
        two writers never share one (no directory creation is needed to claim it, also on S3).
        """
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        return f"{self.quarantine(source, ds)}/{stamp}-{uuid.uuid4().hex[:8]}"

    def quarantined(self, source: str, ds: str) -> list[str]:
        """Every quarantine slot of ``source`` on ``ds``, oldest first."""
        folder = self.quarantine(source, ds)
        fs = self.fs
        if not fs.exists(folder):
            return []
        slots = [str(p).rstrip("/") for p in fs.ls(folder, detail=False)]
        return sorted(p for p in slots if fs.isdir(p))

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

    def staging_inputs(self, ds: str) -> str:
        """The list of files the transform read for day ``ds`` (written beside its staged outputs)."""
        return f"{self.base}/_staging/ds={ds}/_inputs.json"

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

    # -- locks -------------------------------------------------------------------------------
    @contextmanager
    def day_lock(self, ds: str, wait: float = 3600.0) -> Iterator[None]:
        """Hold the ETL lock of day ``ds``: one writer of a day's raw, staged and published files.

        A second ETL of the same day waits for the first (up to ``wait`` seconds), then runs on
        what the first left, so nothing is done twice at once; past ``wait`` it fails with
        :class:`LakeBusy` naming the lock and its holder. Re-entrant within a process. It is the
        lock ``etl-ds=<ds>`` of :mod:`glideslope.locks`: an ``flock`` on a local lake (released by
        the kernel when the holder dies, even by ``kill -9``), the lock server on a remote lake with
        ``GLIDESLOPE_LOCK_URL``; a remote lake without one runs unlocked, with a warning, and relies
        on its publication being whole-object.
        """
        from glideslope import locks

        acquired = False
        try:
            with locks.exclusive(self, f"etl-ds={ds}", wait=wait, required=False, reentrant=True):
                acquired = True
                self.finish_publish(ds)  # a publish of this day that died halfway is completed first
                yield
        except locks.LockTimeout as e:
            if acquired:
                raise
            raise LakeBusy(f"{self.usecase} {ds}: another ETL run of this day holds {e.where} "
                           f"({locks.describe(e.holder)}); waited {wait:g} s. Rerun when it has finished.") from None

    # -- I/O ---------------------------------------------------------------------------------
    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

    @contextmanager
    def publishing(self, final: str) -> Iterator[str]:
        """Yield a staging path beside ``final``; on clean exit it replaces ``final`` in one step.

        The staging file is in ``final``'s own folder, so the rename never crosses a filesystem;
        locally it is fsynced before the rename and the folder after it, so a crash right after
        publication cannot leave an empty or torn partition. On an exception the staging file is
        removed and ``final`` is left as it was. Staging files of dead writers in that folder are
        swept first.
        """
        fs = self.fs
        parent, name = final.rsplit("/", 1)
        fs.makedirs(parent, exist_ok=True)
        self.sweep_staging(parent)
        staging = f"{parent}/{_staging_name(name)}"
        try:
            yield staging
            if self.is_remote:
                fs.copy(staging, final)  # S3 PUT of a whole object is atomic for readers
                fs.rm(staging)
            else:
                _fsync_file(staging)
                os.replace(staging, final)
                _fsync_dir(parent)
        except BaseException:
            if fs.exists(staging):
                fs.rm(staging, recursive=True)
            raise

    def sweep_staging(self, folder: str, stale_after: float = STALE_STAGING_SECONDS) -> list[str]:
        """Remove the ``.staging-*`` files in ``folder`` that no live writer owns; return them.

        A staging file names its writer (host and pid). One of a process on this host that is
        gone is removed at once; one of another host (or of a pid that may have been reused) only
        once it has not changed for ``stale_after`` seconds, so a slow live writer elsewhere is
        never robbed of its file.
        """
        fs = self.fs
        try:
            entries = fs.ls(folder, detail=False)
        except FileNotFoundError:
            return []
        swept = []
        for path in entries:
            base = str(path).rstrip("/").rsplit("/", 1)[-1]
            if not base.startswith(STAGING_PREFIX):
                continue
            host, pid = _staging_owner(base)
            if host == _HOST and pid is not None and pid != os.getpid() and not _pid_alive(pid):
                dead = True
            else:
                try:
                    age = time.time() - _mtime(fs.modified(path))
                except (FileNotFoundError, NotImplementedError):
                    continue
                dead = age > stale_after
            if dead:
                try:
                    fs.rm(path, recursive=True)
                except FileNotFoundError:
                    continue
                log.warning("removed %s: the staging file of a writer that did not finish", path)
                swept.append(str(path))
        return swept

    def sweep_partitions(self, table_dir: str) -> list[str]:
        """:meth:`sweep_staging` in every ``ds=*`` folder of ``table_dir`` (local lakes only).

        A writer killed while writing night D leaves its staging file in ``ds=D/``; when D is never
        written again (it was a rerun over a good partition), only a sweep of the whole table finds it.
        On S3 each writer sweeps the folder it writes (listing every partition is not free there).
        """
        if self.is_remote or not os.path.isdir(table_dir):
            return []
        return [p for entry in sorted(os.listdir(table_dir)) if entry.startswith("ds=")
                for p in self.sweep_staging(f"{table_dir}/{entry}")]

    # -- a day's tables, published as one ----------------------------------------------------
    def _publish_journal(self, ds: str) -> str:
        return self.state(f"publishing/ds={ds}")

    def publish_together(self, ds: str, moves: dict[str, str]) -> None:
        """Publish the staged files ``{staged: final}`` of day ``ds`` as one unit.

        The moves are written to a journal (``state/publishing/ds=<ds>.json``) before the first
        file moves, and the journal is removed after the last. A publisher that dies in between
        leaves the journal; the next ETL step on that day (:meth:`day_lock`) completes every move
        it lists before it does anything else, so a day is never left half published: the files
        it moves passed their gates, and each move is a rename (or, on S3, a whole-object copy).
        Call it holding the day lock.
        """
        plan = []
        for staged, final in moves.items():
            parent, name = final.rsplit("/", 1)
            self.sweep_staging(parent)  # what dead writers left beside this final
            plan.append({"staged": staged, "beside": f"{parent}/{_staging_name(name)}", "final": final})
        journal = self._publish_journal(ds)
        self.write_json(journal, {"ds": ds, "moves": plan, "at": time.time()})
        self._roll_forward(plan)
        self.fs.rm(journal)

    def finish_publish(self, ds: str) -> bool:
        """Complete a publish of ``ds`` that died halfway (see :meth:`publish_together`); False if none."""
        journal = self._publish_journal(ds)
        if not self.exists(journal):
            return False
        plan = (self.read_json(journal) or {}).get("moves") or []
        log.warning("%s %s: completing the publish a dead writer left halfway (%d files, journal %s)",
                    self.usecase, ds, len(plan), journal)
        self._roll_forward(plan)
        self.fs.rm(journal)
        return True

    def _roll_forward(self, plan: list[dict[str, str]]) -> None:
        """Each move: the staged file beside its final (one rename), then over the final (another)."""
        fs = self.fs
        for move in plan:
            staged, beside, final = move["staged"], move["beside"], move["final"]
            parent = final.rsplit("/", 1)[0]
            fs.makedirs(parent, exist_ok=True)
            if fs.exists(staged):
                fs.mv(staged, beside)
            if not fs.exists(beside):
                continue  # moved before the writer died
            if self.is_remote:
                fs.copy(beside, final)
                fs.rm(beside)
            else:
                _fsync_file(beside)
                os.replace(beside, final)
                _fsync_dir(parent)

    def publish_bytes(self, final: str, data: bytes) -> None:
        with self.publishing(final) as staging, self.fs.open(staging, "wb") as f:
            f.write(data)

    def publish_file(self, local_file: str | Path, final: str) -> None:
        """Publish a local file at ``final`` atomically; ``local_file`` is consumed.

        ``local_file`` usually lives in a temp folder, which may be another filesystem than the
        lake (a tmpfs ``/tmp``): it is copied into the staging file beside ``final`` -- a rename
        only when both are on the same device -- and removed after publication.
        """
        src = str(local_file)
        with self.publishing(final) as staging:
            if self.is_remote:
                self.fs.put_file(src, staging)
            elif os.stat(src).st_dev == os.stat(os.path.dirname(staging)).st_dev:
                os.replace(src, staging)
            else:
                shutil.copyfile(src, staging)
        if os.path.exists(src):
            os.remove(src)

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
