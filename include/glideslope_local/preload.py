"""The task libraries the embedded scheduler imports before its LocalExecutor forks workers.

See ``airflow_config/airflow_local_settings.py``. Imports only: no thread, client or connection
is created here, so what the forked workers inherit is code, not state.
"""

from __future__ import annotations

import importlib
import logging
import time

# In the order the tasks need them; each is what a stage's task body imports first.
MODULES = (
    "pandas", "pyarrow.parquet", "sklearn.ensemble", "sklearn.linear_model", "xgboost",
    "mlflow", "mlflow.sklearn", "great_expectations", "feast", "evidently",
    "glideslope.quality.validate", "glideslope.etl.pipeline", "glideslope.features.materialize",
    "glideslope.scoring.score", "glideslope.training.trainer", "glideslope.registry.promotion",
    "glideslope.drift.monitor",
)

log = logging.getLogger(__name__)


def preload() -> dict[str, float]:
    took: dict[str, float] = {}
    for name in MODULES:
        t0 = time.monotonic()
        try:
            importlib.import_module(name)
        except Exception as e:  # a task that needs it will fail with the real error
            log.warning("glideslope preload: %s not imported (%s)", name, e)
            continue
        took[name] = round(time.monotonic() - t0, 2)
    log.info("glideslope preload: %d modules in %.1f s", len(took), sum(took.values()))
    return took
