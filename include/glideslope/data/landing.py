"""Append-only landing of raw files, with a manifest that proves they are unchanged.

A raw file is written once, and landing records its sha256 and size in the lake's manifest
(``Lake.manifest``). Every reader checks that record before use (:func:`read_checked` for a
delivered CSV, :func:`check_parsed` for its gated reading), so a file changed in place after it
landed -- a bad copy, a manual edit, a sync tool -- fails the day with :class:`RawFileChanged`,
naming the file and both checksums, instead of being read as it is now.

Landing day D again is a no-op when the delivery is identical; a different delivery for a day that
already landed is refused (:class:`RawZoneConflict`): a re-issued delivery goes through one path,
:func:`redeliver` (``glideslope redeliver``), which moves the old file to quarantine with its
reason, lands and gates the new one, and lists the days to rebuild. The one rewrite is the raw
gate's, under ``on_bad_rows: quarantine_rows``: the raw file then holds the good rows of the
delivery (recorded again in the manifest), and the delivery itself is kept in quarantine; landing
that same delivery again is recognised from the slot's checksums. A delivery the gate rejected as a
whole leaves the raw zone, so a fixed re-delivery lands.

Reference data is versioned: a reference delivery whose bytes differ from the latest landed
version lands as a new version beside the old ones, ``reference/<name>/since=<D>/<name>.csv``,
effective from the day D it landed for; :func:`reference_path` finds the version effective on a day.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

from glideslope.config import UseCase
from glideslope.errors import PermanentError
from glideslope.lake import Lake
from glideslope.usecase_modules import load_module

log = logging.getLogger(__name__)


class RawZoneConflict(PermanentError, RuntimeError):
    """A delivery differs from the raw file already landed for that day."""


class RawFileChanged(PermanentError, RuntimeError):
    """A landed file (or its gated reading) is not the one the manifest recorded."""


class RawFileMissing(PermanentError, FileNotFoundError):
    """A file a day needs has not landed, or its gated reading is not there."""


@dataclass(frozen=True)
class Landed:
    source: str
    path: str
    bytes: int
    rows: int
    status: str  # "landed" | "already-landed"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _rows(data: bytes) -> int:
    return max(data.count(b"\n") - 1, 0)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _whose(lake: Lake, path: str) -> tuple[str, str, str]:
    """(zone, source, day) of a raw or reference path: ``raw/<s>/ds=D/..`` or ``reference/<s>/since=D/..``."""
    parts = path[len(lake.base) + 1:].split("/")
    if len(parts) >= 3 and parts[0] in ("raw", "reference") and "=" in parts[2]:
        return parts[0], parts[1], parts[2].split("=", 1)[1]
    return "", "", ""


def _what_to_do(lake: Lake, path: str) -> str:
    zone, source, day = _whose(lake, path)
    if not zone:
        return "Restore the file from its delivery."
    return (f"If the provider re-issued it, run `glideslope redeliver --usecase {lake.usecase} --source {source} "
            f"--ds {day}` (the changed file goes to quarantine with its reason, the delivery is landed and gated "
            "again, and the days to rebuild are listed); otherwise restore the file from the delivery")


# -- the manifest ---------------------------------------------------------------------------------

def recorded(lake: Lake, path: str) -> dict[str, Any] | None:
    """The manifest record of ``path`` (None when landing never recorded it)."""
    return lake.read_json(lake.manifest(path), default=None)


def record(lake: Lake, path: str, data: bytes, **extra: Any) -> dict[str, Any]:
    """Record ``path``'s checksum and size in the manifest (its gated reading is recorded later)."""
    entry = {"path": path, "sha256": sha256(data), "bytes": len(data), "recorded_at": _now(), **extra}
    lake.write_json(lake.manifest(path), entry)
    return entry


def record_parsed(lake: Lake, path: str, parsed: bytes) -> None:
    """Record the checksum and size of the gated reading of ``path`` beside the file's own."""
    entry = recorded(lake, path) or {}
    entry["parsed"] = {"path": lake.parsed(path), "sha256": sha256(parsed), "bytes": len(parsed),
                       "recorded_at": _now()}
    lake.write_json(lake.manifest(path), entry)


def forget(lake: Lake, path: str) -> None:
    """Drop ``path``'s record and its gated reading (the file itself left the zone: quarantine)."""
    for p in (lake.manifest(path), lake.parsed(path)):
        if lake.exists(p):
            lake.fs.rm(p)


