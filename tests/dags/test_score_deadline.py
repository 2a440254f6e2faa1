"""The nightly scoring run has a deadline (Airflow Deadline Alerts) that alerts through the routes."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest

from glideslope.config import load_usecase

pytestmark = pytest.mark.dags


def test_the_score_dag_alerts_when_a_run_outlives_its_deadline(dagbag) -> None:
    from airflow.sdk.definitions.deadline import DagRunQueuedAtDeadline

    uc = load_usecase("flight_delay")
    dag = dagbag.dags["flight_delay__score"]
    alerts = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]
    assert len(alerts) == 1
    alert = alerts[0]
    assert isinstance(alert.reference, DagRunQueuedAtDeadline)  # asset-triggered runs have no logical date
    assert alert.interval == timedelta(minutes=uc.scoring.deadline_minutes)
    path = alert.callback.path if hasattr(alert.callback, "path") else alert.callback.callback_callable
    module, _, func = str(path).rpartition(".")
    assert callable(getattr(importlib.import_module(module), func)), path
    assert alert.callback.kwargs == {"usecase": "flight_delay", "minutes": uc.scoring.deadline_minutes}
    assert f"{uc.scoring.deadline_minutes} minutes after it was queued" in dag.doc_md


def test_no_deadline_when_the_spec_sets_none() -> None:
    from glideslope.airflow.score import build_score_dag

    uc = load_usecase("flight_delay")
    uc = uc.model_copy(update={"scoring": uc.scoring.model_copy(update={"deadline_minutes": None})})
    assert not build_score_dag(uc).deadline


def test_the_missed_deadline_alert_names_the_run_and_the_deadline(tmp_path, monkeypatch) -> None:
    from glideslope.airflow.deadline import missed_deadline_alert

    monkeypatch.setenv("GLIDESLOPE_HOME", str(tmp_path))  # an empty lake: no night published yet
    context = {"dag_run": {"dag_id": "flight_delay__score", "dag_run_id": "asset_triggered__2013-06-20T02:10",
                           "state": "running", "queued_at": "2013-06-20T02:10:00Z", "logical_date": None,
                           "conf": {}},
               "deadline": {"id": "d1", "deadline_time": "2013-06-20T05:10:00Z"}}
    alert = missed_deadline_alert("flight_delay", 180, context)
    # The queue time is the wall clock, not a night: the night comes from the lake (#21).
    assert alert.kind == "scoring_late" and alert.severity == "warning" and alert.ds == "no night named"
    assert "180 min" in alert.title and "2013-06-20T05:10:00Z" in alert.body and "running" in alert.body
    assert alert.links["Airflow run"].endswith("/dags/flight_delay__score/runs/asset_triggered__2013-06-20T02%3A10")
