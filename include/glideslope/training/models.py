"""Candidate models: one scikit-learn Pipeline per family, raw model inputs in, scores out.

Every candidate carries its own preprocessing, so a registered model takes the same columns
scoring reads from Feast (categories as strings, numerics with gaps) and nothing else has to know
how it encodes them. xgboost trains on the GPU when one is visible and on the CPU otherwise: the
same code, only ``device`` changes, and the model is switched back to CPU before it is logged so
it scores anywhere.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from functools import lru_cache
from typing import Any

from glideslope.config import CandidateSpec

log = logging.getLogger(__name__)

FAMILIES = ("xgboost", "sklearn_hgb", "sklearn_linear", "sklearn_rf", "dummy")


@lru_cache(maxsize=1)
def gpu_available() -> bool:
    """True when xgboost was built with CUDA and at least one GPU is visible to this process."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    try:
        import xgboost

        if not xgboost.build_info().get("USE_CUDA"):
            return False
    except Exception:  # no xgboost, or an old build without build_info
        return False
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(line.startswith("GPU ") for line in out.splitlines())


def resolve_candidates(
    spec_candidates: list[CandidateSpec],
    requested: list[str] | None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> list[CandidateSpec]:
    """Candidates to train: the spec's, or those ``requested`` by name or by family.

    A requested family the spec does not list (e.g. ``dummy`` for a deliberately weak run) is
    trained with its default parameters. ``overrides`` maps a candidate name to parameters that
    replace the spec's for this run only (a manual experiment; they are logged like any other).
    """
    by_name = {c.name: c for c in spec_candidates}
    out: list[CandidateSpec] = []
    for r in requested or [c.name for c in spec_candidates]:
        if r in by_name:
            out.append(by_name[r])
        elif r in FAMILIES:
            out.append(next((c for c in spec_candidates if c.family == r), CandidateSpec(name=r, family=r)))
        else:
            raise ValueError(f"unknown candidate {r!r}: the spec lists {sorted(by_name)}; families are {FAMILIES}")
    chosen = {c.name: c for c in out}
    for name, params in (overrides or {}).items():
        if name not in chosen:
            raise ValueError(f"parameters given for {name!r}, which is not among the candidates {sorted(chosen)}")
        chosen[name] = chosen[name].model_copy(update={"params": {**chosen[name].params, **params}})
    return list(chosen.values())


def build_pipeline(
    cand: CandidateSpec, task: str, inputs: list[str], categorical: list[str], seed: int, device: str = "cpu"
) -> Any:
    """An unfitted Pipeline(preprocess -> estimator) for ``cand``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    cats = [c for c in inputs if c in categorical]
    nums = [c for c in inputs if c not in categorical]
    binary = task == "binary_classification"
    params = dict(cand.params)

    if cand.family in ("sklearn_linear", "dummy"):
        prep = ColumnTransformer(
            [("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=5), cats),
             ("num", Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                               ("scale", StandardScaler())]), nums)],
            verbose_feature_names_out=False,
        )
    else:
        # Trees split on integer codes; an unseen category gets -1, which the models treat as its own value.
        prep = ColumnTransformer(
            [("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                    encoded_missing_value=-1), cats),
             ("num", "passthrough", nums)],
            verbose_feature_names_out=False,
        )

    if cand.family == "xgboost":
        import xgboost

        cls = xgboost.XGBClassifier if binary else xgboost.XGBRegressor
        est = cls(tree_method="hist", device=device, random_state=seed, n_jobs=params.pop("n_jobs", 2),
                  **({"eval_metric": "logloss"} if binary else {}), **params)
    elif cand.family == "sklearn_hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingClassifier if binary else HistGradientBoostingRegressor
        mask = [True] * len(cats) + [False] * len(nums)  # ColumnTransformer puts categories first
        est = cls(categorical_features=mask if cats else None, random_state=seed, **params)
    elif cand.family == "sklearn_rf":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        cls = RandomForestClassifier if binary else RandomForestRegressor
        est = cls(random_state=seed, n_jobs=params.pop("n_jobs", 2), **{"min_samples_leaf": 20, **params})
    elif cand.family == "sklearn_linear":
        from sklearn.linear_model import LogisticRegression, Ridge

        est = LogisticRegression(random_state=seed, **params) if binary else Ridge(**params)
    elif cand.family == "dummy":
        from sklearn.dummy import DummyClassifier, DummyRegressor

        est = DummyClassifier(strategy="prior", **params) if binary else DummyRegressor(**params)
    else:
        raise ValueError(f"candidate {cand.name!r}: unknown family {cand.family!r}; known: {FAMILIES}")
    return Pipeline([("prep", prep), ("model", est)])


def device_for(cand: CandidateSpec) -> str:
    if cand.family == "xgboost" and gpu_available():
        return "cuda"
    return "cpu"


def to_portable(pipeline: Any) -> Any:
    """Switch a GPU-trained xgboost back to CPU inference so the logged model scores anywhere."""
    model = pipeline.named_steps["model"]
    if hasattr(model, "get_xgb_params") and model.get_params().get("device") not in (None, "cpu"):
        model.set_params(device="cpu")
    return pipeline


def predict_scores(model: Any, X: Any, task: str) -> Any:
    """Positive-class probability (binary) or predicted value (regression) of a fitted pipeline."""
    if task == "binary_classification":
        return model.predict_proba(X)[:, 1]
    return model.predict(X)
