"""The flight_delay Spark transform on small real slices, with a local SparkSession."""

from __future__ import annotations

import io
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from glideslope.config import load_usecase
from glideslope.data.landing import land_day
from glideslope.etl.pipeline import validate_raw
from glideslope.etl.spark_job import SparkInputs, spark_session
from glideslope.lake import Lake
from glideslope.usecase_modules import load_module

pytestmark = pytest.mark.unit

D = "2013-07-10"          # the day whose flights we score / train on
PREV = "2013-07-09"       # their features come from the row stamped at the end of this day
DAYS = [(date(2013, 7, 3) + timedelta(days=i)).isoformat() for i in range(9)]  # 07-03 .. 07-11


@pytest.fixture(scope="module")
def spark():
    s = spark_session("glideslope-tests")
    yield s
    s.stop()


def _landed(root, feed=None):
    """A lake with DAYS landed and gated (the transform reads the gate's reading of each file)."""
    uc = load_usecase("flight_delay")
    lake = Lake(root=str(root), usecase=uc.name)
    for ds in DAYS:
        land_day(uc, ds, lake)
        validate_raw(uc, ds, lake)
    return lake


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    return _landed(tmp_path_factory.mktemp("lake"))


def _day(transform, inputs, ds):
    """The outputs of day ``ds`` alone (a night is the range of one day)."""
    return {k: v.where(v.ds == ds) for k, v in transform.build(inputs, [ds]).items()}


@pytest.fixture(scope="module")
def transform():
    return load_module(load_usecase("flight_delay"), "transform")


def _pdf(df) -> pd.DataFrame:
    return df.toPandas().reset_index(drop=True)


def _raw(lake: Lake, source: str, ds: str) -> pd.DataFrame:
    return pd.read_csv(lake.raw(source, ds), na_values=["NA"])


def test_labels_follow_the_rule_and_keep_cancelled_flights(spark, lake, transform):
    flights = _pdf(_day(transform, SparkInputs(spark, lake), D)["curated/flights"])
    raw = _raw(lake, "flights", D)
    assert len(flights) == len(raw), "no flight may vanish between raw and curated"
    assert flights["flight_id"].is_unique
    cancelled = raw["arr_delay"].isna()
    assert flights["cancelled"].sum() == cancelled.sum() > 0
    expected_late = ((raw["arr_delay"] >= 15) | cancelled).sum()
    assert flights["is_late"].sum() == expected_late
    assert set(flights["ds"]) == {D}


def test_features_for_a_flight_never_use_its_own_day_or_later(spark, lake, transform, tmp_path, monkeypatch):
    """Leakage: the feature row a day-D flight joins (stamped end of D-1) is blind to D's outcomes."""
    inputs = SparkInputs(spark, lake)
    before = {k: _pdf(v) for k, v in _day(transform, inputs, PREV).items() if k.startswith("features/")}

    # Rewrite history: every flight on D and after arrives 999 minutes late (as delivered).
    feed = load_module(load_usecase("flight_delay"), "feed")
    real = feed.deliveries

    def late(ds):
        out = dict(real(ds))
        if ds >= D:
            df = pd.read_csv(io.BytesIO(out["flights"]), dtype=str, keep_default_na=False)
            df["arr_delay"] = "999"
            buf = io.StringIO()
            df.to_csv(buf, index=False, lineterminator="\n")
            out["flights"] = buf.getvalue().encode()
        return out

    monkeypatch.setattr(feed, "deliveries", late)
    altered = _landed(tmp_path / "lake")
    after = {k: _pdf(v) for k, v in _day(transform, SparkInputs(spark, altered), PREV).items()
             if k.startswith("features/")}
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name], obj=name)

    # ...and the timestamps make the point-in-time join pick exactly that row.
    stamp = before["features/carrier_stats"]["event_timestamp"].iloc[0]
    flights_d = _pdf(_day(transform, inputs, D)["curated/flights"])
    flights_prev = _pdf(_day(transform, inputs, PREV)["curated/flights"])
    assert flights_d["event_timestamp"].min() >= stamp, "day-D flights can see the end-of-(D-1) row"
    assert flights_prev["event_timestamp"].max() < stamp, "day D-1 flights cannot see their own day's row"


