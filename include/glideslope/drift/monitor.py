"""One drift check: recent features and predictions vs the champion's reference sample, with Evidently.

For use case ``uc`` and logical day D:

* **Champion** — the registered model ``uc`` at alias ``champion``; its training run holds the
  reference sample ``reference/reference_sample.parquet`` (model inputs, label, ``prediction``).
* **Current window** — the prediction partitions of the last ``drift.reference_days`` nights up to
  D (``predictions/ds=*/``), counted in nights with events: quiet nights (0-row partitions of an
  empty delivery) do not count, so they never empty it; each event once (entity key and event time: a re-delivered event never counts twice),
  only the rows the current champion scored: a new champion is judged on its own predictions,
  so drift "fixed" by a promotion shows at once.
* **Data drift** — Evidently 0.7 ``DataDriftPreset`` over ``drift.columns`` (or every model
  input) plus ``prediction``; Evidently picks each column's test, the policy reads its method.
* **Live performance** — the events scored on night d are labelled in
  ``curated/<label.table>/ds=d+h`` (``h`` = ``label.horizon_days``, one day by default); those known by day D give the champion's metrics of its task
  (:mod:`glideslope.metrics`: ROC-AUC, PR-AUC, log loss, Brier for binary classification; RMSE,
  MAE, R² for regression). A backfilled check never peeks at later days.
* **Outputs** — ``reports/drift/ds=D/report.html`` (Evidently), ``performance.html`` (Evidently's
  classification or regression report, when enough labels exist) and ``numbers.json``, all
  published atomically; the numbers are logged to MLflow in the
  champion version's monitoring run (one run per version, one step per day) and the model
  version is tagged with the last check.

The verdict comes from :mod:`glideslope.drift.policy`; what to do about it is decided in
:mod:`glideslope.drift.loop`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glideslope.alerts.links import report_url
from glideslope.config import DriftSpec, UseCase, load_usecase, settings
from glideslope.drift.policy import ColumnDrift, Verdict, column_results, evaluate_check
from glideslope.lake import Lake
from glideslope.metrics import compute

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

CHAMPION_ALIAS = "champion"
REFERENCE_ARTIFACT = "reference/reference_sample.parquet"
PREDICTION_COLUMN = "prediction"
MONITORING_EXPERIMENT = "{usecase}-monitoring"
_EPOCH = date(1970, 1, 1)


class DriftInputError(ValueError):
    """An input of the drift check is missing or malformed; the message names file and column."""


@dataclass(frozen=True)
class Champion:
    name: str
    version: str
    run_id: str
    experiment_id: str | None = None


def mlflow_client() -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=settings().mlflow_tracking_uri)


def find_champion(uc: UseCase, client: Any = None) -> Champion | None:
    from mlflow.exceptions import MlflowException

    client = client or mlflow_client()
    try:
        mv = client.get_model_version_by_alias(uc.registered_model, CHAMPION_ALIAS)
    except MlflowException as e:
        if "RESOURCE_DOES_NOT_EXIST" in str(getattr(e, "error_code", "")) or "not found" in str(e).lower():
            return None
        raise
    exp = client.get_run(mv.run_id).info.experiment_id if mv.run_id else None
    return Champion(name=uc.registered_model, version=str(mv.version), run_id=mv.run_id, experiment_id=exp)


def load_reference(champion: Champion, uc: UseCase | None = None, lake: Lake | None = None) -> pd.DataFrame:
    """The champion's reference sample: the one a person accepted for this version in answer to an
    escalation (:func:`glideslope.drift.escalation.accept_reference`), else its training run's."""
    import mlflow
    import pandas as pd

    if uc is not None:
        from glideslope.drift.escalation import reference_override

        accepted = reference_override(uc, champion.version, lake)
        if accepted:
            return (lake or Lake.for_usecase(uc.name)).read_parquet(accepted["path"])
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(run_id=champion.run_id, artifact_path=REFERENCE_ARTIFACT,
                                                       dst_path=tmp, tracking_uri=settings().mlflow_tracking_uri)
        except Exception as e:
            raise DriftInputError(
                f"champion {champion.name} v{champion.version} (run {champion.run_id}) has no artifact "
                f"{REFERENCE_ARTIFACT}: the training stage must save the reference sample ({e})"
            ) from e
        return pd.read_parquet(path)


