"""Engines of the production profile, each started here on 127.0.0.1 and stopped at teardown.

Every engine is a package-scoped fixture: one start serves every test of this folder that needs
it, and it is stopped when the folder's last test is done (not at the end of ``make test``):

* ``postgres``: the machine's PostgreSQL server; each run creates fresh databases and drops them.
* ``redis_url``: a ``redis-server`` of our own on a free port (the machine's server is left alone).
* ``s3``: moto in server mode, the S3 API over HTTP, with the ``glideslope`` bucket.
* ``spark_cluster``: a standalone Spark master + worker started from the pyspark package.
* ``mlflow_server``: ``mlflow server`` on a PostgreSQL backend store with S3 artifacts.
* ``etl_run``: Airflow on PostgreSQL with the CeleryExecutor and a Redis broker (API server,
  scheduler, DAG processor, Celery worker, as in docker-compose.yaml) runs one real ETL day with
  Spark on the cluster; the stack is stopped once the run is recorded.

Processes start in their own session so teardown signals the whole group (spark-class's JVM,
Celery's pool, spark-submit children) by its id, then checks that none of it is left. Without
a service, a test skips locally and fails under ``CI``: CI never passes by skipping.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
BUCKET = "glideslope"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "glideslope-test",
    "AWS_SECRET_ACCESS_KEY": "glideslope-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def unavailable(reason: str) -> None:
    """A service this layer needs is missing: skip on a workstation, fail in CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the services layer must run, not skip)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_until(check: Callable[[], Any], timeout: float, what: str, proc: Proc | None = None) -> Any:
    """Poll ``check`` until it returns something truthy; fail with the process log otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception:  # noqa: BLE001 - not up yet
            value = None
        if value:
            return value
        if proc is not None and proc.popen.poll() is not None:
            pytest.fail(f"{proc.name} exited with {proc.popen.returncode} while waiting for {what}\n"
                        f"{proc.tail()}", pytrace=False)
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{proc.tail() if proc else ''}",
                pytrace=False)


TIMINGS: list[tuple[str, float]] = []


def record_timing(what: str, since: float) -> float:
    """Note how long a step took; the summary at the end of the run lists them."""
    seconds = time.monotonic() - since
    TIMINGS.append((what, seconds))
    return seconds


@pytest.fixture(scope="session")
def timing() -> Callable[[str, float], float]:
    """``timing(what, since)`` records a step of a test in the end-of-run summary."""
    return record_timing


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS:
        terminalreporter.section("services: engine timings (wall seconds)")
        for what, seconds in TIMINGS:
            terminalreporter.write_line(f"{seconds:7.1f}  {what}")


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """The test process environment without its embedded-profile Airflow/Glideslope settings."""
    drop = ("AIRFLOW_", "AIRFLOW__", "GLIDESLOPE_", "MLFLOW_", "SPARK_", "AWS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class Proc:
    """A process group we started; ``stop`` ends the group and proves nothing of it survived."""

    name: str
    popen: subprocess.Popen
    log: Path

    @classmethod
    def start(cls, name: str, cmd: list[str], env: dict[str, str], log_dir: Path,
              cwd: Path | None = None) -> Proc:
        log = log_dir / f"{name}.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen(cmd, env=env, cwd=cwd or log_dir, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        return cls(name, popen, log)

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return f"--- last lines of {self.log} ---\n" + "\n".join(text[-lines:])

    def group_members(self) -> list[int]:
        import psutil

        pgid = self.popen.pid  # start_new_session: the leader's pid is the group id
        out = []
        for p in psutil.process_iter(["pid"]):
            try:
                if os.getpgid(p.info["pid"]) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                    out.append(p.info["pid"])
            except (ProcessLookupError, psutil.Error):
                continue
        return out

    def stop(self, grace: float = 20.0) -> None:
        pgid = self.popen.pid
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                self.popen.poll()
                if not self.group_members():
                    break
                time.sleep(0.2)
            if not self.group_members():
                break
        self.popen.wait(timeout=5)
        left = self.group_members()
        assert not left, f"{self.name}: processes {left} of group {pgid} survived teardown"


@pytest.fixture(scope="package")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


# -- PostgreSQL ------------------------------------------------------------------------------------
@dataclass
class Postgres:
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    created: list[str] = field(default_factory=list)

    def _admin(self) -> Any:
        import psycopg2

        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname="postgres",
                                connect_timeout=5)
        conn.autocommit = True
        return conn

    def create_database(self, purpose: str) -> str:
        """A fresh database for this run; returns its SQLAlchemy URL (psycopg2 driver)."""
        name = f"glideslope_{purpose}_{uuid.uuid4().hex[:8]}"
        with closing(self._admin()) as conn, conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{name}"

    def drop_all(self) -> None:
        with closing(self._admin()) as conn, conn.cursor() as cur:
            for name in self.created:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


@pytest.fixture(scope="package")
def postgres() -> Iterator[Postgres]:
    pg = Postgres()
    try:
        pg._admin().close()
    except Exception as e:  # noqa: BLE001
        unavailable(f"PostgreSQL is not reachable on {pg.host}:{pg.port} as {pg.user}: {e}")
    yield pg
    pg.drop_all()


# -- Redis -----------------------------------------------------------------------------------------
@pytest.fixture(scope="package")
def redis_url(services_dir: Path) -> Iterator[str]:
    """A private redis-server: Celery's broker (db 0) and Feast's online store (db 1)."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed (apt-get install redis-server)")
    t0 = time.monotonic()
    port = free_port()
    proc = Proc.start("redis", [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                "--appendonly", "no", "--dir", str(services_dir)], clean_env({}), services_dir)
    wait_until(lambda: port_open(port), 20, f"redis-server on port {port}", proc)
    record_timing("redis-server up", t0)
    yield f"redis://127.0.0.1:{port}"
    proc.stop()


