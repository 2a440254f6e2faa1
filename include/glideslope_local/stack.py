"""``glideslope up / down / status / airflow-env / mlflow-ui``: the embedded profile on one machine.

``up`` runs ``airflow db migrate`` and then ``airflow standalone`` in the background: the API
server with the UI, the scheduler (LocalExecutor, parallelism 4), the DAG processor and the
triggerer, bound to 127.0.0.1, on the project's ``dags/`` and ``plugins/``. Beside it, the MLflow
UI on the embedded tracking store and the local SMTP sink / webhook receiver the ``smtp_default``
and ``slack_default`` connections point at. The environment is
:func:`glideslope_local.env.embedded_airflow_env`, the one ``make demo`` uses, so the demo's runs
are listed in the UI.

Each process tree runs in a session of its own; the leaders are recorded in
``$GLIDESLOPE_HOME/airflow/stack.json`` and ``down`` stops every process of those sessions.
Nothing here imports Airflow: the components run as ``airflow`` sub-processes.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil

from glideslope.config import Settings, settings
from glideslope_local.env import (
    airflow_port,
    embedded_airflow_env,
    preload_env,
    spark_connect_env,
    spark_connect_port,
)

HEALTH_PATH = "/api/v2/monitor/health"
COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
ADMIN_USER = "admin"
READY_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 60.0

# `airflow standalone` shuts its components down only on KeyboardInterrupt, and a process started
# from a non-interactive shell inherits SIGINT as *ignored*, so Python would never raise it.
# Restore the default handler, then become airflow.
_SIGINT_EXEC = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


class StackError(RuntimeError):
    """Starting or stopping the local stack failed; the message says why and where to look."""


@dataclass(frozen=True)
class Service:
    """One background process tree started by ``up``, as recorded in the state file."""

    name: str
    pid: int
    create_time: float
    url: str
    log: str

    def process(self) -> psutil.Process | None:
        """The leader process, if it is still the one we started (pids get reused)."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) > 1.0:
                return None
            return proc
        except psutil.NoSuchProcess:
            return None

    def processes(self) -> list[psutil.Process]:
        """The leader, its descendants, and any orphan left in the session it leads."""
        found: dict[int, psutil.Process] = {}
        leader = self.process()
        if leader is not None:
            found[leader.pid] = leader
            try:
                found.update({p.pid: p for p in leader.children(recursive=True)})
            except psutil.NoSuchProcess:
                pass
        elif psutil.pid_exists(self.pid):
            # Linux never hands out a pid still used as a session id, so the pid now belongs to
            # someone else and none of our session is left; its sid is not ours to scan for.
            return []
        for proc in psutil.process_iter():
            try:
                if os.getsid(proc.pid) == self.pid:
                    found.setdefault(proc.pid, proc)
            except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
                continue
        return list(found.values())


@dataclass(frozen=True)
class Airflow:
    """A running Airflow started by :func:`start_airflow`."""

    service: Service
    home: Path
    password: str | None

    @property
    def url(self) -> str:
        return self.service.url


# ---------------------------------------------------------------------------------------------
# paths and environment


def airflow_home(cfg: Settings) -> Path:
    return cfg.home / "airflow"


def state_file(cfg: Settings) -> Path:
    return airflow_home(cfg) / "stack.json"


def password_file(env: dict[str, str]) -> Path:
    custom = env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    if custom:
        return Path(custom)
    return Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"


def _venv_bin(name: str) -> str:
    # The CLI runs from the project's venv; its tools sit next to the interpreter.
    return str(Path(sys.executable).with_name(name))


def _with_venv_on_path(path: str) -> str:
    venv_bin = str(Path(sys.executable).parent)
    return venv_bin + (os.pathsep + path if path else "")


def _connections_in_db(db: Path, conn_ids: Iterable[str]) -> set[str]:
    if not db.exists():
        return set()
    ids = list(conn_ids)
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        try:
            rows = con.execute(
                f"SELECT conn_id FROM connection WHERE conn_id IN ({','.join('?' * len(ids))})", ids
            ).fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return set()
    return {r[0] for r in rows}


