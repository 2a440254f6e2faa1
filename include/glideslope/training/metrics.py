"""Model metrics by task type, with the direction that counts as better.

Binary classification scores are probabilities of the positive class; regression scores are
predicted values. A metric that cannot be computed on the given rows (AUC on one class) is NaN,
never an exception: callers decide what an undefined metric means.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

MetricFn = Callable[[np.ndarray, np.ndarray], float]


def _two_classes(y: np.ndarray) -> bool:
    return len(np.unique(y)) == 2


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if _two_classes(y) else math.nan


def pr_auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, p)) if _two_classes(y) else math.nan


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import log_loss as _log_loss

    return float(_log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])) if len(y) else math.nan


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2)) if len(y) else math.nan


def rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((p - y) ** 2))) if len(y) else math.nan


def mae(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.abs(p - y))) if len(y) else math.nan


def r2(y: np.ndarray, p: np.ndarray) -> float:
    if len(y) < 2:
        return math.nan
    ss_tot = float(np.sum((y - np.mean(y)) ** 2))
    return math.nan if ss_tot == 0 else 1.0 - float(np.sum((y - p) ** 2)) / ss_tot


# name -> (function, higher is better)
METRICS: dict[str, tuple[MetricFn, bool]] = {
    "roc_auc": (roc_auc, True),
    "pr_auc": (pr_auc, True),
    "log_loss": (log_loss, False),
    "brier": (brier, False),
    "rmse": (rmse, False),
    "mae": (mae, False),
    "r2": (r2, True),
}

TASK_METRICS: dict[str, list[str]] = {
    "binary_classification": ["roc_auc", "pr_auc", "log_loss", "brier"],
    "regression": ["rmse", "mae", "r2"],
}


def metric(name: str) -> MetricFn:
    try:
        return METRICS[name][0]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; known: {sorted(METRICS)}") from None


def higher_is_better(name: str) -> bool:
    metric(name)
    return METRICS[name][1]


def compute(task: str, y: Any, p: Any) -> dict[str, float]:
    """Every metric of ``task`` for labels ``y`` and scores ``p``."""
    y_arr = np.asarray(y, dtype="float64")
    p_arr = np.asarray(p, dtype="float64")
    return {name: metric(name)(y_arr, p_arr) for name in TASK_METRICS[task]}
