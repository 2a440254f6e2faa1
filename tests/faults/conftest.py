"""The fault battery: real data, real components, and the three outcomes that matter.

Every case breaks one thing on purpose and asserts that (1) the last good output is byte for byte
what it was, (2) nothing is doubled (no second file, no stray staging file, no repeated row), and
(3) the error names what failed -- then that the next run recovers by itself.

Each case declares what happened before the fix and what happens now with :func:`case`; each run
writes ``test-results/faults.json`` afresh (its commit, the cases it collected, their outcomes) and
``python tests/faults/render.py`` turns one whole run into ``docs/reliability.md``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from fault_cases import case  # noqa: F401 - the cases import it from here
from glideslope.config import load_usecase
from glideslope.etl.pipeline import run_days
from glideslope.lake import STAGING_PREFIX, Lake

ROOT = Path(__file__).resolve().parents[2]
UC = "flight_delay"
D0 = "2013-03-04"  # the last good day, published before every case
D = "2013-03-05"   # the day a case breaks
NEXT = "2013-03-06"  # the next good day after it

def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.faults)


# -- the lake of a case ---------------------------------------------------------------------------

def published(lake: Lake, zones: tuple[str, ...] = ("curated", "features", "predictions")) -> dict[str, str]:
    """sha256 of every file a reader can see: curated and feature partitions (or ``zones``)."""
    base = Path(lake.base)
    out = {}
    for zone in zones:
        for p in sorted((base / zone).rglob("*")) if (base / zone).exists() else []:
            if p.is_file():
                out[str(p.relative_to(base))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def of_day(files: dict[str, str], ds: str) -> dict[str, str]:
    return {k: v for k, v in files.items() if f"/ds={ds}/" in k}


def assert_nothing_doubled(lake: Lake) -> None:
    """One data.parquet per partition, no staging file left, no key twice in a label table."""
    base = Path(lake.base)
    strays = [p for zone in ("curated", "features", "predictions", "raw")
              for p in (base / zone).rglob(f"{STAGING_PREFIX}*") if (base / zone).exists()]
    assert not strays, f"staging files left behind: {strays}"
    for part in base.glob("*/*/ds=*"):
        if part.parts[-3] in ("curated", "features"):
            assert [p.name for p in part.iterdir()] == ["data.parquet"], f"{part}: {list(part.iterdir())}"
    for labels in (base / "curated" / "flights").glob("ds=*/data.parquet"):
        ids = lake.read_parquet(str(labels), columns=["flight_id"])["flight_id"]
        assert ids.is_unique, f"{labels}: a flight appears twice"


def copy_lake(src: Lake, dest: Path) -> Lake:
    shutil.copytree(src.root, dest, symlinks=True)
    return Lake(root=str(dest), usecase=src.usecase)


@pytest.fixture(scope="module")
def spark() -> Any:
    """One in-process Spark session per module (the transform runs on it; no spark-submit)."""
    from glideslope.etl.spark_job import spark_session

    # Stopped after the module: getOrCreate() elsewhere in the session must not get this one.
    session = spark_session("glideslope-faults")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def base_lake(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """D0 landed, gated, transformed and published: the last good output of every case."""
    lake = Lake(root=str(tmp_path_factory.mktemp("base") / "lake"), usecase=UC)
    run_days(UC, [D0], lake=lake, spark=spark)
    return lake


@pytest.fixture(scope="module")
def reference_lake(base_lake: Lake, spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """A clean run of D after D0."""
    lake = copy_lake(base_lake, tmp_path_factory.mktemp("reference") / "lake")
    run_days(UC, [D], lake=lake, spark=spark)
    return lake


@pytest.fixture(scope="module")
def reference(reference_lake: Lake) -> dict[str, str]:
    """What a clean run publishes for D: what every case must recover to, byte for byte."""
    return of_day(published(reference_lake), D)


@pytest.fixture(scope="module")
def reference_next(reference_lake: Lake, spark: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What a clean run publishes for the day after D (after clean D0 and D): the next good day."""
    lake = copy_lake(reference_lake, tmp_path_factory.mktemp("reference_next") / "lake")
    run_days(UC, [NEXT], lake=lake, spark=spark)
    return of_day(published(lake), NEXT)


@pytest.fixture(scope="module")
def reference_raw(reference_lake: Lake) -> dict[str, str]:
    """The raw zone of D after a clean run: what a fixed re-delivery must land."""
    return of_day(published(reference_lake, ("raw",)), D)


@pytest.fixture()
def lake(base_lake: Lake, tmp_path: Path) -> Lake:
    return copy_lake(base_lake, tmp_path / "lake")


@pytest.fixture()
def feed() -> Any:
    from glideslope.usecase_modules import load_module

    return load_module(load_usecase(UC), "feed")


def raw_lines(feed: Any, source: str, ds: str = D) -> list[str]:
    return feed.deliveries(ds)[source].decode().split("\n")[:-1]


def env_without_spark_connect() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GLIDESLOPE_SPARK_CONNECT")}
