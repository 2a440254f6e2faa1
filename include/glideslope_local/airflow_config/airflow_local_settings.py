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

if sys.argv[1:2] == ["scheduler"] and os.environ.get("GLIDESLOPE_PRELOAD_TASK_LIBRARIES", "") == "true":
    from glideslope_local.preload import preload

    preload()

# SQLite has one writer. Its default busy timeout (5 s) makes a write that meets a long scheduler
# transaction fail with "database is locked" — a backfill created through the REST API then
# fails with 503, and a half-handled failure has stopped the scheduler. Wait up to 60 s instead
# (AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS[_ASYNC] point here; see glideslope_local.env).
connect_args = {"timeout": 60}
