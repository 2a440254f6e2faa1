"""The scaled flight_delay feed (``GLIDESLOPE_FEED_SCALE``) and the use-case copy the benchmark makes.

The feed's default must stay the real days byte for byte (the raw zone is append-only, and
every figure so far was measured on them); the scaled feed must keep keys unique, keep what the
features join on, move delays only by the documented jitter, and pass the generated suites.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from glideslope.config import load_usecase
from glideslope.quality.suites import load_suite
from glideslope.quality.validate import validate_csv_bytes
from glideslope.usecase_modules import load_module

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DS = "2013-07-01"
# sha256 of the real deliveries as the feed wrote them before the scale switch existed.
REAL = {
    "2013-07-01": {"flights": "f44193760b770f45b13e7d3382e105f892e4fc3f4d93357af6282a08a491e818",
                   "schedule": "a8603cec4bc6e1d7d0f0ed282efd46a32fbebd479e974f6ae86efa28927d0f42",
                   "weather": "ab5d9ee89081a8072c413bc157f25c336de2027eaf80f89b848bda635d288db6"},
    "2013-02-12": {"flights": "aa9b0b527dc191405fdb2944b01ebbe993924c67ccba231847e5db1b323ead0e",
                   "schedule": "68270f818414eb6a694803708214fc2a148d970b6ee1c96340796ab509ddf4df",
                   "weather": "906d1003ea7beb5f79b4df4f3bbb82d78c84f2bf07a34c239eb8044dbdfecad1"},
}
RAW_KEY = ["year", "month", "day", "carrier", "flight", "origin", "dest", "sched_dep_time"]


def _benchkit():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_benchkit", ROOT / "benchmarks" / "benchkit.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def feed():  # type: ignore[no-untyped-def]
    return load_module(load_usecase("flight_delay"), "feed")


def _frame(data: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)


def _minutes(hhmm: pd.Series) -> pd.Series:
    t = hhmm.astype(int)
    return t // 100 * 60 + t % 100


@pytest.mark.parametrize("scale", [None, "1"])
def test_without_a_scale_the_feed_is_the_real_days_byte_for_byte(feed, monkeypatch, scale) -> None:
    if scale is None:
        monkeypatch.delenv("GLIDESLOPE_FEED_SCALE", raising=False)
    else:
        monkeypatch.setenv("GLIDESLOPE_FEED_SCALE", scale)
    for ds, hashes in REAL.items():
        got = {name: hashlib.sha256(data).hexdigest() for name, data in feed.deliveries(ds).items()}
        assert got == hashes, f"the real deliveries of {ds} changed"


def test_a_scaled_day_repeats_the_real_one_under_new_keys_with_the_documented_jitter(feed, monkeypatch) -> None:
    monkeypatch.setenv("GLIDESLOPE_FEED_SCALE", "3")
    real = feed.scaled_deliveries(DS, 1)
    scaled = feed.deliveries(DS)
    assert scaled == feed.deliveries(DS), "a scaled day is the same bytes every time (append-only raw zone)"
    assert scaled["weather"] == real["weather"], "one reading per airport and hour: the weather is not repeated"

    base, big = _frame(real["flights"]), _frame(scaled["flights"])
    m = len(base)
    assert len(big) == 3 * m
    assert scaled["flights"].startswith(real["flights"]), "copy 0 is the real delivery, unchanged"
    assert not big.duplicated(RAW_KEY).any(), "the raw key stays unique"
    for k in (1, 2):
        copy = big.iloc[k * m:(k + 1) * m].reset_index(drop=True)
        assert (copy["flight"].astype(int) == base["flight"].astype(int) + 10000 * k).all()
        kept = ["carrier", "tailnum", "origin", "dest", "sched_dep_time", "distance", "time_hour"]
        pd.testing.assert_frame_equal(copy[kept], base[kept])
        for delay, clock in (("dep_delay", "dep_time"), ("arr_delay", "arr_time")):
            known = base[delay] != "NA"
            assert (copy.loc[~known, delay] == "NA").all(), "a cancelled flight stays cancelled"
            moved = copy.loc[known, delay].astype(int) - base.loc[known, delay].astype(int)
            assert moved.between(-5, 5).all() and (moved != 0).any()
            timed = known & (base[clock] != "NA")
            clock_moved = (_minutes(copy.loc[timed, clock]) - _minutes(base.loc[timed, clock])) % 1440
            assert (clock_moved == moved[timed] % 1440).all(), f"{clock} moves with {delay}"


def test_copy_k_is_the_same_at_every_scale_and_the_schedule_meets_tomorrows_flights(feed) -> None:
    three, five = feed.scaled_deliveries(DS, 3), feed.scaled_deliveries(DS, 5)
    assert five["flights"].startswith(three["flights"]) and five["schedule"].startswith(three["schedule"])
    tomorrow = (date.fromisoformat(DS) + timedelta(days=1)).isoformat()
    schedule = _frame(three["schedule"])
    flights = _frame(feed.scaled_deliveries(tomorrow, 3)["flights"])
    assert len(schedule) == len(flights) and not schedule.duplicated(RAW_KEY).any()
    pd.testing.assert_frame_equal(schedule[RAW_KEY].sort_values(RAW_KEY).reset_index(drop=True),
                                  flights[RAW_KEY].sort_values(RAW_KEY).reset_index(drop=True))


def test_the_scaled_use_case_copy_accepts_what_the_bundled_suites_refuse(feed, tmp_path, monkeypatch) -> None:
    from glideslope.config import DEFAULT_USECASES_DIR

    # Set (not deleted) first, so that the test's end restores what scaled_usecase changes.
    monkeypatch.setenv("GLIDESLOPE_USECASES_DIR", str(DEFAULT_USECASES_DIR))
    monkeypatch.setenv("GLIDESLOPE_FEED_SCALE", "1")
    bundled = load_usecase("flight_delay")
    data = feed.scaled_deliveries(DS, 6)  # about 5,800 flights: above the bundled 5,000
    folder = _benchkit().scaled_usecase(tmp_path, 6, max_rows=20_000)
    assert folder == tmp_path / "flight_delay"
    assert os.environ["GLIDESLOPE_FEED_SCALE"] == "6" and os.environ["GLIDESLOPE_USECASES_DIR"] == str(tmp_path)
    scaled = load_usecase("flight_delay")
    assert scaled.folder == folder and scaled.training.max_rows == 20_000
    for source in ("flights", "schedule"):
        spec = bundled.source(source)
        day = (date.fromisoformat(DS) + timedelta(days=spec.day_offset)).isoformat()
        refused = validate_csv_bytes(data[source], load_suite(bundled, spec.suite), source, day=day)
        assert not refused.success and any("rows" in f.rule or "flight" in str(f.column) for f in refused.failures)
        report = validate_csv_bytes(data[source], load_suite(scaled, spec.suite), source, day=day)
        assert report.success, report.failures
    assert (bundled.folder / "quality" / "raw_flights.yaml").read_text().count("max: 5000") == 1, \
        "the bundled suites are not touched"


def test_a_scale_that_is_not_a_whole_number_is_named(feed, monkeypatch) -> None:
    monkeypatch.setenv("GLIDESLOPE_FEED_SCALE", "ten")
    with pytest.raises(ValueError, match="GLIDESLOPE_FEED_SCALE='ten'"):
        feed.deliveries(DS)
