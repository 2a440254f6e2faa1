"""Session-wide environment: every test run gets its own Glideslope home and Airflow metadata DB.

The environment is set before anything imports Airflow, so Airflow reads the test paths.
"""

from __future__ import annotations

import multiprocessing
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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    """Fault-battery cases (``fault_cases.case``) record their outcome, in whichever layer they run."""
    outcome = yield
    from fault_cases import record_outcome

    record_outcome(item, outcome.get_result())


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


@pytest.fixture(scope="module", autouse=True)
def _openlineage_pool_stopped():
    """Stop the OpenLineage listener's process pool at the end of every test module.

    ``dag.test()`` runs a DAG run in this process, and the listener sends its DAG-run events
    (``on_dag_run_running`` / ``_success`` / ``_failed``) through a ``ProcessPoolExecutor`` whose
    workers are forked from this process. A forked worker holds a copy of every file descriptor
    this process had, among them the write end of the Playwright driver's stdin: the driver then
    never sees end-of-file, and the session's last teardown waits for it forever (CI runs passed
    every test and hung there until their limit). So the pool goes with the module that made it.
    """
    yield
    if "airflow.listeners.listener" in sys.modules:
        _stop_listener_pools()
    for child in multiprocessing.active_children():  # a pool replaced mid-session leaves its worker
        child.kill()
        child.join(5)


def _stop_listener_pools() -> None:
    from airflow.listeners.listener import get_listener_manager

    for listener in get_listener_manager().pm.get_plugins():
        pool = getattr(listener, "_executor", None)
        if pool is None:
            continue
        listener._executor = None
        workers = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.join(5)
            if worker.is_alive():
                worker.kill()
                worker.join(5)
