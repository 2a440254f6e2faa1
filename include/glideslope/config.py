"""Typed use-case specs (``include/usecases/<name>/usecase.yaml``) and environment settings.

Nothing here touches the file system or a remote service at import time: settings are read
when :func:`settings` is called, specs when :func:`load_usecase` is called.
"""

from __future__ import annotations

import os
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from glideslope.errors import PermanentError
from glideslope.metrics import METRICS, TASKS, default_metric, direction, higher_is_better, task_metrics

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parents[1]
DEFAULT_USECASES_DIR = PACKAGE_DIR.parent / "usecases"
# The stages of a use case, in loop order: dags/<stage>.py builds ``<usecase>__<stage>`` for each.
STAGES = ("etl", "features", "train", "score", "monitor", "escalation")

Profile = Literal["embedded", "production"]
TaskType = Literal["binary_classification", "regression"]  # the task types of glideslope.metrics.TASKS
Severity = Literal["info", "warning", "critical"]


class SpecError(PermanentError, ValueError):
    """A use-case spec is missing or invalid; the message names the file and the field."""


def _field_error(field: str, message: str) -> PydanticCustomError:
    """A validation error raised by a model validator, naming the ``field`` it is about.

    Pydantic places a model validator's error at the model itself; ``field`` (relative to that
    model) goes in the error's context and :func:`_format_errors` appends it to the location.
    """
    return PydanticCustomError("spec_field", message, {"field": field})


def _metric_list(task: str) -> str:
    return ", ".join(task_metrics(task))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabelSpec(_Strict):
    column: str = Field(description="Target column in the curated label table.")
    task: TaskType = Field(description="binary_classification or regression.")
    table: str = Field("labels", description="Curated table with one labelled event per row "
                       "(curated/<table>/ds=D holds the events of day D and their outcomes).")
    horizon_days: int = Field(1, ge=1, le=365, description="When the outcome of a scored event is known: the "
                              "events scored on night d are labelled in curated/<table>/ds=d+horizon_days.")
    positive_rule: str | None = Field(None, description="Human-readable definition of the label.")


class SourceSpec(_Strict):
    """A raw feed landed once per logical day into the append-only raw zone."""

    name: str
    kind: Literal["daily", "reference"] = "daily"
    format: Literal["csv"] = "csv"
    suite: str | None = Field(None, description="Expectation file under quality/ for this source.")
    null_markers: list[str] = Field(default_factory=lambda: ["NA", ""], description="Cell texts that mean "
                                    "'no value' in this source's files (the raw gate and the transform agree).")
    day_offset: int = Field(0, description="The rows delivered on night D are dated D + day_offset (the schedule "
                            "of tomorrow: 1); the raw gate's day rule (suite field `day`) checks it.")
    on_bad_rows: Literal["reject", "quarantine_rows"] = Field(
        "reject", description="A delivery whose rows break row-level rules: reject the whole delivery "
        "(quarantine the file), or quarantine only the bad rows, with their reason, and keep the rest.")
    max_bad_rows: float = Field(0.05, ge=0, le=1, description="quarantine_rows only: the largest share of a "
                                "delivery's rows that may be quarantined; more rejects the delivery.")
    every_night: bool = Field(True, description="daily only: false when the feed sends no file on nights without "
                              "events (a sparse calendar); such a night is quiet, not a failed day. True: a missing "
                              "file fails its day, naming the file.")


class ScheduleSpec(_Strict):
    """Wall-clock schedules (UTC crons). Scoring and monitoring follow the Asset events of the stage
    before them; ``score`` and ``monitor`` are kept for older specs and not used."""

    etl: str = "0 2 * * *"
    score: str = "30 3 * * *"
    monitor: str = "0 5 * * *"
    train: str | None = Field("0 4 * * 0", description="Cron of the regular retrain; null = drift events "
                              "and manual runs only (a replayed feed has no wall-clock week to retrain on).")


class FeaturesSpec(_Strict):
    repo: str = Field("feature_repo", description="Feast repository folder inside the use-case folder.")
    service: str = Field(pattern=r"^[a-z][a-z0-9_]*_v[0-9]+$", description="Versioned Feast feature service used "
                         "for training and scoring, named <anything>_v<N>: the version is part of the name.")
    tables: list[str] = Field(description="Feature tables the transform writes (one Feast source each).")
    request_columns: list[str] = Field(
        default_factory=list, description="Model inputs that arrive with the entity row (schedule data)."
    )
    categorical: list[str] = Field(default_factory=list, description="Model inputs that are categories.")
    prediction_view: str = Field("predictions", description="Feature view serving precomputed scores online.")


