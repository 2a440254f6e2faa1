"""Our training, promotion, loading and scoring against the MLflow server with S3 artifacts.

The tracking server runs on a PostgreSQL backend store with its artifacts in S3 (moto's server
mode); the client speaks HTTP to the server and S3 to the bucket, as a Celery worker or the GPU
pod of the production profile does. What runs is the pipeline's own code -- ``train_candidates``,
``evaluate_challenger``/``promote``, ``load_version``, the drift monitor's reference sample and
``score_day`` -- on the unit tests' small synthetic lake (local; Feast's offline store on S3 needs
DuckDB's httpfs, see docs/production.md). Every test asks for what it needs through fixtures, so
they pass alone and in any order.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from glideslope.config import Settings, load_usecase, settings
from glideslope.lake import Lake

pytestmark = pytest.mark.services

TRAIN_DS = "2013-01-09"
SCORE_DS = "2013-01-10"
CANDIDATES = ["logistic_regression", "xgboost"]


@pytest.fixture(scope="module")
def server_profile(mlflow_server, s3, tmp_path_factory) -> Iterator[Settings]:
    """A fresh home whose MLflow is the server and whose artifacts go to the bucket."""
    import mlflow

    home = tmp_path_factory.mktemp("mlflow_server_home")
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {"GLIDESLOPE_PROFILE": "embedded", "GLIDESLOPE_HOME": str(home),
                     "MLFLOW_TRACKING_URI": mlflow_server.tracking_uri,
                     "GLIDESLOPE_MLFLOW_ARTIFACT_ROOT": f"s3://{s3.bucket}/mlflow",
                     "GLIDESLOPE_S3_ENDPOINT_URL": s3.endpoint_url,
                     "MLFLOW_S3_ENDPOINT_URL": s3.endpoint_url}.items():
            mp.setenv(k, v)
        mp.delenv("GLIDESLOPE_LAKE_ROOT", raising=False)
        yield settings()
    mlflow.set_tracking_uri(before[0])
    mlflow.set_registry_uri(before[1])


@pytest.fixture(scope="module")
def trained(server_profile, timing) -> dict:
    """The lake written, Feast applied, and both candidate families trained through the server."""
    from glideslope.features.repo import apply_definitions
    from glideslope.training import train_candidates
    from unit.ml_data import write_lake

    t0 = time.monotonic()
    uc = load_usecase("flight_delay")
    write_lake(Lake.for_usecase(uc.name), "2013-01-01", 12, flights_per_day=150)
    apply_definitions(uc)
    result = train_candidates(uc, TRAIN_DS, candidates=CANDIDATES, window_days=8, holdout_days=2)
    timing("mlflow server: train_candidates (2 families) logged to the server, artifacts to S3", t0)
    return result


@pytest.fixture(scope="module")
def champion(trained) -> str:
    """The trained challenger, evaluated and promoted by our promotion code (the first champion)."""
    from glideslope.registry.promotion import evaluate_challenger, promote

    uc = load_usecase("flight_delay")
    evaluation = evaluate_challenger(uc, TRAIN_DS, trained["challenger_version"])
    assert evaluation["champion_version"] is None, "this server's registry starts empty for flight_delay"
    evaluation["decision"]["promote"] = True  # a first champion; the policy has its own tests
    done = promote(uc, evaluation)
    assert done["final_outcome"] == "promoted"
    return str(trained["challenger_version"])


def test_training_logs_runs_to_postgres_and_models_to_s3(trained, server_profile, mlflow_server, s3) -> None:
    import sqlalchemy as sa

    from glideslope.training import tracking

    uc = load_usecase("flight_delay")
    client = tracking.client(server_profile)
    exp_id = tracking.experiment_id(uc, server_profile)
    assert client.get_experiment(exp_id).artifact_location == f"s3://{s3.bucket}/mlflow/{uc.name}"
    mv = client.get_model_version(uc.registered_model, trained["challenger_version"])
    assert client.get_registered_model(uc.registered_model).aliases["challenger"] == mv.version
    keys = s3.keys(f"mlflow/{uc.name}/")
    assert len([k for k in keys if k.endswith("/MLmodel")]) >= len(CANDIDATES), keys[:20]  # one per family
    assert f"mlflow/{uc.name}/{mv.run_id}/artifacts/reference/reference_sample.parquet" in keys
    engine = sa.create_engine(mlflow_server.backend_store_uri)
    with engine.connect() as conn:
        families = {r[0] for r in conn.execute(sa.text(
            "SELECT value FROM params p JOIN runs r ON r.run_uuid = p.run_uuid "
            "WHERE r.experiment_id = :e AND p.key = 'family'"), {"e": int(exp_id)})}
    engine.dispose()
    assert families == {"sklearn_linear", "xgboost"}, families  # logistic_regression is a sklearn_linear


def test_promote_moves_the_alias_on_the_server_and_load_version_reads_s3(champion, server_profile) -> None:
    import numpy as np

    from glideslope.drift.monitor import find_champion, load_reference
    from glideslope.features.retrieval import model_frame
    from glideslope.registry.promotion import GENERATION_TAG, HISTORY_TAG
    from glideslope.scoring.models import load_version, scores
    from glideslope.training import tracking

    uc = load_usecase("flight_delay")
    model = tracking.client(server_profile).get_registered_model(uc.registered_model)
    assert model.aliases["champion"] == champion
    assert model.tags[HISTORY_TAG] == f'["{champion}"]' and model.tags[GENERATION_TAG] == "1"
    loaded = load_version(uc, champion, server_profile)
    assert loaded.version == champion and loaded.inputs
    # The model read back from S3 reproduces the predictions it made on its reference rows at training.
    reference = load_reference(find_champion(uc))
    again = scores(loaded, model_frame(reference, loaded.inputs, uc.features.categorical), uc.label.task)
    np.testing.assert_allclose(again, reference["prediction"].to_numpy(), rtol=1e-6)


def test_the_reference_sample_round_trips_through_s3(champion) -> None:
    from glideslope.drift.monitor import find_champion, load_reference

    uc = load_usecase("flight_delay")
    found = find_champion(uc)
    assert found is not None and found.version == champion
    reference = load_reference(found)
    assert {"prediction", uc.label.column} <= set(reference.columns)
    assert 100 <= len(reference) <= uc.training.reference_sample_rows
    assert reference["prediction"].between(0, 1).all()


def test_score_day_scores_with_the_champion_from_the_server(champion) -> None:
    from glideslope.scoring import score_day

    uc = load_usecase("flight_delay")
    result = score_day(uc, SCORE_DS, chunk_rows=64)
    lake = Lake.for_usecase(uc.name)
    predictions = lake.read_parquet(lake.predictions(SCORE_DS))
    schedule = lake.read_parquet(lake.curated("schedule", SCORE_DS))
    assert len(predictions) == len(schedule) and predictions["flight_id"].is_unique
    assert set(predictions["model_version"].astype(str)) == {champion}
    assert result["model_version"] == champion and result["rows"] == len(predictions)
