"""The whole loop under Airflow's own scheduler and LocalExecutor, end to end, on real data.

``glideslope demo`` replays ``flights_e2e`` against the session's running stack (see
tests/loop_fixture.py for the timeline and the delivery that drifts). Nothing here calls
``dag.test()`` and nothing fakes a retrain: every assertion reads what the scheduler, the
workers, MLflow and the alert sinks did, through the REST API, the registry and the lake.
"""

from __future__ import annotations

from collections.abc import Iterator
from email import policy
from email.parser import BytesParser

import pytest

from glideslope_local.api import Airflow
from loop_fixture import EXTRA_NIGHTS, HISTORY, NIGHTS, SHIFT_FROM, USECASE, Replay, replayed
from stack_fixture import AirflowStack, shared_stack

pytestmark = pytest.mark.integration


# Session-scoped: the stack (and the replay on it) stay up for the browser test that opens the
# replay's runs; the shared stack stops after its last user.
@pytest.fixture(scope="session")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    with shared_stack(tmp_path_factory) as s:
        yield s


@pytest.fixture(scope="session")
def loop(running: AirflowStack) -> Replay:
    r = replayed(Airflow(running.url, running.user, running.password), running.home, running.env)
    assert r.demo.returncode == 0, (f"glideslope demo exited {r.demo.returncode}; its own story checks:\n"
                                    f"{r.demo.stdout[-6000:]}\n{r.demo.stderr[-3000:]}")
    return r


def _days(a: str, b: str) -> list[str]:
    from glideslope_local.demo import days_between

    return days_between(a, b)


def test_the_history_is_one_range_run_whose_event_reaches_features(loop: Replay):
    runs = [r for r in loop.af.runs(loop.dag("etl")) if (r.get("conf") or {}).get("start")]
    assert len(runs) == 1 and runs[0]["state"] == "success", runs
    run = runs[0]
    assert (run["conf"]["start"], run["conf"]["end"]) == HISTORY
    published = loop.af.xcom(loop.dag("etl"), run["dag_run_id"], "validate_and_publish")
    assert published["days"] == _days(*HISTORY) and published["failed"] == {}
    # One features event lists every day, and the features DAG materialized them all.
    events = [e for e in loop.af.asset_events(f"{USECASE}.features") if e.get("source_run_id") == run["dag_run_id"]]
    assert len(events) == 1 and events[0]["extra"]["days"] == _days(*HISTORY)
    lake = loop.lake()
    for day in _days(*HISTORY):
        assert lake.exists(lake.features("carrier_stats", day)), day


def test_every_downstream_run_was_created_by_the_scheduler_from_asset_events(loop: Replay):
    nights = {n["ds"]: n for n in loop.summary["nights"]}
    assert sorted(nights) == _days(*NIGHTS)
    for night in nights.values():
        for stage in ("features", "score", "monitor"):
            run = loop.af.run(loop.dag(stage), night["runs"][stage]["run_id"])
            assert run["run_type"] == "asset_triggered" and run["state"] == "success", (stage, run)
            events = loop.af.upstream_events(loop.dag(stage), run["dag_run_id"])
            assert events, f"{stage} run of {night['ds']} has no triggering Asset event"


def test_drift_in_the_delivery_triggers_one_asset_triggered_training_with_its_event(loop: Replay):
    assert loop.night(NIGHTS[0])["action"] != "trigger"
    shifted = loop.night(SHIFT_FROM)
    assert shifted["action"] == "trigger", shifted
    run = loop.af.run(loop.dag("train"), shifted["runs"]["train"]["run_id"])
    assert run["run_type"] == "asset_triggered" and run["state"] == "success"
    events = loop.af.upstream_events(loop.dag("train"), run["dag_run_id"])
    assert [e["extra"]["ds"] for e in events] == [SHIFT_FROM]
    assert events[0]["source_dag_id"] == loop.dag("monitor")
    drifted = set(events[0]["extra"]["drifted_columns"])
    assert drifted & {"distance", "dep_hour"}, f"the shifted columns are not among the drifted: {drifted}"


def test_the_retrain_ran_on_real_data_and_was_promoted_over_the_weak_first_model(loop: Replay):
    run_id = loop.night(SHIFT_FROM)["runs"]["train"]["run_id"]
    trained = loop.af.xcom(loop.dag("train"), run_id, "train_candidates")
    assert trained["trigger"] == "drift" and trained["window"] == f"{_days('2013-05-22', SHIFT_FROM)[0]}..{SHIFT_FROM}"
    assert {c["name"] for c in trained["candidates"]} == {"hist_gradient_boosting", "logistic_regression"}
    assert trained["best"]["metrics"]["roc_auc"] > 0.55
    promoted = loop.af.xcom(loop.dag("train"), run_id, "promote_champion")
    assert promoted and promoted["final_outcome"] == "promoted"
    first = loop.af.xcom(loop.dag("train"), loop.summary["first_model_run_id"], "promote_champion")
    assert promoted["champion_version"] == first["challenger_version"]  # it replaced the dummy

    from mlflow import MlflowClient

    from glideslope.config import settings

    client = MlflowClient(tracking_uri=settings({**loop.env_settings()}).mlflow_tracking_uri)
    mv = client.get_model_version(USECASE, promoted["challenger_version"])
    assert mv.tags["glideslope.trigger"] == "drift" and mv.tags["glideslope.decision"] == "promoted"
    assert SHIFT_FROM in mv.tags["glideslope.days"]


