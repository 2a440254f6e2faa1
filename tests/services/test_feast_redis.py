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


def test_predictions_pushed_to_redis_are_read_back_by_key(redis_url, tmp_path, monkeypatch):
    """The score stage's last step on the production online store: the night's published predictions
    pushed to Redis (``push_predictions``) and read back by flight, as an application reads them
    (``online_predictions``)."""
    import numpy as np

    from glideslope.features.repo import apply_definitions
    from glideslope.features.store import feast_env, store
    from glideslope.scoring.score import online_predictions, push_predictions

    uc = load_usecase("flight_delay")
    ds = "2013-03-05"
    for k, v in {"GLIDESLOPE_PROFILE": "embedded", "GLIDESLOPE_HOME": str(tmp_path / "home"),
                 "GLIDESLOPE_LAKE_ROOT": str(tmp_path / "lake"),
                 "GLIDESLOPE_FEAST_REGISTRY": str(tmp_path / "feast" / "registry.db"),
                 "GLIDESLOPE_FEAST_ONLINE_TYPE": "redis",
                 "GLIDESLOPE_FEAST_ONLINE_STORE": f"{redis_url.removeprefix('redis://')},db=4"}.items():
        monkeypatch.setenv(k, v)
    cfg = settings()
    for k in feast_env(uc, cfg):  # store() exports these; give them back at teardown
        monkeypatch.setenv(k, "")
    assert cfg.feast_online_type == "redis"
    assert apply_definitions(uc, cfg=cfg)["applied"]
    view = store(uc, cfg).get_feature_view(uc.features.prediction_view, allow_registry_cache=False)
    fields = [f.name for f in view.features]
    # A night's predictions as the score stage publishes them: one row per flight, the view's columns.
    n = 250
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({uc.entity_key: [f"{ds}-B6-{i:04d}" for i in range(n)],
                          uc.event_timestamp: pd.Timestamp(f"{ds} 05:00", tz="UTC")})
    for name in fields:
        frame[name] = rng.random(n) if name != "model_version" else "3"
    lake = Lake.for_usecase(uc.name, cfg)
    lake.publish_parquet(frame, lake.predictions(ds))

    pushed = push_predictions(uc, ds, cfg, batch_rows=100)  # three batches
    assert pushed["rows"] == n and pushed["view"] == uc.features.prediction_view
    keys = [*frame[uc.entity_key].iloc[::7], f"{ds}-XX-none"]
    served = online_predictions(uc, keys, cfg)
    expected = frame.set_index(uc.entity_key)
    for key in keys[:-1]:
        for name in fields:
            want = expected.loc[key, name]
            got = served[key][name]
            assert (got == want) if isinstance(want, str) else abs(float(got) - float(want)) < 1e-6, (key, name, got)
    assert all(v is None for v in served[keys[-1]].values()), "a flight never scored has no prediction online"

    import redis as redis_client

    assert redis_client.Redis.from_url(f"{redis_url}/4").dbsize() >= n, "the predictions are not in Redis"