def window_days(ds: str, days: int) -> list[str]:
    d = date.fromisoformat(ds)
    return [(d - timedelta(days=i)).isoformat() for i in reversed(range(days))]


def window_nights(uc: UseCase, lake: Lake, ds: str, nights: int) -> list[str]:
    """The ``nights`` nights ending at ``ds`` that the window covers, counted in nights with events.

    A quiet night -- the ETL published its ``curated/<scoring.table>`` partition with 0 rows (an
    empty delivery) and nothing was scored -- does not count, so quiet nights and breaks between
    seasons never empty the window. Any other night counts, whether it has predictions or not
    (a night never delivered or never scored is a gap, not a quiet night). Without quiet nights
    this is the last ``nights`` calendar days, as before.
    """
    from glideslope.backlog import partition_rows

    predicted = set(lake.partitions(lake.predictions()))
    out: list[str] = []
    d = date.fromisoformat(ds)
    while len(out) < nights:  # ends: quiet nights are partitions in the lake, finitely many
        day = d.isoformat()
        if day in predicted or partition_rows(lake, lake.curated(uc.scoring.table, day)) != 0:
            out.append(day)
        d -= timedelta(days=1)
    return sorted(out)


def dedupe_events(uc: UseCase, frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One row per event (entity key and event time): a re-delivered event counts once.

    A feed that re-sends an event scores it again on a later night; the row of the night it was
    first scored is kept, so its label is looked up at that night's horizon. Returns (frame,
    rows dropped).
    """
    keys = [c for c in (uc.entity_key, uc.event_timestamp) if c in frame.columns]
    if frame.empty or uc.entity_key not in keys:
        return frame, 0
    ordered = frame.sort_values("ds", kind="stable") if "ds" in frame.columns else frame
    kept = ordered.drop_duplicates(subset=keys, keep="first").sort_index()
    return kept.reset_index(drop=True), int(len(frame) - len(kept))


def load_window(uc: UseCase, ds: str, lake: Lake, days: int | None = None) -> pd.DataFrame:
    """Predictions of the ``days`` most recent predicted nights up to ``ds``, each event once.

    The nights are :func:`window_nights` (quiet nights do not count); an event scored
    on more than one night (a re-delivery) is kept once, from the night it was first scored
    (:func:`dedupe_events`); ``attrs["duplicates"]`` says how many rows that dropped.
    """
    import pandas as pd

    frames = []
    for d in window_nights(uc, lake, ds, days or uc.drift.reference_days):
        path = lake.predictions(d)
        if lake.exists(path):
            df = lake.read_parquet(path)
            df["ds"] = d
            frames.append(df)
    if not frames:
        return pd.DataFrame()
    window, dropped = dedupe_events(uc, pd.concat(frames, ignore_index=True))
    if dropped:
        log.info("%s window up to %s: %d re-delivered event rows counted once", uc.name, ds, dropped)
    window.attrs["duplicates"] = dropped
    return window


def attach_labels(uc: UseCase, frame: pd.DataFrame, lake: Lake, ds: str) -> pd.DataFrame:
    """Rows of ``frame`` whose outcome was known on day ``ds``, with the label.

    The events scored on night d are labelled in ``curated/<label.table>/ds=d+h``, ``h`` being
    the spec's ``label.horizon_days``. Only label days up to ``ds`` count, so a check rerun or backfilled later sees what it saw on the night.
    """
    import pandas as pd

    key, label = uc.entity_key, uc.label.column
    if frame.empty:
        return frame.assign(**{label: pd.Series(dtype="int64")})
    parts = []
    for d in sorted(frame["ds"].unique()):
        label_day = (date.fromisoformat(d) + timedelta(days=uc.label.horizon_days)).isoformat()
        path = lake.curated(uc.label.table, label_day)
        if label_day > ds or not lake.exists(path):
            continue
        labels = lake.read_parquet(path, columns=[key, label])
        parts.append(frame[frame["ds"] == d].merge(labels, on=key, how="inner"))
    return pd.concat(parts, ignore_index=True) if parts else frame.iloc[0:0].assign(**{label: pd.Series(dtype="int64")})


def performance(y_true: Any, y_score: Any, task: str) -> dict[str, Any]:
    """Live metrics of ``task`` (``glideslope.metrics``) on the rows whose outcome is known.

    ``rows`` counts the labelled rows; a row without a label (e.g. no arrival delay for a
    cancelled flight) or without a score is counted in ``unlabelled_rows`` and left out. A metric undefined on these rows (ROC-AUC on one class, R²
    of a constant label) is left out, so ``metric in result`` means it could be computed.
    """
    import numpy as np

    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_score, dtype=float)
    known = ~(np.isnan(y) | np.isnan(p))
    y, p = y[known], p[known]
    out: dict[str, Any] = {"rows": int(len(y))}
    if (~known).any():
        out["unlabelled_rows"] = int((~known).sum())
    if len(y) == 0:
        return out
    out["mean_prediction"] = float(p.mean())
    if task == "binary_classification":
        out.update(positive_rate=float(y.mean()), accuracy=float(((p >= 0.5) == (y == 1)).mean()))
    else:
        out["mean_label"] = float(y.mean())
    out.update({k: v for k, v in compute(task, y, p).items() if not math.isnan(v)})
    return out


def drift_columns(uc: UseCase, reference: pd.DataFrame, current: pd.DataFrame, where: str) -> tuple[list[str], list[str]]:
    """(columns to test, of which categorical). ``drift.columns`` or every model input, + prediction."""
    excluded = {uc.label.column, PREDICTION_COLUMN, uc.entity_key, uc.event_timestamp, "ds", "model_version",
                "model_name", "created"}
    cols = list(uc.drift.columns) or [c for c in reference.columns if c not in excluded]
    for c in cols + [PREDICTION_COLUMN]:
        if c not in reference.columns:
            raise DriftInputError(f"{where}: column {c!r} (drift.columns of {uc.name}) is not in the champion's "
                                  f"reference sample {REFERENCE_ARTIFACT} (columns: {sorted(reference.columns)})")
        if c not in current.columns:
            raise DriftInputError(f"{where}: column {c!r} (drift.columns of {uc.name}) is not in the predictions "
                                  f"(columns: {sorted(current.columns)})")
    cols = cols + [PREDICTION_COLUMN]
    categorical = [c for c in cols if c in uc.features.categorical or str(reference[c].dtype) in ("object", "category",
                                                                                                 "string", "bool")]
    return cols, categorical


def _prepare(df: pd.DataFrame, cols: list[str], categorical: list[str]) -> pd.DataFrame:
    out = df[cols].copy()
    for c in cols:
        out[c] = out[c].astype(str) if c in categorical else out[c].astype(float)
    return out


def compare(reference: pd.DataFrame, current: pd.DataFrame, cols: list[str], categorical: list[str],
            spec: DriftSpec) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    """Run Evidently; returns (snapshot, per-column tests, dataset summary).

    The stat tests are the spec's ``num_method``/``cat_method`` with their thresholds, or
    Evidently's own choice when unset (which depends on the reference size).
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    ref, cur = _prepare(reference, cols, categorical), _prepare(current, cols, categorical)
    dd = DataDefinition(numerical_columns=[c for c in cols if c not in categorical], categorical_columns=categorical)
    report = Report([DataDriftPreset(
        columns=cols, drift_share=spec.drift_share, num_method=spec.num_method, num_threshold=spec.num_threshold,
        cat_method=spec.cat_method, cat_threshold=spec.cat_threshold,
    )], include_tests=True)
    # Evidently takes the current data first, then the reference.
    snapshot = report.run(current_data=Dataset.from_pandas(cur, data_definition=dd),
                          reference_data=Dataset.from_pandas(ref, data_definition=dd))
    d = snapshot.dict()
    tests, summary = [], {}
    statuses = {}
    for t in d.get("tests", []):
        params = (t.get("metric_config") or {}).get("params") or {}
        if params.get("type", "").endswith("ValueDrift"):
            statuses[params.get("column")] = str(getattr(t["status"], "value", t["status"]))
    for m in d["metrics"]:
        cfg = m["config"]
        if cfg["type"].endswith("DriftedColumnsCount"):
            summary = {"count": float(m["value"]["count"]), "share": float(m["value"]["share"])}
        elif cfg["type"].endswith("ValueDrift"):
            tests.append({"column": cfg["column"], "method": cfg["method"], "threshold": float(cfg["threshold"]),
                          "score": float(m["value"]), "evidently_test": statuses.get(cfg["column"])})
    return snapshot, tests, summary


