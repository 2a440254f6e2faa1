"""Open a use case's Feast feature store with the locations of the current profile.

Each use case's ``feature_store.yaml`` holds ``${GLIDESLOPE_FEAST_*}`` placeholders rather than
paths; Feast expands them from the process environment when it reads the file. :func:`feast_env`
computes their values from :class:`glideslope.config.Settings`, so the same repository serves the
embedded profile (SQLite online store, local registry file) and production (Redis, S3 registry).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from glideslope.config import Settings, SpecError, UseCase, load_usecase, settings

if TYPE_CHECKING:
    from feast import FeatureStore


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
    return FeatureStore(repo_path=str(repo_path(uc)))
