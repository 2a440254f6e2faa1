"""A small synthetic lake in the flight_delay data contract, for unit tests of the ML stages.

Same tables, columns, dtypes and timestamp rules as the real ETL (curated flights and schedule,
four feature tables stamped at the end of local day D), with a planted, learnable signal:
persistent weather at the origin, per-carrier reliability and departure hour drive lateness.
Integration tests use the real ETL output instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from glideslope.lake import Lake

TZ = "America/New_York"
CARRIERS = {"AA": -0.4, "B6": 0.3, "DL": -0.6, "EV": 0.7, "UA": 0.0}
ORIGINS = ["EWR", "JFK", "LGA"]
DESTS = {"ATL": 760.0, "BOS": 190.0, "ORD": 730.0, "MIA": 1090.0, "LAX": 2470.0, "IAH": 1400.0}


def _days(first: str, n: int) -> list[str]:
    d0 = date.fromisoformat(first)
    return [(d0 + timedelta(days=i)).isoformat() for i in range(n)]


def _end_of_day_utc(ds: str) -> pd.Timestamp:
    nxt = date.fromisoformat(ds) + timedelta(days=1)
    return pd.Timestamp(nxt.isoformat(), tz=TZ).tz_convert("UTC").as_unit("us")


def simulate(first: str, n_days: int, flights_per_day: int = 220, seed: int = 7) -> dict[str, pd.DataFrame]:
    """Flights of ``n_days + 1`` days (the last one is only ever a schedule) and daily weather."""
    rng = np.random.default_rng(seed)
    days = _days(first, n_days + 1)
    tails = [f"N{100 + i}XX" for i in range(60)]
    plane_year = {t: 1990 + int(rng.integers(0, 24)) for t in tails}
    precip = {o: 0.0 for o in ORIGINS}
    weather, rows = [], []
    for ds in days:
        d = date.fromisoformat(ds)
        for o in ORIGINS:
            # Storms persist for a few days, so yesterday's weather predicts today's delays.
            precip[o] = max(0.0, 0.6 * precip[o] + rng.normal(0.05, 0.25))
            weather.append({"ds": ds, "origin": o, "precip": precip[o], "temp": 40 + rng.normal(0, 8),
                            "humid": 60 + rng.normal(0, 10), "wind": 8 + abs(rng.normal(0, 5)),
                            "visib": max(0.5, 10 - 8 * precip[o] + rng.normal(0, 1)),
                            "pressure": 1015 + rng.normal(0, 6)})
        for i in range(flights_per_day):
            carrier = list(CARRIERS)[int(rng.integers(0, len(CARRIERS)))]
            origin = ORIGINS[int(rng.integers(0, 3))]
            dest = list(DESTS)[int(rng.integers(0, len(DESTS)))]
            hour = int(rng.integers(5, 23))
            minute = int(rng.choice([0, 15, 30, 45]))
            tail = None if rng.random() < 0.08 else tails[int(rng.integers(0, len(tails)))]
            z = -1.4 + 2.2 * precip[origin] + 1.5 * CARRIERS[carrier] + 0.18 * (hour - 12) + rng.normal(0, 0.3)
            late = rng.random() < 1 / (1 + np.exp(-z))
            cancelled = bool(late and rng.random() < 0.1)
            arr_delay = np.nan if cancelled else float(rng.normal(45, 20) if late else rng.normal(-5, 8))
            local = pd.Timestamp(f"{ds} {hour:02d}:00", tz=TZ)
            rows.append({
                "flight_id": f"{d:%Y%m%d}-{carrier}-{1000 + i}-{origin}-{dest}-{hour:02d}{minute:02d}",
                "event_timestamp": local.tz_convert("UTC").as_unit("us"),
                "carrier": carrier, "origin": origin, "dest": dest, "route": f"{origin}-{dest}",
                "tailnum": tail, "flight": 1000 + i, "dep_hour": hour, "day_of_week": d.isoweekday(),
                "month": d.month, "distance": DESTS[dest], "dep_delay": arr_delay,
                "arr_delay": arr_delay, "cancelled": cancelled, "is_late": int(late), "ds": ds,
                "plane_year": plane_year.get(tail) if tail else None,
            })
    flights = pd.DataFrame(rows)
    flights["event_timestamp"] = pd.to_datetime(flights["event_timestamp"], utc=True).astype("datetime64[us, UTC]")
    return {"flights": flights, "weather": pd.DataFrame(weather), "days": pd.Series(days)}


def write_lake(lake: Lake, first: str, n_days: int, **kwargs) -> list[str]:
    """Write curated and feature partitions for ``n_days`` days starting at ``first``."""
    sim = simulate(first, n_days, **kwargs)
    flights, weather = sim["flights"], sim["weather"]
    days = list(sim["days"])[:-1]
    request = ["flight_id", "event_timestamp", "carrier", "origin", "dest", "route", "tailnum", "flight",
               "dep_hour", "day_of_week", "month", "distance"]
    for idx, ds in enumerate(days):
        stamp = _end_of_day_utc(ds)
        today = flights[flights.ds == ds]
        cur = today[[*request, "dep_delay", "arr_delay", "cancelled", "is_late", "ds"]].sort_values("flight_id")
        # A numeric target without gaps, for regression use cases (cancelled = 3 hours late).
        cur = cur.assign(delay_minutes=cur["arr_delay"].fillna(180.0))
        lake.publish_parquet(cur.astype({"dep_hour": "int32", "day_of_week": "int32", "month": "int32",
                                         "flight": "int32"}), lake.curated("flights", ds))
        nxt = flights[flights.ds == sim["days"][idx + 1]][request].copy()
        nxt["ds"], nxt["flight_date"] = ds, sim["days"][idx + 1]
        lake.publish_parquet(nxt.sort_values("flight_id").astype(
            {"dep_hour": "int32", "day_of_week": "int32", "month": "int32", "flight": "int32"}),
            lake.curated("schedule", ds))

        d = date.fromisoformat(ds)
        hist = flights[flights.ds.isin([(d - timedelta(days=k)).isoformat() for k in range(28)])]
        last7 = hist[hist.ds > (d - timedelta(days=7)).isoformat()]
        c7 = last7.groupby("carrier").agg(carrier_late_rate_7d=("is_late", "mean"),
                                          carrier_mean_arr_delay_7d=("arr_delay", "mean"),
                                          carrier_flights_7d=("is_late", "size"),
                                          carrier_cancel_rate_7d=("cancelled", "mean"))
        c28 = hist.groupby("carrier").agg(carrier_late_rate_28d=("is_late", "mean"))
        carrier = c28.join(c7, how="inner").reset_index()
        route = hist.groupby("route").agg(route_late_rate_28d=("is_late", "mean"),
                                          route_mean_arr_delay_28d=("arr_delay", "mean"),
                                          route_flights_28d=("is_late", "size")).reset_index()
        w = weather[weather.ds == ds]
        wx = pd.DataFrame({"origin": w.origin, "wx_temp_mean": w.temp, "wx_humid_mean": w.humid,
                           "wx_precip_sum": w.precip, "wx_wind_speed_max": w.wind, "wx_visib_min": w.visib,
                           "wx_pressure_mean": w.pressure})
        tails = pd.concat([today, nxt])[["tailnum", "plane_year"]].dropna(subset=["tailnum"])
        tails = tails.drop_duplicates("tailnum")
        planes = pd.DataFrame({"tailnum": tails.tailnum,
                               "plane_age": (d.year - tails.plane_year).astype("float64"),
                               "plane_seats": 150.0})
        tables = {"carrier_stats": carrier.astype({"carrier_flights_7d": "int64",
                                                   "carrier_cancel_rate_7d": "float64"}),
                  "route_stats": route.astype({"route_flights_28d": "int64"}),
                  "origin_weather": wx, "plane_features": planes}
        for name, df in tables.items():
            df = df.copy()
            df["event_timestamp"] = stamp
            df["created"] = stamp
            lake.publish_parquet(df.sort_values(df.columns[0]).reset_index(drop=True), lake.features(name, ds))
    return days


@contextmanager
def isolated_home(home: Path) -> Iterator[Path]:
    """Point the lake, MLflow and Feast at ``home`` (one registry and model registry per test module)."""
    keys = ["GLIDESLOPE_HOME", "MLFLOW_TRACKING_URI", "GLIDESLOPE_LAKE_ROOT"]
    saved = {k: os.environ.get(k) for k in keys}
    os.environ["GLIDESLOPE_HOME"] = str(home)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    os.environ.pop("GLIDESLOPE_LAKE_ROOT", None)
    try:
        yield home
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