def _insufficient_page(uc: UseCase, ds: str, reasons: list[str]) -> str:
    import html

    items = "".join(f"<li>{html.escape(r)}</li>" for r in reasons)
    return (f"<html><body style='font-family:sans-serif'><h2>{html.escape(uc.name)} {ds}: insufficient data</h2>"
            f"<p>No drift report: the check did not have enough data to judge drift.</p><ul>{items}</ul></body></html>")


def performance_report(uc: UseCase, reference: pd.DataFrame, labelled: pd.DataFrame) -> Any:
    """Evidently's report of the champion's task on labelled current rows vs its reference sample.

    Binary classification: ``ClassificationPreset`` over the scores as probabilities; regression:
    ``RegressionPreset`` over the predicted values. Rows without a label are left out.
    """
    from evidently import BinaryClassification, DataDefinition, Dataset, Regression, Report
    from evidently.presets import ClassificationPreset, RegressionPreset

    label, task = uc.label.column, uc.label.task
    if task == "binary_classification":
        dd = DataDefinition(classification=[BinaryClassification(target=label, prediction_probas=PREDICTION_COLUMN)])
        preset: Any = ClassificationPreset()
    elif task == "regression":
        dd = DataDefinition(regression=[Regression(target=label, prediction=PREDICTION_COLUMN)],
                            numerical_columns=[label, PREDICTION_COLUMN])
        preset = RegressionPreset()
    else:
        raise ValueError(f"{uc.name}: no performance report for label.task {task!r}")

    def ds_(df: pd.DataFrame) -> Any:
        frame = df[[label, PREDICTION_COLUMN]].astype(float).dropna()
        if task == "binary_classification":
            frame[label] = frame[label].astype(int)
        return Dataset.from_pandas(frame, data_definition=dd)

    with warnings.catch_warnings():
        # Evidently's regression plots compute R² per target bin; a bin of one row makes sklearn warn.
        warnings.filterwarnings("ignore", message="R\\^2 score is not well-defined")
        return Report([preset]).run(current_data=ds_(labelled), reference_data=ds_(reference))


