"""``training.max_rows``: a large training part is sampled down reproducibly, and MLflow says so.

Runs the real Feast store and a real MLflow SQLite store on the small synthetic lake of
tests/unit/ml_data.py, with one fast candidate.
"""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from ml_data import isolated_home, write_lake

from glideslope.config import SpecError, UseCase, load_usecase, parse_usecase
from glideslope.lake import Lake

pytestmark = pytest.mark.unit

DS = "2013-01-08"
CAP = 300


def _capped(uc: UseCase, max_rows: int | None) -> UseCase:
    return uc.model_copy(update={"training": uc.training.model_copy(update={"max_rows": max_rows})})


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    from glideslope.features.repo import apply_definitions

    with isolated_home(tmp_path_factory.mktemp("max_rows_home")) as h:
        uc = load_usecase("flight_delay")
        write_lake(Lake.for_usecase(uc.name), "2013-01-01", 8)
        apply_definitions(uc)
        yield h


def _train(uc: UseCase) -> dict:
    from glideslope.training import train_candidates

    return train_candidates(uc, DS, candidates=["logistic_regression"], window_days=6, holdout_days=2,
                            reason="unit test", trigger="manual")


def test_the_sample_is_the_same_rows_every_time_in_the_sets_order() -> None:
    from glideslope.training.trainer import cap_training_rows

    train = pd.DataFrame({"flight_id": [f"f{i:04d}" for i in range(1000)], "x": range(1000)})
    first = cap_training_rows(train, CAP, seed=42)
    again = cap_training_rows(train.copy(), CAP, seed=42)
    assert len(first) == CAP and first["flight_id"].is_unique
    pd.testing.assert_frame_equal(first, again)
    assert set(first["flight_id"]) <= set(train["flight_id"])
    assert first["x"].is_monotonic_increasing, "the sample keeps the training set's order"
    assert set(cap_training_rows(train, CAP, seed=7)["flight_id"]) != set(first["flight_id"]), "the seed decides"
    assert cap_training_rows(train, None, seed=42) is train
    assert cap_training_rows(train, 1000, seed=42) is train


def test_the_spec_takes_a_positive_cap(tmp_path) -> None:
    bundled = load_usecase("flight_delay")
    raw = yaml.safe_load((bundled.folder / "usecase.yaml").read_text())
    assert bundled.training.max_rows is None, "no cap unless the spec sets one"
    for value, ok in ((250_000, True), (0, False)):
        folder = tmp_path / str(value) / "flight_delay"
        folder.mkdir(parents=True)
        raw["training"]["max_rows"] = value
        (folder / "usecase.yaml").write_text(yaml.safe_dump(raw))
        if ok:
            assert parse_usecase(folder / "usecase.yaml").training.max_rows == value
        else:
            with pytest.raises(SpecError, match="max_rows"):
                parse_usecase(folder / "usecase.yaml")


def test_a_capped_run_fits_max_rows_and_records_the_cap_in_mlflow(home) -> None:
    from glideslope.training import tracking

    uc = load_usecase("flight_delay")
    full = _train(_capped(uc, None))
    capped = _train(_capped(uc, CAP))
    available = full["train_rows"]
    assert available > CAP, "the synthetic window must be larger than the cap for this test to mean anything"
    assert (full["train_rows"], full["max_rows"]) == (available, None)
    assert (capped["train_rows"], capped["train_rows_available"], capped["max_rows"]) == (CAP, available, CAP)

    client = tracking.client()
    run = client.get_run(capped["best"]["run_id"])
    params, tags = run.data.params, run.data.tags
    assert params["max_rows"] == str(CAP) and params["train_rows"] == str(CAP)
    assert params["train_rows_available"] == str(available) and params["sample_seed"] == str(uc.training.seed)
    assert tags["glideslope.train_sampled"] == "true"
    uncapped = client.get_run(full["best"]["run_id"])
    assert uncapped.data.params["max_rows"] == "none" and uncapped.data.tags["glideslope.train_sampled"] == "false"
    # The holdout is not sampled: both runs are judged on the same rows.
    assert params["holdout_rows"] == uncapped.data.params["holdout_rows"]
