"""The stack ``make up`` starts, once per test session, for every test folder that drives it.

The first test that asks for it runs the real ``glideslope up`` in a temporary home on free ports
(Airflow standalone on the project's dags/ and plugins/, the MLflow UI, the alert sinks), with a
shell's environment: none of the test session's Airflow/Glideslope/MLflow settings. After its
last user, ``glideslope down`` stops it and the processes it recorded are checked to be gone.
Its OpenLineage events go to its own file transport and, through ``GLIDESLOPE_OPENLINEAGE_URL``,
to :class:`LineageReceiver`, an HTTP receiver on loopback in this test process.

The browser tests and the scheduler tests in tests/integration share it. Each folder declares
its own session fixture (pytest has no fixture both see without the root conftest), and pytest
sets up each of those once, so the running stack is held here and counted: the first
:func:`shared_stack` starts it, the last one stops it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from glideslope_local import stack
from glideslope_local.api import Airflow, ApiError
from loop_fixture import usecases_env, write_usecases


@dataclass
class UpOutput:
    """What ``glideslope up`` told the person who ran it."""

    url: str
    user: str
    password: str
    mlflow_url: str | None
    text: str

    @classmethod
    def parse(cls, text: str) -> UpOutput:
        url = re.search(r"Airflow is up after \d+ s: (http://\S+)", text)
        user = re.search(r"^\s+user:\s+(\S+)", text, flags=re.M)
        password = re.search(r"^\s+password:\s+(\S+)", text, flags=re.M)
        assert url and user and password, f"`glideslope up` did not print the URL, user and password:\n{text}"
        mlflow = re.search(r"^\s+MLflow UI:\s+(http://\S+)", text, flags=re.M)
        return cls(url.group(1), user.group(1), password.group(1), mlflow.group(1) if mlflow else None, text)


class LineageReceiver:
    """An OpenLineage HTTP endpoint (``POST /api/v1/lineage``, as Marquez has) that keeps every event."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = self.path == "/api/v1/lineage"
                if ok:
                    with receiver._lock:
                        receiver.events.append(json.loads(body))
                self.send_response(201 if ok else 404)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, name="lineage-receiver", daemon=True).start()

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return sorted(self.events, key=lambda e: e.get("eventTime", ""))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class AirflowStack:
    """The running stack: what ``up`` printed, its home, and a REST client logged in as its admin."""

    def __init__(self, up: UpOutput, home: Path):
        self.up = up
        self.url = up.url
        self.user = up.user
        self.password = up.password
        self.home = home
        self.log = home / "airflow" / "standalone.log"
        self._client = Airflow(self.url, self.user, self.password)
        self.env: dict[str, str] = {}
        self.lineage: LineageReceiver | None = None

    def api(self, method: str, path: str, body: dict | None = None, accept: tuple[int, ...] = ()) -> dict:
        """The JSON answer; an HTTP error fails the test unless its status is in ``accept`` ({} then).

        SQLite's busy writes are retried by :class:`glideslope_local.api.Airflow`.
        """
        try:
            return self._client.call(method, path, body, accept=accept) or {}
        except ApiError as e:
            raise AssertionError(f"{e}\n(see {self.log})") from e

    def wait_for_dag(self, dag_id: str, timeout: float = 180.0) -> dict:
        """The DAG processor must have parsed the file before the API serves the DAG."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.api("GET", f"/api/v2/dags/{dag_id}/details")
            except AssertionError as e:
                if "HTTP 404" not in str(e) or time.monotonic() > deadline:
                    raise AssertionError(f"{dag_id} not served after {timeout:.0f} s; see {self.log}") from e
            time.sleep(2.0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(*spreads: tuple[int, ...]) -> list[int]:
    """One base port p per spread, such that every p + offset is free and no two overlap."""
    taken: set[int] = set()
    bases: list[int] = []
    for spread in spreads:
        while True:
            base = _free_port()
            ports = {base + d for d in spread}
            if max(ports) < 65536 and not ports & taken and all(stack.port_is_free(p, "0.0.0.0") for p in ports):
                break
        taken |= ports
        bases.append(base)
    return bases


def _cli() -> str:
    return str(Path(sys.executable).with_name("glideslope"))


def _environment(home: Path, lineage_url: str) -> dict[str, str]:
    # Airflow's log servers listen on the API port + 713 / + 714, on all interfaces.
    airflow_port, smtp, webhook, mlflow, connect = free_ports((0, 713, 714), (0,), (0,), (0,), (0,))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "GLIDESLOPE_", "MLFLOW_"))}
    # The bundled use case and the replay's flights_e2e (tests/loop_fixture.py), side by side.
    usecases = write_usecases(home.parent / f"{home.name}-usecases")
    return env | {"GLIDESLOPE_HOME": str(home), "GLIDESLOPE_AIRFLOW_PORT": str(airflow_port),
                  "GLIDESLOPE_SMTP_PORT": str(smtp), "GLIDESLOPE_WEBHOOK_PORT": str(webhook),
                  "GLIDESLOPE_MLFLOW_UI_URL": f"http://127.0.0.1:{mlflow}",
                  "GLIDESLOPE_SPARK_CONNECT_PORT": str(connect), "GLIDESLOPE_OPENLINEAGE_URL": lineage_url,
                  **usecases_env(usecases)}


def _start(home: Path, env: dict[str, str]) -> AirflowStack:
    up = subprocess.run([_cli(), "up"], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                        timeout=600, check=False)
    assert up.returncode == 0, f"`glideslope up` exited {up.returncode}\n{up.stdout}\n{up.stderr}"
    return AirflowStack(UpOutput.parse(up.stdout), home)


def _stop(home: Path, env: dict[str, str], recorded: dict[str, Any]) -> None:
    down = subprocess.run([_cli(), "down"], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=300, check=False)
    assert down.returncode == 0, f"`glideslope down` exited {down.returncode}\n{down.stdout}\n{down.stderr}"
    leftovers = [p.pid for svc in recorded.values() for p in stack.Service(**svc).processes()]
    assert not leftovers, f"processes left after `glideslope down`: {leftovers}"
    state = home / "airflow" / "stack.json"
    assert not state.exists(), f"{state} still lists services after `glideslope down`"


@dataclass
class _Holder:
    users: int = 0
    stack: AirflowStack | None = None
    failure: str = ""
    home: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    recorded: dict[str, Any] = field(default_factory=dict)
    lineage: LineageReceiver | None = None


_HELD = _Holder()


@contextmanager
def shared_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    """The session's one stack: started by the first user, stopped (and checked) after the last."""
    if _HELD.home is None and not _HELD.failure:
        home = tmp_path_factory.mktemp("stack")
        _HELD.lineage = LineageReceiver()
        _HELD.home, _HELD.env = home, _environment(home, _HELD.lineage.url)
        try:
            _HELD.stack = _start(home, _HELD.env)
            _HELD.stack.env = _HELD.env
            _HELD.stack.lineage = _HELD.lineage
        except (AssertionError, OSError, subprocess.SubprocessError) as e:
            _HELD.failure = str(e)  # later users fail with the same message instead of starting again
        state = home / "airflow" / "stack.json"
        _HELD.recorded = json.loads(state.read_text()) if state.exists() else {}
    _HELD.users += 1
    try:
        assert _HELD.stack is not None, _HELD.failure
        yield _HELD.stack
    finally:
        _HELD.users -= 1
        if _HELD.users == 0 and _HELD.home is not None:
            home, env, recorded = _HELD.home, _HELD.env, _HELD.recorded
            _HELD.home, _HELD.stack = None, None
            try:
                _stop(home, env, recorded)  # also after a failed `up`: it may have started the sinks
            finally:
                if _HELD.lineage is not None:
                    _HELD.lineage.close()
                    _HELD.lineage = None
