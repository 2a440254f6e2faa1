"""What a reviewer checks on the running embedded stack: nothing listens beyond this machine.

The stack is the one ``glideslope up`` starts (tests/stack_fixture.py, shared with the loop and
browser tests). Every process it recorded -- Airflow standalone with its scheduler, LocalExecutor
workers, triggerer, DAG processor and their log servers, the MLflow UI, the Spark Connect server's
JVM, the alert sinks -- and every child of theirs is asked for its sockets.
"""

from __future__ import annotations

import json
import socket
import stat
import time
from collections.abc import Iterator
from urllib.parse import urlparse

import psutil
import pytest

from glideslope_local import stack
from stack_fixture import AirflowStack, shared_stack

pytestmark = pytest.mark.integration

LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


@pytest.fixture(scope="session")
def embedded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    with shared_stack(tmp_path_factory) as s:
        yield s


def _sockets(s: AirflowStack) -> list[tuple[str, str, int, str]]:
    """(service, address, port, process name) of every listening TCP and bound UDP socket."""
    recorded = json.loads((s.home / "airflow" / "stack.json").read_text())
    found = []
    for name, svc in recorded.items():
        for proc in stack.Service(**svc).processes():
            try:
                conns, pname = proc.net_connections(kind="inet"), proc.name()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            for c in conns:
                listening = c.status == psutil.CONN_LISTEN or (c.type == socket.SOCK_DGRAM and c.laddr)
                if listening and c.laddr:
                    found.append((name, c.laddr.ip, c.laddr.port, pname))
    return found


def test_every_port_the_stack_opens_is_on_loopback(embedded_stack: AirflowStack) -> None:
    env = embedded_stack.env
    api = int(env["GLIDESLOPE_AIRFLOW_PORT"])
    expected = {api: "Airflow API/UI", api + 713: "worker log server", api + 714: "triggerer log server",
                urlparse(env["GLIDESLOPE_MLFLOW_UI_URL"]).port: "MLflow UI",
                int(env["GLIDESLOPE_SMTP_PORT"]): "mail sink", int(env["GLIDESLOPE_WEBHOOK_PORT"]): "webhook sink",
                int(env["GLIDESLOPE_SPARK_CONNECT_PORT"]): "Spark Connect"}
    deadline = time.monotonic() + 120  # the log servers start a moment after the components report healthy
    while True:
        found = _sockets(embedded_stack)
        missing = {p: what for p, what in expected.items() if p not in {port for _, _, port, _ in found}}
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert not missing, f"not listening: {missing}; found {sorted(found)}"
    wide = sorted(f for f in found if f[1] not in LOOPBACK)
    assert not wide, f"listening beyond loopback: {wide}"


def test_the_admin_password_file_is_owner_only(embedded_stack: AirflowStack) -> None:
    path = stack.password_file({"AIRFLOW_HOME": str(embedded_stack.home / "airflow")})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["admin"] == embedded_stack.password