def airflow_env(cfg: Settings, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every Airflow component of ``up`` runs with.

    The embedded settings win over the caller's environment (so ``up`` and ``make demo`` always
    share one home), except connections: an ``AIRFLOW_CONN_*`` variable the caller set, or a
    connection a person created in the UI, is kept instead of the local default.
    """
    embedded = embedded_airflow_env(cfg, port)
    env = {**os.environ, **embedded, **(extra or {})}
    env.update(preload_env(env))
    env["PATH"] = _with_venv_on_path(env.get("PATH", ""))  # standalone runs `airflow` from PATH
    defaults = {k for k in embedded if k.startswith("AIRFLOW_CONN_")}
    for key in defaults:
        if key in os.environ and not (extra and key in extra):
            env[key] = os.environ[key]
    db_url = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    if db_url.startswith("sqlite:///"):
        by_id = {k.removeprefix("AIRFLOW_CONN_").lower(): k for k in defaults if k not in os.environ}
        for conn_id in _connections_in_db(Path(db_url.removeprefix("sqlite:///")), by_id):
            env.pop(by_id[conn_id])  # env connections shadow the DB ones; let the person's win
    return env


# ---------------------------------------------------------------------------------------------
# state file


def read_state(cfg: Settings) -> dict[str, Service]:
    path = state_file(cfg)
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text())
        return {name: Service(**svc) for name, svc in raw.items()}
    except (ValueError, TypeError) as e:
        raise StackError(f"{path}: unreadable state file ({e}); stop stray processes by hand") from None


def _write_state(cfg: Settings, services: dict[str, Service]) -> None:
    path = state_file(cfg)
    if not services:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({n: asdict(s) for n, s in services.items()}, indent=2))
    tmp.replace(path)


def _record(cfg: Settings, service: Service) -> None:
    services = read_state(cfg)
    services[service.name] = service
    _write_state(cfg, services)


def _forget(cfg: Settings, name: str) -> None:
    services = read_state(cfg)
    services.pop(name, None)
    _write_state(cfg, services)


# ---------------------------------------------------------------------------------------------
# processes


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _spawn(name: str, argv: list[str], env: dict[str, str], log: Path, url: str) -> tuple[Service, Any]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", _SIGINT_EXEC, *argv],
            env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # own session: Ctrl-C in the shell doesn't hit it; `down` finds all of it
        )
    service = Service(name=name, pid=proc.pid, create_time=psutil.Process(proc.pid).create_time(),
                      url=url, log=str(log))
    return service, proc


def stop_service(service: Service, timeout: float = STOP_TIMEOUT_S, first: int = signal.SIGINT,
                 leader_only: bool = True) -> list[int]:
    """Stop a service's whole process tree; returns the pids that were running.

    ``airflow standalone`` stops its components itself on SIGINT to the leader (``leader_only``).
    Whatever is left after ``timeout`` (idle LocalExecutor workers ignore SIGTERM) gets SIGTERM,
    then SIGKILL - by pid, never by name.
    """
    procs = service.processes()
    if not procs:
        return []
    leader = service.process()
    targets = [leader] if leader is not None and leader_only else procs
    for sig, wait in ((first, timeout), (signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        for p in targets:
            try:
                p.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=wait)
        if not alive:
            break
        targets = alive
    else:
        raise StackError(f"{service.name}: processes {[p.pid for p in alive]} survived SIGKILL")
    return [p.pid for p in procs]


def _get_json(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> Any:
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback URL we built
        return json.loads(resp.read() or b"null")


def airflow_health(url: str) -> dict[str, str]:
    """Component -> status from the API server, or {} when it doesn't answer."""
    try:
        data = _get_json(url + HEALTH_PATH)
    except (OSError, ValueError):
        return {}
    return {name: str((data.get(name) or {}).get("status")) for name in COMPONENTS}


def _tail(path: str | Path, lines: int = 30) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def ensure_password_file(env: dict[str, str], user: str = ADMIN_USER) -> Path:
    """The admin's password file, owner-only (0600), with a random password if there was none.

    Airflow's SimpleAuthManager would create it with the process umask (0644 by default:
    readable by every local user) and keeps an existing file as it is, so the stack writes it
    first. An existing file keeps its passwords and loses any group/other access.
    """
    path = password_file(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        return path
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps({user: secrets.token_urlsafe(18)}) + "\n")
    return path


