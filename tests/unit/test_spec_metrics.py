"""A use case's metrics at spec load: defaults come from the task, a metric the task does not produce fails.

Specs are written to a temporary use-case folder and loaded the way the DAG files load them, so
the error a person sees is the one asserted here (the file and the field).
"""

from __future__ import annotations

import pytest
from regression_data import regression_spec, write_spec

from glideslope.config import SpecError, load_usecase, parse_usecase

pytestmark = pytest.mark.unit


def test_regression_spec_without_metrics_loads_with_rmse(tmp_path):
    uc = parse_usecase(write_spec(tmp_path, regression_spec()))
    assert uc.training.primary_metric == "rmse"
    assert uc.promotion.metric == "rmse" and uc.promotion.higher_is_better is False


def test_binary_spec_without_metrics_loads_with_roc_auc(tmp_path):
    raw = regression_spec("late_flights")
    raw["label"] = {"column": "is_late", "task": "binary_classification", "table": "flights"}
    uc = parse_usecase(write_spec(tmp_path, raw))
    assert uc.training.primary_metric == "roc_auc"
    assert uc.promotion.metric == "roc_auc" and uc.promotion.higher_is_better is True


def test_the_bundled_spec_keeps_its_metrics():
    uc = load_usecase("flight_delay")
    assert (uc.training.primary_metric, uc.promotion.metric, uc.promotion.higher_is_better) == ("roc_auc", "roc_auc",
                                                                                                True)


@pytest.mark.parametrize(("section", "field", "value"), [
    ("promotion", "metric", "roc_auc"),
    ("training", "primary_metric", "log_loss"),
    ("promotion", "metric", "accuracy"),          # no such metric at all
])
def test_a_metric_the_task_does_not_produce_fails_naming_the_file_and_field(tmp_path, section, field, value):
    raw = regression_spec()
    raw[section][field] = value
    path = write_spec(tmp_path, raw)
    with pytest.raises(SpecError) as err:
        parse_usecase(path)
    message = str(err.value)
    assert str(path) in message and f"'{section}.{field}'" in message and repr(value) in message
    assert "rmse, mae, r2" in message  # what the task does produce


def test_higher_is_better_is_derived_from_the_metric_or_checked_against_it(tmp_path):
    raw = regression_spec()
    raw["promotion"].update(metric="r2", floor=0.2)
    assert parse_usecase(write_spec(tmp_path, raw)).promotion.higher_is_better is True
    raw["promotion"].update(metric="mae", higher_is_better=True)
    path = write_spec(tmp_path, raw)
    with pytest.raises(SpecError, match=r"field 'promotion.higher_is_better'.*lower is better") as err:
        parse_usecase(path)
    assert str(path) in str(err.value)