# Evidently 0.7 metric types -> glideslope.metrics names
_EVIDENTLY_METRICS = {"RocAuc": "roc_auc", "LogLoss": "log_loss", "RMSE": "rmse", "MAE": "mae", "R2Score": "r2"}


def report_metrics(snapshot: Any) -> dict[str, float]:
    """The metrics of :data:`glideslope.metrics` that Evidently's performance report computed itself."""
    out = {}
    for m in snapshot.dict()["metrics"]:
        name = _EVIDENTLY_METRICS.get(m["config"]["type"].rsplit(":", 1)[-1])
        value = m["value"]
        if name and isinstance(value, dict):
            value = value.get("mean")  # MAE comes as {mean, std} of the absolute errors
        if name and value is not None:
            out[name] = float(value)
    return out


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def report_paths(lake: Lake, ds: str) -> dict[str, str]:
    base = lake.report_dir("drift", ds)
    return {"html": f"{base}/report.html", "performance_html": f"{base}/performance.html",
            "numbers": f"{base}/numbers.json"}


def run_check(uc: UseCase | str, ds: str, lake: Lake | None = None, *, log_to_mlflow: bool = True) -> dict[str, Any]:
    """Measure drift and live performance for ``ds``, save the report, log the numbers.

    Returns the numbers (also in ``numbers.json``): ``verdict`` holds the policy's status
    (``ok`` / ``drift`` / ``insufficient_data``), drifted columns and reasons.
    """
    uc = load_usecase(uc) if isinstance(uc, str) else uc
    lake = lake or Lake.for_usecase(uc.name)
    started = time.monotonic()
    paths = report_paths(lake, ds)
    lake.sweep_partitions(lake.report_dir("drift", ds).rsplit("/", 1)[0])  # what killed checks of other nights left
    days = window_nights(uc, lake, ds, uc.drift.reference_days)
    numbers: dict[str, Any] = {"usecase": uc.name, "ds": ds, "window": days, "report": paths["html"],
                               "report_url": report_url(uc.name, ds), "numbers_path": paths["numbers"]}
    client = mlflow_client()
    champ = find_champion(uc, client)
    verdict: Verdict
    if champ is None:
        verdict = Verdict("insufficient_data", False, False, 0.0, [], 0,
                          [f"no registered model {uc.registered_model!r} with alias {CHAMPION_ALIAS!r} yet"])
        numbers.update(champion=None, current_rows=0, reference_rows=0, columns=[], performance=None)
        lake.publish_bytes(paths["html"], _insufficient_page(uc, ds, verdict.reasons).encode())
    else:
        numbers["champion"] = {"name": champ.name, "version": champ.version, "run_id": champ.run_id,
                               "experiment_id": champ.experiment_id}
        reference = load_reference(champ, uc, lake)
        window = load_window(uc, ds, lake)
        scored_by = window["model_version"].astype(str) if "model_version" in window.columns else None
        current = window[scored_by == champ.version] if scored_by is not None else window
        numbers.update(current_rows=int(len(current)), reference_rows=int(len(reference)),
                       window_rows=int(len(window)), window_duplicates=int(window.attrs.get("duplicates", 0)),
                       window_days_present=sorted(current["ds"].unique().tolist()) if len(current) else [])
        labelled = attach_labels(uc, current, lake, ds) if len(current) else current
        task = uc.label.task
        perf: dict[str, Any] = (performance(labelled[uc.label.column], labelled[PREDICTION_COLUMN], task)
                                if len(labelled) else {"rows": 0})
        perf["days"] = sorted(labelled["ds"].unique().tolist()) if len(labelled) else []
        numbers["performance"] = perf
        if uc.label.column in reference.columns and PREDICTION_COLUMN in reference.columns:
            numbers["reference_performance"] = performance(reference[uc.label.column], reference[PREDICTION_COLUMN],
                                                           task)
        columns: list[ColumnDrift] = []
        if len(current) >= uc.drift.min_rows and len(reference) >= uc.drift.min_rows:
            cols, categorical = drift_columns(uc, reference, current, f"drift check {uc.name} {ds}")
            snapshot, tests, summary = compare(reference, current, cols, categorical, uc.drift)
            columns = column_results(tests)
            numbers["evidently"] = summary
            numbers["columns"] = [{**t, "drifted": c.drifted, "categorical": t["column"] in categorical}
                                  for t, c in zip(tests, columns, strict=True)]
            with tempfile.TemporaryDirectory() as tmp:
                snapshot.save_html(f"{tmp}/report.html")
                lake.publish_file(f"{tmp}/report.html", paths["html"])
                if perf["rows"] >= uc.drift.min_rows and uc.promotion.metric in perf:
                    try:
                        perf_snapshot = performance_report(uc, reference, labelled)
                        perf_snapshot.save_html(f"{tmp}/perf.html")
                        lake.publish_file(f"{tmp}/perf.html", paths["performance_html"])
                        numbers["performance_report"] = paths["performance_html"]
                        numbers["performance_report_metrics"] = report_metrics(perf_snapshot)
                    except Exception:  # the numbers above are the record; the page is a convenience
                        log.exception("performance report for %s %s could not be rendered", uc.name, ds)
        else:
            numbers["columns"] = []
        verdict = evaluate_check(columns, current_rows=len(current), reference_rows=len(reference),
                                 spec=uc.drift, performance=perf, metric=uc.promotion.metric)
        if verdict.status == "insufficient_data":
            other = len(window) - len(current)
            if other:
                verdict = dataclasses.replace(verdict, reasons=[*verdict.reasons, (
                    f"{other} rows in the window were scored by earlier champions; v{champ.version} is judged on "
                    f"its own predictions only")])
            lake.publish_bytes(paths["html"], _insufficient_page(uc, ds, verdict.reasons).encode())
    numbers["verdict"] = verdict.to_dict()
    numbers["seconds"] = round(time.monotonic() - started, 2)
    numbers = _clean(numbers)
    if log_to_mlflow and champ is not None:
        numbers["mlflow"] = log_check(uc, champ, numbers, client)
    lake.publish_bytes(paths["numbers"], json.dumps(numbers, indent=2, sort_keys=True, default=str).encode())
    log.info("drift check %s %s: %s (%s)", uc.name, ds, verdict.status, "; ".join(verdict.reasons))
    return numbers


