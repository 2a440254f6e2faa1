"""One run request: built once from what Airflow says, parsed the same way by the CLI and the pod."""

from __future__ import annotations

import argparse

import pytest

from glideslope.config import load_usecase
from glideslope.runrequest import EventRef, RequestError, RunRequest, add_arguments, build, from_arguments
from glideslope.training.plan import NothingToTrain, plan_training

pytestmark = pytest.mark.unit


def _drift(ds: str, ts: str, reasons: tuple[str, ...] = ("share 0.3 >= 0.2",)) -> EventRef:
    return EventRef("flight_delay.drift", {"ds": ds, "reasons": list(reasons)}, "flight_delay__monitor/r1", ts)


def test_a_param_day_wins_over_events_and_the_logical_date():
    req = build("flight_delay", run_type="asset_triggered", logical_ds="2013-06-01",
                params={"ds": "2013-06-05"}, events=[_drift("2013-06-03", "t1")])
    assert req.days == ("2013-06-05",) and req.trigger == "asset"


def test_asset_runs_take_their_days_from_every_event_not_the_logical_date():
    req = build("flight_delay", run_type="asset_triggered", logical_ds="2026-12-01",
                events=[_drift("2013-06-19", "t2"), _drift("2013-06-18", "t1"), _drift("2013-06-19", "t3")])
    assert req.days == ("2013-06-18", "2013-06-19")
    assert "3 event(s) of flight_delay.drift" in req.reason and "share 0.3" in req.reason


@pytest.mark.parametrize(("run_type", "trigger"), [
    ("scheduled", "schedule"), ("DagRunType.SCHEDULED", "schedule"), ("backfill_job", "backfill"),
    ("backfill", "backfill"), ("manual", "manual"), ("asset_triggered", "asset")])
def test_the_trigger_comes_from_the_run_type(run_type, trigger):
    req = build("flight_delay", run_type=run_type, logical_ds="2013-06-01")
    assert req.trigger == trigger
    assert req.days == (() if trigger == "asset" else ("2013-06-01",))


def test_bad_days_and_triggers_are_refused_naming_the_field():
    with pytest.raises(RequestError, match="Param ds"):
        build("flight_delay", run_type="manual", params={"ds": "June 5"})
    with pytest.raises(RequestError, match="trigger"):
        RunRequest("flight_delay", "cron")  # type: ignore[arg-type]
    with pytest.raises(RequestError, match="names no day"):
        RunRequest("flight_delay", "manual").require_ds()


def test_the_command_line_parses_back_the_same_request():
    req = build("flight_delay", run_type="asset_triggered", run_id="asset__x",
                events=[_drift("2013-06-19", "2013-06-19T05:00:00+00:00")], params={"reason": "why"})
    ap = argparse.ArgumentParser()
    add_arguments(ap)
    assert from_arguments(ap.parse_args(req.to_arguments())) == req
    assert RunRequest.from_record(req.record()) == req


def test_queued_events_are_one_request_listing_them_all():
    uc = load_usecase("flight_delay")
    req = build("flight_delay", run_type="asset_triggered", events=[_drift("2013-06-19", "t1")])
    req = req.with_events([_drift("2013-06-19", "t1"), _drift("2013-06-20", "t2"), _drift("2013-06-21", "t3")])
    plan = plan_training(uc, req, latest_label_day="2013-06-22")
    assert plan.ds == "2013-06-21" and plan.trigger == "drift"
    assert [e.timestamp for e in plan.request.events] == ["t1", "t2", "t3"]
    assert plan.summary()["drift_days"] == ["2013-06-19", "2013-06-20", "2013-06-21"]


def test_paused_retraining_stops_drift_and_cron_runs_but_not_a_person():
    uc = load_usecase("flight_delay")
    paused = {"ds": "2013-07-02", "reason": "drift outlived the retrain"}
    for run_type in ("asset_triggered", "scheduled"):
        req = build("flight_delay", run_type=run_type, logical_ds="2013-07-07",
                    events=[_drift("2013-07-03", "t")] if run_type == "asset_triggered" else [])
        assert "paused since 2013-07-02" in (plan_training(uc, req, latest_label_day="2013-07-06",
                                                           paused=paused).skip or "")
    manual = build("flight_delay", run_type="manual", logical_ds="2013-07-07")
    assert plan_training(uc, manual, latest_label_day="2013-07-06", paused=paused).skip is None


def test_a_run_without_labels_says_what_to_run_first():
    uc = load_usecase("flight_delay")
    with pytest.raises(NothingToTrain, match="flight_delay__etl"):
        plan_training(uc, build("flight_delay", run_type="manual"), latest_label_day=None)


def test_params_reach_the_plan_and_the_plan_round_trips():
    from glideslope.training.plan import TrainingPlan

    uc = load_usecase("flight_delay")
    req = build("flight_delay", run_type="manual", logical_ds="2013-06-01",
                params={"candidates": ["dummy"], "window_days": 10, "holdout_days": 2, "reason": "weak on purpose"})
    # Without a ds Param the window ends with the newest labelled day, not the run's logical date
    # (a run triggered now has a logical date the labels have not reached).
    plan = plan_training(uc, req, latest_label_day="2013-05-31")
    assert (plan.ds, plan.candidates, plan.window_days, plan.holdout_days) == ("2013-05-31", ("dummy",), 10, 2)
    assert plan.reason == "weak on purpose"
    assert TrainingPlan.from_summary(plan.summary()) == plan


def test_a_range_run_is_every_day_from_start_to_end():
    req = build("flight_delay", run_type="manual", logical_ds=None, params={"start": "2013-02-27", "end": "2013-03-02"})
    assert req.days == ("2013-02-27", "2013-02-28", "2013-03-01", "2013-03-02")
    assert req.require_days() == req.days and req.ds == "2013-03-02"
    with pytest.raises(RequestError, match="Param end 2013-02-01 is before Param start 2013-02-27"):
        build("flight_delay", run_type="manual", params={"start": "2013-02-27", "end": "2013-02-01"})
    with pytest.raises(RequestError, match="needs both Params start and end"):
        build("flight_delay", run_type="manual", params={"start": "2013-02-27"})
    with pytest.raises(RequestError, match="contradict"):
        build("flight_delay", run_type="manual", params={"ds": "2013-02-27", "start": "2013-02-27", "end": "2013-03-01"})


def test_a_range_runs_event_hands_every_published_day_downstream():
    event = EventRef("flight_delay.features", {"ds": "2013-03-02", "days": ["2013-03-01", "2013-02-28", "2013-03-02"]})
    night = EventRef("flight_delay.features", {"ds": "2013-03-05"})
    req = build("flight_delay", run_type="asset_triggered", events=[event, night])
    assert req.event_days() == ["2013-02-28", "2013-03-01", "2013-03-02", "2013-03-05"]
    assert req.days == ("2013-02-28", "2013-03-01", "2013-03-02", "2013-03-05")
