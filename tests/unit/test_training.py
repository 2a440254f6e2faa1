"""Training sets (point in time, no leakage), candidates in MLflow, the challenger, the CLI.

Runs the real Feast store (DuckDB offline store) and a real MLflow SQLite store on a small
synthetic lake in the flight_delay data contract (tests/unit/ml_data.py).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from ml_data import isolated_home, write_lake

from glideslope.config import UseCase, load_usecase
from glideslope.lake import Lake

pytestmark = pytest.mark.unit

DS = "2013-01-12"
FAST = {"xgboost": {"n_estimators": 40}, "hist_gradient_boosting": {"max_iter": 40}}
KEYS = {"carrier_stats": "carrier", "route_stats": "route", "origin_weather": "origin", "plane_features": "tailnum"}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    from glideslope.features.repo import apply_definitions

    with isolated_home(tmp_path_factory.mktemp("training_home")) as h:
        uc = load_usecase("flight_delay")
        write_lake(Lake.for_usecase(uc.name), "2013-01-01", 12)
        apply_definitions(uc)
        yield h


@pytest.fixture(scope="module")
def training_set(home):
    from glideslope.training import build_training_set

    return build_training_set(load_usecase("flight_delay"), DS, window_days=10, holdout_days=2)


@pytest.fixture(scope="module")
def trained(training_set):
    from glideslope.training import train_candidates

    return train_candidates(load_usecase("flight_delay"), DS, window_days=10, holdout_days=2,
                            candidate_params=FAST, reason="unit test", trigger="manual")


def _as_of_expectation(events: pd.DataFrame, lake: Lake) -> pd.DataFrame:
    """Independent point-in-time join: each event gets the newest feature row stamped <= its time."""
    out = events.sort_values("event_timestamp").copy()
    for table, key in KEYS.items():
        rows = pd.concat([lake.read_parquet(lake.features(table, d)) for d in lake.partitions(lake.features(table))])
        rows = rows.drop(columns=["created"]).rename(columns={"event_timestamp": f"_ts_{table}"})
        out = pd.merge_asof(out, rows.sort_values(f"_ts_{table}"), left_on="event_timestamp",
                            right_on=f"_ts_{table}", by=key, direction="backward")
    return out.sort_values("flight_id").reset_index(drop=True)


def test_training_set_keeps_every_event_and_holds_out_the_latest_days(home, training_set) -> None:
    from glideslope.training import load_training_set

    lake = Lake.for_usecase("flight_delay")
    days = [f"2013-01-{d:02d}" for d in range(3, 13)]
    expected = sum(len(lake.read_parquet(lake.curated("flights", d))) for d in days)
    df, meta = load_training_set(training_set["uri"])
    assert len(df) == expected == training_set["rows"], "the join must not drop or duplicate events"
    assert df["flight_id"].is_unique
    assert meta.holdout == ["2013-01-11", "2013-01-12"] and meta.train_days == days[:-2]
    assert training_set["holdout_rows"] == int(df["ds"].isin(meta.holdout).sum())
    assert meta.inputs[:5] == ["dep_hour", "day_of_week", "distance", "carrier", "origin"]
    assert {"dep_delay", "arr_delay", "cancelled"}.isdisjoint(meta.inputs), "outcomes are never inputs"


def test_joined_features_are_the_latest_known_before_each_flight(home, training_set) -> None:
    from glideslope.training import load_training_set

    lake = Lake.for_usecase("flight_delay")
    df, meta = load_training_set(training_set["uri"])
    expected = _as_of_expectation(df[["flight_id", "event_timestamp", *KEYS.values()]], lake)
    got = df.sort_values("flight_id").reset_index(drop=True)
    for table in KEYS:
        used = expected[f"_ts_{table}"]
        # No flight ever sees a row stamped after it departs...
        assert (used.isna() | (used <= expected["event_timestamp"])).all(), table
    # ...and the feature values Feast joined are exactly those of that row.
    feature_cols = [c for c in meta.inputs if c not in ("dep_hour", "day_of_week", "distance", "carrier", "origin")]
    pd.testing.assert_frame_equal(got[feature_cols], expected[feature_cols], check_dtype=False)
    # Flights of the first day see the day before (stamped at local midnight), not their own day.
    first = got[got["ds"] == "2013-01-03"]
    stats = lake.read_parquet(lake.features("carrier_stats", "2013-01-02")).set_index("carrier")
    merged = first.join(stats["carrier_late_rate_7d"].rename("yesterday"), on="carrier")
    assert np.allclose(merged["carrier_late_rate_7d"], merged["yesterday"])


def test_a_row_stamped_one_microsecond_after_a_flight_is_never_joined_to_it(tmp_path) -> None:
    """Tripwire on the real Feast join: poison a feature row right after a flight's timestamp."""
    from glideslope.features import store
    from glideslope.features.repo import apply_definitions
    from glideslope.features.retrieval import historical_features

    with isolated_home(tmp_path):
        uc = load_usecase("flight_delay")
        lake = Lake.for_usecase(uc.name)
        write_lake(lake, "2013-01-01", 3, flights_per_day=80)
        events = lake.read_parquet(lake.curated("flights", "2013-01-03"))
        carrier = events["carrier"].iloc[0]
        t = events.loc[events["carrier"] == carrier, "event_timestamp"].median()
        t = events.loc[(events["carrier"] == carrier) & (events["event_timestamp"] >= t), "event_timestamp"].min()
        probe = lake.read_parquet(lake.features("carrier_stats", "2013-01-02"))
        probe = probe[probe["carrier"] == carrier].copy()
        at, after = probe.copy(), probe.copy()
        at["event_timestamp"] = at["created"] = t
        at["carrier_late_rate_7d"] = 555.0
        after["event_timestamp"] = after["created"] = t + pd.Timedelta(microseconds=1)
        after["carrier_late_rate_7d"] = 999.0
        lake.publish_parquet(at, f"{lake.features('carrier_stats')}/ds=probe-at/data.parquet")
        lake.publish_parquet(after, f"{lake.features('carrier_stats')}/ds=probe-after/data.parquet")
        apply_definitions(uc)

        ent = events[["flight_id", "event_timestamp", "carrier", "route", "origin", "tailnum"]]
        joined = historical_features(uc, ent, store(uc))
    mine = joined[joined["carrier"] == carrier]
    before_or_at = mine[mine["event_timestamp"] <= t]
    later = mine[mine["event_timestamp"] > t]
    assert (before_or_at["carrier_late_rate_7d"] != 999.0).all(), "a feature from the future leaked"
    assert (mine.loc[mine["event_timestamp"] == t, "carrier_late_rate_7d"] == 555.0).all()
    assert len(later) and (later["carrier_late_rate_7d"] == 999.0).all(), "the probe must be visible afterwards"


