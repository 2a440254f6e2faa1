"""Serves the lake's reports inside the Airflow API server, so the "Drift report" buttons open them.

Mounted by ``plugins/glideslope_plugin.py`` at ``/glideslope``:

* ``/glideslope/reports`` — every use case's recent checks with their verdicts;
* ``/glideslope/reports/<usecase>/drift/<ds>`` — the Evidently HTML of that day;
* ``/glideslope/reports/<usecase>/drift/<ds>/performance.html`` and ``.../numbers.json``.

Files are read through the lake (local folder or S3). Requests need the same login as the
Airflow UI (its JWT cookie or a bearer token): none is 401. A use case's reports need read access to
its DAGs (``glideslope.airflow.auth``): without it 403, and the index lists only the use cases the
user may read. Only the fixed file names above can be read: the
path parts are validated, never joined blindly.
"""

from __future__ import annotations

import html
import re
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse, Response

from glideslope.airflow.auth import CurrentUser, current_user, readable_usecases, require_usecase_read

_DS = re.compile(r"^\d{4}-\d{2}-\d{2}$")
KINDS = ("drift",)
FILES = {"report.html": "text/html", "performance.html": "text/html", "numbers.json": "application/json"}


require_user = current_user  # the login every route needs; kept under this name for the apps' tests


def _lake(usecase: str) -> Any:
    from glideslope.config import list_usecases
    from glideslope.lake import Lake

    if usecase not in list_usecases():
        raise HTTPException(404, f"unknown use case {usecase!r}")
    return Lake.for_usecase(usecase)


def _read(usecase: str, kind: str, ds: str, name: str) -> Response:
    if kind not in KINDS or not _DS.match(ds) or name not in FILES:
        raise HTTPException(404, "no such report")
    lake = _lake(usecase)
    path = f"{lake.report_dir(kind, ds)}/{name}"
    if not lake.exists(path) or not _inside(lake, path):
        raise HTTPException(404, f"no {kind} report {name} for {usecase} on {ds} (looked in {path})")
    with lake.fs.open(path, "rb") as f:
        return Response(f.read(), media_type=FILES[name])


def _inside(lake: Any, path: str) -> bool:
    """A local report file resolves (symlinks followed) to a place inside the use case's lake."""
    import os

    if lake.is_remote:
        return True  # object keys have no links; the key is built from validated parts
    base = os.path.realpath(lake.base)
    return os.path.commonpath([base, os.path.realpath(path)]) == base


def _live(check: dict[str, Any], metric: str | None) -> str:
    """The check's live value of ``metric``; one of another metric (kept before the spec changed) is named."""
    recorded = check.get("live_metric") or ("roc_auc" if "live_roc_auc" in check else None)  # older states
    for name in dict.fromkeys([metric, recorded]):
        value = check.get(f"live_{name}") if name else None
        if value is not None:
            return f"{value:.3f}" if name == metric else f"{value:.3f} ({name})"
    return ""


def _index(user: Any) -> str:
    from glideslope.config import SpecError, list_usecases, load_usecase
    from glideslope.drift.state import load_state
    from glideslope.metrics import label

    esc = html.escape
    parts = ["<html><body style='font-family:sans-serif'><h1>Glideslope drift reports</h1>"]
    for uc in readable_usecases(user, list_usecases()):
        state = load_state(uc)
        paused = state.get("paused")
        parts.append(f"<h2>{esc(uc)}</h2>")
        metric: str | None
        try:
            metric = load_usecase(uc).promotion.metric
        except SpecError as e:  # one broken spec must not hide the other use cases' checks
            metric = None
            parts.append(f"<div style='color:#cf222e'><b>Invalid spec</b><pre>{esc(str(e))}</pre></div>")
        if paused:
            parts.append(f"<p style='color:#cf222e'><b>Automatic retraining paused</b> since {esc(paused['ds'])}: "
                         f"{esc(str(paused.get('reason')))}. Acknowledge with <code>glideslope ack --usecase "
                         f"{esc(uc)} --by NAME</code>.</p>")
        rows = []
        for ds in sorted(state["checks"], reverse=True)[:60]:
            c = state["checks"][ds]
            rows.append(
                f"<tr><td><a href='reports/{esc(uc)}/drift/{esc(ds)}'>{esc(ds)}</a></td><td>{esc(c['status'])}</td>"
                f"<td>{c.get('drift_share', 0):.2f}</td><td>{esc(', '.join(c.get('drifted_columns') or []))}</td>"
                f"<td>{esc(_live(c, metric))}</td><td>{esc(str(c.get('champion_version') or ''))}</td>"
                "</tr>")
        live = f"live {label(metric)}" if metric else "live metric"
        parts.append("<table cellpadding=4><tr><th>day</th><th>verdict</th><th>drift share</th><th>drifted columns"
                     f"</th><th>{esc(live)}</th><th>champion</th></tr>" + "".join(rows) + "</table>"
                     if rows else "<p>No checks yet.</p>")
    parts.append("</body></html>")
    return "".join(parts)


def create_app() -> FastAPI:
    app = FastAPI(title="Glideslope reports", dependencies=[Depends(require_user)])

    @app.get("/reports", response_class=HTMLResponse)
    def index(user: CurrentUser) -> str:
        return _index(user)

    @app.get("/reports/{usecase}/{kind}/{ds}", dependencies=[Depends(require_usecase_read)])
    def report(usecase: str, kind: str, ds: str) -> Response:
        return _read(usecase, kind, ds, "report.html")

    @app.get("/reports/{usecase}/{kind}/{ds}/{name}", dependencies=[Depends(require_usecase_read)])
    def report_file(usecase: str, kind: str, ds: str, name: str) -> Response:
        return _read(usecase, kind, ds, name)

    return app
