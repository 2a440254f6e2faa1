"""Feast repository handling: which days go online, when an apply is due, repo isolation."""

from __future__ import annotations

import sys

import pytest

from glideslope.config import load_usecase, settings
from glideslope.features.materialize import materialization_days
from glideslope.features.repo import definitions_hash, load_definitions
from glideslope.features.store import feast_env, s3_secret_options

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("events", "watermark", "expected"), [
    (["2013-06-10"], None, ["2013-06-10"]),                                   # first load
    (["2013-06-10", "2013-06-08"], None, ["2013-06-08", "2013-06-09", "2013-06-10"]),
    (["2013-06-11"], "2013-06-10", ["2013-06-11"]),                           # the nightly case
    (["2013-06-13"], "2013-06-10", ["2013-06-11", "2013-06-12", "2013-06-13"]),  # a gap is filled
    (["2013-06-10"], "2013-06-10", ["2013-06-10"]),                           # rerun of the newest day
    (["2013-06-05"], "2013-06-10", []),                                       # backfill: never go back
    (["2013-06-05", "2013-06-11"], "2013-06-10", ["2013-06-10", "2013-06-11"]),
    ([], "2013-06-10", []),
])
def test_materialization_days(events, watermark, expected) -> None:
    assert materialization_days(events, watermark) == expected


def test_feature_store_yaml_placeholders_follow_the_profile() -> None:
    uc = load_usecase("flight_delay")
    embedded = feast_env(uc, settings({"GLIDESLOPE_HOME": "/srv/gs"}))
    assert embedded["GLIDESLOPE_FEAST_PROJECT"] == "flight_delay"
    assert '"type": "sqlite"' in embedded["GLIDESLOPE_FEAST_ONLINE_STORE_CONFIG"]
    assert "/srv/gs/feast/online_store.db" in embedded["GLIDESLOPE_FEAST_ONLINE_STORE_CONFIG"]
    prod = feast_env(uc, settings({"GLIDESLOPE_PROFILE": "production", "GLIDESLOPE_HOME": "/srv/gs"}))
    assert '"type": "redis"' in prod["GLIDESLOPE_FEAST_ONLINE_STORE_CONFIG"]
    assert "s3://glideslope/feast/registry.db" in prod["GLIDESLOPE_FEAST_REGISTRY_CONFIG"]


def test_repo_definitions_match_the_spec_and_leave_no_modules_behind() -> None:
    uc = load_usecase("flight_delay")
    plain = {"entities", "sources", "views", "services"}
    before = {n: sys.modules[n] for n in plain if n in sys.modules}  # e.g. the tests/services package
    contents = load_definitions(uc)
    service = next(s for s in contents.feature_services if s.name == uc.features.service)
    assert sorted(p.name for p in service.feature_view_projections) == sorted(uc.features.tables)
    views = {v.name: v for v in contents.feature_views}
    assert views[uc.features.prediction_view].stream_source is not None, "scores are pushed, not materialized"
    for table in uc.features.tables:
        # Sources read the lake of the current profile through a glob (the duckdb store needs one).
        assert views[table].batch_source.path.endswith(f"/features/{table}/ds=*/data.parquet")
    assert {e.name for e in contents.entities} >= {"carrier", "route", "origin", "tailnum", "flight_id"}
    # Another use case's repository also has entities.py/views.py: nothing may stay cached by plain name.
    assert {n: sys.modules[n] for n in plain if n in sys.modules} == before


def test_definitions_hash_changes_with_files_and_locations(tmp_path) -> None:
    uc = load_usecase("flight_delay")
    base = settings({"GLIDESLOPE_HOME": str(tmp_path / "a")})
    assert definitions_hash(uc, base) == definitions_hash(uc, base)
    moved = settings({"GLIDESLOPE_HOME": str(tmp_path / "a"), "GLIDESLOPE_LAKE_ROOT": str(tmp_path / "lake2")})
    assert definitions_hash(uc, moved) != definitions_hash(uc, base)

    copy = tmp_path / "usecases" / "flight_delay"
    import shutil

    shutil.copytree(uc.folder, copy)
    other = uc.model_copy(update={"folder": copy})
    assert definitions_hash(other, base) == definitions_hash(uc, base)
    views = copy / uc.features.repo / "views.py"
    views.write_text(views.read_text().replace("ttl=timedelta(days=3)", "ttl=timedelta(days=4)", 1))
    assert definitions_hash(other, base) != definitions_hash(uc, base)


@pytest.mark.parametrize(("env", "expected"), [
    # MinIO in compose: plain HTTP, path-style, the endpoint without its scheme.
    ({"GLIDESLOPE_S3_ENDPOINT_URL": "http://minio:9000"},
     {"ENDPOINT": "minio:9000", "USE_SSL": "false", "URL_STYLE": "path"}),
    ({"GLIDESLOPE_S3_ENDPOINT_URL": "https://s3.internal:9443", "GLIDESLOPE_S3_URL_STYLE": "vhost"},
     {"ENDPOINT": "s3.internal:9443", "USE_SSL": "true", "URL_STYLE": "vhost"}),
    ({}, {"URL_STYLE": "vhost"}),  # AWS itself: DuckDB's default endpoint
])
def test_duckdb_s3_secret_follows_the_profile_and_the_aws_chain(env, expected, monkeypatch) -> None:
    for k, v in {"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "s3cr'et",
                 "AWS_SESSION_TOKEN": "tok", "AWS_DEFAULT_REGION": "eu-west-3"}.items():
        monkeypatch.setenv(k, v)
    cfg = settings({"GLIDESLOPE_PROFILE": "production", "GLIDESLOPE_HOME": "/srv/gs", **env})
    options = s3_secret_options(cfg)
    assert options == {**expected, "REGION": "eu-west-3", "KEY_ID": "AKIDTEST", "SECRET": "s3cr'et",
                       "SESSION_TOKEN": "tok"}