def _check(lake: Lake, path: str, data: bytes, want: dict[str, Any] | None, what: str) -> None:
    if want is None:
        raise RawFileChanged(
            f"{path}: no checksum recorded for this {what} in the manifest ({lake.manifest(path)}), so nothing "
            f"proves it is the file that landed (sha256 now {sha256(data)}, {len(data)} bytes). "
            + _what_to_do(lake, path) + ".")
    if want.get("sha256") != sha256(data) or want.get("bytes") != len(data):
        raise RawFileChanged(
            f"{path}: this {what} changed after it landed: the manifest ({lake.manifest(path)}) recorded sha256 "
            f"{want.get('sha256')} ({want.get('bytes')} bytes), the file has sha256 {sha256(data)} "
            f"({len(data)} bytes). The raw zone is append-only and this is no longer what was gated. "
            + _what_to_do(lake, path) + ".")


def read_checked(lake: Lake, path: str) -> bytes:
    """The bytes of a landed file, once they are proven to be what landing recorded."""
    if not lake.exists(path):
        zone, source, day = _whose(lake, path)
        raise RawFileMissing(f"{path}: {source or 'the'} file for {day or 'this day'} has not landed "
                             f"(nothing under {path.rsplit('/', 1)[0]}); land the day first (`glideslope etl`)")
    with lake.fs.open(path, "rb") as f:
        data = f.read()
    _check(lake, path, data, recorded(lake, path), "delivered file")
    return data


def check_parsed(lake: Lake, path: str) -> str:
    """The gated reading (Parquet) of the delivered file ``path``, proven to be what the gate wrote."""
    parsed = lake.parsed(path)
    entry = recorded(lake, path)
    if entry is None or "parsed" not in entry or not lake.exists(parsed):
        zone, source, day = _whose(lake, path)
        raise RawFileMissing(
            f"{parsed}: the gated reading of {path} is not there (the raw gate of {source or 'this file'} "
            f"for {day or 'its day'} has not passed, or the file landed before readings were kept); rerun the "
            f"ETL of {day or 'that day'} so its raw gate writes it")
    with lake.fs.open(parsed, "rb") as f:
        data = f.read()
    want = entry["parsed"]
    if want.get("sha256") != sha256(data) or want.get("bytes") != len(data):
        raise RawFileChanged(
            f"{parsed}: the gated reading of {path} changed after the gate wrote it: the manifest "
            f"({lake.manifest(path)}) recorded sha256 {want.get('sha256')} ({want.get('bytes')} bytes), the "
            f"file has sha256 {sha256(data)} ({len(data)} bytes). Rerun the ETL of {_whose(lake, path)[2]}: "
            "its raw gate reads the delivered file again (checked against its own checksum) and rewrites it.")
    return parsed


# -- landing --------------------------------------------------------------------------------------

def _rows_quarantined_from(lake: Lake, source: str, ds: str, data: bytes, existing: bytes) -> str | None:
    """The quarantine slot that explains why the raw file is ``data`` less some bad rows, if any."""
    want = (sha256(data), sha256(existing))
    for slot in lake.quarantined(source, ds):
        reason = lake.read_json(f"{slot}/_reason.json", default={}) or {}
        if (reason.get("original_sha256"), reason.get("kept_sha256")) == want:
            return slot
    return None


def _write_once(lake: Lake, path: str, data: bytes, source: str, ds: str | None = None) -> Landed:
    if lake.exists(path):
        with lake.fs.open(path, "rb") as f:
            existing = f.read()
        entry = recorded(lake, path)
        if entry is None:  # landed before the manifest existed: it is what it is now
            log.warning("%s: landed before checksums were recorded; recording it as it is now", path)
            entry = record(lake, path, existing, adopted=True)
        _check(lake, path, existing, entry, "delivered file")
        if existing != data and ds is not None and _rows_quarantined_from(lake, source, ds, data, existing):
            # The same delivery again: its bad rows were quarantined when it first landed.
            return Landed(source, path, len(data), _rows(existing), "already-landed")
        if existing != data:
            zone, _, day = _whose(lake, path)
            raise RawZoneConflict(
                f"{path}: a different delivery of {source!r} already landed for {day or 'this day'} (landed sha256 "
                f"{sha256(existing)}, delivered {sha256(data)}); the raw zone is append-only. If the provider "
                f"re-issued the day, run `glideslope redeliver --usecase {lake.usecase} --source {source} --ds "
                f"{day or ds}`: the landed file goes to quarantine with its reason, the new one is landed and "
                "gated, and the days to rebuild are listed.")
        return Landed(source, path, len(data), _rows(data), "already-landed")
    lake.publish_bytes(path, data)
    record(lake, path, data)
    return Landed(source, path, len(data), _rows(data), "landed")