def read_password(env: dict[str, str], user: str = ADMIN_USER) -> str | None:
    try:
        return json.loads(password_file(env).read_text()).get(user)
    except (OSError, ValueError):
        return None


def api_token(url: str, password: str, user: str = ADMIN_USER) -> str:
    body = json.dumps({"username": user, "password": password}).encode()
    req = urllib.request.Request(url + "/auth/token", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
        return json.loads(resp.read())["access_token"]


def migrate_db(env: dict[str, str], log: Path) -> None:
    """``airflow db migrate``: creates or upgrades the SQLite metadata DB (idempotent)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        rc = subprocess.run([_venv_bin("airflow"), "db", "migrate"], env=env, stdin=subprocess.DEVNULL,
                            stdout=out, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise StackError(f"`airflow db migrate` failed (exit {rc}); last lines of {log}:\n{_tail(log)}")


def start_airflow(cfg: Settings, port: int, extra_env: dict[str, str] | None = None,
                  timeout: float = READY_TIMEOUT_S) -> Airflow:
    """Migrate the DB, start ``airflow standalone`` in the background and wait until it is healthy.

    Ready means: every component reports healthy and the admin password file exists. On any
    failure the started processes are stopped again and :class:`StackError` names the log.
    """
    running = read_state(cfg).get("airflow")
    if running and running.process() is not None:
        raise StackError(f"Airflow already runs at {running.url} (pid {running.pid}); stop it with `make down`")
    if not port_is_free(port):
        raise StackError(f"port {port} on 127.0.0.1 is in use: pass --port or set GLIDESLOPE_AIRFLOW_PORT")
    env = airflow_env(cfg, port, extra_env)
    for key in ("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"):
        if not port_is_free(int(env[key]), "0.0.0.0"):
            raise StackError(f"{key}={env[key]}: port in use (another Airflow?); set it to a free port")
    home = Path(env["AIRFLOW_HOME"])
    log = home / "standalone.log"
    migrate_db(env, log)
    if env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "").lower() != "true":
        ensure_password_file(env)
    url = env["AIRFLOW__API__BASE_URL"]
    service, proc = _spawn("airflow", [_venv_bin("airflow"), "standalone"], env, log, url)
    _record(cfg, service)
    try:
        password = _wait_airflow_ready(service, proc, env, timeout)
    except BaseException:
        stop_service(service)
        _forget(cfg, "airflow")
        raise
    return Airflow(service=service, home=home, password=password)


def _wait_airflow_ready(service: Service, proc: subprocess.Popen[bytes], env: dict[str, str],
                        timeout: float) -> str | None:
    all_admins = env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "").lower() == "true"
    deadline = time.monotonic() + timeout
    health: dict[str, str] = {}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"airflow standalone exited with {proc.returncode}; last lines of "
                             f"{service.log}:\n{_tail(service.log)}")
        health = airflow_health(service.url)
        password = None if all_admins else read_password(env)
        if health and all(s == "healthy" for s in health.values()) and (all_admins or password):
            return password
        time.sleep(1.0)
    raise StackError(f"Airflow not healthy after {timeout:.0f} s (health: {health or 'no answer'}); "
                     f"last lines of {service.log}:\n{_tail(service.log)}")


def stop_airflow(cfg: Settings) -> list[int]:
    service = read_state(cfg).get("airflow")
    if service is None:
        return []
    pids = stop_service(service)
    _forget(cfg, "airflow")
    return pids


def mlflow_server_argv(cfg: Settings, port: int) -> list[str]:
    return [
        _venv_bin("mlflow"), "server",
        "--backend-store-uri", cfg.mlflow_tracking_uri,
        "--default-artifact-root", cfg.mlflow_artifact_root,
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]


def mlflow_env(cfg: Settings) -> dict[str, str]:
    # The job runner (GenAI jobs, trace roll-ups) adds seven huey processes the model registry
    # UI does not need.
    return {**os.environ, "PATH": _with_venv_on_path(os.environ.get("PATH", "")),
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def _mlflow_port(cfg: Settings, override: int | None) -> int:
    return override or urlparse(cfg.mlflow_ui_url).port or 5000


def start_mlflow(cfg: Settings, port: int) -> Service:
    """Start the MLflow UI on the embedded store in the background (readiness: see wait_mlflow)."""
    if not port_is_free(port):
        raise StackError(f"port {port} on 127.0.0.1 is in use: pass --mlflow-port or use --no-mlflow")
    Path(cfg.mlflow_artifact_root).mkdir(parents=True, exist_ok=True)
    if cfg.mlflow_tracking_uri.startswith("sqlite:///"):
        Path(cfg.mlflow_tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    log = cfg.home / "mlflow" / "server.log"
    service, _ = _spawn("mlflow", mlflow_server_argv(cfg, port), mlflow_env(cfg), log,
                        f"http://127.0.0.1:{port}")
    _record(cfg, service)
    return service


def stop_named(cfg: Settings, name: str) -> list[int]:
    """Stop a helper service (``mlflow``, ``alerts``) recorded in the state file."""
    service = read_state(cfg).get(name)
    if service is None:
        return []
    # uvicorn and the sinks stop on SIGTERM / SIGINT; the whole tree is signalled, then escalated.
    pids = stop_service(service, timeout=20.0, first=signal.SIGTERM, leader_only=False)
    _forget(cfg, name)
    return pids


def stop_mlflow(cfg: Settings) -> list[int]:
    return stop_named(cfg, "mlflow")


def _wait_ports(service: Service, ports: Iterable[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process() is None:
            return False
        if not any(port_is_free(p) for p in ports):
            return True
        time.sleep(0.5)
    return False


def wait_mlflow(service: Service, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process() is None:
            return False
        try:
            with urllib.request.urlopen(service.url + "/health", timeout=5) as resp:  # noqa: S310
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(1.0)
    return False


def start_spark_connect(cfg: Settings, port: int) -> Service:
    """A Spark Connect server (``local[2]``, loopback only) the nightly ETL sends its queries to.

    pyspark ships the server (``sbin/start-connect-server.sh``); ``SPARK_NO_DAEMONIZE`` keeps it
    in the foreground of its own session, so ``down`` stops it like the other services.
    """
    import importlib.util

    if not port_is_free(port):
        raise StackError(f"port {port} on 127.0.0.1 is in use: set GLIDESLOPE_SPARK_CONNECT_PORT or use "
                         "--no-spark-connect")
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise StackError("pyspark is not installed in this environment")
    spark_home = Path(spec.origin).parent
    folder = cfg.home / "spark-connect"
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SPARK_HOME": str(spark_home), "SPARK_NO_DAEMONIZE": "1", "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_LOG_DIR": str(folder), "SPARK_PID_DIR": str(folder), "PYSPARK_PYTHON": sys.executable,
           "PATH": _with_venv_on_path(os.environ.get("PATH", ""))}
    jh = embedded_airflow_env(cfg).get("JAVA_HOME")
    if jh:
        env["JAVA_HOME"] = jh
    argv = ["/bin/bash", str(spark_home / "sbin" / "start-connect-server.sh"), "--master", "local[2]",
            "--driver-memory", "1g",
            "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
            "--conf", f"spark.connect.grpc.binding.port={port}",
            "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1",
            "--conf", "spark.ui.enabled=false", "--conf", "spark.sql.session.timeZone=UTC"]
    service, _ = _spawn("spark-connect", argv, env, folder / "server.log", f"sc://127.0.0.1:{port}")
    _record(cfg, service)
    return service


def sink_ports(env: dict[str, str]) -> tuple[int, int]:
    return int(env["GLIDESLOPE_SMTP_PORT"]), int(env["GLIDESLOPE_WEBHOOK_PORT"])


def start_sinks(cfg: Settings, env: dict[str, str]) -> Service | None:
    """The local SMTP sink and webhook receiver the ``smtp_default`` / ``slack_default`` connections
    point at, writing what they receive under ``$GLIDESLOPE_HOME/alerts``. ``None`` when something
    already listens on those ports (the demo's own sinks, say): alerts then go there."""
    ports = sink_ports(env)
    if not all(port_is_free(p) for p in ports):
        return None
    folder = cfg.home / "alerts"
    service, _ = _spawn("alerts", [sys.executable, "-m", "glideslope_local.sinks", "--folder", str(folder)], env,
                        folder / "sinks.log", f"smtp://127.0.0.1:{ports[0]} http://127.0.0.1:{ports[1]}")
    _record(cfg, service)
    return service


# ---------------------------------------------------------------------------------------------
# commands


def _embedded_or_explain(cfg: Settings, command: str) -> bool:
    if cfg.profile == "embedded":
        return True
    print(f"glideslope {command}: GLIDESLOPE_PROFILE={cfg.profile}; the production profile runs with "
          f"docker-compose or the Helm chart, `{command}` drives the embedded profile only.", file=sys.stderr)
    return False


def _port_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=None,
                        help="API server / UI port (default: $GLIDESLOPE_AIRFLOW_PORT or 8080)")


def _running(cfg: Settings, name: str) -> Service | None:
    service = read_state(cfg).get(name)
    return service if service and service.process() is not None else None


def up(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="glideslope up",
        description="Start Airflow (API server + UI, scheduler, DAG processor, triggerer), the MLflow UI "
                    "and the local alert sinks, in the background, on the embedded profile.")
    _port_arg(parser)
    parser.add_argument("--no-mlflow", action="store_true", help="don't start the MLflow UI")
    parser.add_argument("--mlflow-port", type=int, default=None,
                        help="MLflow UI port (default: the port of $GLIDESLOPE_MLFLOW_UI_URL or 5000)")
    parser.add_argument("--no-alerts", action="store_true", help="don't start the local SMTP sink / webhook receiver")
    parser.add_argument("--no-spark-connect", action="store_true",
                        help="no Spark Connect server: the ETL runs spark-submit per run instead")
    parser.add_argument("--foreground", action="store_true", help="stay attached; Ctrl-C stops everything")
    parser.add_argument("--timeout", type=float, default=READY_TIMEOUT_S, help="seconds to wait for health")
    args = parser.parse_args(argv)
    cfg = settings()
    if not _embedded_or_explain(cfg, "up"):
        return 2
    port = args.port or airflow_port()
    existing = _running(cfg, "airflow")
    if existing:
        print(f"Airflow already runs at {existing.url} (pid {existing.pid}). Stop it with: make down")
        return 0

    env = airflow_env(cfg, port)
    started_here: list[str] = []
    print(f"Starting Airflow on http://127.0.0.1:{port} (home {cfg.home}) ...", flush=True)
    t0 = time.monotonic()
    try:
        mlflow = None if args.no_mlflow else _running(cfg, "mlflow")
        if not args.no_mlflow and mlflow is None:
            mlflow = start_mlflow(cfg, _mlflow_port(cfg, args.mlflow_port))
            started_here.append("mlflow")
        sinks = None if args.no_alerts else _running(cfg, "alerts")
        if not args.no_alerts and sinks is None:
            sinks = start_sinks(cfg, env)
            if sinks is not None:
                started_here.append("alerts")
        connect = None if args.no_spark_connect else _running(cfg, "spark-connect")
        if not args.no_spark_connect and connect is None:
            connect = start_spark_connect(cfg, spark_connect_port())
            started_here.append("spark-connect")
        connect_port = int(connect.url.rpartition(":")[2]) if connect else None
        extra = spark_connect_env(connect_port) if connect_port else {}
        if mlflow is not None:  # the links in alerts and the UI point at the MLflow UI actually started
            extra["GLIDESLOPE_MLFLOW_UI_URL"] = mlflow.url
        af = start_airflow(cfg, port, extra_env=extra or None, timeout=args.timeout)
        started_here.append("airflow")
        if connect is not None and connect_port and not _wait_ports(connect, [connect_port], 180.0):
            raise StackError(f"the Spark Connect server did not listen on {connect.url}; see {connect.log}:\n"
                             f"{_tail(connect.log)}")
    except (StackError, KeyboardInterrupt) as e:
        for name in reversed(started_here):
            if name == "airflow":
                stop_airflow(cfg)
            else:
                stop_named(cfg, name)
        if isinstance(e, KeyboardInterrupt):
            return 130
        print(f"glideslope up: {e}", file=sys.stderr)
        return 1
    mlflow_ok = mlflow is not None and wait_mlflow(mlflow)
    sinks_ok = sinks is not None and _wait_ports(sinks, sink_ports(env), 30.0)

    print(f"\nAirflow is up after {time.monotonic() - t0:.0f} s: {af.url}")
    if af.password:
        print(f"  user:      {ADMIN_USER}\n  password:  {af.password}")
        print(f"             (from {password_file(env)})")
    else:
        print("  login:     none needed (all users are admins)")
    if mlflow is not None:
        print(f"  MLflow UI: {mlflow.url}" + ("" if mlflow_ok else f"  (not answering yet; see {mlflow.log})"))
    if sinks is not None:
        where = Path(sinks.log).parent
        print(f"  alerts:    {sinks.url} -> {where}/mail, {where}/slack"
              + ("" if sinks_ok else f"  (not listening yet; see {sinks.log})"))
    elif not args.no_alerts:
        smtp, hook = sink_ports(env)
        print(f"  alerts:    ports {smtp}/{hook} already in use; alerts go to whatever listens there")
    if connect is not None:
        print(f"  Spark:     {connect.url} (Spark Connect, local[2]; the nightly ETL runs its transform there)")
    print(f"  logs:      {af.service.log}")
    print("  DAGs start paused: switch one on in the UI, or trigger it.")
    if not args.foreground:
        print("Stop it with: make down   (or: glideslope down)")
        return 0
    print("Press Ctrl-C to stop.")
    try:
        while af.service.process() is not None:
            time.sleep(1.0)
        print(f"Airflow exited; see {af.service.log}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return down([])


def down(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="glideslope down", description="Stop what `glideslope up` started.")
    parser.parse_args(argv)
    cfg = settings()
    services = read_state(cfg)
    if not services:
        print(f"Nothing to stop (no {state_file(cfg)}).")
        return 0
    rc = 0
    for name in sorted(services, key=lambda n: n != "airflow"):  # Airflow first: its tasks may use the others
        try:
            pids = stop_airflow(cfg) if name == "airflow" else stop_named(cfg, name)
        except StackError as e:
            print(f"glideslope down: {e}", file=sys.stderr)
            rc = 1
            continue
        print(f"Stopped {name} ({len(pids)} processes)." if pids else f"{name} was not running.")
    return rc


def status(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="glideslope status", description="Is the local stack running?")
    parser.parse_args(argv)
    cfg = settings()
    services = read_state(cfg)
    running = False
    for name, service in services.items():
        alive = service.process() is not None
        running = running or alive
        line = f"{name:8} {'running' if alive else 'stopped'}  {service.url}  pid {service.pid}  log {service.log}"
        print(line)
        if alive and name == "airflow":
            health = airflow_health(service.url)
            print("         " + (", ".join(f"{k}: {v}" for k, v in health.items()) or "API not answering"))
    if not services:
        print(f"Not running (home {cfg.home}). Start it with: make up")
    return 0 if running else 3


def print_env(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="glideslope airflow-env",
        description="Print the embedded Airflow environment; use as: eval \"$(glideslope airflow-env)\"")
    _port_arg(parser)
    args = parser.parse_args(argv)
    for key, value in embedded_airflow_env(settings(), args.port).items():
        print(f"export {key}={shlex.quote(value)}")
    # `airflow ...` after the eval must be this venv's Airflow, whether or not the venv is activated.
    print(f'export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"')
    return 0


def mlflow_ui(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="glideslope mlflow-ui",
                                     description="Serve the MLflow UI on the embedded store (foreground).")
    parser.add_argument("--port", type=int, default=None, help="default: port of $GLIDESLOPE_MLFLOW_UI_URL or 5000")
    args = parser.parse_args(argv)
    cfg = settings()
    if cfg.profile != "embedded":
        print(f"The tracking server of this profile is {cfg.mlflow_tracking_uri}; its UI is {cfg.mlflow_ui_url}")
        return 0
    running = read_state(cfg).get("mlflow")
    if running and running.process() is not None:
        print(f"The MLflow UI already runs at {running.url} (started by `make up`).")
        return 0
    port = _mlflow_port(cfg, args.port)
    Path(cfg.mlflow_artifact_root).mkdir(parents=True, exist_ok=True)
    if cfg.mlflow_tracking_uri.startswith("sqlite:///"):
        Path(cfg.mlflow_tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    print(f"MLflow UI on http://127.0.0.1:{port} (store {cfg.mlflow_tracking_uri}); Ctrl-C stops it.", flush=True)
    argv_ = mlflow_server_argv(cfg, port)
    os.execve(argv_[0], argv_, mlflow_env(cfg))
    return 0  # not reached