class ScoringSpec(_Strict):
    table: str = Field("to_score", description="Curated table of the entities scored on night D "
                       "(curated/<table>/ds=D, e.g. tomorrow's schedule).")
    chunk_rows: int = Field(50_000, ge=100, description="Rows scored per chunk (bounds the memory used).")
    deadline_minutes: int | None = Field(
        180, ge=1, description="A nightly scoring run not finished this long after it was queued alerts (warning "
        "route) through Airflow's Deadline Alerts; null: no deadline.")


class CandidateSpec(_Strict):
    name: str
    family: Literal["xgboost", "sklearn_hgb", "sklearn_linear", "sklearn_rf", "dummy"]
    params: dict[str, Any] = Field(default_factory=dict)
    gpu: bool = Field(False, description="Dispatch to the GPU pod in the kubernetes profile.")


class TrainingSpec(_Strict):
    window_days: int = Field(28, ge=3, description="Days of labelled history used to train.")
    holdout_days: int = Field(3, ge=1, description="Most recent days kept out of training for evaluation.")
    candidates: list[CandidateSpec]
    primary_metric: str = Field(description="Holdout metric that picks the best candidate; one of the task's "
                                "metrics (glideslope.metrics). When the spec omits it, UseCase fills in the "
                                "task's default.")
    reference_sample_rows: int = Field(5000, ge=100)
    max_rows: int | None = Field(None, ge=1, description="At most this many training rows are fitted: a larger "
                                 "training part is sampled down to it, reproducibly (seeded by seed); the "
                                 "holdout is kept whole. The cap and the rows used are recorded in MLflow.")
    seed: int = 42

    @model_validator(mode="after")
    def _window_holds_holdout(self) -> TrainingSpec:
        if self.holdout_days >= self.window_days:
            raise ValueError("holdout_days must be smaller than window_days")
        return self


class PromotionSpec(_Strict):
    metric: str = Field(description="Metric of champion vs challenger, of the drift monitor's live performance and "
                        "of drift.performance_floor; one of the task's metrics (glideslope.metrics). When the "
                        "spec omits it, UseCase fills in the task's default.")
    higher_is_better: bool = Field(description="The metric's direction; derived from the metric when omitted, "
                                   "and a value that contradicts it is an error.")
    floor: float = Field(description="Absolute value the challenger must reach (at least, or at most for a "
                         "lower-is-better metric).")
    margin: float = Field(0.0, ge=0, description="Required improvement over the champion.")
    confidence: float = Field(0.95, gt=0, lt=1)
    bootstrap_rounds: int = Field(500, ge=50)
    slices: list[str] = Field(default_factory=list)
    slice_tolerance: float = Field(0.02, ge=0)
    min_slice_rows: int = Field(200, ge=1)
    approval: Literal["required", "none"] = Field(
        "none", description="required: when the policy passes, a person approves or rejects in the Airflow UI "
        "(Required actions of the train DAG) before champion moves; none: the policy alone decides.")
    approval_timeout_hours: float = Field(24.0, gt=0, description="How long a promotion waits for an answer.")
    approval_default: Literal["approve", "reject"] = Field(
        "reject", description="What happens when nobody answers within approval_timeout_hours (the alert says so).")

    @model_validator(mode="before")
    @classmethod
    def _direction_of_the_metric(cls, data: Any) -> Any:
        name = data.get("metric") if isinstance(data, dict) else None
        if not isinstance(name, str):
            return data  # no metric, or not a string: the field's own error says so
        if name not in METRICS:
            known = "; ".join(f"{t}: {_metric_list(t)}" for t in TASKS)
            raise _field_error("metric", f"{name!r} is not a metric glideslope computes ({known})")
        if data.get("higher_is_better") is None:
            return {**data, "higher_is_better": higher_is_better(name)}
        return data

    @model_validator(mode="after")
    def _direction_agrees(self) -> PromotionSpec:
        if self.higher_is_better != higher_is_better(self.metric):
            raise _field_error("higher_is_better", f"{self.higher_is_better} contradicts metric {self.metric!r}, "
                                                   f"for which {direction(self.metric)}; omit it to derive it")
        return self


