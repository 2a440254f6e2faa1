"""The one registry of model metrics: what each task type produces, its default, and which way is better.

Everything that names, chooses, compares or computes a metric reads it from here: the spec's
defaults and validation (:mod:`glideslope.config`), training (:mod:`glideslope.training`), the
promotion policy, the drift monitor's live performance and floor, the alerts and the reports page.

Binary classification scores are probabilities of the positive class; regression scores are
predicted values. A metric that cannot be computed on the given rows (ROC-AUC on one class) is
NaN, never an exception: callers decide what an undefined metric means.

This module is read when a spec loads (at DAG parse time), so numpy is imported inside the
functions that compute, never at the top.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

MetricFn = Callable[["np.ndarray", "np.ndarray"], float]


def _two_classes(y: np.ndarray) -> bool:
    import numpy as np

    return len(np.unique(y)) == 2


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if _two_classes(y) else math.nan


def pr_auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, p)) if _two_classes(y) else math.nan


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    import numpy as np
    from sklearn.metrics import log_loss as _log_loss

    return float(_log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])) if len(y) else math.nan


def brier(y: np.ndarray, p: np.ndarray) -> float:
    import numpy as np

    return float(np.mean((p - y) ** 2)) if len(y) else math.nan


def rmse(y: np.ndarray, p: np.ndarray) -> float:
    import numpy as np

    return float(np.sqrt(np.mean((p - y) ** 2))) if len(y) else math.nan


def mae(y: np.ndarray, p: np.ndarray) -> float:
    import numpy as np

    return float(np.mean(np.abs(p - y))) if len(y) else math.nan


def r2(y: np.ndarray, p: np.ndarray) -> float:
    import numpy as np

    if len(y) < 2:
        return math.nan
    ss_tot = float(np.sum((y - np.mean(y)) ** 2))
    return math.nan if ss_tot == 0 else 1.0 - float(np.sum((y - p) ** 2)) / ss_tot


@dataclass(frozen=True)
class Metric:
    name: str
    label: str  # how people read it: alerts, the reports page
    higher_is_better: bool
    fn: MetricFn


@dataclass(frozen=True)
class Task:
    name: str
    metrics: tuple[str, ...]
    default: str  # training.primary_metric and promotion.metric when the spec does not name one


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("roc_auc", "ROC-AUC", True, roc_auc),
    Metric("pr_auc", "PR-AUC", True, pr_auc),
    Metric("log_loss", "log loss", False, log_loss),
    Metric("brier", "Brier score", False, brier),
    Metric("rmse", "RMSE", False, rmse),
    Metric("mae", "MAE", False, mae),
    Metric("r2", "R²", True, r2),
)}

# The keys are config.TaskType's values (a unit test keeps the two in step).
TASKS: dict[str, Task] = {t.name: t for t in (
    Task("binary_classification", ("roc_auc", "pr_auc", "log_loss", "brier"), default="roc_auc"),
    Task("regression", ("rmse", "mae", "r2"), default="rmse"),
)}


def _metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None


def _task(task: str) -> Task:
    try:
        return TASKS[task]
    except KeyError:
        raise ValueError(f"unknown task type {task!r}; known: {', '.join(TASKS)}") from None


def metric(name: str) -> MetricFn:
    """The function computing ``name`` from labels and scores."""
    return _metric(name).fn


def higher_is_better(name: str) -> bool:
    return _metric(name).higher_is_better


def direction(name: str) -> str:
    """``"higher is better"`` or ``"lower is better"``, for messages."""
    return "higher is better" if higher_is_better(name) else "lower is better"


def label(name: str) -> str:
    """The metric as people read it (``RMSE``, ``ROC-AUC``); an unknown name is shown as it is."""
    return METRICS[name].label if name in METRICS else name


def task_metrics(task: str) -> tuple[str, ...]:
    return _task(task).metrics


def default_metric(task: str) -> str:
    return _task(task).default


def worse_than(value: float, floor: float, name: str) -> bool:
    """Is ``value`` on the wrong side of ``floor`` for metric ``name``? Equal to the floor is not worse."""
    return value < floor if higher_is_better(name) else value > floor


def compute(task: str, y: Any, p: Any) -> dict[str, float]:
    """Every metric of ``task`` for labels ``y`` and scores ``p``."""
    import numpy as np

    y_arr = np.asarray(y, dtype="float64")
    p_arr = np.asarray(p, dtype="float64")
    return {name: metric(name)(y_arr, p_arr) for name in task_metrics(task)}
