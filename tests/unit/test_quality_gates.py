"""Bad raw input is refused with an error a person can act on, and nothing is lost."""

from __future__ import annotations

import pytest

from glideslope.config import load_usecase
from glideslope.data.landing import RawFileChanged, RawZoneConflict, _write_once, land_day, record
from glideslope.etl.pipeline import validate_raw
from glideslope.lake import Lake
from glideslope.quality import DataQualityError

pytestmark = pytest.mark.unit

DS = "2013-03-05"


@pytest.fixture()
def landed(tmp_path):
    uc = load_usecase("flight_delay")
    lake = Lake(root=str(tmp_path / "lake"), usecase=uc.name)
    land_day(uc, DS, lake)
    return uc, lake


def _rewrite(lake: Lake, source: str, fn, as_delivered: bool = True) -> bytes:
    """Replace the landed file of ``source``; ``as_delivered``: as if the provider had delivered it
    so (landing recorded its checksum), else changed in place after it landed."""
    path = lake.raw(source, DS)
    with open(path, "rb") as f:
        data = fn(f.read())
    with open(path, "wb") as f:
        f.write(data)
    if as_delivered:
        record(lake, path, data)
    return data


def _assert_quarantined(lake: Lake, source: str, data: bytes) -> None:
    (slot,) = lake.quarantined(source, DS)
    assert not lake.exists(lake.raw(source, DS)), "a bad file must leave the raw zone"
    with open(f"{slot}/{source}.csv", "rb") as f:
        assert f.read() == data, "quarantine keeps the file byte for byte"
    reason = lake.read_json(f"{slot}/_reason.json")
    assert reason["moved_from"] == lake.raw(source, DS) and not reason["success"]


def test_good_day_passes(landed):
    uc, lake = landed
    out = validate_raw(uc, DS, lake)
    assert {f["file"].rsplit("/", 1)[1] for f in out["files"]} == {"flights.csv", "schedule.csv", "weather.csv"}
    assert all(f["rows"] > 0 and f["expectations"] > 20 for f in out["files"] if "weather" not in f["file"])
    assert [f["file"] for f in out["references"]] == [lake.reference_version(n, DS) for n in ("planes", "airlines")]
    assert all(f["rows"] > 0 and f["expectations"] > 5 for f in out["references"]), "reference data is gated too"
    assert all(f["reading"] == f["file"][:-4] + ".parquet" and lake.exists(f["reading"])
               for f in out["files"] + out["references"])


def test_missing_column_names_file_and_column(landed):
    uc, lake = landed

    def drop_distance(data: bytes) -> bytes:
        lines = data.decode().splitlines()
        idx = lines[0].split(",").index("distance")
        return ("\n".join(",".join(c for i, c in enumerate(line.split(",")) if i != idx) for line in lines)
                + "\n").encode()

    bad = _rewrite(lake, "flights", drop_distance)
    with pytest.raises(DataQualityError) as exc:
        validate_raw(uc, DS, lake)
    msg = str(exc.value)
    assert "raw/flights/ds=2013-03-05/flights.csv" in msg
    assert "column 'distance' rule to_exist" in msg
    _assert_quarantined(lake, "flights", bad)
    assert lake.exists(lake.raw("weather", DS)), "files that passed stay in the raw zone"


def test_wrong_type_counts_bad_rows(landed):
    uc, lake = landed

    def corrupt(data: bytes) -> bytes:
        lines = data.decode().splitlines()
        idx = lines[0].split(",").index("distance")
        for n in (1, 2, 3):
            cells = lines[n].split(",")
            cells[idx] = "far"
            lines[n] = ",".join(cells)
        return ("\n".join(lines) + "\n").encode()

    bad = _rewrite(lake, "flights", corrupt)
    with pytest.raises(DataQualityError) as exc:
        validate_raw(uc, DS, lake)
    failure = next(f for r in exc.value.reports for f in r.failures if f.column == "distance")
    assert failure.bad_rows == 3 and "regex" in failure.rule and "far" in failure.examples
    _assert_quarantined(lake, "flights", bad)


def test_empty_file(landed):
    uc, lake = landed
    bad = _rewrite(lake, "weather", lambda _: b"")
    with pytest.raises(DataQualityError, match=r"weather\.csv: table rule file is not empty"):
        validate_raw(uc, DS, lake)
    _assert_quarantined(lake, "weather", bad)