# -- S3 (moto server mode) -------------------------------------------------------------------------
@dataclass(frozen=True)
class S3:
    endpoint_url: str
    bucket: str

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, **{
            "aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
            "region_name": AWS_ENV["AWS_DEFAULT_REGION"]})

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.fixture(scope="package")
def s3(services_dir: Path) -> Iterator[S3]:
    """moto's S3 over HTTP on loopback; the test process and every child get its credentials."""
    t0 = time.monotonic()
    port = free_port()
    proc = Proc.start("moto", [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                      clean_env(AWS_ENV), services_dir)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: port_open(port), 60, f"moto server on port {port}", proc)
    saved = {k: os.environ.get(k) for k in AWS_ENV}
    os.environ.update(AWS_ENV)  # s3fs and boto3 in this process read them
    server = S3(url, BUCKET)
    server.client().create_bucket(Bucket=BUCKET)
    record_timing("moto S3 server up, bucket created", t0)
    yield server
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    proc.stop()


# -- Spark standalone cluster ----------------------------------------------------------------------
def spark_home() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pyspark")
    assert spec and spec.origin
    return Path(spec.origin).parent


def spark_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    from glideslope.runtime import java_home

    jh = java_home()
    if jh is None:
        unavailable("java is not on PATH (Spark needs a JDK 17)")
    return clean_env({"SPARK_HOME": str(spark_home()), "JAVA_HOME": str(jh), "SPARK_LOCAL_IP": "127.0.0.1",
                      "PYSPARK_PYTHON": sys.executable, **(extra or {})})


@dataclass(frozen=True)
class SparkCluster:
    master_url: str
    ui_url: str

    def applications(self) -> list[dict]:
        """Applications the master has seen (running and completed)."""
        import requests

        state = requests.get(f"{self.ui_url}/json/", timeout=5).json()
        return [*state.get("activeapps", []), *state.get("completedapps", [])]


@pytest.fixture(scope="package")
def spark_cluster(services_dir: Path) -> Iterator[SparkCluster]:
    """``spark://127.0.0.1:<port>``: a master and one 2-core worker, all ports free ones."""
    import requests

    t0 = time.monotonic()
    work = services_dir / "spark"
    work.mkdir()
    port, ui, worker_ui = free_port(), free_port(), free_port()
    # The REST submission server would take the fixed port 6066; nothing here submits through it.
    env = spark_env({"SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",
                     "SPARK_WORKER_DIR": str(work / "work"), "SPARK_LOG_DIR": str(work)})
    spark_class = str(spark_home() / "bin" / "spark-class")
    master = Proc.start("spark-master", [spark_class, "org.apache.spark.deploy.master.Master",
                                         "--host", "127.0.0.1", "--port", str(port),
                                         "--webui-port", str(ui)], env, work)
    cluster = SparkCluster(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui}")
    worker = Proc.start("spark-worker", [spark_class, "org.apache.spark.deploy.worker.Worker",
                                         cluster.master_url, "--host", "127.0.0.1", "--cores", "2",
                                         "--memory", "2g", "--webui-port", str(worker_ui),
                                         "--work-dir", str(work / "work")], env, work)

    def alive_workers() -> int:
        state = requests.get(f"{cluster.ui_url}/json/", timeout=2).json()
        return sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")

    try:
        wait_until(alive_workers, 90, f"a Spark worker registered with {cluster.master_url}", worker)
        record_timing("spark cluster: master + worker up", t0)
        yield cluster
    finally:
        t1 = time.monotonic()
        worker.stop()
        master.stop()
        record_timing("spark cluster: stop", t1)


