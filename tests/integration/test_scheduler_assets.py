"""The Assets that link the stages, under the real scheduler of the stack ``make up`` starts.

A drift event (as ``flight_delay__monitor`` emits it) and a features event (as
``flight_delay__etl`` emits it) are posted through the REST API; the scheduler of
``airflow standalone`` must then create the consumer's run itself, of run type
``asset_triggered``, carrying the event. Nothing here calls ``dag.test()``.

The temporary home has no data, so a created run could only fail: once the test has checked it,
it fails the run through the API (see :meth:`Consumer.end`), and pauses the DAG again at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import psutil
import pytest

from stack_fixture import AirflowStack, shared_stack

pytestmark = pytest.mark.integration

TRAIN = "flight_delay__train"
FEATURES = "flight_delay__features"
DRIFT = "flight_delay.drift"
FEATURES_ASSET = "flight_delay.features"
ACTIVE = ("queued", "running")
TIMEOUT = 60.0

T = TypeVar("T")


def _drift_extra(ds: str) -> dict[str, Any]:
    # What flight_delay__monitor's trigger_retraining puts on the event.
    return {"ds": ds, "drifted_columns": ["wx_temp_mean", "carrier_late_rate_7d"],
            "report": f"file:///lake/flight_delay/monitoring/ds={ds}/drift.html",
            "reasons": ["share of drifted features 0.4 >= 0.3"]}


def _until(what: str, probe: Callable[[], T], timeout: float = TIMEOUT, every: float = 0.5) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout:.0f} s (last: {value!r})")
        time.sleep(every)


class Consumer:
    """An asset-scheduled DAG of the running stack, seen and driven through the REST API."""

    def __init__(self, stack: AirflowStack, dag_id: str):
        self.stack = stack
        self.dag_id = dag_id

    def _run_path(self, run_id: str) -> str:
        return f"/api/v2/dags/{self.dag_id}/dagRuns/{quote(run_id, safe='')}"

    def runs(self) -> dict[str, dict]:
        body = self.stack.api("GET", f"/api/v2/dags/{self.dag_id}/dagRuns?limit=100")
        return {r["dag_run_id"]: r for r in body["dag_runs"]}

    def run(self, run_id: str) -> dict:
        return self.stack.api("GET", self._run_path(run_id))

    def new_asset_runs(self, known: set[str]) -> list[dict]:
        return [r for rid, r in self.runs().items() if rid not in known and r["run_type"] == "asset_triggered"]

    def wait_for_new_asset_run(self, known: set[str], why: str) -> dict:
        runs = _until(f"{why}: the scheduler creates an asset_triggered {self.dag_id} run (see {self.stack.log})",
                      lambda: self.new_asset_runs(known))
        assert len(runs) == 1, f"{why}: expected one new {self.dag_id} run, got {[r['dag_run_id'] for r in runs]}"
        return runs[0]

    def queued_events(self) -> list[dict]:
        return self.stack.api("GET", f"/api/v2/dags/{self.dag_id}/assets/queuedEvents")["queued_events"]

    def consumed_events(self, run_id: str) -> list[dict]:
        # Waits for the run to start: Airflow 3.3.2 answers 500 for the events of a run that has
        # no start_date yet (apache/airflow#71360, fixed by #71379).
        _until(f"{self.dag_id} run {run_id} starts", lambda: self.run(run_id)["start_date"])
        events = self.stack.api("GET", self._run_path(run_id) + "/upstreamAssetEvents")["asset_events"]
        return sorted(events, key=lambda e: e["id"])

    def task_result(self, run_id: str, task_id: str) -> Any:
        ti_path = self._run_path(run_id) + f"/taskInstances/{task_id}"

        def finished() -> str | None:
            state = self.stack.api("GET", ti_path)["state"]
            return state if state in ("success", "failed", "up_for_retry", "upstream_failed") else None

        state = _until(f"{self.dag_id}.{task_id} of {run_id} finishes", finished)
        assert state == "success", f"{self.dag_id}.{task_id} of {run_id} ended {state}; see {self.stack.log}"
        return self.stack.api("GET", ti_path + "/xcomEntries/return_value?deserialize=true")["value"]

    def task_processes(self, run_id: str) -> list[int]:
        """Pids of the run's task processes still alive (the stack runs on this machine)."""
        alive = []
        for ti in self.stack.api("GET", self._run_path(run_id) + "/taskInstances")["task_instances"]:
            try:
                if ti["pid"] and psutil.Process(ti["pid"]).status() != psutil.STATUS_ZOMBIE:
                    alive.append(ti["pid"])
            except psutil.NoSuchProcess:
                pass
        return alive

    def end(self, run_id: str) -> None:
        """Fail the run, free its slot for the next run at once, and wait for its tasks to stop.

        The scheduler recounts ``max_active_runs`` only for runs it finishes itself; for a run
        failed through the API the count is refreshed when the DAG processor next parses the file
        (every 30 s), so the test asks for that parse now. (Marking the tasks failed instead races
        with a task that is starting: the worker's "running" overwrites the "failed".) A running
        task learns at its next heartbeat (5 s) that it must stop; until it has, the scheduler
        would hold ``glideslope down`` waiting for it.
        """
        self.stack.api("PATCH", self._run_path(run_id), {"state": "failed"})
        token = self.stack.api("GET", f"/api/v2/dags/{self.dag_id}/details")["file_token"]
        self.stack.api("PUT", f"/api/v2/parseDagFile/{token}", accept=(409,))  # 409: a parse is already asked for
        _until(f"the task processes of {self.dag_id} run {run_id} exit",
               lambda: not self.task_processes(run_id), every=1.0)

    def end_active_runs(self) -> None:
        for run_id, run in self.runs().items():
            if run["state"] in ACTIVE:
                self.end(run_id)

    def switch_on(self) -> None:
        """Unpause, and close the run a catchup=False cron DAG gets for its latest tick on unpausing."""
        self.stack.wait_for_dag(self.dag_id)
        self.stack.api("PATCH", f"/api/v2/dags/{self.dag_id}", {"is_paused": False})

        def tick_taken() -> bool:
            after = self.stack.api("GET", f"/api/v2/dags/{self.dag_id}")["next_dagrun_run_after"]
            return after is None or datetime.fromisoformat(after) > datetime.now(UTC)

        _until(f"the scheduler takes the due cron tick of {self.dag_id}", tick_taken)
        self.end_active_runs()

    def switch_off(self) -> None:
        self.stack.api("PATCH", f"/api/v2/dags/{self.dag_id}", {"is_paused": True})
        self.end_active_runs()