class DriftSpec(_Strict):
    columns: list[str] = Field(default_factory=list, description="Columns to test; empty = all model inputs.")
    drift_share: float = Field(0.5, gt=0, le=1, description="Share of drifted columns that means drift.")
    min_rows: int = Field(500, ge=1)
    performance_floor: float | None = Field(None, description="Live promotion.metric worse than this (below it, or "
                                            "above it for a lower-is-better metric) on at least min_rows labelled "
                                            "rows is drift.")
    persistence: int = Field(2, ge=1, description="Consecutive drifted checks before a trigger.")
    cooldown_days: int = Field(3, ge=0)
    weekly_retrain_budget: int = Field(2, ge=0)
    reference_days: int = Field(7, ge=1, description="Recent days compared with the reference sample.")
    escalation_timeout_hours: float = Field(72, gt=0, description="How long <uc>__escalation waits for a person's "
                                            "answer before it keeps retraining paused (the default).")
    num_method: str | None = Field(None, description="Evidently stat test for numerical columns (e.g. "
                                   "'wasserstein'); None lets Evidently choose by sample size.")
    num_threshold: float | None = Field(None, gt=0, description="Drift threshold of num_method.")
    cat_method: str | None = Field(None, description="Evidently stat test for categorical columns (e.g. "
                                   "'jensenshannon'); None lets Evidently choose by sample size.")
    cat_threshold: float | None = Field(None, gt=0, description="Drift threshold of cat_method.")

    @model_validator(mode="after")
    def _threshold_needs_method(self) -> DriftSpec:
        # A p-value threshold and a distance threshold read in opposite directions, and Evidently's
        # automatic choice flips between them with the sample size: a threshold means nothing alone.
        for kind in ("num", "cat"):
            if getattr(self, f"{kind}_threshold") is not None and getattr(self, f"{kind}_method") is None:
                raise ValueError(f"drift.{kind}_threshold needs drift.{kind}_method (the test it applies to)")
        return self


class AlertRoute(_Strict):
    email: list[str] = Field(default_factory=list)
    slack: bool = False


class AlertsSpec(_Strict):
    smtp_conn_id: str = "smtp_default"
    slack_conn_id: str = "slack_default"
    from_email: str = "glideslope@localhost"
    routes: dict[Severity, AlertRoute] = Field(default_factory=dict)


