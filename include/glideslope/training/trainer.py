"""Train the candidates of a use case on its training set, log each as an MLflow run, and register
the best one as the ``challenger``.

One call = one training session: every candidate is fitted on the training days, scored on the
holdout days, and logged with its parameters, holdout metrics, model (signature + input example),
datasets, feature service, data window, package version and git commit. The best candidate by the
spec's primary metric becomes a new version of the registered model ``<uc>`` with alias
``challenger``; its run also gets the reference sample the drift monitor compares against.
Whether the challenger replaces the champion is decided later, by :mod:`glideslope.registry`.
"""

from __future__ import annotations

import json
import logging
import math
import re
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from glideslope import __version__
from glideslope.config import Settings, UseCase, settings
from glideslope.lake import Lake
from glideslope.metrics import compute, higher_is_better, task_metrics
from glideslope.training import tracking
from glideslope.training.dataset import build_training_set, load_training_set, split, training_set_path
from glideslope.training.models import (
    build_pipeline,
    device_for,
    predict_scores,
    resolve_candidates,
    to_portable,
)
from glideslope.training.plan import TrainingPlan

log = logging.getLogger(__name__)

CHALLENGER = "challenger"
REFERENCE_ARTIFACT = "reference/reference_sample.parquet"
PREDICTION_COLUMN = "prediction"


def feature_service_version(service: str) -> str:
    """``flight_delay_v1`` -> ``1`` (the name carries the version; Feast has no version field)."""
    m = re.search(r"_v(\d+)$", service)
    return m.group(1) if m else "unversioned"


def _trusted_types(model: Any) -> list[str]:
    """Types skops must trust to load ``model``: exactly those this pipeline contains."""
    import skops.io as sio

    return sorted(sio.get_untrusted_types(data=sio.dumps(model)))


def _requirements(family: str) -> list[str]:
    """Pinned requirements of a logged model; listing them skips MLflow's slow environment capture."""
    from importlib.metadata import version

    pkgs = ["scikit-learn", "skops", "numpy", "pandas", "scipy"] + (["xgboost"] if family == "xgboost" else [])
    return [f"{p}=={version(p)}" for p in pkgs]


def _is_better(a: float, b: float, higher: bool) -> bool:
    if math.isnan(a):
        return False
    if math.isnan(b):
        return True
    return a > b if higher else a < b


def cap_training_rows(train: Any, max_rows: int | None, seed: int) -> Any:
    """At most ``max_rows`` rows of ``train``: a seeded random sample, in the frame's own order.

    The same training set, cap and seed give the same rows every time (the sample depends only on
    the rows' order in the training set, which is written once per day and window). No cap, or
    fewer rows than the cap: ``train`` itself.
    """
    if max_rows is None or len(train) <= max_rows:
        return train
    return train.sample(n=max_rows, random_state=seed).sort_index().reset_index(drop=True)


