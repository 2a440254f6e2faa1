"""A person's answer to an escalation: read from the question's result, recorded, carried out.

The drift state lives in a real (temporary) lake; the champion of ``accept_reference`` is named by
hand (no MLflow), so these tests exercise what ``<uc>__escalation`` does with an answer.
"""

from __future__ import annotations

import pandas as pd
import pytest

from glideslope.config import load_usecase
from glideslope.drift import escalation
from glideslope.drift.escalation import ACCEPT, KEEP, RETRAIN, ROLL_BACK, Answer, answer_from_hitl, record
from glideslope.drift.state import load_state, update_state
from glideslope.lake import Lake

pytestmark = pytest.mark.unit

ESCALATED_ON = "2013-06-20"


@pytest.fixture
def lake(tmp_path):
    lake = Lake(root=str(tmp_path / "lake"), usecase="flight_delay")
    with update_state("flight_delay", lake) as state:
        state["checks"] = {ESCALATED_ON: {"ds": ESCALATED_ON, "drifted_columns": ["wx_temp_mean"]}}
        state["paused"] = {"ds": ESCALATED_ON, "reason": "drift persisted after retraining", "retrain": {}}
    return lake


@pytest.fixture(scope="module")
def uc():
    return load_usecase("flight_delay")


def test_the_answer_is_read_with_who_why_and_the_params() -> None:
    a = answer_from_hitl({"chosen_options": [RETRAIN], "responded_by_user": {"id": "7", "name": "alice"},
                          "responded_at": "2013-06-21T08:00:00Z",
                          "params_input": {"window_days": {"value": 14}, "candidates": "xgboost, ridge",
                                           "note": {"value": " June weather "}, "to_version": None}})
    assert (a.kind, a.by, a.note, a.window_days, a.candidates) == ("retrain", "alice", "June weather", 14,
                                                                   ["xgboost", "ridge"])
    assert not a.timed_out
    timed_out = answer_from_hitl({"chosen_options": [KEEP], "responded_by_user": None, "params_input": {}})
    assert timed_out.timed_out and "timed out" in timed_out.who()
    assert answer_from_hitl({"chosen_options": [ROLL_BACK], "params_input": {"to_version": "v3"}}).to_version == "3"
    with pytest.raises(ValueError, match="not one of"):
        answer_from_hitl({"chosen_options": ["Retrain", KEEP]})
    with pytest.raises(ValueError, match="no answer"):
        answer_from_hitl({"chosen_options": []})


def test_keep_paused_records_the_answer_and_changes_nothing(lake) -> None:
    answer = Answer(KEEP, "bob", "2013-06-21T09:00:00Z", "upstream is fixing the feed")
    record("flight_delay", answer, {"paused": True}, lake, resume=False)
    state = load_state("flight_delay", lake)
    assert state["paused"]["ds"] == ESCALATED_ON
    (entry,) = state["decisions"]
    assert (entry["kind"], entry["by"], entry["note"], entry["ds"]) == ("keep_paused", "bob",
                                                                        "upstream is fixing the feed", ESCALATED_ON)
    assert state["history"][-1]["event"] == "escalation_decision"
    assert state["acks"] == []


def test_an_answer_that_resumes_ends_the_pause_once_even_when_the_task_is_retried(lake) -> None:
    answer = Answer(RETRAIN, "alice", "2013-06-21T08:00:00Z", "new season", window_days=14)
    first = record("flight_delay", answer, {"train_run": "escalation__x"}, lake, resume=True)
    again = record("flight_delay", answer, {"train_run": "escalation__x"}, lake, resume=True)
    state = load_state("flight_delay", lake)
    assert state["paused"] is None
    assert first == again and len(state["decisions"]) == 1 and len(state["acks"]) == 1
    assert state["acks"][0]["by"] == "alice" and state["acks"][0]["decision"] == "retrain"
    assert state["acks"][0]["was_paused"]["ds"] == ESCALATED_ON


def test_a_retrain_request_becomes_the_train_dags_params_and_unknown_candidates_are_named(uc) -> None:
    conf = escalation.retrain_request(uc, Answer(RETRAIN, "alice", None, "try a longer window", window_days=21,
                                                 candidates=["xgboost"]), ESCALATED_ON)
    assert conf["window_days"] == 21 and conf["candidates"] == ["xgboost"] and conf["ds"] == ESCALATED_ON
    assert "alice" in conf["reason"] and "longer window" in conf["reason"]
    assert "window_days" not in escalation.retrain_request(uc, Answer(RETRAIN, "a", None), None)
    with pytest.raises(ValueError, match="unknown candidate 'prophet'"):
        escalation.retrain_request(uc, Answer(RETRAIN, "a", None, candidates=["prophet"]), None)
    with pytest.raises(ValueError, match="at least 3"):
        escalation.retrain_request(uc, Answer(RETRAIN, "a", None, window_days=1), None)


