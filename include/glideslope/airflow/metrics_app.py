"""``/glideslope/metrics``: Prometheus' view of every use case, served inside the Airflow API server.

Mounted by ``plugins/glideslope_plugin.py``. Each scrape reads the numbers again from what the
stages recorded (:mod:`glideslope.gauges`: the MLflow registry, the lake, the drift state), in
``prometheus_client``'s text format; ``?usecase=U`` (repeatable) narrows it to some use cases.

Not behind Airflow's login, like Airflow's own ``/api/v2/monitor/health``: Prometheus scrapes
without a browser session, and the page holds aggregate numbers only (versions, shares, counts,
ages; no rows, features or people). Who may reach it is the network's decision: compose publishes
the API server on loopback only and Prometheus scrapes it on the internal network
(docs/observability.md).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import Response

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "/glideslope/metrics"


class ExactPrefixPath:
    """Root middleware: ``/glideslope/metrics`` reaches the app mounted there (as ``.../metrics/``).

    A mounted app only sees paths below its prefix, and ``/glideslope/metrics`` itself would
    otherwise fall to the reports app mounted at ``/glideslope``. Every other request passes as it is.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and scope.get("path") == PREFIX:
            scope = {**scope, "path": PREFIX + "/", "raw_path": (PREFIX + "/").encode()}
        await self.app(scope, receive, send)


def create_app() -> FastAPI:
    app = FastAPI(title="Glideslope metrics", description="Per use case model and loop health for Prometheus.")

    @app.get("/", response_class=Response)
    def metrics(usecase: Annotated[list[str] | None, Query()] = None) -> Response:
        from glideslope.config import list_usecases
        from glideslope.gauges import collect, render

        known = list_usecases()
        unknown = sorted(set(usecase or []) - set(known))
        if unknown:
            raise HTTPException(404, f"unknown use case(s) {unknown}; known: {known}")
        return Response(render(collect(usecase or known)), media_type=CONTENT_TYPE)

    return app
