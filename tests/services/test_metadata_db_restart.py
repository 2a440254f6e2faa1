"""PostgreSQL restarted under the Celery profile while a DAG run is in flight (a fault-battery case).

Airflow's metadata lives in a PostgreSQL cluster of this module's own (``initdb`` as the
``postgres`` user, on a free port), so restarting it cannot disturb the machine's server that
the other services tests share. The stack is the one ``etl_run`` uses (API server, scheduler,
DAG processor, Celery worker on Redis, Spark on the cluster); the ETL of the same real day runs,
and the database is restarted (``pg_ctl restart -m fast``: every connection is cut) once the
run's first task has finished. The case is recorded in the battery's table
(``docs/reliability.md``) like those of tests/faults.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fault_cases import case
from faults.conftest import assert_nothing_doubled
from glideslope.lake import Lake

from .conftest import (
    ROOT,
    Postgres,
    Proc,
    free_port,
    record_timing,
    start_airflow,
    stop_airflow,
    unavailable,
    wait_until,
)

pytestmark = pytest.mark.services

PG_ROOT = Path("/usr/lib/postgresql")


def _as_postgres(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", "postgres", "--", *cmd], capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[tuple[Postgres, Callable[[], None]]]:
    """A PostgreSQL cluster of this module's own, and a function that restarts it."""
    versions = sorted(PG_ROOT.glob("*/bin/initdb")) if PG_ROOT.exists() else []
    if not versions or not shutil.which("runuser"):
        unavailable("PostgreSQL's initdb/pg_ctl (Debian postgresql) and runuser are needed")
    bin_dir = versions[-1].parent
    folder = Path(tempfile.mkdtemp(prefix="glideslope-pg-"))
    folder.chmod(0o755)
    data = folder / "data"
    data.mkdir()
    shutil.chown(data, "postgres", "postgres")
    out = _as_postgres(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    assert out.returncode == 0, out.stderr
    port = free_port()
    ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(data / "server.log"), "-w", "-t", "60",
           "-o", f"-p {port} -c listen_addresses=127.0.0.1 -k {data}"]
    out = _as_postgres(*ctl, "start")
    assert out.returncode == 0, out.stdout + out.stderr

    def restart() -> None:
        done = _as_postgres(*ctl, "-m", "fast", "restart")
        assert done.returncode == 0, done.stdout + done.stderr

    try:
        yield Postgres(port=port), restart
    finally:
        _as_postgres(*ctl, "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def _supervise(stack: Any, restarted: list[str]) -> None:
    """What ``restart: always`` in docker-compose.yaml does: a component that exited is started again,
    with the same command and environment (Airflow's scheduler exits when its database goes away)."""
    for name, proc in list(stack.procs.items()):
        if proc.popen.poll() is not None:
            restarted.append(f"{name} (exit {proc.popen.returncode})")
            stack.procs[name] = Proc.start(name, [str(a) for a in proc.popen.args], stack.env, proc.log.parent)


def _compose_restarts(service: str) -> str | None:
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    return compose["services"][service].get("restart")


def _day_files(root: Path, usecase: str, ds: str) -> dict[str, str]:
    base = root / usecase
    return {str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest()
            for zone in ("curated", "features") for p in sorted((base / zone).rglob(f"ds={ds}/*")) if p.is_file()}


@case("PostgreSQL restarted under the Celery profile during a run",
      before="not tested: what a restart of the metadata database does to a run in flight was unknown",
      after="Airflow's scheduler either rides out the restart or exits with an error when its database goes "
            "away (exit 1, `the database system is shutting down`: which one depends on what it was doing at "
            "that moment); started again as docker-compose's `restart: always` does, it finishes the run "
            "`success`; the day is published once, byte-identical to the run without a restart")
def test_a_metadata_db_restart_during_an_etl_run(own_postgres: tuple[Postgres, Callable[[], None]], redis_url: str,
                                                 spark_cluster: object, etl_run: dict, production_lake: Path,
                                                 services_dir: Path) -> None:
    from glideslope.config import load_usecase

    pg, restart = own_postgres
    for service in ("airflow-scheduler", "airflow-apiserver", "airflow-dag-processor", "airflow-worker"):
        assert _compose_restarts(service) == "always", f"docker-compose.yaml: {service} must restart by itself"
    dag_id, ds = "flight_delay__etl", etl_run["ds"]
    assert etl_run["state"] == "success", "the reference run without a restart failed"
    folder = services_dir / "pg-restart"
    folder.mkdir()
    lake_root = folder / "lake"
    lake_root.mkdir()
    env = {"GLIDESLOPE_PROFILE": "production", "GLIDESLOPE_HOME": str(folder / "home"),
           "GLIDESLOPE_LAKE_ROOT": str(lake_root)}
    stack = start_airflow(folder, pg, redis_url, env, spark_master=spark_cluster.master_url)  # type: ignore[attr-defined]
    try:
        stack.wait_for_dag(dag_id)
        stack.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        run_id = stack.api("POST", f"/dags/{dag_id}/dagRuns",
                           json={"logical_date": f"{ds}T00:00:00Z", "conf": {}})["dag_run_id"]
        run_path = f"/dags/{dag_id}/dagRuns/{run_id}"

        def a_task_done() -> bool:
            tis = stack.api("GET", f"{run_path}/taskInstances")["task_instances"]
            return any(t["state"] == "success" for t in tis)

        wait_until(a_task_done, 420, f"the first task of {run_id}", stack.procs["celery-worker"])
        t0 = time.monotonic()
        restart()
        record_timing("pg restart: PostgreSQL restarted (fast) under the running stack", t0)

        restarted: list[str] = []

        def finished() -> dict | None:
            _supervise(stack, restarted)
            run = stack.api("GET", run_path)
            return run if run["state"] in ("success", "failed") else None

        run = wait_until(finished, 600, f"{dag_id} run {run_id} after the restart")
        tis = stack.api("GET", f"{run_path}/taskInstances")["task_instances"]
        states = {t["task_id"]: (t["state"], t["try_number"]) for t in tis}
        logs = {t["task_id"]: stack.task_log(dag_id, run_id, t["task_id"], t["try_number"])[-2000:]
                for t in tis if t["state"] != "success"}
    finally:
        stop_airflow(stack)
    assert run["state"] == "success", f"{states}\n{logs}"
    # What the case says happens: the scheduler loses its database and exits with an error (the
    # supervisor above then starts it again, as compose's `restart: always` does).
    # Whether it exits depends on what it was doing when the database went away; when it does, it
    # is with an error, never a clean exit that compose would not restart.
    scheduler_exits = [r for r in restarted if r.startswith("scheduler (exit ")]
    assert all(r != "scheduler (exit 0)" for r in scheduler_exits), (
        f"the scheduler exited cleanly when its database went away: {restarted}")
    record_timing(f"pg restart: components restarted as compose restarts them: {restarted or 'none'}", time.monotonic())
    uc = load_usecase("flight_delay")
    assert_nothing_doubled(Lake(root=str(lake_root), usecase=uc.name))
    published = _day_files(lake_root, uc.name, ds)
    assert published and published == _day_files(production_lake, uc.name, ds)
