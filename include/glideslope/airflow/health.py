"""The model-health page's server side: its JS bundle and the small JSON endpoints it reads.

Mounted by ``plugins/glideslope_plugin.py`` at ``/glideslope-health``:

* ``/glideslope-health/static/model-health.js`` — the React app (built from ``ui/model-health``),
  which the Airflow UI loads as a plugin page (navigation "Model health" and a tab on every DAG);
* ``/glideslope-health/api/usecases`` — the use cases the user may read;
* ``/glideslope-health/api/<usecase>/summary`` — metric, floor, threshold and the loop's guards;
* ``/glideslope-health/api/<usecase>/timeline?start=&end=`` — the champion timeline (MLflow);
* ``/glideslope-health/api/<usecase>/nights?start=&end=`` — each night's check, predictions and
  data quality (the lake and the drift state).

Every route needs a login (401 without); a use case's routes need read access to its DAGs (403
without), both decided by Airflow's auth manager (``glideslope.airflow.auth``). The numbers come
from :mod:`glideslope.health`, which only reads what the stages recorded.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse

from glideslope.airflow.auth import CurrentUser, current_user, readable_usecases, require_usecase_read

BUNDLE = Path(__file__).with_name("static") / "model-health.js"
# The bundle is committed (built by `make ui` from include/ui/model-health and its package-lock.json),
# so the plugin needs no Node where it runs; the stamp beside it says which sources it was built from.
BUNDLE_STAMP = BUNDLE.with_name("model-health.js.sources.sha256")
_DS = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def ui_sources_digest(folder: Path) -> str:
    """SHA-256 over the page's sources (package files, Vite config, src/): what the bundle is built from."""
    files = [folder / "package.json", folder / "package-lock.json", folder / "vite.config.js",
             *sorted(p for p in (folder / "src").rglob("*") if p.is_file())]
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(folder).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _spec(usecase: str) -> Any:
    from glideslope.config import SpecError, list_usecases, load_usecase

    if usecase not in list_usecases():
        raise HTTPException(404, f"unknown use case {usecase!r}")
    try:
        return load_usecase(usecase)
    except SpecError as e:
        raise HTTPException(409, f"the spec of use case {usecase!r} is invalid:\n{e}") from e


def _range(start: str | None, end: str | None) -> tuple[str | None, str | None]:
    for name, value in (("start", start), ("end", end)):
        if value is not None and not _DS.match(value):
            raise HTTPException(422, f"{name}={value!r}: a day is YYYY-MM-DD")
    if start and end and start > end:
        raise HTTPException(422, f"start {start} is after end {end}")
    return start, end


def create_app() -> FastAPI:
    app = FastAPI(title="Glideslope model health", dependencies=[Depends(current_user)])
    per_usecase = [Depends(require_usecase_read)]

    @app.get("/static/model-health.js")
    def bundle() -> FileResponse:
        if not BUNDLE.exists():
            raise HTTPException(404, f"{BUNDLE} is missing: build it with `make ui`")
        return FileResponse(BUNDLE, media_type="text/javascript")

    @app.get("/api/usecases")
    def usecases(user: CurrentUser) -> dict[str, Any]:
        from glideslope.config import list_usecases

        return {"usecases": readable_usecases(user, list_usecases())}

    @app.get("/api/{usecase}/summary", dependencies=per_usecase)
    def summary(usecase: str) -> dict[str, Any]:
        from glideslope.health import guards, spec_summary

        uc = _spec(usecase)
        return {**spec_summary(uc), "guards": guards(uc)}

    @app.get("/api/{usecase}/timeline", dependencies=per_usecase)
    def timeline(usecase: str, start: str | None = None, end: str | None = None) -> dict[str, Any]:
        from glideslope.health import timeline as champion_timeline

        return champion_timeline(_spec(usecase), *_range(start, end))

    @app.get("/api/{usecase}/nights", dependencies=per_usecase)
    def nights(usecase: str, start: str | None = None, end: str | None = None) -> dict[str, Any]:
        from glideslope.health import nights as night_by_night

        return night_by_night(_spec(usecase), *_range(start, end))

    return app
