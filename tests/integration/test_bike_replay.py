"""The second bundled use case, a regression, through every stage under Airflow's scheduler.

``glideslope demo --usecase bike_demand`` replays a short stretch of the UCI Bike Sharing data
(Capital Bikeshare, May 2012) against the session's running stack: a backfill of a week of
history, the first model trained by hand on it, then three nights whose features, scoring and
monitoring runs the scheduler creates from Asset events. What used to fail for a regression —
the monitor's live performance, its Evidently report, the metric the state and MLflow keep — is
asserted from the lake, the drift state and the registry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from glideslope_local.api import Airflow
from glideslope_local.demo import days_between
from stack_fixture import AirflowStack, shared_stack

pytestmark = pytest.mark.integration

USECASE = "bike_demand"
HISTORY = ("2012-05-01", "2012-05-07")
NIGHTS = ("2012-05-08", "2012-05-10")


@pytest.fixture(scope="session")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    with shared_stack(tmp_path_factory) as s:
        yield s


@pytest.fixture(scope="session")
def bikes(running: AirflowStack) -> dict[str, Any]:
    env = {**running.env}
    cmd = [str(Path(sys.executable).with_name("glideslope")), "demo", "--usecase", USECASE, "--keep",
           "--history-start", HISTORY[0], "--history-end", HISTORY[1], "--train-on", HISTORY[1],
           "--first-model-window-days", "7", "--first-night", NIGHTS[0], "--last-night", NIGHTS[1]]
    t0 = time.monotonic()
    demo = subprocess.run(cmd, env={**os.environ, **env}, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=1800, check=False)
    (running.home / "bike-demo-output.txt").write_text(demo.stdout + "\n--- stderr ---\n" + demo.stderr)
    assert demo.returncode == 0, f"glideslope demo exited {demo.returncode}:\n{demo.stdout[-6000:]}\n{demo.stderr[-3000:]}"
    summary = json.loads((running.home / "demo" / "summary.json").read_text())
    assert summary["usecase"] == USECASE
    return {"af": Airflow(running.url, running.user, running.password), "home": running.home, "summary": summary,
            "stdout": demo.stdout, "seconds": time.monotonic() - t0}


def _settings(home: Path) -> dict[str, str]:
    return {"GLIDESLOPE_HOME": str(home), "GLIDESLOPE_PROFILE": "embedded"}


def test_every_stage_ran_under_the_scheduler_for_every_night(bikes):
    nights = {n["ds"]: n for n in bikes["summary"]["nights"]}
    assert sorted(nights) == days_between(*NIGHTS)
    for ds, night in nights.items():
        for stage in ("etl", "features", "score", "monitor"):
            run = night["runs"][stage]
            assert run["state"] == "success", (ds, stage, run)
            if stage != "etl":
                full = bikes["af"].run(f"{USECASE}__{stage}", run["run_id"])
                assert full["run_type"] == "asset_triggered", (ds, stage, full["run_type"])


def test_the_demo_speaks_of_hours_not_rows_or_flights(bikes):
    scored = [line for line in bikes["stdout"].splitlines() if f"{USECASE}__score" in line and "hours, v" in line]
    assert len(scored) == len(days_between(*NIGHTS)), bikes["stdout"][-3000:]
    assert "flight" not in bikes["stdout"].lower()


def test_the_first_model_is_a_regressor_promoted_on_rmse(bikes):
    from mlflow import MlflowClient

    from glideslope.config import settings

    cfg = settings(_settings(bikes["home"]))
    client = MlflowClient(tracking_uri=cfg.mlflow_tracking_uri)
    champ = client.get_model_version_by_alias(USECASE, "champion")
    run = client.get_run(champ.run_id)
    assert {"rmse", "mae", "r2"} <= set(run.data.metrics) and "roc_auc" not in run.data.metrics
    assert run.data.metrics["rmse"] < 150.0  # the spec's floor, in rentals per hour (holdout days)


def test_the_monitor_measures_live_rmse_on_the_labelled_hours(bikes):
    from glideslope.config import settings
    from glideslope.drift.state import load_state
    from glideslope.lake import Lake

    lake = Lake.for_usecase(USECASE, settings(_settings(bikes["home"])))
    state = load_state(USECASE, lake)
    last = state["checks"][NIGHTS[1]]
    assert last["live_metric"] == "rmse" and last["live_rmse"] > 0, last
    numbers = lake.read_json(f"{lake.report_dir('drift', NIGHTS[1])}/numbers.json")
    perf = numbers["performance"]
    # Nights 05-08 and 05-09 scored the hours of 05-09 and 05-10, counted by the night of 05-10.
    assert perf["days"] == days_between(NIGHTS[0], "2012-05-09"), perf
    assert 40 <= perf["rows"] <= 48 and {"rmse", "mae", "r2", "mean_label"} <= set(perf), perf
    assert "roc_auc" not in perf and "positive_rate" not in perf
    first = state["checks"][NIGHTS[0]]
    assert first.get("live_rmse") is None  # nothing scored by this champion had been counted yet