def reference_path(lake: Lake, name: str, ds: str) -> str:
    """The delivered file of the version of reference ``name`` in effect on day ``ds``.

    That is the latest version that took effect on or before ``ds``; a day before the first version
    uses the first (reference data is delivered with the first day that lands, and describes the
    days before it as well). Its gated reading is ``Lake.parsed`` of the returned path.
    """
    versions = lake.reference_versions(name)
    if not versions:
        raise RawFileMissing(f"reference data {name!r} has not landed: nothing under {lake.base}/reference/{name}/; "
                             "land a day first (`glideslope etl`)")
    since = max((v for v in versions if v <= ds), default=versions[0])
    return lake.reference_version(name, since)


def land_reference(lake: Lake, name: str, data: bytes, ds: str) -> Landed:
    """Land reference ``name`` as delivered with day ``ds``: a no-op when it is the version in effect
    on ``ds``; else a new version effective from ``ds`` (the old ones stay, for the days before)."""
    versions = lake.reference_versions(name)
    if versions:
        current = reference_path(lake, name, ds)
        with lake.fs.open(current, "rb") as f:
            existing = f.read()
        if existing == data:
            return _write_once(lake, current, data, name)  # checks the manifest too
        later = [v for v in versions if v > ds]
        if later:
            raise RawZoneConflict(
                f"reference {name!r} delivered with {ds} differs from the version in effect that day "
                f"({current}), and versions from later days exist ({', '.join(later)}): a new version would "
                f"change what those days read. Run `glideslope redeliver --usecase {lake.usecase} --source {name} "
                f"--ds {ds}` to replace the version of {ds} explicitly.")
        log.warning("reference %s re-issued with %s: landing it as a new version (the previous one, %s, stays "
                    "for the days before)", name, ds, current)
    return _write_once(lake, lake.reference_version(name, ds), data, name)


def land_day(uc: UseCase, ds: str, lake: Lake | None = None) -> list[dict]:
    """Land every daily source of ``uc`` for ``ds``, and its reference data when it is new or re-issued."""
    lake = lake or Lake.for_usecase(uc.name)
    feed = load_module(uc, uc.feed)
    out: list[Landed] = []
    for name, data in feed.deliveries(ds).items():
        uc.source(name)  # a delivery the spec does not declare is a bug in the feed
        out.append(_write_once(lake, lake.raw(name, ds), data, name, ds))
    for name, data in feed.reference().items():
        out.append(land_reference(lake, name, data, ds))
    for item in out:
        log.info("%s %s: %s (%d rows)", item.status, item.source, item.path, item.rows)
    return [asdict(x) for x in out]


# -- a re-issued delivery -------------------------------------------------------------------------

def _lookback_days(uc: UseCase) -> int:
    """How many days before D a day's transform reads (its trailing window), from the transform module."""
    try:
        return int(getattr(load_module(uc, uc.transform), "LOOKBACK_DAYS", 0))
    except Exception:  # noqa: BLE001 - a transform that does not import still gets its own days listed
        return 0


def affected_days(lake: Lake, uc: UseCase, source: str, ds: str) -> dict[str, list[str]]:
    """The days whose outputs read ``source`` of ``ds``: the day itself (for a reference, every day
    its version is in effect) and the later days whose trailing windows read it, among the days
    published in the lake."""
    spec = uc.source(source)
    published = set()
    for out in uc.output_suites:
        zone, table = out.split("/", 1)
        published |= set(lake.partitions(f"{lake.base}/{zone}/{table}"))
    if spec.kind == "reference":
        version = lake.reference_version(source, ds)
        return {"days": sorted(d for d in published if reference_path(lake, source, d) == version), "windows": []}
    lookback = _lookback_days(uc)
    start = date.fromisoformat(ds)
    later = {(start + timedelta(days=i)).isoformat() for i in range(1, lookback + 1)}
    return {"days": [ds], "windows": sorted(d for d in published if d in later)}