# -- MLflow -----------------------------------------------------------------------------------

def _day_step(ds: str) -> int:
    return (date.fromisoformat(ds) - _EPOCH).days


def monitoring_run(uc: UseCase, champ: Champion, client: Any) -> tuple[str, str]:
    """(experiment id, run id) of the monitoring run of the champion's version, created once."""
    name = MONITORING_EXPERIMENT.format(usecase=uc.name)
    exp = client.get_experiment_by_name(name)
    if exp:
        exp_id = exp.experiment_id
    else:  # under the profile's artifact root, not ./mlruns of whatever directory the task runs in
        from glideslope.training.tracking import artifact_location

        exp_id = client.create_experiment(name, artifact_location=f"{artifact_location(uc, settings())}-monitoring",
                                          tags={"glideslope.usecase": uc.name, "glideslope.kind": "monitoring"})
    runs = client.search_runs([exp_id], filter_string=(f"tags.`glideslope.model_name` = '{champ.name}' and "
                                                       f"tags.`glideslope.model_version` = '{champ.version}'"),
                              max_results=1)
    if runs:
        return exp_id, runs[0].info.run_id
    run = client.create_run(exp_id, run_name=f"monitor {champ.name} v{champ.version}", tags={
        "glideslope.usecase": uc.name, "glideslope.kind": "monitoring", "glideslope.model_name": champ.name,
        "glideslope.model_version": champ.version, "glideslope.model_run_id": champ.run_id,
        "mlflow.note.content": (f"Nightly drift and live performance of {champ.name} version {champ.version} "
                                f"while it is champion. One step per logical day (days since 1970-01-01)."),
    })
    client.set_terminated(run.info.run_id, "FINISHED")
    return exp_id, run.info.run_id