class GpuSpec(_Strict):
    image: str = "glideslope:latest"
    namespace: str = "ml"
    gpus: int = 1
    cpu: str = "4"
    memory: str = "16Gi"
    node_selector: dict[str, str] = Field(default_factory=lambda: {"nvidia.com/gpu.present": "true"})
    tolerations: list[dict[str, str]] = Field(
        default_factory=lambda: [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    )
    startup_timeout_seconds: int = 600
    schedule_timeout_seconds: int = 900


class DemoSpec(_Strict):
    """The replay ``glideslope demo --usecase <name>`` runs when no dates are given, and what it shows."""

    history_start: date = Field(description="First day of the history the demo backfills.")
    history_end: date = Field(description="Last day of the backfilled history.")
    train_on: date = Field(description="Day whose labels end the first model's training window.")
    first_night: date = Field(description="First night replayed after the first model.")
    last_night: date = Field(description="Last night replayed.")
    expect: list[str] = Field(default_factory=list, description="What the replay must show (demo --expect): "
                              "trigger=D, escalate=D, suppress=D, promotions=N.")

    @model_validator(mode="after")
    def _in_order(self) -> DemoSpec:
        if not self.history_start <= self.train_on <= self.history_end < self.first_night <= self.last_night:
            raise ValueError("expected history_start <= train_on <= history_end < first_night <= last_night")
        return self


class UseCase(_Strict):
    """One use case: everything its six DAGs need, declared in usecase.yaml."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str
    owner: str = "ml-platform"
    entity_key: str
    entity_noun: str = Field("events", description="What one row of the label table is, in the plural (flights, "
                             "hours, loans): the word the CLI, the demo and the alerts use.")
    event_timestamp: str = "event_timestamp"
    label: LabelSpec
    start_date: date = Field(description="First logical day the feed can deliver.")
    end_date: date | None = Field(None, description="Last logical day the feed can deliver (replays).")
    schedule: ScheduleSpec = ScheduleSpec()
    feed: str = Field(description="Module in the use-case folder with land_day(spec, ds, lake).")
    transform: str = Field(description="Module in the use-case folder with the Spark transform.")
    sources: list[SourceSpec]
    output_suites: dict[str, str] = Field(
        default_factory=dict, description="zone/table written by the transform -> expectation file"
    )
    features: FeaturesSpec
    training: TrainingSpec
    promotion: PromotionSpec
    scoring: ScoringSpec = ScoringSpec()
    drift: DriftSpec = DriftSpec()
    alerts: AlertsSpec = AlertsSpec()
    gpu: GpuSpec = GpuSpec()
    demo: DemoSpec | None = Field(None, description="The default replay of `glideslope demo` for this use case.")
    folder: Path = Field(Path("."), exclude=True, description="Set by the loader.")

    @field_validator("sources")
    @classmethod
    def _unique_sources(cls, v: list[SourceSpec]) -> list[SourceSpec]:
        names = [s.name for s in v]
        if len(names) != len(set(names)):
            raise ValueError(f"duplicate source names: {names}")
        return v

    @model_validator(mode="before")
    @classmethod
    def _task_metric_defaults(cls, data: Any) -> Any:
        """A metric the spec does not name is its task's default (``glideslope.metrics``)."""
        if not isinstance(data, dict):
            return data
        label = data.get("label")
        task = label.task if isinstance(label, LabelSpec) else label.get("task") if isinstance(label, dict) else None
        if task not in TASKS:
            return data  # label.task's own error says what is wrong
        out = dict(data)
        for section, field in (("training", "primary_metric"), ("promotion", "metric")):
            value = out.get(section)
            if isinstance(value, dict) and value.get(field) is None:
                out[section] = {**value, field: default_metric(task)}
        return out

    @model_validator(mode="after")
    def _metrics_of_the_task(self) -> UseCase:
        task = self.label.task
        for field, name in (("training.primary_metric", self.training.primary_metric),
                            ("promotion.metric", self.promotion.metric)):
            if name not in task_metrics(task):
                raise _field_error(field, f"{name!r} is not a metric of label.task {task} "
                                          f"(its metrics: {_metric_list(task)})")
        return self

    @model_validator(mode="after")
    def _outputs_cover_the_stages(self) -> UseCase:
        """The tables the stages read must be transform outputs: only ``output_suites`` get published."""
        needed = {"label.table": f"curated/{self.label.table}", "scoring.table": f"curated/{self.scoring.table}",
                  **{f"features.tables[{i}]": f"features/{t}" for i, t in enumerate(self.features.tables)}}
        for field, output in needed.items():
            if output not in self.output_suites:
                raise _field_error("output_suites", f"{output!r} ({field}) is not an output: the transform's outputs "
                                                    "are published only when they have a suite here "
                                                    f"(outputs: {sorted(self.output_suites)})")
        return self

    @property
    def registered_model(self) -> str:
        return self.name

    def dag_id(self, stage: str) -> str:
        return f"{self.name}__{stage}"

    def source(self, name: str) -> SourceSpec:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(f"use case {self.name!r} has no source {name!r}")


def resolve_usecase(name: str | None, root: Path | None = None) -> UseCase:
    """The use case a command line names; without ``--usecase`` only when there is exactly one."""
    if name is None:
        names = list_usecases(root)
        if len(names) != 1:
            raise SpecError(f"--usecase is required: use cases under {root or usecases_dir()} are "
                            f"{', '.join(names) or 'none'}")
        name = names[0]
    return load_usecase(name, root)


def usecases_dir() -> Path:
    return Path(os.environ.get("GLIDESLOPE_USECASES_DIR", DEFAULT_USECASES_DIR))


def list_usecases(root: Path | None = None) -> list[str]:
    """Names of every folder under the use-case root that holds a usecase.yaml."""
    root = root or usecases_dir()
    return sorted(p.parent.name for p in root.glob("*/usecase.yaml"))


def _format_errors(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: invalid use-case spec"]
    for e in err.errors():
        loc = [str(x) for x in e["loc"]]
        if (e.get("ctx") or {}).get("field"):
            loc.append(str(e["ctx"]["field"]))  # raised by a model validator about one of its fields
        field = ".".join(loc) or "<root>"
        lines.append(f"  field {field!r}: {e['msg']}")
    return "\n".join(lines)


def parse_usecase(path: Path) -> UseCase:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"{path}: use-case spec not found") from None
    except yaml.YAMLError as e:
        raise SpecError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        spec = UseCase.model_validate({**raw, "folder": path.parent})
    except ValidationError as e:
        raise SpecError(_format_errors(path, e)) from None
    if spec.name != path.parent.name:
        raise SpecError(f"{path}: field 'name' is {spec.name!r} but the folder is {path.parent.name!r}")
    return spec


@lru_cache(maxsize=32)
def _cached(path: str, mtime: float) -> UseCase:
    return parse_usecase(Path(path))


def load_usecase(name: str, root: Path | None = None) -> UseCase:
    path = (root or usecases_dir()) / name / "usecase.yaml"
    if not path.exists():
        known = ", ".join(list_usecases(root)) or "none"
        raise SpecError(f"{path}: use-case spec not found (known use cases: {known})")
    return _cached(str(path), path.stat().st_mtime)


def load_all_usecases(root: Path | None = None) -> tuple[list[UseCase], list[SpecError]]:
    """Every use case under the root: the specs that load, and the error of each one that does not.

    One invalid usecase.yaml must not hide the others: callers use what loaded and report the rest.
    """
    specs: list[UseCase] = []
    errors: list[SpecError] = []
    for name in list_usecases(root):
        try:
            specs.append(load_usecase(name, root))
        except SpecError as e:
            errors.append(e)
    return specs, errors


class Settings(BaseModel):
    """Where things live, from ``GLIDESLOPE_*`` variables. Secrets never come from here."""

    model_config = ConfigDict(frozen=True)

    profile: Profile
    home: Path = Field(description="Local state folder (embedded profile: everything lives here).")
    lake_root: str = Field(description="Root of the lake: a local path or an s3:// URI.")
    mlflow_tracking_uri: str
    mlflow_artifact_root: str
    feast_registry: str
    feast_online_store: str = Field(description="sqlite file path, or redis connection string.")
    feast_online_type: Literal["sqlite", "redis"]
    spark_conn_id: str = "spark_default"
    spark_connect_conn_id: str | None = Field(
        None, description="A spark_connect connection: the ETL transform runs on that warm Spark Connect "
                          "server instead of a spark-submit per run (set by `glideslope up`, or in production).")
    s3_endpoint_url: str | None = None
    lock_url: str | None = Field(
        None, description="Lock server (redis://host:port/db) that serialises champion moves and drift-state "
                          "updates across machines; required with a remote (s3://) lake. Unset: file locks "
                          "in the local lake.")
    s3_url_style: Literal["path", "vhost"] | None = Field(
        None, description="S3 addressing for DuckDB (Feast's offline store): path-style by default when "
                          "s3_endpoint_url is set (MinIO), virtual-hosted otherwise (AWS).")
    airflow_base_url: str = "http://127.0.0.1:8080"
    mlflow_ui_url: str = "http://127.0.0.1:5000"
    training_backend: Literal["local", "kubernetes"] = "local"
    image: str | None = Field(
        None, description="Project image for Kubernetes pods; overrides a use case's gpu.image when set."
    )
    openlineage_url: str | None = Field(
        None, description="An OpenLineage HTTP receiver (Marquez): every task's lineage events go there too.")


def settings(env: dict[str, str] | None = None) -> Settings:
    """Read settings from the environment (or ``env``); profile defaults fill the gaps."""
    env = dict(os.environ if env is None else env)
    profile = env.get("GLIDESLOPE_PROFILE", "embedded")
    if profile not in ("embedded", "production"):
        raise SpecError(f"GLIDESLOPE_PROFILE={profile!r}: expected 'embedded' or 'production'")
    home = Path(env.get("GLIDESLOPE_HOME", str(PROJECT_ROOT / ".glideslope"))).resolve()
    if profile == "embedded":
        defaults = {
            "lake_root": str(home / "lake"),
            "mlflow_tracking_uri": f"sqlite:///{home / 'mlflow' / 'mlflow.db'}",
            "mlflow_artifact_root": str(home / "mlflow" / "artifacts"),
            "feast_registry": str(home / "feast" / "registry.db"),
            "feast_online_store": str(home / "feast" / "online_store.db"),
            "feast_online_type": "sqlite",
        }
    else:
        defaults = {
            "lake_root": "s3://glideslope/lake",
            "mlflow_tracking_uri": "http://mlflow:5000",
            "mlflow_artifact_root": "s3://glideslope/mlflow",
            "feast_registry": "s3://glideslope/feast/registry.db",
            "feast_online_store": "redis:6379,db=1",
            "feast_online_type": "redis",
        }
    values: dict[str, Any] = {"profile": profile, "home": home}
    for key, default in defaults.items():
        values[key] = env.get(f"GLIDESLOPE_{key.upper()}", default)
    for key in ("spark_conn_id", "spark_connect_conn_id", "s3_endpoint_url", "s3_url_style", "lock_url",
                "airflow_base_url", "mlflow_ui_url", "training_backend", "image", "openlineage_url"):
        if f"GLIDESLOPE_{key.upper()}" in env:
            values[key] = env[f"GLIDESLOPE_{key.upper()}"]
    # MLflow's own variable wins over ours so standard MLflow tooling agrees with the pipeline.
    if "MLFLOW_TRACKING_URI" in env:
        values["mlflow_tracking_uri"] = env["MLFLOW_TRACKING_URI"]
    if "MLFLOW_S3_ENDPOINT_URL" in env and "s3_endpoint_url" not in values:
        values["s3_endpoint_url"] = env["MLFLOW_S3_ENDPOINT_URL"]
    return Settings(**values)