def test_truncated_csv(landed):
    uc, lake = landed
    # Cut a few fields into a row, as a dropped connection would.
    bad = _rewrite(lake, "schedule", lambda d: d[: d.index(b"\n", len(d) // 2) + 20])
    with pytest.raises(DataQualityError) as exc:
        validate_raw(uc, DS, lake)
    rules = [f.rule for r in exc.value.reports for f in r.failures]
    assert any("truncated" in r for r in rules)
    assert any("14 fields like the header" in r for r in rules)
    _assert_quarantined(lake, "schedule", bad)


def _set_cell(column: str, value: str, line: int = 5):
    def corrupt(data: bytes) -> bytes:
        lines = data.decode().splitlines()
        idx = lines[0].split(",").index(column)
        cells = lines[line].split(",")
        cells[idx] = value
        lines[line] = ",".join(cells)
        return ("\n".join(lines) + "\n").encode()
    return corrupt


def test_out_of_range_value_rejects_a_flights_delivery(landed):
    uc, lake = landed
    data = _rewrite(lake, "flights", _set_cell("distance", "9999"))
    with pytest.raises(DataQualityError) as exc:
        validate_raw(uc, DS, lake)
    failure = next(f for r in exc.value.reports for f in r.failures if f.column == "distance")
    assert failure.bad_rows == 1 and "between" in failure.rule and 9999 in failure.examples
    _assert_quarantined(lake, "flights", data)


def test_an_absurd_weather_reading_quarantines_only_its_row(landed):
    """weather is ``on_bad_rows: quarantine_rows``: the day keeps its other readings."""
    uc, lake = landed
    data = _rewrite(lake, "weather", _set_cell("temp", "451"))
    out = validate_raw(uc, DS, lake)
    assert out["rows_quarantined"] == {"weather": 1}
    (slot,) = lake.quarantined("weather", DS)
    with open(f"{slot}/weather.csv", "rb") as f:
        assert f.read() == data, "the delivery as it came is kept"
    with open(f"{slot}/bad_rows.csv") as f:
        bad = f.read().splitlines()
    assert len(bad) == 2 and bad[1].endswith(",6,temp above 130"), bad
    with open(lake.raw("weather", DS), "rb") as f:
        kept = f.read()
    assert kept.count(b"\n") == data.count(b"\n") - 1 and b",451," not in kept
    again = _write_once(lake, lake.raw("weather", DS), data, "weather", DS)
    assert again.status == "already-landed", "the same delivery again is recognised, not a conflict"
    assert validate_raw(uc, DS, lake)["ds"] == DS


def test_raw_zone_is_append_only(landed):
    """Another delivery of a landed day is refused, and the refusal names the one path to replace it."""
    uc, lake = landed
    _rewrite(lake, "flights", lambda d: d.replace(b"EWR", b"JFK", 1))
    with pytest.raises(RawZoneConflict, match="append-only") as exc:
        land_day(uc, DS, lake)
    assert f"glideslope redeliver --usecase flight_delay --source flights --ds {DS}" in str(exc.value)


def test_a_landed_file_changed_in_place_is_named_with_both_checksums(landed):
    uc, lake = landed
    _rewrite(lake, "flights", lambda d: d.replace(b"EWR", b"JFK", 1), as_delivered=False)
    for step in (lambda: land_day(uc, DS, lake), lambda: validate_raw(uc, DS, lake)):
        with pytest.raises(RawFileChanged) as exc:
            step()
        msg = str(exc.value)
        assert lake.raw("flights", DS) in msg and "recorded sha256" in msg and "glideslope redeliver" in msg
    assert lake.exists(lake.raw("flights", DS)) and not lake.quarantined("flights", DS), "nothing moved"


def test_daylight_saving_day_passes(tmp_path):
    """2013-11-03 has two local 01:00 readings per airport; the UTC hour is the key."""
    uc = load_usecase("flight_delay")
    lake = Lake(root=str(tmp_path / "lake"), usecase=uc.name)
    land_day(uc, "2013-11-03", lake)
    assert validate_raw(uc, "2013-11-03", lake)["ds"] == "2013-11-03"


def test_every_bad_delivery_of_a_day_is_kept_with_its_own_reason(landed):
    """The provider re-issues a bad day twice more; quarantine keeps each delivery, none overwritten."""
    from pathlib import Path

    uc, lake = landed

    def text_in(column: str, value: str):
        def corrupt(data: bytes) -> bytes:
            lines = data.decode().splitlines()
            idx = lines[0].split(",").index(column)
            cells = lines[1].split(",")
            cells[idx] = value
            lines[1] = ",".join(cells)
            return ("\n".join(lines) + "\n").encode()
        return corrupt

    first = _rewrite(lake, "flights", text_in("distance", "far"))
    with pytest.raises(DataQualityError, match="distance"):
        validate_raw(uc, DS, lake)
    land_day(uc, DS, lake)  # the re-issued delivery lands (the bad one left the raw zone)...
    second = _rewrite(lake, "flights", text_in("dep_delay", "late"))  # ...and is bad in another way
    with pytest.raises(DataQualityError, match="dep_delay"):
        validate_raw(uc, DS, lake)
    land_day(uc, DS, lake)  # the third delivery is good
    assert validate_raw(uc, DS, lake)["ds"] == DS

    qdir = Path(lake.quarantine("flights", DS))
    kept = sorted(qdir.rglob("flights.csv"))
    assert sorted(p.read_bytes() for p in kept) == sorted([first, second]), "both bad deliveries are kept"
    reasons = {p.parent: lake.read_json(str(p)) for p in qdir.rglob("_reason.json")}
    assert {p.parent for p in kept} == set(reasons), "each kept file has its reason beside it"
    for path in kept:
        failed = {f["column"] for f in reasons[path.parent]["failures"]}
        assert failed == ({"distance"} if path.read_bytes() == first else {"dep_delay"})
        assert reasons[path.parent]["moved_from"] == lake.raw("flights", DS)
    slots = lake.quarantined("flights", DS)
    assert [Path(s, "flights.csv").read_bytes() for s in slots] == [first, second], "slots sort oldest first"
