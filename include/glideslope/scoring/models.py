"""Registered models as scoring functions: load a version once, feed it its own input columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from glideslope.config import Settings, UseCase
from glideslope.training import tracking

CHAMPION = "champion"


class NoChampion(LookupError):
    """The registered model has no ``champion`` alias yet: there is nothing to score with."""


@dataclass
class LoadedModel:
    name: str
    version: str
    run_id: str | None
    model: Any  # mlflow.pyfunc.PyFuncModel
    inputs: list[str]

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def alias_version(uc: UseCase, alias: str, cfg: Settings | None = None) -> str | None:
    """Version the alias points to now, or None (no registered model, or no such alias)."""
    from mlflow.exceptions import MlflowException

    try:
        aliases = tracking.client(cfg).get_registered_model(uc.registered_model).aliases
    except MlflowException:
        return None
    version = aliases.get(alias)
    return None if version is None else str(version)


def champion_version(uc: UseCase, cfg: Settings | None = None) -> str:
    version = alias_version(uc, CHAMPION, cfg)
    if version is None:
        raise NoChampion(
            f"registered model {uc.registered_model!r} has no '{CHAMPION}' alias yet: run {uc.dag_id('train')} "
            f"and let a challenger clear the promotion floor ({uc.promotion.metric} "
            f"{'>=' if uc.promotion.higher_is_better else '<='} {uc.promotion.floor}) first"
        )
    return version


def load_version(uc: UseCase, version: str, cfg: Settings | None = None) -> LoadedModel:
    """Load one model version (by number, so an alias moving meanwhile cannot mix two models)."""
    import mlflow

    cfg = tracking.configure(cfg)
    uri = f"models:/{uc.registered_model}/{version}"
    model = mlflow.pyfunc.load_model(uri)
    schema = model.metadata.get_input_schema()
    if schema is None:
        raise ValueError(f"{uri} has no input signature; models must be logged with one")
    mv = tracking.client(cfg).get_model_version(uc.registered_model, version)
    return LoadedModel(uc.registered_model, str(version), mv.run_id, model, list(schema.input_names()))


def scores(model: LoadedModel, X: Any, task: str) -> Any:
    """Positive-class probability (binary) or predicted value (regression), as a float64 array."""
    import numpy as np

    out = np.asarray(model.model.predict(X[model.inputs]), dtype="float64")
    if task == "binary_classification":
        if out.ndim == 2 and out.shape[1] == 2:
            return out[:, 1]
        raise ValueError(f"{model.uri}: expected predict_proba output (n, 2), got shape {out.shape}")
    return out.reshape(-1)
