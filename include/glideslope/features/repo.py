"""Read a use case's Feast repository and apply it to the registry only when it changed.

The repository modules import each other by plain name (``from entities import carrier``), the way
the ``feast`` CLI loads them. Several use cases each have an ``entities.py``, so the modules are
loaded with the repository on ``sys.path`` and removed from ``sys.modules`` again afterwards:
reading one use case's repository never hands out another's objects.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glideslope.config import Settings, UseCase, settings
from glideslope.features.store import feast_env, repo_path, store
from glideslope.lake import Lake

if TYPE_CHECKING:
    from feast.repo_contents import RepoContents

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
STATE_NAME = "feast_apply"


def _repo_files(repo: Path) -> list[Path]:
    files = [p for p in sorted(repo.glob("*.py")) if p.name != "__init__.py"]
    return [repo / "feature_store.yaml", *files]


@contextlib.contextmanager
def _repo_imports(repo: Path) -> Iterator[None]:
    """Make the repository's modules importable by plain name, then forget them."""
    names = [p.stem for p in repo.glob("*.py")]
    with _LOCK:
        saved = {n: sys.modules.pop(n) for n in names if n in sys.modules}
        cwd = os.getcwd()
        sys.path.insert(0, str(repo))
        # Feast names repository modules by their path relative to the working directory.
        os.chdir(repo)
        try:
            yield
        finally:
            os.chdir(cwd)
            sys.path.remove(str(repo))
            for n in names:
                sys.modules.pop(n, None)
            sys.modules.update(saved)


def load_definitions(uc: UseCase, cfg: Settings | None = None) -> RepoContents:
    """Every Feast object the repository of ``uc`` declares, parsed exactly as ``feast apply`` would."""
    from feast.project import Project
    from feast.repo_operations import parse_repo

    repo = repo_path(uc)
    os.environ.update(feast_env(uc, cfg))
    with _repo_imports(repo):
        contents = parse_repo(repo)
    if not any(p.name == uc.name for p in contents.projects):
        contents.projects.append(Project(name=uc.name, description=uc.description))
    _check_contract(uc, contents)
    return contents


def _check_contract(uc: UseCase, contents: RepoContents) -> None:
    where = repo_path(uc)
    services = {s.name for s in contents.feature_services}
    if uc.features.service not in services:
        raise ValueError(f"{where}: feature service {uc.features.service!r} (features.service in usecase.yaml) "
                         f"is not defined; found {sorted(services)}")
    views = {v.name for v in contents.feature_views}
    if uc.features.prediction_view not in views:
        raise ValueError(f"{where}: prediction view {uc.features.prediction_view!r} "
                         f"(features.prediction_view) is not defined; found {sorted(views)}")


def definitions_hash(uc: UseCase, cfg: Settings | None = None) -> str:
    """Hash of what an apply would write: the repository files and the locations they resolve to."""
    cfg = cfg or settings()
    h = hashlib.sha256()
    repo = repo_path(uc)
    for f in _repo_files(repo):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    # The same files point at another lake or store when the settings change: that is a change too.
    h.update(json.dumps({"env": feast_env(uc, cfg), "lake": cfg.lake_root}, sort_keys=True).encode())
    h.update(uc.model_dump_json(include={"features", "event_timestamp"}).encode())
    return h.hexdigest()


def _registry_has(uc: UseCase, fs: Any) -> bool:
    try:
        fs.get_feature_service(uc.features.service, allow_cache=False)
        fs.get_feature_view(uc.features.prediction_view, allow_registry_cache=False)
    except Exception:  # Feast raises a different *NotFound per object kind
        return False
    return True


def apply_definitions(uc: UseCase, force: bool = False, cfg: Settings | None = None) -> dict[str, Any]:
    """``feast apply`` for ``uc`` when its definitions changed since the last apply (or ``force``).

    The last applied hash is kept in the lake's state zone. It is trusted only while the registry
    still holds the feature service, so a wiped registry is re-applied even if the files did not
    change.
    """
    from feast.repo_operations import apply_total_with_repo_instance

    cfg = cfg or settings()
    lake = Lake.for_usecase(uc.name, cfg)
    digest = definitions_hash(uc, cfg)
    state_path = lake.state(STATE_NAME)
    last = lake.read_json(state_path, default={}) or {}
    fs = store(uc, cfg)
    if not force and last.get("hash") == digest and _registry_has(uc, fs):
        log.info("Feast definitions of %s unchanged (hash %s): nothing to apply", uc.name, digest[:12])
        return {"applied": False, "hash": digest, "applied_at": last.get("applied_at")}

    contents = load_definitions(uc, cfg)
    log.info("Applying Feast definitions of %s (hash %s, previous %s)", uc.name, digest[:12],
             str(last.get("hash"))[:12])
    apply_total_with_repo_instance(fs, uc.name, fs.registry, contents, skip_source_validation=True)
    now = datetime.now(UTC).isoformat()
    lake.write_json(state_path, {"hash": digest, "applied_at": now,
                                 "feature_views": sorted(v.name for v in contents.feature_views),
                                 "feature_services": sorted(s.name for s in contents.feature_services)})
    return {"applied": True, "hash": digest, "applied_at": now,
            "feature_views": sorted(v.name for v in contents.feature_views)}
