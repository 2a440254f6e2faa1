"""Session-wide environment: every test run gets its own Glideslope home and Airflow metadata DB.

The environment is set before anything imports Airflow, so Airflow reads the test paths.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_HOME = Path(os.environ.get("GLIDESLOPE_TEST_HOME") or tempfile.mkdtemp(prefix="glideslope-test-"))
os.environ["GLIDESLOPE_HOME"] = str(_HOME)
os.environ.setdefault("GLIDESLOPE_PROFILE", "embedded")

from glideslope_local.env import embedded_airflow_env  # noqa: E402

# Forced, not defaulted: an AIRFLOW_HOME or connection left in the shell must not leak into tests.
os.environ.update(embedded_airflow_env())


@pytest.fixture(scope="session")
def glideslope_home() -> Path:
    return _HOME


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata DB for ``dag.test()`` runs."""
    db = Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"
    if not db.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(Path(sys.executable).with_name("airflow")), "db", "migrate"], check=True,
                       stdout=subprocess.DEVNULL)
    return db
