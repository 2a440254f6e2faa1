"""Airflow's local settings for the embedded stack (``glideslope up`` puts this folder on PYTHONPATH).

Airflow imports ``airflow_local_settings`` in each of its processes. In the scheduler, and only
there, this one imports the libraries the tasks use before the LocalExecutor forks its workers:
every task process is forked from a worker and starts with pandas, pyarrow, scikit-learn, MLflow,
Feast, Great Expectations and Evidently already imported, instead of paying 10-20 s of imports
per task on two cores (measured in benchmarks/night.py and docs/performance.md). Nothing is
configured or connected here: imports only, so nothing is shared across the fork but code.
"""

from __future__ import annotations

import os
import sys


def _log_servers_on_loopback() -> None:
    """Airflow's worker and triggerer log servers (``airflow.utils.serve_logs``) bind every
    interface (``host=""``) and have no option for it. In the embedded stack nothing but this
    machine reads them, so a wildcard bind is turned into 127.0.0.1 (the stack's hostname
    callable, ``glideslope_local.env.loopback_hostname``, makes the UI fetch them there)."""
    import uvicorn

    run = uvicorn.run
    if getattr(run, "glideslope_loopback", False):
        return

    def run_on_loopback(*args, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("host") in (None, "", "0.0.0.0", "::"):
            kwargs["host"] = "127.0.0.1"
        return run(*args, **kwargs)

    run_on_loopback.glideslope_loopback = True  # type: ignore[attr-defined]
    uvicorn.run = run_on_loopback


_log_servers_on_loopback()
if sys.argv[1:2] == ["scheduler"] and os.environ.get("GLIDESLOPE_PRELOAD_TASK_LIBRARIES", "") == "true":
    from glideslope_local.preload import preload

    preload()

# SQLite has one writer. Its default busy timeout (5 s) makes a write that meets a long scheduler
# transaction fail with "database is locked" — a backfill created through the REST API then
# fails with 503, and a half-handled failure has stopped the scheduler. Wait up to 60 s instead
# (AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS[_ASYNC] point here; see glideslope_local.env).
connect_args = {"timeout": 60}
