"""The metric registry: each task type's metrics, its default, each metric's direction, and the numbers."""

from __future__ import annotations

import math
import subprocess
import sys
from typing import get_args

import numpy as np
import pytest

from glideslope import metrics
from glideslope.config import TaskType

pytestmark = pytest.mark.unit


def test_each_task_type_has_its_metrics_and_a_default_among_them():
    assert set(metrics.TASKS) == set(get_args(TaskType))  # every task the spec accepts
    assert metrics.task_metrics("binary_classification") == ("roc_auc", "pr_auc", "log_loss", "brier")
    assert metrics.task_metrics("regression") == ("rmse", "mae", "r2")
    assert metrics.default_metric("binary_classification") == "roc_auc"
    assert metrics.default_metric("regression") == "rmse"
    for task in metrics.TASKS.values():
        assert task.default in task.metrics and set(task.metrics) <= set(metrics.METRICS)
    with pytest.raises(ValueError, match="unknown task type 'ranking'"):
        metrics.task_metrics("ranking")


@pytest.mark.parametrize(("name", "higher"), [("roc_auc", True), ("pr_auc", True), ("r2", True),
                                              ("log_loss", False), ("brier", False), ("rmse", False), ("mae", False)])
def test_each_metric_knows_which_way_is_better(name, higher):
    assert metrics.higher_is_better(name) is higher
    assert metrics.worse_than(0.4, 0.5, name) is higher and metrics.worse_than(0.6, 0.5, name) is not higher
    assert metrics.worse_than(0.5, 0.5, name) is False  # on the floor is not worse


def test_labels_are_what_people_read():
    assert [metrics.label(m) for m in ("roc_auc", "rmse", "mae", "r2")] == ["ROC-AUC", "RMSE", "MAE", "R²"]
    with pytest.raises(ValueError, match="unknown metric 'accuracy'"):
        metrics.higher_is_better("accuracy")


def test_computed_values_match_scikit_learn():
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score, roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.normal(10, 5, 400)
    p = y + rng.normal(0, 2, 400)
    reg = metrics.compute("regression", y, p)
    assert reg["rmse"] == pytest.approx(math.sqrt(mean_squared_error(y, p)))
    assert reg["mae"] == pytest.approx(mean_absolute_error(y, p)) and reg["r2"] == pytest.approx(r2_score(y, p))
    labels = (y > 10).astype(int)
    binary = metrics.compute("binary_classification", labels, 1 / (1 + np.exp(-(p - 10))))
    assert binary["roc_auc"] == pytest.approx(roc_auc_score(labels, p))
    assert math.isnan(metrics.compute("binary_classification", np.ones(5), np.full(5, 0.5))["roc_auc"])


def test_loading_a_spec_does_not_import_numpy():
    # The DAG files load specs at parse time, and config validates metrics against this registry.
    code = "import sys, glideslope.config, glideslope.metrics; print(sorted({'numpy', 'sklearn'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