def test_missing_label_days_are_named(home) -> None:
    from glideslope.training import build_training_set

    with pytest.raises(FileNotFoundError, match=r"only 0 of the 5 days 2014-01-01\.\.2014-01-05"):
        build_training_set(load_usecase("flight_delay"), "2014-01-05", window_days=5, holdout_days=2)


def test_every_candidate_is_a_complete_mlflow_run(trained) -> None:
    import mlflow

    from glideslope import __version__
    from glideslope.training import tracking

    client = tracking.client()
    assert {c["name"] for c in trained["candidates"]} == {"xgboost", "hist_gradient_boosting", "logistic_regression"}
    for cand in trained["candidates"]:
        run = client.get_run(cand["run_id"])
        assert {"roc_auc", "pr_auc", "log_loss", "brier"} <= set(run.data.metrics)
        assert run.data.params["family"] == cand["family"] and run.data.params["window_days"] == "10"
        tags = run.data.tags
        assert tags["glideslope.feature_service"] == "flight_delay_v1"
        assert tags["glideslope.feature_service_version"] == "1"
        assert tags["glideslope.window"] == "2013-01-03..2013-01-12"
        assert tags["glideslope.holdout_days"] == "2013-01-11..2013-01-12"
        assert tags["glideslope.version"] == __version__ and tags["glideslope.git_commit"]
        assert tags["glideslope.reason"] == "unit test"
        contexts = {i.tags[0].value for i in run.inputs.dataset_inputs if i.tags}
        assert contexts == {"training", "holdout"}
    xgb = next(c for c in trained["candidates"] if c["name"] == "xgboost")
    assert client.get_run(xgb["run_id"]).data.params["model.n_estimators"] == "40", "overrides are logged"
    best = trained["best"]
    assert best["metrics"]["roc_auc"] == max(c["metrics"]["roc_auc"] for c in trained["candidates"])
    model = mlflow.pyfunc.load_model("models:/flight_delay@challenger")
    assert model.metadata.run_id == best["run_id"]
    assert model.metadata.get_input_schema().input_names()[:5] == ["dep_hour", "day_of_week", "distance",
                                                                   "carrier", "origin"]