def redeliver(uc: UseCase, source: str, ds: str, file: str | None = None, lake: Lake | None = None,
              reason: str = "re-issued by the provider") -> dict[str, Any]:
    """Replace the landed delivery of ``source`` for day ``ds`` (the one documented path).

    The landed file (and its gated reading) goes to a new quarantine slot with ``_reason.json``
    saying why and what replaced it; the new delivery (``file``, or what the feed delivers for
    ``ds``) is landed and gated; the result lists the days to rebuild: ``ds`` itself (for reference
    data, every day its version is in effect) and the later days whose trailing windows read it.
    Nothing is deleted. A delivery that fails its gate stays in quarantine like any other.
    """
    from glideslope.etl.pipeline import validate_raw  # the gate is the ETL's; imported when used

    lake = lake or Lake.for_usecase(uc.name)
    spec = uc.source(source)
    if file is not None:
        with open(file, "rb") as f:
            data = f.read()
    else:
        feed = load_module(uc, uc.feed)
        delivered = feed.reference() if spec.kind == "reference" else feed.deliveries(ds)
        if source not in delivered:
            raise RawFileMissing(f"the feed of {uc.name} delivers no {source!r} for {ds}; pass --file")
        data = delivered[source]
    # A reference version takes effect on ds: one that already did is replaced, else the new one
    # lands beside the version in effect (which stays for the days before ds).
    path = lake.reference_version(source, ds) if spec.kind == "reference" else lake.raw(source, ds)
    with lake.day_lock(ds):
        old = None
        if lake.exists(path):
            with lake.fs.open(path, "rb") as f:
                old_bytes = f.read()
            entry = recorded(lake, path)
            slot = lake.quarantine_slot(source, ds)
            name = path.rsplit("/", 1)[1]
            lake.write_json(f"{slot}/_reason.json", {
                "file": path, "reason": f"replaced by a re-delivery ({reason})", "policy": "redeliver",
                "moved_from": path, "moved_to": f"{slot}/{name}", "moved_at": _now(),
                "sha256": sha256(old_bytes), "bytes": len(old_bytes), "recorded": entry,
                "changed_after_landing": entry is not None and entry.get("sha256") != sha256(old_bytes),
                "replaced_by_sha256": sha256(data)})
            lake.fs.mv(path, f"{slot}/{name}")
            forget(lake, path)
            old = f"{slot}/{name}"
            log.warning("re-delivery of %s %s: the landed file went to %s", source, ds, old)
        landed = _write_once(lake, path, data, source, None if spec.kind == "reference" else ds)
        gate = validate_raw(uc, ds, lake)
    rebuild = affected_days(lake, uc, source, ds)
    return {"usecase": uc.name, "source": source, "ds": ds, "quarantined": old, "landed": asdict(landed),
            "gate": gate, "rebuild": rebuild["days"], "rebuild_windows": rebuild["windows"]}


def cli(argv: list[str]) -> int:
    """``glideslope redeliver``: replace a landed delivery, gate it, list the days to rebuild."""
    from glideslope.config import SpecError, resolve_usecase
    from glideslope.quality.validate import DataQualityError

    ap = argparse.ArgumentParser(prog="glideslope redeliver", description="Replace the landed delivery of a "
                                 "source for a day (the one path for a re-issued delivery).")
    ap.add_argument("--usecase", default=None, help="use case (required when there is more than one)")
    ap.add_argument("--source", required=True, help="the source (daily or reference) that was re-issued")
    ap.add_argument("--ds", required=True, help="the day of the delivery (for reference data: the day the "
                    "new version takes effect)")
    ap.add_argument("--file", default=None, help="the re-issued file (default: what the feed delivers for --ds)")
    ap.add_argument("--reason", default="re-issued by the provider", help="recorded with the quarantined file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        uc = resolve_usecase(args.usecase)
        out = redeliver(uc, args.source, args.ds, args.file, reason=args.reason)
    except (SpecError, DataQualityError, PermanentError) as e:
        print(f"glideslope redeliver: {e}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2))
    days = sorted(set(out["rebuild"]) | set(out["rebuild_windows"]))
    if days:
        print(f"rebuild: glideslope etl --usecase {uc.name} --start {days[0]} --end {days[-1]}", file=sys.stderr)
    return 0
