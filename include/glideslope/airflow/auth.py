"""Who may read what through the plugin's apps: Airflow's auth manager decides, per use case.

A request is identified the way Airflow's own API identifies it (``Authorization: Bearer`` first,
else the UI's JWT cookie): none, or an expired one, is 401. A use case's data — its drift reports,
its model health — may be read by a user whom the auth manager lets read every DAG of that use case
(``<usecase>__etl`` … ``<usecase>__monitor``); anyone else gets 403. With the simple auth manager
every role from viewer up reads every DAG; FAB or another manager can grant per DAG.

Any of the plugin's FastAPI apps reuses these as dependencies::

    app = FastAPI(dependencies=[Depends(current_user)])

    @app.get("/x/{usecase}", dependencies=[Depends(require_usecase_read)])

Airflow's modules are imported inside the functions: the plugin is loaded where no API server runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from glideslope.config import STAGES


def usecase_dag_ids(usecase: str) -> list[str]:
    return [f"{usecase}__{stage}" for stage in STAGES]


async def current_user(request: Request) -> Any:
    """The user of the request, resolved by Airflow's API security; 401 without a valid login."""
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    return await get_user(request, None, await bearer_scheme(request))


CurrentUser = Annotated[Any, Depends(current_user)]


def _dag_requests(dag_ids: Iterable[str]) -> list[Any]:
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.configuration import conf

    multi_team = conf.getboolean("core", "multi_team", fallback=False)
    requests = []
    for dag_id in dag_ids:
        team = None
        if multi_team:  # a team's DAGs are checked against that team, as Airflow's routes do
            from airflow.models.dag import DagModel

            team = DagModel.get_team_name(dag_id)
        requests.append({"method": "GET", "details": DagDetails(id=dag_id, team_name=team)})
    return requests


def may_read_usecase(user: Any, usecase: str) -> bool:
    from airflow.api_fastapi.app import get_auth_manager

    return bool(get_auth_manager().batch_is_authorized_dag(_dag_requests(usecase_dag_ids(usecase)), user=user))


def readable_usecases(user: Any, usecases: Iterable[str]) -> list[str]:
    """The use cases among ``usecases`` whose every DAG ``user`` may read, in the given order."""
    return [uc for uc in usecases if may_read_usecase(user, uc)]


def require_usecase_read(usecase: str, user: CurrentUser) -> Any:
    """Dependency of a route with a ``{usecase}`` path part: 403 unless the user may read its DAGs."""
    if not may_read_usecase(user, usecase):
        name = getattr(user, "get_name", lambda: "this user")()
        raise HTTPException(403, f"{name} may not read the DAGs of use case {usecase!r} "
                                 f"({', '.join(usecase_dag_ids(usecase))}); ask an admin for read access")
    return user