def test_the_next_scoring_run_used_the_new_champion(loop: Replay):
    promoted = loop.af.xcom(loop.dag("train"), loop.night(SHIFT_FROM)["runs"]["train"]["run_id"], "promote_champion")
    scored = loop.af.xcom(loop.dag("score"), loop.night(NIGHTS[-1])["runs"]["score"]["run_id"], "score_next_period")
    assert [s["ds"] for s in scored] == [NIGHTS[-1]]
    assert str(scored[0]["model_version"]) == str(promoted["challenger_version"])


def test_drift_that_outlives_the_retrain_escalates_and_pauses(loop: Replay):
    last = loop.night(NIGHTS[-1])
    assert last["action"] == "escalate", last
    state = loop.state_after_replay  # read before the races below acknowledge the escalation
    assert state["paused"] and state["paused"]["ds"] == NIGHTS[-1]
    subjects = [str(BytesParser(policy=policy.default).parsebytes(p.read_bytes())["subject"])
                for p in sorted((loop.home / "alerts" / "mail").glob("*.eml"))]
    assert any(USECASE in s and "escalat" in s.lower() for s in subjects), subjects


def test_two_features_events_queued_behind_a_scoring_run_both_get_predictions(loop: Replay):
    races = loop.races
    assert races["score_busy_state_when_posted"] == "running"
    asset_runs = [r for r in races["score_runs"] if r["run_type"] == "asset_triggered"]
    assert 1 <= len(asset_runs) <= 2 and all(r["state"] == "success" for r in asset_runs)
    lake = loop.lake()
    for ds in EXTRA_NIGHTS:
        assert lake.exists(lake.predictions(ds)), f"night {ds} was never scored"


def test_three_drift_events_queued_behind_a_training_make_one_run_that_lists_them_all(loop: Replay):
    races = loop.races
    assert races["train_busy_state_when_posted"] == "running"
    asset_runs = [r for r in races["train_runs"] if r["run_type"] == "asset_triggered"]
    assert len(asset_runs) == 1, [r["dag_run_id"] for r in races["train_runs"]]
    plan = races["train_plans"][races["train_runs"].index(asset_runs[0])]
    posted = {e["timestamp"].replace("Z", "+00:00")[:26] for e in races["drift_events"]}
    listed = {e["timestamp"].replace("Z", "+00:00")[:26] for e in plan["request"]["events"]}
    assert posted <= listed, (posted, listed)
    # Automatic retraining is paused by the escalation: the run answers the events and trains nothing.
    assert plan["skip"] and "paused" in plan["skip"]


def test_the_escalation_is_a_question_in_the_ui_and_the_answer_is_recorded_and_carried_out(loop: Replay):
    """The scheduler runs flights_e2e__escalation from the monitor's Asset; a person answers it
    through the API the UI's Required actions use, and the chosen branch does what was chosen."""
    from glideslope.drift.escalation import OPTIONS

    races = loop.races
    question = races["escalation_question"]
    assert question["options"] == OPTIONS and question["defaults"] == ["Keep paused"]
    assert NIGHTS[-1] in question["subject"]
    assert races["escalation_run"]["state"] == "success" and races["escalation_run"]["run_type"] == "asset_triggered"
    tasks = races["escalation_tasks"]
    assert tasks["keep_paused"] == "success" and tasks["notify"] == "success"
    assert {tasks[t] for t in ("request_retraining", "roll_back", "accept_reference")} == {"skipped"}
    state = races["state_after_answer"]
    decision = state["decisions"][-1]
    assert decision["kind"] == "keep_paused" and decision["by"] == loop.af.user
    assert decision["note"] == "the provider is fixing its units; wait for them" and decision["ds"] == NIGHTS[-1]
    assert state["paused"]["ds"] == NIGHTS[-1], "keep paused changes nothing"
    subjects = [str(BytesParser(policy=policy.default).parsebytes(p.read_bytes())["subject"])
                for p in sorted((loop.home / "alerts" / "mail").glob("*.eml"))]
    assert any(USECASE in s and "escalation answered: keep paused" in s for s in subjects), subjects


def test_a_person_acknowledges_the_escalation_through_the_dag_and_retraining_resumes(loop: Replay):
    from glideslope.drift.state import load_state

    races = loop.races
    assert races["ack_run"]["state"] == "success", races["ack_run"]
    assert races["ack_result"]["acknowledged"] and races["ack_result"]["was_paused"]["ds"] == NIGHTS[-1]
    state = load_state(USECASE, loop.lake())
    assert state["paused"] is None and state["acks"][-1]["by"] == "e2e-oncall"
    subjects = [str(BytesParser(policy=policy.default).parsebytes(p.read_bytes())["subject"])
                for p in sorted((loop.home / "alerts" / "mail").glob("*.eml"))]
    assert any("acknowledged by e2e-oncall" in s for s in subjects), subjects