def test_reference_sample_is_on_the_best_run(trained) -> None:
    import mlflow

    from glideslope.training import load_training_set, tracking

    tracking.configure()
    path = mlflow.artifacts.download_artifacts(run_id=trained["best"]["run_id"],
                                               artifact_path="reference/reference_sample.parquet")
    ref = pd.read_parquet(path)
    _, meta = load_training_set(trained["training_set"])
    assert len(ref) == min(load_usecase("flight_delay").training.reference_sample_rows,
                           int((~pd.read_parquet(trained["training_set"])["ds"].isin(meta.holdout)).sum()))
    assert set(meta.inputs) | {"is_late", "prediction", "flight_id"} <= set(ref.columns)
    assert ref["ds"].isin(meta.train_days).all(), "the reference comes from training rows, not the holdout"
    assert ref["prediction"].between(0, 1).all()


def test_the_command_line_writes_its_summary(home, training_set, tmp_path) -> None:
    from glideslope.cli import main

    out = tmp_path / "result.json"
    code = main(["train", "--usecase", "flight_delay", "--ds", DS, "--candidates", "dummy", "--window-days", "10",
                 "--holdout-days", "2", "--reason", "cli", "--result-file", str(out)])
    summary = json.loads(out.read_text())
    assert code == 0 and summary["best"]["name"] == "dummy"
    assert summary["best"]["metrics"]["roc_auc"] == pytest.approx(0.5)
    assert main(["train", "--usecase", "flight_delay", "--ds", DS, "--candidate-params", "[1]"]) == 2


def test_regression_use_case_trains_promotes_and_reports_regression_metrics(home, tmp_path) -> None:
    from glideslope.registry.promotion import evaluate_challenger, promote
    from glideslope.training import train_candidates

    base = load_usecase("flight_delay")
    # Same feature repo and lake, a separate registry below; no metric fields: the task's defaults apply.
    raw = base.model_dump(mode="json")
    raw["label"] = {"column": "delay_minutes", "task": "regression", "table": "flights"}
    del raw["training"]["primary_metric"], raw["promotion"]["metric"], raw["promotion"]["higher_is_better"]
    raw["promotion"]["floor"] = 1000.0
    uc = UseCase.model_validate({**raw, "folder": base.folder})
    assert (uc.training.primary_metric, uc.promotion.metric) == ("rmse", "rmse")
    import os

    saved = os.environ["MLFLOW_TRACKING_URI"]
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'regression.db'}"
    try:
        summary = train_candidates(uc, DS, candidates=["xgboost", "hist_gradient_boosting"], window_days=10,
                                   holdout_days=2, candidate_params=FAST)
        assert set(summary["best"]["metrics"]) == {"rmse", "mae", "r2"}
        assert summary["best"]["metrics"]["rmse"] == min(c["metrics"]["rmse"] for c in summary["candidates"])
        evaluation = evaluate_challenger(uc, DS, summary["challenger_version"])
        assert evaluation["outcome"] == "promote" and evaluation["reason"] == "no_champion"
        assert promote(uc, evaluation)["final_outcome"] == "promoted"
    finally:
        os.environ["MLFLOW_TRACKING_URI"] = saved


def test_candidates_by_name_family_and_overrides() -> None:
    from glideslope.training.models import resolve_candidates

    spec = load_usecase("flight_delay").training.candidates
    assert [c.name for c in resolve_candidates(spec, None)] == [c.name for c in spec]
    picked = resolve_candidates(spec, ["sklearn_linear", "dummy"], {"dummy": {"strategy": "most_frequent"}})
    assert [(c.name, c.family) for c in picked] == [("logistic_regression", "sklearn_linear"), ("dummy", "dummy")]
    assert picked[1].params == {"strategy": "most_frequent"}
    with pytest.raises(ValueError, match="unknown candidate 'lightgbm'"):
        resolve_candidates(spec, ["lightgbm"])
    with pytest.raises(ValueError, match="not among the candidates"):
        resolve_candidates(spec, ["dummy"], {"xgboost": {"n_estimators": 1}})