def test_trailing_window_statistics_match_the_raw_data(spark, lake, transform):
    stats = _pdf(_day(transform, SparkInputs(spark, lake), PREV)["features/carrier_stats"]).set_index("carrier")
    window = pd.concat([_raw(lake, "flights", d) for d in DAYS if d <= PREV])
    window["day"] = pd.to_datetime(window[["year", "month", "day"]]).dt.strftime("%Y-%m-%d")
    last7 = window[window["day"] > (date.fromisoformat(PREV) - timedelta(days=7)).isoformat()]
    late = (last7["arr_delay"] >= 15) | last7["arr_delay"].isna()
    expected = late.groupby(last7["carrier"]).mean()
    pd.testing.assert_series_equal(stats.loc[expected.index, "carrier_late_rate_7d"], expected,
                                   check_names=False)
    assert (stats["carrier_flights_7d"] == last7.groupby("carrier").size().loc[stats.index]).all()


def test_weather_features_summarise_the_day(spark, lake, transform):
    wx = _pdf(_day(transform, SparkInputs(spark, lake), D)["features/origin_weather"]).set_index("origin")
    raw = _raw(lake, "weather", D)
    assert set(wx.index) == {"EWR", "JFK", "LGA"}
    assert wx.loc["JFK", "wx_temp_mean"] == pytest.approx(raw[raw.origin == "JFK"]["temp"].mean())
    assert wx.loc["LGA", "wx_precip_sum"] == pytest.approx(raw[raw.origin == "LGA"]["precip"].sum())


def test_schedule_is_tomorrows_flights(spark, lake, transform):
    sched = _pdf(_day(transform, SparkInputs(spark, lake), D)["curated/schedule"])
    tomorrow = _raw(lake, "flights", "2013-07-11")
    assert len(sched) == len(tomorrow)
    assert set(sched["flight_date"]) == {"2013-07-11"}
    assert "arr_delay" not in sched.columns and "is_late" not in sched.columns


def test_a_plane_the_reference_does_not_know_has_no_age(spark, lake, transform):
    """A tail number missing from planes (or a plane without a year) stays null: never 'built this year'."""
    feed = load_module(load_usecase("flight_delay"), "feed")
    planes = pd.read_csv(io.BytesIO(feed.reference()["planes"]), dtype=str, keep_default_na=False,
                         na_values=["NA", ""])
    features = _pdf(_day(transform, SparkInputs(spark, lake), D)["features/plane_features"]).set_index("tailnum")
    built = planes.dropna(subset=["year"]).set_index("tailnum")["year"].astype(int)
    unknown = features.index.difference(built.index)
    assert len(unknown) > 50, "the real data has many tail numbers planes does not list"
    assert features.loc[unknown, "plane_age"].isna().all(), "an unknown plane got an invented age"
    known = features.index.intersection(built.index)
    expected = (2013 - built.loc[known]).clip(lower=0).astype(float)
    pd.testing.assert_series_equal(features.loc[known, "plane_age"], expected, check_names=False)


def test_a_day_built_inside_a_range_is_the_day_built_alone(spark, lake, transform):
    """Set-wise: every output row of day X is the same whether X is built alone or with its neighbours."""
    both = transform.build(SparkInputs(spark, lake), [PREV, D])
    for name, df in transform.build(SparkInputs(spark, lake), [D]).items():
        alone = _pdf(df).sort_values(list(df.columns)).reset_index(drop=True)
        inside = _pdf(both[name].where(both[name].ds == D)).sort_values(list(df.columns)).reset_index(drop=True)
        pd.testing.assert_frame_equal(alone, inside, obj=name)
        assert len(alone) > 0, name


def test_spark_outputs_publish_from_a_tmpfs_scratch_into_a_lake_on_disk(spark):
    """The job's scratch is a TemporaryDirectory(); on a tmpfs /tmp it is another filesystem than the lake."""
    from fs_support import disk_folder, tmpfs_folder

    from glideslope.etl.spark_job import write_day_partitions

    df = spark.createDataFrame([(i, f"c{i % 3}", [PREV, D][i % 2]) for i in range(50)],
                               "n long, carrier string, ds string")
    with disk_folder() as root, tmpfs_folder(root) as scratch:
        lake = Lake(root=str(root), usecase="flight_delay")
        counts = write_day_partitions(df, lake, "curated/flights", [PREV, D, "2013-07-11"], scratch)
        assert counts == {PREV: 25, D: 25, "2013-07-11": 0}
        out = pd.read_parquet(lake.staging(D, "curated/flights"))
        assert list(out["n"]) == list(range(1, 50, 2)), "each day's rows, in canonical order"
        assert set(out["ds"]) == {D}
        empty = pd.read_parquet(lake.staging("2013-07-11", "curated/flights"))
        assert len(empty) == 0 and list(empty.columns) == ["n", "carrier", "ds"]
        final = lake.staging(D, "curated/flights")
        assert [p.name for p in Path(final).parent.iterdir()] == ["data.parquet"], "no staging file left"
