"""Append-only landing of raw files.

A raw file is written once. Landing day D again is a no-op when the delivery is identical; a
different delivery for a day that already landed is refused (the raw zone is never rewritten),
so a rerun or backfill can never change the history the features were built from. The one
rewrite is the raw gate's, under ``on_bad_rows: quarantine_rows``: the raw file then holds the
good rows of the delivery, and the delivery itself is kept in quarantine; landing that same
delivery again is recognised from the slot's checksums. A delivery the gate rejected as a whole
leaves the raw zone, so a fixed re-delivery lands.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass

from glideslope.config import UseCase
from glideslope.errors import PermanentError
from glideslope.lake import Lake
from glideslope.usecase_modules import load_module

log = logging.getLogger(__name__)


class RawZoneConflict(PermanentError, RuntimeError):
    """A delivery differs from the raw file already landed for that day."""


@dataclass(frozen=True)
class Landed:
    source: str
    path: str
    bytes: int
    rows: int
    status: str  # "landed" | "already-landed"


def _rows(data: bytes) -> int:
    return max(data.count(b"\n") - 1, 0)


def _rows_quarantined_from(lake: Lake, source: str, ds: str, data: bytes, existing: bytes) -> str | None:
    """The quarantine slot that explains why the raw file is ``data`` less some bad rows, if any."""
    want = (hashlib.sha256(data).hexdigest(), hashlib.sha256(existing).hexdigest())
    for slot in lake.quarantined(source, ds):
        reason = lake.read_json(f"{slot}/_reason.json", default={}) or {}
        if (reason.get("original_sha256"), reason.get("kept_sha256")) == want:
            return slot
    return None


def _write_once(lake: Lake, path: str, data: bytes, source: str, ds: str | None = None) -> Landed:
    if lake.exists(path):
        with lake.fs.open(path, "rb") as f:
            existing = f.read()
        if existing != data and ds is not None and _rows_quarantined_from(lake, source, ds, data, existing):
            # The same delivery again: its bad rows were quarantined when it first landed.
            return Landed(source, path, len(data), _rows(existing), "already-landed")
        if hashlib.sha256(existing).digest() != hashlib.sha256(data).digest():
            raise RawZoneConflict(
                f"{path}: a different delivery of {source!r} already landed for this day; the raw zone is "
                "append-only. Move the old file to quarantine by hand if the provider re-issued the day."
            )
        return Landed(source, path, len(data), _rows(data), "already-landed")
    lake.publish_bytes(path, data)
    return Landed(source, path, len(data), _rows(data), "landed")


def land_day(uc: UseCase, ds: str, lake: Lake | None = None) -> list[dict]:
    """Land every daily source of ``uc`` for ``ds`` (and reference data on first use)."""
    lake = lake or Lake.for_usecase(uc.name)
    feed = load_module(uc, uc.feed)
    out: list[Landed] = []
    for name, data in feed.deliveries(ds).items():
        uc.source(name)  # a delivery the spec does not declare is a bug in the feed
        out.append(_write_once(lake, lake.raw(name, ds), data, name, ds))
    for name, data in feed.reference().items():
        path = lake.reference(name)
        if not lake.exists(path):
            out.append(_write_once(lake, path, data, name))
    for item in out:
        log.info("%s %s: %s (%d rows)", item.status, item.source, item.path, item.rows)
    return [asdict(x) for x in out]
