"""Races in the production profile: the lake on S3, the MLflow server, the Redis lock server.

Two real processes (tests/race_support.py) are released at the same instant against the same
drift state document on S3 and the same registered model on the MLflow server. Without a lock
both read the same version and one update is lost; with the lock exactly one promotion wins and
every state update is kept.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest

from race_support import Arena, champion_state, new_model, passing_evaluation, promote_job, record_retrain_job

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def production(s3, redis_url, mlflow_server):
    """The production profile's settings in this process and in both contenders."""
    env = {"GLIDESLOPE_PROFILE": "production", "GLIDESLOPE_LAKE_ROOT": f"s3://{s3.bucket}/races-{uuid.uuid4().hex[:6]}",
           "GLIDESLOPE_S3_ENDPOINT_URL": s3.endpoint_url, "MLFLOW_S3_ENDPOINT_URL": s3.endpoint_url,
           "GLIDESLOPE_LOCK_URL": f"{redis_url}/2", "MLFLOW_TRACKING_URI": mlflow_server.tracking_uri,
           "GLIDESLOPE_MLFLOW_ARTIFACT_ROOT": f"s3://{s3.bucket}/mlflow"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    arena = Arena()  # spawned now: the contenders start with this environment
    try:
        yield {"env": env, "arena": arena}
    finally:
        arena.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_drift_state_updates_racing_on_s3_are_all_kept(production) -> None:
    from glideslope.drift.state import load_state

    usecase = f"race_{uuid.uuid4().hex[:6]}"
    outcomes = production["arena"].race((record_retrain_job, (usecase, "2013-02-01", "4", production["env"])),
                                        (record_retrain_job, (usecase, "2013-02-02", "5", production["env"])))
    assert [o[0] for o in outcomes] == ["ok", "ok"], outcomes
    state = load_state(usecase)
    assert sorted((r["ds"], r["model_version"]) for r in state["retrains"]) == [("2013-02-01", "4"),
                                                                              ("2013-02-02", "5")]
    assert len([h for h in state["history"] if h["event"] == "retrain_recorded"]) == 2


def test_a_state_write_that_lost_its_lock_does_not_overwrite(production) -> None:
    from glideslope.drift.state import StateConflict, load_state, record_retrain, update_state
    from glideslope.lake import Lake

    usecase = f"race_{uuid.uuid4().hex[:6]}"
    record_retrain(usecase, "2013-02-01", "promoted", model_version="4")
    lake = Lake.for_usecase(usecase)
    path = lake.state("drift")
    with pytest.raises(StateConflict, match=r"changed while this update held the 'drift-state' lock"):
        with update_state(usecase, lake) as state:
            state["acks"].append({"by": "slow writer"})
            # Someone else's write lands meanwhile (a writer whose lease ran out and came back).
            other = {**load_state(usecase), "acks": [{"by": "other writer"}]}
            lake.fs.pipe_file(path, json.dumps(other).encode())
    assert load_state(usecase)["acks"] == [{"by": "other writer"}], "the newer document is kept"


def test_two_first_promotions_on_the_mlflow_server(production) -> None:
    name, runs = new_model(2)
    outcomes = production["arena"].race((promote_job, (name, passing_evaluation(name, runs, "1"))),
                                        (promote_job, (name, passing_evaluation(name, runs, "2"))))
    ok = [i for i, o in enumerate(outcomes) if o[0] == "ok"]
    assert len(ok) == 1, outcomes
    assert outcomes[1 - ok[0]][1] == "PromotionConflict"
    winner = str(ok[0] + 1)
    assert champion_state(name) == (winner, [winner], 1)
