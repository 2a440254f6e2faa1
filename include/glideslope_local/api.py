"""A small client of Airflow's REST API (v2), as a data engineer's script would use it.

The demo drives the stack only through it (unpause, backfill, trigger, follow runs, read XComs
and Asset events), and the tests that claim "the scheduler does X" read their evidence with it.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

T = TypeVar("T")

# SQLite has one writer: a REST write that meets the scheduler's transaction waits out the busy
# timeout and answers 500 "Database error" (a backfill: 503 "Database is locked"). Such a write
# changed nothing and is retried; any other error is not.
_DB_BUSY_RETRIES = 5
# Longer than the embedded profile's SQLite lock wait (60 s, airflow_local_settings.py): a request
# queued behind a writer then gets the server's "database is locked" answer, which is retried,
# instead of the client giving up on a request the server may still complete (a POST done twice).
REQUEST_TIMEOUT_S = 180
TERMINAL = ("success", "failed")


class ApiError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, detail: str):
        super().__init__(f"{method} {path} -> HTTP {status}: {detail[:500]}")
        self.status = status


def token(url: str, user: str, password: str) -> str:
    body = json.dumps({"username": user, "password": password}).encode()
    req = urllib.request.Request(url + "/auth/token", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback URL
        return str(json.loads(resp.read())["access_token"])


def until(what: str, probe: Callable[[], T | None], timeout: float, every: float = 1.0) -> T:
    """Poll ``probe`` until it returns something truthy; raise naming what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout:.0f} s")
        time.sleep(every)


class Airflow:
    """The REST API of one running Airflow, logged in as one user."""

    def __init__(self, url: str, user: str, password: str):
        self.url = url.rstrip("/")
        self.user = user
        self._password = password
        self._token = token(self.url, user, password)

    def call(self, method: str, path: str, body: Any = None, accept: tuple[int, ...] = ()) -> Any:
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(_DB_BUSY_RETRIES + 1):
            req = urllib.request.Request(self.url + path, method=method, data=data, headers={
                "Authorization": f"Bearer {self._token}", "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT_S) as resp:  # noqa: S310 - loopback
                    return json.loads(resp.read() or b"{}")
            except urllib.error.HTTPError as e:
                detail = e.read().decode(errors="replace")
                if e.code in accept:
                    return None
                if e.code == 401 and attempt == 0:  # the token expired during a long replay
                    self._token = token(self.url, self.user, self._password)
                    continue
                busy = (e.code == 500 and "Database error" in detail) or (e.code == 503 and "locked" in detail)
                if busy and attempt < _DB_BUSY_RETRIES:
                    time.sleep(1.0 + attempt)
                    continue
                raise ApiError(method, path, e.code, detail) from None
        raise AssertionError("unreachable")

    def get(self, path: str, **query: Any) -> Any:
        q = {k: v for k, v in query.items() if v is not None}
        return self.call("GET", path + (("?" + urlencode(q, doseq=True)) if q else ""))

    # -- DAGs and runs ------------------------------------------------------------------------
    def wait_for_dags(self, dag_ids: list[str], timeout: float = 300.0) -> None:
        """The DAG processor must have parsed the files before the API serves the DAGs."""
        def served() -> bool:
            known = {d["dag_id"] for d in self.get("/api/v2/dags", limit=1000)["dags"]}
            return set(dag_ids) <= known

        until(f"DAGs {dag_ids} served by the API (parsed by the DAG processor)", served, timeout, every=2.0)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": paused})

    def trigger(self, dag_id: str, logical_date: str | None = None, conf: dict[str, Any] | None = None,
                note: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"logical_date": logical_date, "conf": conf or {}}
        if note:
            body["note"] = note
        return dict(self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", body))

    def runs(self, dag_id: str, **query: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self.get(f"/api/v2/dags/{dag_id}/dagRuns", limit=100, offset=offset, order_by="run_after", **query)
            out += page["dag_runs"]
            offset += len(page["dag_runs"])
            if not page["dag_runs"] or offset >= page["total_entries"]:
                return out

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.get(f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"))

    def wait_run(self, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
        return until(f"{dag_id} run {run_id} finished",
                     lambda: (r if (r := self.run(dag_id, run_id))["state"] in TERMINAL else None), timeout)

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        body = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances", limit=100)
        return {t["task_id"]: t for t in body["task_instances"]}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = (f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}"
                f"/xcomEntries/{key}?deserialize=true")
        entry = self.call("GET", path, accept=(404,))
        return None if entry is None else entry.get("value")

    def upstream_events(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The Asset events that triggered a run."""
        body = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/upstreamAssetEvents")
        return list(body["asset_events"])

    def asset_events(self, asset_name: str) -> list[dict[str, Any]]:
        assets = self.get("/api/v2/assets", name_pattern=asset_name, limit=100)["assets"]
        ids = [a["id"] for a in assets if a["name"] == asset_name]
        if not ids:
            return []
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self.get("/api/v2/assets/events", asset_id=ids[0], limit=100, offset=offset, order_by="timestamp")
            out += page["asset_events"]
            offset += len(page["asset_events"])
            if not page["asset_events"] or offset >= page["total_entries"]:
                return out

    # -- backfills ----------------------------------------------------------------------------
    def waiting_question(self, dag_id: str, task_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The newest run of ``dag_id`` whose human-in-the-loop task ``task_id`` waits for an answer,
        with that task's question (subject, options, params), or ``None``."""
        for run in sorted(self.runs(dag_id), key=lambda r: r.get("queued_at") or "", reverse=True):
            ti = self.task_instances(dag_id, run["dag_run_id"]).get(task_id)
            # A human-in-the-loop task parks as ``awaiting_input`` (Airflow 3.3; ``deferred`` before).
            if ti and ti.get("state") in ("awaiting_input", "deferred"):
                detail = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances/"
                                  f"{task_id}/-1/hitlDetails")
                return run, detail
        return None

    def answer(self, dag_id: str, run_id: str, task_id: str, choice: str,
               params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Answer a human-in-the-loop task as this user, the way the UI's Required actions do: every
        Param of the question is sent, ``params`` over the question's defaults (the operator refuses
        an answer whose Params differ from its own)."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails"
        asked = self.get(path).get("params") or {}
        values = {k: (v.get("value") if isinstance(v, dict) and "value" in v else v) for k, v in asked.items()}
        unknown = sorted(set(params or {}) - set(values))
        if unknown:
            raise ValueError(f"{dag_id}.{task_id} has no Params {unknown} (it asks for {sorted(values)})")
        return dict(self.call("PATCH", path, {"chosen_options": [choice], "params_input": {**values, **(params or {})}}))

    def backfill(self, dag_id: str, from_date: str, to_date: str, max_active_runs: int = 1) -> dict[str, Any]:
        return dict(self.call("POST", "/api/v2/backfills", {
            "dag_id": dag_id, "from_date": from_date, "to_date": to_date, "run_backwards": False,
            "dag_run_conf": {}, "reprocess_behavior": "none", "max_active_runs": max_active_runs}))