def train_candidates(
    uc: UseCase,
    ds: str,
    *,
    candidates: list[str] | None = None,
    candidate_params: dict[str, dict[str, Any]] | None = None,
    reason: str = "",
    trigger: str = "manual",
    window_days: int | None = None,
    holdout_days: int | None = None,
    training_set: str | None = None,
    cfg: Settings | None = None,
    request_tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Train, log and compare the candidates; register the best as ``challenger``. Returns a JSON summary.

    ``candidates`` picks candidates by name or family (default: all of the spec) and
    ``candidate_params`` overrides their parameters for this run. ``training_set`` is the URI
    written by :func:`build_training_set`; when omitted, the set of (``ds``, window, holdout) is
    read from the lake, or built if it is not there yet.
    """
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.models import infer_signature

    from glideslope.features.retrieval import model_frame

    cfg = tracking.configure(cfg or settings())
    window_days = window_days or uc.training.window_days
    holdout_days = holdout_days or uc.training.holdout_days
    lake = Lake.for_usecase(uc.name, cfg)
    uri = training_set or training_set_path(lake, ds, window_days, holdout_days, uc.label.column)
    if training_set is None and not lake.exists(uri):
        uri = build_training_set(uc, ds, window_days, holdout_days, cfg)["uri"]
    df, meta = load_training_set(uri, cfg)
    if (meta.usecase, meta.label, meta.task) != (uc.name, uc.label.column, uc.label.task):
        raise ValueError(f"{uri} is a training set of {meta.usecase} for label {meta.label!r} ({meta.task}), "
                         f"not {uc.name} {uc.label.column!r} ({uc.label.task})")
    train, hold = split(df, meta)
    del df  # at a million rows a night the window is large: keep one copy of it, not two
    available = len(train)
    max_rows = uc.training.max_rows
    train = cap_training_rows(train, max_rows, uc.training.seed)
    if len(train) < available:
        log.info("training.max_rows %d: fitting on %d of %d training rows (seed %d); the holdout keeps its %d",
                 max_rows, len(train), available, uc.training.seed, len(hold))
    task = meta.task
    primary = uc.training.primary_metric
    if primary not in task_metrics(task):  # a loaded spec cannot get here; one built in code can
        raise ValueError(f"training.primary_metric {primary!r} is not a metric of {task} "
                         f"({', '.join(task_metrics(task))})")
    X_train, y_train = model_frame(train, meta.inputs, meta.categorical), train[meta.label].to_numpy()
    X_hold, y_hold = model_frame(hold, meta.inputs, meta.categorical), hold[meta.label].to_numpy()
    if len(X_train) == 0 or len(X_hold) == 0:
        raise ValueError(f"{uri}: {len(X_train)} training rows and {len(X_hold)} holdout rows; both must be > 0")

    higher = higher_is_better(primary)
    exp_id = tracking.experiment_id(uc, cfg)
    session = f"{ds}-{uuid.uuid4().hex[:8]}"
    common_tags = {
        "glideslope.usecase": uc.name,
        "glideslope.ds": ds,
        "glideslope.session": session,
        "glideslope.trigger": trigger,
        "glideslope.reason": reason or trigger,
        "glideslope.feature_service": meta.feature_service,
        "glideslope.feature_service_version": feature_service_version(meta.feature_service),
        "glideslope.window": f"{meta.days[0]}..{meta.days[-1]}",
        "glideslope.train_days": f"{meta.train_days[0]}..{meta.train_days[-1]}",
        "glideslope.holdout_days": f"{meta.holdout[0]}..{meta.holdout[-1]}",
        "glideslope.missing_days": ",".join(meta.missing_days),
        "glideslope.training_set": uri,
        "glideslope.train_sampled": str(len(train) < available).lower(),
        "glideslope.version": __version__,
        "glideslope.git_commit": tracking.git_commit(),
        "mlflow.source.git.commit": tracking.git_commit(),
    }
    for key, value in (request_tags or {}).items():
        common_tags.setdefault(key, value)  # the run request's trigger, events and Airflow run id
    feast_state = lake.read_json(lake.state("feast_apply"), default={}) or {}
    if feast_state.get("hash"):
        common_tags["glideslope.feature_definitions"] = feast_state["hash"]

    train_ds = from_pandas(X_train.assign(**{meta.label: y_train}), source=uri, targets=meta.label,
                           name=f"{uc.name}-train-{meta.train_days[0]}..{meta.train_days[-1]}")
    hold_ds = from_pandas(X_hold.assign(**{meta.label: y_hold}), source=uri, targets=meta.label,
                          name=f"{uc.name}-holdout-{meta.holdout[0]}..{meta.holdout[-1]}")

    results: list[dict[str, Any]] = []
    fitted: dict[str, Any] = {}
    for cand in resolve_candidates(uc.training.candidates, candidates, candidate_params):
        device = device_for(cand)
        with mlflow.start_run(experiment_id=exp_id, run_name=f"{cand.name} {ds}") as run:
            mlflow.set_tags({**common_tags, "glideslope.candidate": cand.name, "glideslope.family": cand.family,
                             "glideslope.device": device})
            mlflow.log_params({"family": cand.family, "device": device, "window_days": meta.window_days,
                               "holdout_days": meta.holdout_days, "train_rows": len(X_train),
                               "holdout_rows": len(X_hold), "n_inputs": len(meta.inputs),
                               "max_rows": "none" if max_rows is None else max_rows,
                               "train_rows_available": available, "sample_seed": uc.training.seed,
                               **{f"model.{k}": v for k, v in cand.params.items()}})
            mlflow.log_input(train_ds, context="training")
            mlflow.log_input(hold_ds, context="holdout")
            t0 = time.perf_counter()
            pipe = build_pipeline(cand, task, meta.inputs, meta.categorical, uc.training.seed, device)
            pipe.fit(X_train, y_train)
            fit_s = time.perf_counter() - t0
            to_portable(pipe)
            holdout = compute(task, y_hold, predict_scores(pipe, X_hold, task))
            in_sample = compute(task, y_train, predict_scores(pipe, X_train, task))
            mlflow.log_metrics({**{k: v for k, v in holdout.items() if not math.isnan(v)},
                                **{f"train_{k}": v for k, v in in_sample.items() if not math.isnan(v)},
                                "fit_seconds": fit_s})
            example = X_hold.head(200)
            output = pipe.predict_proba(example) if task == "binary_classification" else pipe.predict(example)
            info = mlflow.sklearn.log_model(
                pipe, name="model",
                signature=infer_signature(example, output),
                input_example=X_train.head(5),
                pyfunc_predict_fn="predict_proba" if task == "binary_classification" else "predict",
                skops_trusted_types=_trusted_types(pipe),
                pip_requirements=_requirements(cand.family),
            )
            log.info("candidate %s (%s, %s): %s=%.4f on %d holdout rows, fit %.1fs", cand.name, cand.family,
                     device, primary, holdout.get(primary, math.nan), len(X_hold), fit_s)
            results.append({"name": cand.name, "family": cand.family, "device": device, "run_id": run.info.run_id,
                            "model_uri": info.model_uri, "metrics": holdout, "fit_seconds": round(fit_s, 2)})
            fitted[cand.name] = pipe

    best = results[0]
    for r in results[1:]:
        if _is_better(r["metrics"][primary], best["metrics"][primary], higher):
            best = r
    if math.isnan(best["metrics"][primary]):
        raise ValueError(f"{primary} is undefined on the holdout of {uri} for every candidate")

    client = tracking.client(cfg)
    for r in results:
        client.set_tag(r["run_id"], "glideslope.selected", str(r is best).lower())
    _log_reference_sample(client, best["run_id"], fitted[best["name"]], train, meta, uc)
    version = _register_challenger(client, uc, best, common_tags)
    summary = {
        "usecase": uc.name, "ds": ds, "session": session, "trigger": trigger, "reason": reason or trigger,
        "experiment_id": exp_id, "training_set": uri, "primary_metric": primary,
        "window": common_tags["glideslope.window"], "holdout_days": common_tags["glideslope.holdout_days"],
        "train_rows": len(train), "train_rows_available": available, "max_rows": max_rows,
        "candidates": [{k: v for k, v in r.items() if k != "model_uri"} for r in results],
        "best": {"name": best["name"], "run_id": best["run_id"], "metrics": best["metrics"]},
        "registered_model": uc.registered_model, "challenger_version": version,
        "run_url": tracking.run_url(cfg, exp_id, best["run_id"]),
        "model_version_url": tracking.model_version_url(cfg, uc.registered_model, version),
    }
    log.info("registered %s v%s (%s, %s=%.4f) as %r", uc.registered_model, version, best["name"], primary,
             best["metrics"][primary], CHALLENGER)
    return summary


def _log_reference_sample(client: Any, run_id: str, model: Any, train: Any, meta: Any, uc: UseCase) -> None:
    """Model inputs, label and prediction of a sample of training rows: the drift monitor's reference."""
    from glideslope.features.retrieval import model_frame

    n = min(uc.training.reference_sample_rows, len(train))
    sample = train.sample(n=n, random_state=uc.training.seed).sort_values([meta.entity_key]).reset_index(drop=True)
    X = model_frame(sample, meta.inputs, meta.categorical)
    out = X.copy()
    out.insert(0, "ds", sample["ds"].to_numpy())
    out.insert(0, uc.event_timestamp, sample[uc.event_timestamp].to_numpy())
    out.insert(0, meta.entity_key, sample[meta.entity_key].to_numpy())
    out[meta.label] = sample[meta.label].to_numpy()
    out[PREDICTION_COLUMN] = predict_scores(model, X, meta.task)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(REFERENCE_ARTIFACT).name
        out.to_parquet(path, index=False, coerce_timestamps="us", allow_truncated_timestamps=True)
        client.log_artifact(run_id, str(path), artifact_path=str(Path(REFERENCE_ARTIFACT).parent))


def _register_challenger(client: Any, uc: UseCase, best: dict[str, Any], tags: dict[str, str]) -> str:
    import mlflow
    from mlflow.exceptions import MlflowException

    name = uc.registered_model
    try:
        client.get_registered_model(name)
    except MlflowException:
        try:
            client.create_registered_model(
                name, tags={"glideslope.usecase": uc.name, "owner": uc.owner},
                description=f"{uc.description.strip()}\n\nAliases: 'champion' serves nightly scoring; "
                            "'challenger' is the latest trained candidate awaiting evaluation.")
        except MlflowException:
            pass  # created concurrently
    mv_tags = {k: v for k, v in tags.items() if k.startswith("glideslope.") and k != "glideslope.session"}
    mv_tags |= {"glideslope.candidate": best["name"], "glideslope.run_id": best["run_id"]}
    mv = mlflow.register_model(best["model_uri"], name, tags=mv_tags)
    client.set_registered_model_alias(name, CHALLENGER, mv.version)
    client.set_tag(best["run_id"], "glideslope.registered_version", str(mv.version))
    return str(mv.version)


def _registered_by_run(uc: UseCase, airflow_run_id: str, cfg: Settings) -> dict[str, Any] | None:
    """The challenger an earlier try of the same Airflow run already registered, if any."""
    client = tracking.client(cfg)
    try:
        versions = client.search_model_versions(f"name='{uc.registered_model}'")
    except Exception:  # no registered model yet
        return None
    for mv in versions:
        if (mv.tags or {}).get("glideslope.airflow_run_id") == airflow_run_id and mv.tags.get("glideslope.summary"):
            return dict(json.loads(mv.tags["glideslope.summary"]))
    return None


def train_for_plan(uc: UseCase, plan: TrainingPlan, *, training_set: str | None = None,
                   cfg: Settings | None = None) -> dict[str, Any]:
    """Train what ``plan`` says; the stage function of ``<uc>__train`` and ``glideslope train``.

    Idempotent per Airflow run: a retried task (same run id) returns the challenger its earlier
    try registered instead of registering another one.
    """
    cfg = cfg or settings()
    tracking.require_server(cfg, f"training {uc.name} for {plan.ds}")
    run_id = plan.request.run_id
    if run_id:
        earlier = _registered_by_run(uc, run_id, cfg)
        if earlier is not None:
            log.info("run %s already registered %s v%s: returning it (retried task)", run_id,
                     uc.registered_model, earlier.get("challenger_version"))
            return {**earlier, "reused": True}
    summary = train_candidates(
        uc, plan.ds, candidates=list(plan.candidates) or None, candidate_params=plan.candidate_params or None,
        reason=plan.reason, trigger=plan.trigger, window_days=plan.window_days, holdout_days=plan.holdout_days,
        training_set=training_set, cfg=cfg, request_tags=plan.request.tags(),
    )
    if run_id:
        client = tracking.client(cfg)
        small = {k: v for k, v in summary.items() if k != "candidates"}
        client.set_model_version_tag(uc.registered_model, summary["challenger_version"], "glideslope.summary",
                                     json.dumps(small, default=str)[:5000])
    return summary
