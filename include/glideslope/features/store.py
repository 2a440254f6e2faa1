"""Open a use case's Feast feature store with the locations of the current profile.

Each use case's ``feature_store.yaml`` holds ``${GLIDESLOPE_FEAST_*}`` placeholders rather than
paths; Feast expands them from the process environment when it reads the file. :func:`feast_env`
computes their values from :class:`glideslope.config.Settings`, so the same repository serves the
embedded profile (SQLite online store, local registry file) and production (Redis, S3 registry).

The offline store is DuckDB (through ibis). On a lake on ``s3://`` it reads the feature files with
DuckDB's ``httpfs`` extension, which comes from the ``duckdb-extension-httpfs`` wheel (installed
into the DuckDB of this process, never downloaded), and with an S3 secret built from the same
settings as every other S3 client here: :func:`configure_offline_reader`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glideslope.config import Settings, SpecError, UseCase, load_usecase, settings

if TYPE_CHECKING:
    from feast import FeatureStore

S3_SECRET = "glideslope_lake_s3"
# The process's DuckDB connection for a lake on S3 (created once: installing httpfs costs a copy).
_S3_BACKEND: dict[str, Any] = {}


def repo_path(uc: UseCase) -> Path:
    """The Feast repository folder of ``uc`` (``features.repo`` inside the use-case folder)."""
    path = uc.folder / uc.features.repo
    if not (path / "feature_store.yaml").exists():
        raise SpecError(
            f"{uc.folder / 'usecase.yaml'}: features.repo={uc.features.repo!r} has no feature_store.yaml "
            f"(looked in {path})"
        )
    return path


def online_store_config(cfg: Settings) -> dict[str, object]:
    if cfg.feast_online_type == "sqlite":
        return {"type": "sqlite", "path": cfg.feast_online_store}
    return {"type": "redis", "redis_type": "redis", "connection_string": cfg.feast_online_store}


def registry_config(cfg: Settings) -> dict[str, object]:
    registry = cfg.feast_registry
    # A short TTL: a long-lived worker sees an apply made by another process within a minute.
    return {"registry_type": "sql" if registry.startswith(("postgresql", "mysql", "sqlite:")) else "file",
            "path": registry, "cache_ttl_seconds": 60}


def feast_env(uc: UseCase, cfg: Settings | None = None) -> dict[str, str]:
    """Values of the placeholders in ``feature_store.yaml`` (JSON is valid YAML flow syntax)."""
    cfg = cfg or settings()
    return {
        "GLIDESLOPE_FEAST_PROJECT": uc.name,
        "GLIDESLOPE_FEAST_REGISTRY_CONFIG": json.dumps(registry_config(cfg)),
        "GLIDESLOPE_FEAST_ONLINE_STORE_CONFIG": json.dumps(online_store_config(cfg)),
    }


def httpfs_extension_file() -> Path:
    """The ``httpfs`` extension shipped by the ``duckdb-extension-httpfs`` wheel for this DuckDB."""
    import duckdb

    try:
        import duckdb_extension_httpfs
    except ImportError as e:
        raise RuntimeError(
            "the lake is on s3:// but the package duckdb-extension-httpfs is not installed; install the "
            f"version equal to duckdb {duckdb.__version__} (pyproject.toml pins both)"
        ) from e
    folder = Path(duckdb_extension_httpfs.__file__).parent / "extensions" / f"v{duckdb.__version__}"
    path = folder / "httpfs.duckdb_extension"
    if not path.exists():
        shipped = sorted(p.parent.name for p in folder.parent.glob("*/httpfs.duckdb_extension"))
        raise RuntimeError(f"duckdb-extension-httpfs has no extension for duckdb v{duckdb.__version__} "
                           f"(looked for {path}; it ships {shipped}): install matching versions of both")
    return path


def s3_secret_options(cfg: Settings) -> dict[str, str]:
    """DuckDB S3 secret parameters from the profile: endpoint and URL style from ``GLIDESLOPE_S3_*``,
    credentials and region from botocore's chain (``AWS_*`` variables, shared files, instance or pod
    identity), the chain s3fs and boto3 use for the rest of the lake."""
    from urllib.parse import urlsplit

    import botocore.session

    session = botocore.session.get_session()
    options = {"REGION": session.get_config_variable("region") or "us-east-1",
               "URL_STYLE": cfg.s3_url_style or ("path" if cfg.s3_endpoint_url else "vhost")}
    if cfg.s3_endpoint_url:
        url = urlsplit(cfg.s3_endpoint_url if "://" in cfg.s3_endpoint_url else f"https://{cfg.s3_endpoint_url}")
        if not url.hostname:
            raise SpecError(f"GLIDESLOPE_S3_ENDPOINT_URL={cfg.s3_endpoint_url!r}: no host in it")
        options["ENDPOINT"] = url.netloc
        options["USE_SSL"] = "false" if url.scheme == "http" else "true"
    creds = session.get_credentials()
    if creds is not None:
        frozen = creds.get_frozen_credentials()
        options["KEY_ID"] = frozen.access_key
        options["SECRET"] = frozen.secret_key
        if frozen.token:
            options["SESSION_TOKEN"] = frozen.token
    return options


def configure_offline_reader(cfg: Settings) -> None:
    """Make Feast's DuckDB offline store able to read ``cfg``'s lake; a no-op for a local lake.

    Feast reads sources with ``ibis.read_parquet``, on ibis's default backend. For a lake on S3
    that backend becomes a DuckDB connection of ours with ``httpfs`` loaded and the S3 secret set.
    The secret is replaced on every call, so credentials that rotate (instance identity) are
    picked up by the next store opened in a long-lived worker.
    """
    if not cfg.lake_root.startswith("s3://"):
        return
    import ibis

    con = _S3_BACKEND.get("con")
    if con is None:
        con = ibis.duckdb.connect()
        # INSTALL from the wheel's file (ibis skips LOAD only for an installed extension) into the
        # profile's home, not ~/.duckdb, and never from the network.
        extensions = cfg.home / "duckdb" / "extensions"
        extensions.mkdir(parents=True, exist_ok=True)
        con.raw_sql(f"SET extension_directory = '{_sql_text(str(extensions))}'")
        con.raw_sql(f"INSTALL '{_sql_text(str(httpfs_extension_file()))}'")
        con.raw_sql("LOAD httpfs")
        _S3_BACKEND["con"] = con
    params = ", ".join(f"{k} {v}" if k == "USE_SSL" else f"{k} '{_sql_text(v)}'"
                       for k, v in s3_secret_options(cfg).items())
    con.raw_sql(f"CREATE OR REPLACE SECRET {S3_SECRET} (TYPE s3, {params})")
    ibis.set_backend(con)


def offline_connection(paths: list[str]) -> Any:
    """The DuckDB connection our own point-in-time join reads ``paths`` with.

    ``None`` for local files (the join opens a fresh in-memory one). For ``s3://`` files, the raw
    connection behind the ibis backend that :func:`store` set up with ``httpfs`` and the S3 secret
    of the profile the store was opened for.
    """
    if not any(p.startswith("s3://") for p in paths):
        return None
    con = _S3_BACKEND.get("con")
    if con is None:
        raise RuntimeError(f"{paths[0]} is on S3 but no feature store was opened for an S3 lake in this "
                           "process; open it with glideslope.features.store(uc, cfg)")
    return con.con


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


def store(uc: UseCase | str, cfg: Settings | None = None) -> FeatureStore:
    """The ``FeatureStore`` of a use case, configured for the current profile.

    The placeholders are exported into ``os.environ`` because Feast expands them from there, also
    when it re-reads the file later in the same process.
    """
    from feast import FeatureStore

    uc = load_usecase(uc) if isinstance(uc, str) else uc
    cfg = cfg or settings()
    local = [cfg.feast_registry] + ([cfg.feast_online_store] if cfg.feast_online_type == "sqlite" else [])
    for path in local:
        if "://" not in path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    os.environ.update(feast_env(uc, cfg))
    configure_offline_reader(cfg)
    return FeatureStore(repo_path=str(repo_path(uc)))
