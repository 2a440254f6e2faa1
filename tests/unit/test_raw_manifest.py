"""A raw zone that proves it is unchanged (#19, docs/adr/0015): the manifest, versioned reference
data and the one path for a re-issued delivery."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from glideslope.config import load_usecase
from glideslope.data.landing import (
    RawFileChanged,
    RawFileMissing,
    RawZoneConflict,
    check_parsed,
    land_day,
    read_checked,
    redeliver,
    reference_path,
)
from glideslope.errors import PermanentError
from glideslope.etl.pipeline import validate_raw
from glideslope.lake import Lake
from glideslope.usecase_modules import load_module

pytestmark = pytest.mark.unit

D0, D, LATER = "2013-03-04", "2013-03-05", "2013-03-09"


@pytest.fixture()
def uc():
    return load_usecase("flight_delay")


@pytest.fixture()
def lake(tmp_path, uc):
    return Lake(root=str(tmp_path / "lake"), usecase=uc.name)


def _sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_landing_records_checksum_and_size_of_every_file(uc, lake):
    land_day(uc, D, lake)
    for path in [lake.raw(s, D) for s in ("flights", "schedule", "weather")] + [
            lake.reference_version(n, D) for n in ("planes", "airlines")]:
        entry = json.loads(Path(lake.manifest(path)).read_text())
        assert entry["sha256"] == _sha(path) and entry["bytes"] == Path(path).stat().st_size
    validate_raw(uc, D, lake)
    entry = json.loads(Path(lake.manifest(lake.raw("flights", D))).read_text())
    reading = lake.parsed(lake.raw("flights", D))
    assert entry["parsed"] == {**entry["parsed"], "path": reading, "sha256": _sha(reading)}


def test_a_changed_file_names_both_checksums_and_what_to_do(uc, lake):
    land_day(uc, D, lake)
    path = lake.raw("weather", D)
    recorded = _sha(path)
    with open(path, "ab") as f:
        f.write(b"EWR,2013,3,5,23,40,30,60,0,0,,0,1010,10,2013-03-06T04:00:00Z\n")
    with pytest.raises(RawFileChanged) as exc:
        read_checked(lake, path)
    msg = str(exc.value)
    assert path in msg and recorded in msg and _sha(path) in msg
    assert f"glideslope redeliver --usecase flight_delay --source weather --ds {D}" in msg
    assert isinstance(exc.value, PermanentError), "a range runner treats it as one failed day"


def test_a_missing_file_or_reading_is_a_permanent_per_day_failure(uc, lake):
    with pytest.raises(RawFileMissing, match="has not landed") as exc:
        validate_raw(uc, D, lake)
    assert isinstance(exc.value, PermanentError) and isinstance(exc.value, FileNotFoundError)
    land_day(uc, D, lake)
    with pytest.raises(RawFileMissing, match="gated reading"):
        check_parsed(lake, lake.raw("flights", D))  # landed, not gated yet


def test_a_changed_reading_is_caught_and_the_gate_rewrites_it(uc, lake):
    land_day(uc, D, lake)
    validate_raw(uc, D, lake)
    path = lake.raw("schedule", D)
    good = Path(lake.parsed(path)).read_bytes()
    Path(lake.parsed(path)).write_bytes(good[:-1] + b"\0")
    with pytest.raises(RawFileChanged, match="changed after the gate wrote it"):
        check_parsed(lake, path)
    validate_raw(uc, D, lake)  # the rerun reads the (unchanged) delivery again
    assert Path(check_parsed(lake, path)).read_bytes() == good, "the reading is reproducible byte for byte"


def test_a_reissued_reference_is_a_new_version_from_its_day_on(uc, lake, monkeypatch):
    land_day(uc, D0, lake)
    land_day(uc, D, lake)
    assert lake.reference_versions("planes") == [D0], "the same bytes again: no new version"
    feed = load_module(uc, uc.feed)
    real = feed.reference
    fixed = real()["planes"].replace(b",2004,", b",2005,", 1)
    monkeypatch.setattr(feed, "reference", lambda: {**real(), "planes": fixed})
    land_day(uc, LATER, lake)
    assert lake.reference_versions("planes") == [D0, LATER]
    assert Path(lake.reference_version("planes", D0)).read_bytes() == real()["planes"], "the old one is kept"
    assert reference_path(lake, "planes", "2013-01-01") == lake.reference_version("planes", D0)
    assert reference_path(lake, "planes", D) == lake.reference_version("planes", D0)
    assert reference_path(lake, "planes", LATER) == lake.reference_version("planes", LATER)
    assert reference_path(lake, "planes", "2013-12-30") == lake.reference_version("planes", LATER)
    with pytest.raises(RawZoneConflict, match="glideslope redeliver"):
        land_day(uc, D, lake)  # that file under an earlier day would change what the later days read


def _published(lake: Lake, uc, days: list[str]) -> None:
    for ds in days:
        for out in uc.output_suites:
            path = Path(lake.output(ds, out))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")


def test_redeliver_quarantines_the_old_file_gates_the_new_and_lists_the_days(uc, lake, tmp_path):
    land_day(uc, D, lake)
    validate_raw(uc, D, lake)
    _published(lake, uc, [D0, D, "2013-03-06", "2013-03-20", "2013-04-05"])
    path = lake.raw("flights", D)
    old = Path(path).read_bytes()
    with open(path, "ab") as f:  # a sync tool appended a stray line
        f.write(b"garbage\n")
    changed = Path(path).read_bytes()

    out = redeliver(uc, "flights", D, lake=lake, reason="damaged by a sync tool")

    assert Path(path).read_bytes() == old, "the feed's delivery landed again"
    assert out["quarantined"] and Path(out["quarantined"]).read_bytes() == changed, "nothing deleted"
    reason = json.loads((Path(out["quarantined"]).parent / "_reason.json").read_text())
    assert reason["changed_after_landing"] and "damaged by a sync tool" in reason["reason"]
    assert out["gate"]["ds"] == D and check_parsed(lake, path)
    assert out["rebuild"] == [D]
    assert out["rebuild_windows"] == ["2013-03-06", "2013-03-20"], "the later days whose 28-day windows read D"

    again = tmp_path / "flights.csv"
    again.write_bytes(old.replace(b"\n", b"\r\n"))  # the provider's own file, with CRLF line ends
    out = redeliver(uc, "flights", D, file=str(again), lake=lake)
    assert Path(path).read_bytes() == again.read_bytes() and out["gate"]["ds"] == D


def test_redeliver_of_a_reference_lists_the_days_its_version_serves(uc, lake, tmp_path):
    land_day(uc, D0, lake)
    _published(lake, uc, [D0, D, "2013-03-06"])
    fixed = tmp_path / "planes.csv"
    fixed.write_bytes(Path(lake.reference_version("planes", D0)).read_bytes().replace(b",2004,", b",2005,", 1))
    land_day(uc, D, lake)
    out = redeliver(uc, "planes", D, file=str(fixed), lake=lake)
    assert out["quarantined"] is None, "a new version beside the old one: nothing replaced"
    assert lake.reference_versions("planes") == [D0, D]
    assert out["rebuild"] == [D, "2013-03-06"] and out["rebuild_windows"] == []