def log_check(uc: UseCase, champ: Champion, numbers: dict[str, Any], client: Any) -> dict[str, str]:
    """Log one check's numbers at step=day into the version's monitoring run; tag the version."""
    from mlflow.entities import Metric

    ds = numbers["ds"]
    exp_id, run_id = monitoring_run(uc, champ, client)
    step = _day_step(ds)
    ts = int(time.mktime(date.fromisoformat(ds).timetuple()) * 1000)
    verdict = numbers["verdict"]
    values: dict[str, float] = {
        "drift_share": verdict["drift_share"],
        "drifted_columns": float(len(verdict["drifted_columns"])),
        "drift_detected": 1.0 if verdict["status"] == "drift" else 0.0,
        "current_rows": float(numbers.get("current_rows") or 0),
    }
    for c in numbers.get("columns", []):
        if c.get("score") is not None:
            values[f"drift_score.{c['column']}"] = float(c["score"])
    for k, v in (numbers.get("performance") or {}).items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            values[f"live.{k}"] = float(v)
    metrics = [Metric(key=k, value=v, timestamp=ts, step=step) for k, v in values.items()
               if v is not None and not math.isnan(v)]
    client.log_batch(run_id, metrics=metrics)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / f"numbers-{ds}.json"
        p.write_text(json.dumps(numbers, indent=2, sort_keys=True, default=str))
        client.log_artifact(run_id, str(p), artifact_path="checks")
    for key, value in {"glideslope.monitor.last_ds": ds, "glideslope.monitor.last_status": verdict["status"],
                       "glideslope.monitor.run_id": run_id}.items():
        client.set_model_version_tag(champ.name, champ.version, key, value)
    return {"experiment_id": exp_id, "run_id": run_id}