# --- lineage and metrics of the replay --------------------------------------------------------------

def test_the_replays_lineage_reaches_an_http_receiver_and_links_raw_to_predictions(loop: Replay,
                                                                                  running: AirflowStack):
    """Raw → curated → features → feature views → training set → model → predictions, from the events."""
    from glideslope.lineage import trace

    assert running.lineage is not None
    events = running.lineage.received()
    jobs = {e["job"]["name"] for e in events if e["eventType"] == "COMPLETE" and e.get("outputs")}
    for job in ("etl.validate_and_publish", "features.materialize_new_interval", "train.build_training_set",
                "train.train_candidates", "score.score_next_period", "monitor.check_drift"):
        assert f"{USECASE}__{job}" in jobs, f"no event with outputs from {job}"
    promoted = loop.af.xcom(loop.dag("train"), loop.night(SHIFT_FROM)["runs"]["train"]["run_id"], "promote_champion")
    version = str(promoted["challenger_version"])
    t = trace(events, USECASE, SHIFT_FROM)
    assert {n.name.rsplit("/", 2)[-2] for n in t.raw} >= {"flights", "weather"}
    lake = loop.lake()
    assert lake.output(SHIFT_FROM, "curated/flights").rsplit("/", 1)[0] in {n.name for n in t.by_kind("curated")}
    assert t.by_kind("features") and t.by_kind("feature_view") and t.by_kind("training_set")
    assert f"{USECASE}/{version}" in {n.name for n in t.by_kind("model")}
    scored = {n.name for n in t.by_kind("predictions")}
    assert lake.predictions(NIGHTS[-1]).rsplit("/", 1)[0] in scored  # scored by the retrained champion
    model = next(o for e in events if e["job"]["name"] == f"{USECASE}__train.train_candidates"
                 for o in e.get("outputs", []) if o["name"] == f"{USECASE}/{version}")
    assert model["facets"]["glideslope"]["model"]["metrics"]["roc_auc"] > 0.55
    # A day before the history has no raw delivery in any event.
    assert not trace(events, USECASE, "2013-05-01").raw


def test_the_file_transport_holds_the_same_events_and_glideslope_lineage_traces_a_day(loop: Replay,
                                                                                     running: AirflowStack):
    import subprocess
    import sys
    from pathlib import Path

    from glideslope.lineage import EVENTS_DIR, read_events

    assert running.lineage is not None
    on_file = {e["run"]["runId"] + e["eventType"] for e in read_events(loop.home / EVENTS_DIR)}
    received = {e["run"]["runId"] + e["eventType"] for e in running.lineage.received()}
    assert received and received <= on_file
    cli = subprocess.run([str(Path(sys.executable).with_name("glideslope")), "lineage", "--usecase", USECASE,
                          "--ds", SHIFT_FROM], env={**loop.env_settings(), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=120, check=False)
    assert cli.returncode == 0, cli.stderr
    promoted = loop.af.xcom(loop.dag("train"), loop.night(SHIFT_FROM)["runs"]["train"]["run_id"], "promote_champion")
    assert f"{USECASE}/{promoted['challenger_version']}" in cli.stdout
    assert f"predictions/ds={NIGHTS[-1]}" in cli.stdout


def test_the_metrics_endpoint_scraped_after_the_replay_matches_mlflow_and_the_lake(loop: Replay,
                                                                                   running: AirflowStack):
    import urllib.request

    from mlflow import MlflowClient
    from prometheus_client.parser import text_string_to_metric_families

    from glideslope.config import settings
    from glideslope.drift.state import load_state

    with urllib.request.urlopen(f"{running.url}/glideslope/metrics?usecase={USECASE}", timeout=60) as r:
        assert r.status == 200  # no login: Prometheus scrapes it as it is
        text = r.read().decode()
    m = {(s.name, s.labels.get("source")): s.value for f in text_string_to_metric_families(text) for s in f.samples}
    client = MlflowClient(tracking_uri=settings(loop.env_settings()).mlflow_tracking_uri)
    champion = client.get_registered_model(USECASE).aliases["champion"]
    assert m[("glideslope_champion_version", None)] == float(champion)
    lake = loop.lake()
    newest = lake.partitions(lake.predictions())[-1]
    predictions = lake.read_parquet(lake.predictions(newest))
    assert m[("glideslope_scored_rows", None)] == len(predictions)
    assert abs(m[("glideslope_mean_score", None)] - float(predictions["prediction"].mean())) < 1e-9
    state = load_state(USECASE, lake)
    check = state["checks"][max(state["checks"])]
    assert m[("glideslope_drift_share", None)] == check["drift_share"]
    assert m[("glideslope_drifted_columns", None)] == len(check["drifted_columns"])
    assert m[("glideslope_escalation_open", None)] == 0  # acknowledged at the end of the races
    assert all(m[("glideslope_metrics_source_up", s)] == 1 for s in ("mlflow", "lake", "state"))
