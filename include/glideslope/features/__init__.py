"""Feast feature store of each use case: definitions, apply, online materialization, retrieval.

Feast is imported only inside the functions, so importing this package stays cheap.
"""

from glideslope.features.store import feast_env, repo_path, store

__all__ = ["feast_env", "repo_path", "store"]
