"""Feast's Redis online store serves exactly what the SQLite one serves.

The day's feature partitions come from the Celery-run ETL. They are materialized twice with the
same repository (``${ENV}`` placeholders, no file edited): once as the embedded profile does
(SQLite online store, local registry file) and once as production does (Redis online store,
registry in S3). Every flight of the day is then looked up online in both.
"""

from __future__ import annotations

import shutil
import time

import pandas as pd
import pytest

from glideslope.config import load_usecase, settings
from glideslope.lake import Lake

pytestmark = pytest.mark.services


def _online(kind: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, ds: str,
            entity_rows: list[dict]) -> pd.DataFrame:
    from glideslope.features.materialize import materialize_days
    from glideslope.features.repo import apply_definitions
    from glideslope.features.retrieval import join_keys
    from glideslope.features.store import feast_env, store

    uc = load_usecase("flight_delay")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    cfg = settings()
    for k in feast_env(uc, cfg):  # store() exports these; give them back at teardown
        monkeypatch.setenv(k, "")
    assert cfg.feast_online_type == kind
    assert apply_definitions(uc, cfg=cfg)["applied"]
    loaded = materialize_days(uc, [ds], cfg)
    assert loaded["loaded"] and loaded["days"] == [ds], loaded
    fs = store(uc, cfg)
    keys = join_keys(uc, fs)
    rows = [{k: r[k] for k in keys} for r in entity_rows]
    service = fs.get_feature_service(uc.features.service, allow_cache=False)
    return fs.get_online_features(features=service, entity_rows=rows).to_df()


def test_redis_online_store_serves_what_sqlite_serves(etl_run, production_lake, redis_url, s3, tmp_path,
                                                      monkeypatch, timing):
    uc = load_usecase("flight_delay")
    ds = etl_run["ds"]
    assert etl_run["state"] == "success", "the ETL run that produces the features failed"
    source = Lake(str(production_lake), uc.name)
    flights = pd.read_parquet(source.output(ds, "curated/flights"))
    flights = flights[flights["tailnum"].notna()]
    entity_rows = flights[["carrier", "route", "origin", "tailnum"]].drop_duplicates().to_dict("records")

    def lake_copy(kind: str) -> str:
        root = tmp_path / f"lake-{kind}"
        shutil.copytree(production_lake / uc.name / "features", root / uc.name / "features")
        return str(root)

    t0 = time.monotonic()
    sqlite = _online("sqlite", {
        "GLIDESLOPE_PROFILE": "embedded", "GLIDESLOPE_LAKE_ROOT": lake_copy("sqlite"),
        "GLIDESLOPE_FEAST_REGISTRY": str(tmp_path / "feast" / "registry.db"),
        "GLIDESLOPE_FEAST_ONLINE_TYPE": "sqlite",
        "GLIDESLOPE_FEAST_ONLINE_STORE": str(tmp_path / "feast" / "online_store.db"),
    }, monkeypatch, ds, entity_rows)
    timing("feast: apply + materialize + online read, SQLite", t0)
    t1 = time.monotonic()
    host_port = redis_url.removeprefix("redis://")
    redis = _online("redis", {
        "GLIDESLOPE_PROFILE": "production", "GLIDESLOPE_LAKE_ROOT": lake_copy("redis"),
        "GLIDESLOPE_FEAST_REGISTRY": f"s3://{s3.bucket}/feast/registry.db",
        "FEAST_S3_ENDPOINT_URL": s3.endpoint_url,
        "GLIDESLOPE_FEAST_ONLINE_TYPE": "redis",
        "GLIDESLOPE_FEAST_ONLINE_STORE": f"{host_port},db=1",
    }, monkeypatch, ds, entity_rows)
    timing("feast: apply + materialize + online read, Redis + S3 registry", t1)

    assert len(redis) == len(entity_rows) > 100
    pd.testing.assert_frame_equal(redis, sqlite, obj="online features, redis vs sqlite")
    # And the values are the day's feature rows, not empty lookups.
    carrier_stats = pd.read_parquet(source.output(ds, "features/carrier_stats")).set_index("carrier")
    served = redis.drop_duplicates("carrier").set_index("carrier")["carrier_late_rate_7d"]
    pd.testing.assert_series_equal(served.sort_index(), carrier_stats.loc[served.index, "carrier_late_rate_7d"]
                                   .sort_index(), check_names=False)
    assert "feast/registry.db" in s3.keys("feast/")

    import redis as redis_client

    db1 = redis_client.Redis.from_url(f"{redis_url}/1")
    assert db1.dbsize() > 0