# -- MLflow tracking server ------------------------------------------------------------------------
@dataclass(frozen=True)
class MlflowServer:
    tracking_uri: str
    backend_store_uri: str
    artifacts_prefix: str


@pytest.fixture(scope="package")
def mlflow_server(services_dir: Path, postgres: Postgres, s3: S3) -> Iterator[MlflowServer]:
    """``mlflow server``: PostgreSQL backend store, artifacts proxied to ``s3://glideslope/mlflow``."""
    import requests

    t0 = time.monotonic()
    backend = postgres.create_database("mlflow")
    port = free_port()
    env = clean_env({**AWS_ENV, "MLFLOW_S3_ENDPOINT_URL": s3.endpoint_url})
    proc = Proc.start("mlflow", [str(VENV_BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
                                 "--workers", "1", "--backend-store-uri", backend,
                                 "--artifacts-destination", f"s3://{s3.bucket}/mlflow"], env, services_dir)
    uri = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(f"{uri}/health", timeout=2).ok, 120, f"MLflow server at {uri}", proc)
    record_timing("mlflow server up (PostgreSQL store created)", t0)
    yield MlflowServer(uri, backend, "mlflow/")
    proc.stop()


# -- Airflow: CeleryExecutor, PostgreSQL metadata, Redis broker ------------------------------------
@dataclass
class Airflow:
    """A running distributed Airflow and a client for its REST API (FAB users, JWT auth)."""

    url: str
    env: dict[str, str]
    procs: dict[str, Proc]
    username: str
    password: str
    _token: str | None = None

    def token(self) -> str:
        import requests

        if self._token is None:
            r = requests.post(f"{self.url}/auth/token", json={"username": self.username, "password": self.password},
                              timeout=30)
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        import requests

        r = requests.request(method, f"{self.url}/api/v2{path}", timeout=30,
                             headers={"Authorization": f"Bearer {self.token()}"}, **kwargs)
        if not r.ok:
            raise AssertionError(f"{method} {path} -> {r.status_code}: {r.text[:500]}")
        return r.json()

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict:
        """Wait until the DAG processor has serialized ``dag_id``; on timeout, show the import errors."""
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = requests.get(f"{self.url}/api/v2/dags/{dag_id}", timeout=30,
                             headers={"Authorization": f"Bearer {self.token()}"})
            if r.ok:
                return r.json()
            time.sleep(1)
        errors = self.api("GET", "/importErrors")["import_errors"]
        pytest.fail(f"{dag_id} was not serialized within {timeout:.0f}s; import errors: "
                    f"{json.dumps(errors, indent=1)[:4000]}\n{self.procs['dag-processor'].tail()}", pytrace=False)

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        import requests

        r = requests.get(f"{self.url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/"
                         f"{try_number}", headers={"Authorization": f"Bearer {self.token()}",
                                                   "Accept": "text/plain"}, timeout=30)
        return r.text


def airflow_cli(env: dict[str, str], *args: str, log_dir: Path) -> None:
    out = subprocess.run([str(VENV_BIN / "airflow"), *args], env=env, cwd=log_dir, capture_output=True,
                         text=True, timeout=300)
    if out.returncode != 0:
        pytest.fail(f"airflow {' '.join(args)} failed ({out.returncode}):\n{out.stdout[-3000:]}\n"
                    f"{out.stderr[-3000:]}", pytrace=False)


