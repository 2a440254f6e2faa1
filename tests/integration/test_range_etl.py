"""A range of real days is one set-wise ETL pass that publishes each day exactly as a night would.

The range 2013-04-01 … 2013-04-05 with the delivery of 04-02 broken (a flights file with its header
only) and the feed unable to find 04-04's file: the range run quarantines 04-02, names both days in
``BackfillIncomplete`` (why each failed) and publishes the three other days; the same five days run
one by one in another lake publish byte-identical files, and fail the same days.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from glideslope.config import load_usecase
from glideslope.etl.pipeline import BackfillIncomplete, run_days
from glideslope.lake import Lake
from glideslope.usecase_modules import load_module

pytestmark = pytest.mark.integration

UC = "flight_delay"
DAYS = ["2013-04-01", "2013-04-02", "2013-04-03", "2013-04-04", "2013-04-05"]
BAD = "2013-04-02"
MISSING = "2013-04-04"


@pytest.fixture(scope="module")
def spark() -> Any:
    from glideslope.etl.spark_job import spark_session

    s = spark_session("glideslope-range-tests")
    yield s
    s.stop()


def _published(lake: Lake) -> dict[str, str]:
    base = Path(lake.base)
    return {str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest()
            for zone in ("curated", "features") for p in sorted((base / zone).rglob("*.parquet"))}


def test_a_range_publishes_each_day_as_the_day_alone_and_names_the_rejected_day(spark, tmp_path, monkeypatch):
    feed = load_module(load_usecase(UC), "feed")
    real = feed.deliveries
    header_only = real(BAD)["flights"].split(b"\n", 1)[0] + b"\n"

    def deliveries(ds: str) -> dict[str, bytes]:
        if ds == MISSING:
            raise FileNotFoundError(f"upstream export for {ds} not found: /exports/flights/{ds}.csv")
        return {**real(ds), **({"flights": header_only} if ds == BAD else {})}

    monkeypatch.setattr(feed, "deliveries", deliveries)

    ranged = Lake(root=str(tmp_path / "range"), usecase=UC)
    with pytest.raises(BackfillIncomplete) as exc:
        run_days(UC, DAYS, lake=ranged, spark=spark)
    assert sorted(exc.value.published) == [d for d in DAYS if d not in (BAD, MISSING)]
    assert sorted(exc.value.failed) == [BAD, MISSING] and "observed 0 rows" in exc.value.failed[BAD]
    assert exc.value.failed[MISSING] == f"FileNotFoundError: upstream export for {MISSING} not found: " \
                                        f"/exports/flights/{MISSING}.csv"
    assert f"published 3 of 5 days; could not publish 2:\n  {BAD}: data-quality gate failed" in str(exc.value)
    assert ranged.quarantined("flights", BAD), "the rejected delivery is kept in quarantine"

    nightly = Lake(root=str(tmp_path / "nightly"), usecase=UC)
    for ds in DAYS:
        if ds in (BAD, MISSING):
            with pytest.raises(BackfillIncomplete):
                run_days(UC, [ds], lake=nightly, spark=spark)
        else:
            run_days(UC, [ds], lake=nightly, spark=spark)

    by_range, by_night = _published(ranged), _published(nightly)
    assert by_range == by_night, "a day published by the range differs from the same day published alone"
    assert len(by_range) == 3 * len(load_usecase(UC).output_suites)
    assert not [k for k in by_range if f"/ds={BAD}/" in k or f"/ds={MISSING}/" in k]
