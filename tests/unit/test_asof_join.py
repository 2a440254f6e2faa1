"""Our DuckDB point-in-time join gives Feast's answer: same rows, same order, same values.

Both joins run on the same real Feast store (DuckDB offline store over the lake's Parquet files)
of a synthetic lake in the flight_delay contract, for entity rows placed where a join can go
wrong: exactly on a feature timestamp, one microsecond before it, past a view's TTL, before any
feature row, with keys the store has never seen, and with two feature rows of one key and one
timestamp that only their ``created`` time tells apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ml_data import isolated_home, write_lake

from glideslope.config import load_usecase
from glideslope.lake import Lake

pytestmark = pytest.mark.unit

KEYS = ["flight_id", "event_timestamp", "carrier", "route", "origin", "tailnum"]


@pytest.fixture(scope="module")
def store_and_rows(tmp_path_factory):
    from glideslope.features import store
    from glideslope.features.repo import apply_definitions

    with isolated_home(tmp_path_factory.mktemp("asof_home")):
        uc = load_usecase("flight_delay")
        lake = Lake.for_usecase(uc.name)
        write_lake(lake, "2013-01-01", 8, flights_per_day=120)
        # Two rows of one carrier at one timestamp: the newer ``created`` must win in both joins.
        day = lake.read_parquet(lake.features("carrier_stats", "2013-01-04"))
        twin_old, twin_new = day.iloc[[0]].copy(), day.iloc[[0]].copy()
        twin_old["carrier_late_rate_7d"], twin_new["carrier_late_rate_7d"] = 111.0, 222.0
        twin_old["created"] = twin_old["created"] + pd.Timedelta(hours=1)
        twin_new["created"] = twin_new["created"] + pd.Timedelta(hours=2)
        lake.publish_parquet(twin_new, f"{lake.features('carrier_stats')}/ds=twin-new/data.parquet")
        lake.publish_parquet(twin_old, f"{lake.features('carrier_stats')}/ds=twin-old/data.parquet")
        apply_definitions(uc)

        flights = pd.concat([lake.read_parquet(lake.curated("flights", d))
                             for d in ("2013-01-02", "2013-01-05", "2013-01-08")], ignore_index=True)
        rows = flights[KEYS].copy()
        stamp = day["event_timestamp"].iloc[0]
        probes = rows.iloc[:7].copy()
        probes["carrier"] = day["carrier"].iloc[0]
        probes["event_timestamp"] = [stamp, stamp - pd.Timedelta(microseconds=1), stamp + pd.Timedelta(days=3),
                                     stamp + pd.Timedelta(days=30), pd.Timestamp("2012-06-01", tz="UTC"),
                                     stamp + pd.Timedelta(hours=5), stamp + pd.Timedelta(days=8)]
        strangers = rows.iloc[7:10].copy()
        strangers[["carrier", "route", "origin", "tailnum"]] = ["ZZ", "ZZZ-YYY", "QQQ", "N000XX"]
        entities = pd.concat([rows, probes, strangers], ignore_index=True).sample(frac=1.0, random_state=3)
        entities["flight_id"] = [f"{f}#{i}" for i, f in enumerate(entities["flight_id"])]
        yield uc, store(uc), entities.reset_index(drop=True), day["carrier"].iloc[0], stamp


def _features(uc, fs) -> list[str]:
    from glideslope.features.retrieval import service_features

    return service_features(uc, fs)


def test_the_duckdb_join_equals_feasts_on_every_row_and_feature(store_and_rows) -> None:
    from glideslope.features.retrieval import historical_features

    uc, fs, entities, _, _ = store_and_rows
    ours = historical_features(uc, entities, fs, engine="duckdb")
    feast = historical_features(uc, entities, fs, engine="feast")
    assert len(ours) == len(feast) == len(entities)
    assert list(ours["flight_id"]) == list(feast["flight_id"]) == list(entities["flight_id"])
    features = _features(uc, fs)
    assert set(features) <= set(ours.columns)
    for col in features:
        a = pd.to_numeric(ours[col], errors="coerce").to_numpy(dtype="float64")
        b = pd.to_numeric(feast[col], errors="coerce").to_numpy(dtype="float64")
        assert np.array_equal(np.isnan(a), np.isnan(b)), f"{col}: nulls differ"
        assert np.allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=0, atol=1e-12), col
    # The rows were chosen so that the comparison is not vacuous: values, nulls and the TTL all occur.
    assert ours["carrier_late_rate_7d"].notna().sum() > len(entities) // 2
    assert ours.loc[ours["carrier"] == "ZZ", "carrier_late_rate_7d"].isna().all()


def test_the_join_keeps_the_newest_created_row_and_honours_the_ttl(store_and_rows) -> None:
    from glideslope.features.retrieval import historical_features

    uc, fs, entities, carrier, stamp = store_and_rows
    ours = historical_features(uc, entities, fs, engine="duckdb").set_index("flight_id")
    mine = ours[ours["carrier"] == carrier]
    at = mine[pd.to_datetime(mine["event_timestamp"], utc=True) == stamp]
    assert (at["carrier_late_rate_7d"] == 222.0).all() and len(at)
    # The lake's last feature day is 2013-01-08: four days later its rows are past the 3-day TTL.
    for late in (pd.Timedelta(days=8), pd.Timedelta(days=30)):
        far = mine[pd.to_datetime(mine["event_timestamp"], utc=True) == stamp + late]
        assert far["carrier_late_rate_7d"].isna().all() and len(far), "past the 3-day TTL there is no value"
    early = mine[pd.to_datetime(mine["event_timestamp"], utc=True) < pd.Timestamp("2013-01-01", tz="UTC")]
    assert early["carrier_late_rate_7d"].isna().all() and len(early)


def test_a_view_the_duckdb_join_cannot_read_is_answered_by_feast(store_and_rows, monkeypatch) -> None:
    from glideslope.features import asof
    from glideslope.features.retrieval import historical_features

    uc, fs, entities, _, _ = store_and_rows
    monkeypatch.setattr(asof, "plan", lambda uc, fs: "carrier_stats is not a batch feature view")
    with pytest.raises(ValueError, match="carrier_stats is not a batch feature view"):
        historical_features(uc, entities.head(5), fs, engine="duckdb")
    auto = historical_features(uc, entities.head(5), fs)  # falls back to Feast
    assert list(auto["flight_id"]) == list(entities.head(5)["flight_id"])