def start_airflow(services_dir: Path, postgres: Postgres, redis_url: str, glideslope_env: dict[str, str],
                  dags_folder: Path | None = None, spark_master: str | None = None) -> Airflow:
    """Migrate a fresh metadata database and start the four components a DAG run needs."""
    from glideslope.config import settings
    from glideslope.runtime import production_airflow_env

    home = services_dir / "airflow"
    home.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cfg = settings({**glideslope_env, "GLIDESLOPE_AIRFLOW_BASE_URL": url})
    from cryptography.fernet import Fernet

    env = production_airflow_env(
        cfg, database_url=postgres.create_database("airflow"), broker_url=f"{redis_url}/0",
        execution_api_url=url, fernet_key=Fernet.generate_key().decode(), jwt_secret=secrets.token_urlsafe(32),
        spark_master=spark_master, worker_concurrency=2)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        # Fixed default ports (8793, 8794, 8974) may be taken by another Airflow on this machine.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        # Everything is on loopback here; in compose the driver is the worker container's address.
        "SPARK_LOCAL_IP": "127.0.0.1",
        **AWS_ENV,
    })
    if dags_folder is not None:
        env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags_folder)
    env = clean_env(env)
    airflow_cli(env, "db", "migrate", log_dir=home)
    password = secrets.token_urlsafe(12)
    airflow_cli(env, "users", "create", "--username", "admin", f"--password={password}", "--role", "Admin",
                "--firstname", "Glide", "--lastname", "Slope", "--email", "admin@localhost", log_dir=home)
    airflow = str(VENV_BIN / "airflow")
    procs: dict[str, Proc] = {}
    for name, args in (("api-server", ["api-server"]), ("scheduler", ["scheduler"]),
                       ("dag-processor", ["dag-processor"]),
                       ("celery-worker", ["celery", "worker", "--concurrency", "2", "--without-mingle",
                                          "--without-gossip"])):
        procs[name] = Proc.start(name, [airflow, *args], env, home)
    stack = Airflow(url, env, procs, "admin", password)
    try:
        import requests

        wait_until(lambda: requests.get(f"{url}/api/v2/monitor/health", timeout=2).ok, 120,
                   f"the API server at {url}", procs["api-server"])
    except BaseException:
        stop_airflow(stack)
        raise
    return stack


def stop_airflow(stack: Airflow) -> None:
    # Workers first so no task is picked up while the scheduler shuts down.
    for name in ("celery-worker", "scheduler", "dag-processor", "api-server"):
        if name in stack.procs:
            stack.procs[name].stop(grace=30)


@pytest.fixture(scope="package")
def production_lake(services_dir: Path) -> Path:
    """A local lake root for the distributed ETL: Spark here has no s3a jars (the image does)."""
    path = services_dir / "lake"
    path.mkdir()
    return path


@pytest.fixture(scope="package")
def etl_run(services_dir: Path, postgres: Postgres, redis_url: str, spark_cluster: SparkCluster,
            production_lake: Path) -> dict:
    """One run of ``flight_delay__etl`` for a real day on distributed Airflow, and what it left.

    Airflow runs as docker-compose runs it, with the repository's DAGs and the Spark cluster as
    ``spark_default``. The run is triggered through the REST API (as a person or a backfill does)
    for the feed's first day; the scheduler queues it and the Celery worker executes every task.
    The stack is stopped right after: later tests only read the run's record and its outputs.
    """
    from glideslope.config import load_usecase

    dag_id = "flight_delay__etl"
    ds = load_usecase("flight_delay").start_date.isoformat()
    env = {"GLIDESLOPE_PROFILE": "production", "GLIDESLOPE_HOME": str(services_dir / "home"),
           "GLIDESLOPE_LAKE_ROOT": str(production_lake)}
    t0 = time.monotonic()
    stack = start_airflow(services_dir, postgres, redis_url, env, spark_master=spark_cluster.master_url)
    record_timing("airflow: fresh metadata DB migrated, admin created, 4 components up", t0)
    try:
        stack.wait_for_dag(dag_id)
        t1 = time.monotonic()
        stack.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        run_id = stack.api("POST", f"/dags/{dag_id}/dagRuns",
                           json={"logical_date": f"{ds}T00:00:00Z", "conf": {}})["dag_run_id"]
        run_path = f"/dags/{dag_id}/dagRuns/{run_id}"

        def finished() -> dict | None:
            run = stack.api("GET", run_path)
            return run if run["state"] in ("success", "failed") else None

        try:
            run = wait_until(finished, 420, f"{dag_id} run {run_id}", stack.procs["celery-worker"])
        finally:
            stack.api("PATCH", f"/dags/{dag_id}", json={"is_paused": True})
        run["ds"] = ds
        run["seconds"] = record_timing(f"airflow: {dag_id} run for {ds}, trigger to finish", t1)
        run["task_instances"] = stack.api("GET", f"{run_path}/taskInstances")["task_instances"]
        run["failed_task_logs"] = {t["task_id"]: stack.task_log(dag_id, run_id, t["task_id"])
                                   for t in run["task_instances"] if t["state"] != "success"}
        run["asset_events"] = stack.api("GET", "/assets/events", params={"source_dag_id": dag_id})["asset_events"]
    finally:
        t2 = time.monotonic()
        stop_airflow(stack)
        record_timing("airflow: stop", t2)
    run["worker_log"] = stack.procs["celery-worker"].log.read_text(errors="replace")
    return run