def _predictions(lake: Lake, days: list[str], version: str, rows: int, older: int = 0) -> None:
    """``rows`` predictions of ``version`` a night, and on the first night ``older`` of version 3."""
    for i, ds in enumerate(days):
        frame = pd.DataFrame({"flight_id": [f"{ds}-{n}" for n in range(rows)], "wx_temp_mean": 80.0 + i,
                              "prediction": 0.3, "model_version": version})
        if i == 0 and older:
            frame = pd.concat([frame, pd.DataFrame({"flight_id": [f"{ds}-old-{n}" for n in range(older)],
                                                    "wx_temp_mean": 10.0, "prediction": 0.9,
                                                    "model_version": "3"})], ignore_index=True)
        lake.publish_parquet(frame, lake.predictions(ds))


def test_accepting_the_data_makes_the_recent_nights_the_champions_reference(uc, lake, monkeypatch) -> None:
    from glideslope.drift import monitor

    champ = monitor.Champion(name=uc.registered_model, version="4", run_id="run-4", experiment_id="1")
    monkeypatch.setattr(monitor, "find_champion", lambda spec, client: champ)
    monkeypatch.setattr(monitor, "mlflow_client", lambda: None)
    days = monitor.window_days(ESCALATED_ON, uc.drift.reference_days)
    # An older champion's rows in the window are not the new reference.
    _predictions(lake, days, "4", rows=uc.drift.min_rows // 2, older=5)

    override = escalation.accept_reference(uc, ESCALATED_ON, Answer(ACCEPT, "carol", None, "new normal"), lake)
    assert override["version"] == "4" and override["by"] == "carol"
    reference = monitor.load_reference(champ, uc, lake)
    assert len(reference) == override["rows"] == len(days) * (uc.drift.min_rows // 2)
    assert set(reference["model_version"]) == {"4"}
    assert sorted(reference["wx_temp_mean"].unique()) == [80.0 + i for i in range(len(days))]
    # A later champion gets its own training reference again.
    assert escalation.reference_override(uc, "5", lake) is None


def test_too_few_recent_rows_are_not_accepted(uc, lake, monkeypatch) -> None:
    from glideslope.drift import monitor

    champ = monitor.Champion(name=uc.registered_model, version="4", run_id="run-4", experiment_id="1")
    monkeypatch.setattr(monitor, "find_champion", lambda spec, client: champ)
    monkeypatch.setattr(monitor, "mlflow_client", lambda: None)
    _predictions(lake, [ESCALATED_ON], "4", rows=3)
    with pytest.raises(ValueError, match=r"only 3 rows scored by v4 .* too few to become the reference"):
        escalation.accept_reference(uc, ESCALATED_ON, Answer(ACCEPT, "carol", None), lake)
    assert load_state("flight_delay", lake).get("reference") is None


def test_the_alert_says_what_was_chosen_by_whom_and_what_was_done(uc) -> None:
    entry = {"ds": ESCALATED_ON, **Answer(ROLL_BACK, "dave", None, "v5 misbehaves", to_version="3").to_dict(),
             "outcome": {"champion_version": "3"}}
    alert = escalation.answer_alert(uc, entry)
    assert alert.kind == "escalation_answered" and alert.severity == "info"
    assert "dave chose" in alert.body and "v5 misbehaves" in alert.body and "rolled back" in alert.body
    assert alert.facts["champion_version"] == "3"
    timed_out = {"ds": ESCALATED_ON, **Answer(KEEP, None, None).to_dict(), "outcome": {"paused": True}}
    late = escalation.answer_alert(uc, timed_out)
    assert late.severity == "warning" and "default applied" in late.title and "stays paused" in late.body


@pytest.fixture
def registry(tmp_path, lake):
    """flight_delay in a real (temporary) MLflow registry: v1 the first champion, v2 the one now."""
    import json

    from ml_data import isolated_home

    from glideslope.registry.promotion import GENERATION_TAG, HISTORY_TAG
    from glideslope.training import tracking

    with isolated_home(tmp_path / "home"):
        client = tracking.client()
        experiment = client.create_experiment("flight_delay")
        client.create_registered_model("flight_delay")
        for _ in range(2):
            run = client.create_run(experiment)
            client.create_model_version("flight_delay", f"runs:/{run.info.run_id}/model", run.info.run_id)
        client.set_registered_model_alias("flight_delay", "champion", "2")
        client.set_registered_model_tag("flight_delay", HISTORY_TAG, json.dumps(["1", "2"]))
        client.set_registered_model_tag("flight_delay", GENERATION_TAG, "2")
        yield client


def test_rolling_back_records_the_versions_it_moved_between_and_the_alert_names_them(uc, lake, registry) -> None:
    answer = Answer(ROLL_BACK, "dave", "2013-06-21T10:00:00Z", "v2 misbehaves")
    entry, result = escalation.roll_back(uc, answer, lake)
    assert str(registry.get_registered_model("flight_delay").aliases["champion"]) == "1"
    assert entry["outcome"] == {"champion_version": "1", "rolled_back_from": "2"}, entry
    assert (result["from_version"], result["to_version"], result["ds"]) == ("2", "1", ESCALATED_ON)
    state = load_state("flight_delay", lake)
    assert state["paused"] is None and state["decisions"][-1]["outcome"] == entry["outcome"]
    alert = escalation.answer_alert(uc, entry)
    assert (alert.facts["champion_version"], alert.facts["rolled_back_from"]) == ("1", "2"), alert.facts
