"""An Airflow auth manager for the plugin apps' tests: the simple one, with DAG grants per user.

Airflow's simple auth manager lets every viewer read every DAG; FAB and the cloud managers grant per
DAG. ``GrantingAuthManager`` is the simple manager (real JWTs, real roles) plus such grants, so a
test can name a user who may read one use case's DAGs and not another's.
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

ADMIN = SimpleAuthManagerUser(username="admin", role="admin")


class GrantingAuthManager(SimpleAuthManager):
    grants: dict[str, set[str]] = {}  # username -> DAG ids it may read; users not named: their role decides

    def is_authorized_dag(self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None) -> bool:
        if user.username in self.grants:
            return method == "GET" and details is not None and details.id in self.grants[user.username]
        return super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)


def install(monkeypatch: Any, grants: dict[str, set[str]] | None = None) -> GrantingAuthManager:
    """Make a ``GrantingAuthManager`` the API server's auth manager for one test."""
    from airflow.api_fastapi.app import _AuthManagerState

    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "secret-of-the-plugin-apps-tests-" * 3)
    manager = GrantingAuthManager()
    manager.grants = dict(grants or {})
    monkeypatch.setattr(_AuthManagerState, "instance", manager)
    return manager


def bearer(manager: SimpleAuthManager, username: str, role: str | None, **kwargs: Any) -> dict[str, str]:
    token = manager.generate_jwt(SimpleAuthManagerUser(username=username, role=role), **kwargs)
    return {"Authorization": f"Bearer {token}"}