def post_event(stack: AirflowStack, asset_name: str, extra: dict[str, Any]) -> dict:
    assets = stack.api("GET", f"/api/v2/assets?name_pattern={quote(asset_name)}")["assets"]
    (asset,) = [a for a in assets if a["name"] == asset_name]
    return stack.api("POST", "/api/v2/assets/events", {"asset_id": asset["id"], "extra": extra})


@pytest.fixture(scope="session")
def airflow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    with shared_stack(tmp_path_factory) as running:
        yield running


@pytest.fixture(scope="module")
def train(airflow_stack: AirflowStack) -> Iterator[Consumer]:
    dag = Consumer(airflow_stack, TRAIN)
    dag.switch_on()
    yield dag
    dag.switch_off()


@pytest.fixture(scope="module")
def features(airflow_stack: AirflowStack) -> Iterator[Consumer]:
    dag = Consumer(airflow_stack, FEATURES)
    dag.switch_on()
    yield dag
    dag.switch_off()


def test_a_drift_event_makes_the_scheduler_start_a_training_run_for_that_day(train: Consumer) -> None:
    known = set(train.runs())
    event = post_event(train.stack, DRIFT, _drift_extra("2013-06-01"))

    run = train.wait_for_new_asset_run(known, "after one drift event")
    assert (run["run_type"], run["triggered_by"]) == ("asset_triggered", "asset")
    consumed = train.consumed_events(run["dag_run_id"])
    assert [(e["id"], e["name"]) for e in consumed] == [(event["id"], DRIFT)]
    assert consumed[0]["extra"] == {**_drift_extra("2013-06-01"), "from_rest_api": True}

    # The event reaches the run's tasks: training is planned for the drifted day, as a drift retrain.
    plan = train.task_result(run["dag_run_id"], "plan_training")
    assert (plan["ds"], plan["trigger"]) == ("2013-06-01", "drift"), plan
    assert "2013-06-01" in plan["reason"], plan
    train.end(run["dag_run_id"])


def test_drift_events_queued_behind_a_training_run_make_one_run(train: Consumer) -> None:
    # A training run in progress (no data: plan_training fails and waits for its retry, holding
    # the DAG's single active-run slot until the test ends it).
    busy = train.stack.api("POST", f"/api/v2/dags/{TRAIN}/dagRuns",
                           {"logical_date": None, "conf": {"reason": "a training run in progress"}})
    known = set(train.runs())
    first = post_event(train.stack, DRIFT, _drift_extra("2013-06-02"))
    second = post_event(train.stack, DRIFT, _drift_extra("2013-06-03"))

    # Both events fold into one queue entry for the DAG, and no run starts while one is active.
    queued = train.queued_events()
    assert [q["asset_id"] for q in queued] == [first["asset_id"]], queued
    assert not train.new_asset_runs(known)

    train.end(busy["dag_run_id"])
    run = train.wait_for_new_asset_run(known, "after two queued drift events")
    assert train.queued_events() == [], "the run took the queue entry: no second run can follow"
    assert not [r for r in train.new_asset_runs(known) if r["dag_run_id"] != run["dag_run_id"]]

    # Airflow 3.3.2 ties the run to the first event's queue time, so the run consumes only the
    # first event; the second waits, unqueued, for the next drift event (apache/airflow#56050;
    # 3.4 queues every event, #70972).
    assert [e["id"] for e in train.consumed_events(run["dag_run_id"])] == [first["id"]]
    train.end(run["dag_run_id"])

    known = set(train.runs())
    third = post_event(train.stack, DRIFT, _drift_extra("2013-06-04"))
    later = train.wait_for_new_asset_run(known, "after a later drift event")
    later_events = train.consumed_events(later["dag_run_id"])
    assert [e["id"] for e in later_events] == [second["id"], third["id"]], "no drift event is lost"
    assert [e["extra"]["ds"] for e in later_events] == ["2013-06-03", "2013-06-04"]
    train.end(later["dag_run_id"])


def test_a_features_event_makes_the_scheduler_start_the_features_run(features: Consumer) -> None:
    known = set(features.runs())
    extra = {"ds": "2013-01-02", "outputs": {"carrier_stats": 16, "route_stats": 200}}
    event = post_event(features.stack, FEATURES_ASSET, extra)

    run = features.wait_for_new_asset_run(known, "after one features event")
    assert (run["run_type"], run["triggered_by"]) == ("asset_triggered", "asset")
    consumed = features.consumed_events(run["dag_run_id"])
    assert [(e["id"], e["name"], e["extra"]) for e in consumed] == [
        (event["id"], FEATURES_ASSET, {**extra, "from_rest_api": True})]
    features.end(run["dag_run_id"])
