"""The numbers ``/glideslope/metrics`` exports, read from what the stages recorded.

Nothing is kept in memory between scrapes: each value is read again from where a stage wrote it
(the MLflow registry, the lake's predictions partitions, the drift monitor's state), so a restart
of the API server loses nothing and two API servers export the same numbers.

=====================================  =========================================================
metric (label ``usecase``)             meaning and source
=====================================  =========================================================
glideslope_champion_version            version behind alias ``champion`` (MLflow registry)
glideslope_champion_age_seconds        seconds since that version became champion (its
                                       ``glideslope.decision_at`` tag, else its creation time)
glideslope_champion_live_metric        live value of ``promotion.metric`` (label ``metric``) on
                                       the newest checked night with labels (drift state)
glideslope_drift_share                 share of monitored columns that drifted, newest check
glideslope_drifted_columns             number of drifted columns, newest check
glideslope_drift_check_night_timestamp_seconds   the night of the newest check (00:00 UTC)
glideslope_scored_rows                 rows of the newest predictions partition (its footer)
glideslope_mean_score                  mean prediction of that partition
glideslope_scored_night_timestamp_seconds        the night of that partition (00:00 UTC)
glideslope_last_scoring_timestamp_seconds        when that partition was published (file time)
glideslope_seconds_since_last_scoring  now minus the above
glideslope_retrain_budget_left         drift-triggered retrains still allowed in the week
                                       ending at the newest check (``drift.weekly_retrain_budget``)
glideslope_retraining_paused           1 while automatic retraining is paused (an escalation
                                       nobody acknowledged yet), else 0
glideslope_escalation_open             1 while that escalation is open, else 0
glideslope_metrics_source_up           1 when a source (label ``source``: mlflow, lake, state)
                                       could be read on this scrape, else 0
=====================================  =========================================================

A source that cannot be read leaves its metrics out and sets ``glideslope_metrics_source_up`` to
0: a scrape never fails because MLflow is down.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from glideslope.config import Settings, UseCase, load_usecase, settings
from glideslope.lake import Lake

log = logging.getLogger(__name__)

HELP = {
    "glideslope_champion_version": "Model version behind the champion alias.",
    "glideslope_champion_age_seconds": "Seconds since the champion version was promoted.",
    "glideslope_champion_live_metric": "Live value of the promotion metric on the newest checked night.",
    "glideslope_drift_share": "Share of monitored columns that drifted in the newest check.",
    "glideslope_drifted_columns": "Number of drifted columns in the newest check.",
    "glideslope_drift_check_night_timestamp_seconds": "Night of the newest drift check (Unix time, 00:00 UTC).",
    "glideslope_scored_rows": "Rows of the newest predictions partition.",
    "glideslope_mean_score": "Mean prediction of the newest predictions partition.",
    "glideslope_scored_night_timestamp_seconds": "Night of the newest predictions partition (Unix time).",
    "glideslope_last_scoring_timestamp_seconds": "When the newest predictions partition was published (Unix time).",
    "glideslope_seconds_since_last_scoring": "Seconds since the newest predictions partition was published.",
    "glideslope_retrain_budget_left": "Drift-triggered retrains still allowed in the week of the newest check.",
    "glideslope_retraining_paused": "1 while automatic retraining is paused by an escalation.",
    "glideslope_escalation_open": "1 while an escalation is open (not acknowledged).",
    "glideslope_metrics_source_up": "1 when the source could be read on this scrape.",
}


SOURCES = ("mlflow", "lake", "state")


@dataclass
class Sample:
    name: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)


def _night(ds: str) -> float:
    return datetime.combine(date.fromisoformat(ds), datetime.min.time(), tzinfo=UTC).timestamp()


def _iso_seconds(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def champion_samples(uc: UseCase, cfg: Settings, now: float) -> list[Sample]:
    from glideslope.training import tracking

    client = tracking.client(cfg)
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(uc.registered_model)
    except MlflowException:
        return []  # nothing registered yet: no champion to describe
    version = (model.aliases or {}).get("champion")
    if version is None:
        return []
    mv = client.get_model_version(uc.registered_model, str(version))
    tags = mv.tags or {}
    since = _iso_seconds(tags["glideslope.decision_at"]) if tags.get("glideslope.decision_at") else \
        mv.creation_timestamp / 1000.0
    return [Sample("glideslope_champion_version", float(version)),
            Sample("glideslope_champion_age_seconds", max(0.0, now - since))]


def predictions_samples(uc: UseCase, lake: Lake, now: float) -> list[Sample]:
    import pyarrow.parquet as pq

    from glideslope.scoring.score import PREDICTION

    days = lake.partitions(lake.predictions())
    if not days:
        return []
    ds = days[-1]
    path = lake.predictions(ds)
    with lake.fs.open(path, "rb") as f:
        table = pq.read_table(f, columns=[PREDICTION])
    rows = table.num_rows
    mean = float(table.column(PREDICTION).to_pandas().mean()) if rows else float("nan")
    modified = lake.fs.modified(path)
    published = modified.timestamp() if hasattr(modified, "timestamp") else float(modified)
    return [Sample("glideslope_scored_rows", float(rows)), Sample("glideslope_mean_score", mean),
            Sample("glideslope_scored_night_timestamp_seconds", _night(ds)),
            Sample("glideslope_last_scoring_timestamp_seconds", published),
            Sample("glideslope_seconds_since_last_scoring", max(0.0, now - published))]


def budget_left(state: dict[str, Any], ds: str, budget: int) -> int:
    """Retrains the weekly budget still allows on ``ds`` (the count of :func:`retrain_guard`)."""
    week_start = (date.fromisoformat(ds) - timedelta(days=6)).isoformat()
    used = {t["ds"] for t in state.get("triggers", [])
            if t.get("outcome") == "emitted" and week_start <= t["ds"] <= ds}
    return max(0, budget - len(used))


def state_samples(uc: UseCase, lake: Lake) -> list[Sample]:
    from glideslope.drift.state import load_state

    state = load_state(uc.name, lake)
    paused = 1.0 if state.get("paused") else 0.0
    out = [Sample("glideslope_retraining_paused", paused), Sample("glideslope_escalation_open", paused)]
    checks = state.get("checks") or {}
    if not checks:
        return out
    ds = max(checks)
    check = checks[ds]
    out.append(Sample("glideslope_drift_check_night_timestamp_seconds", _night(ds)))
    if check.get("drift_share") is not None:
        out.append(Sample("glideslope_drift_share", float(check["drift_share"])))
    out.append(Sample("glideslope_drifted_columns", float(len(check.get("drifted_columns") or []))))
    out.append(Sample("glideslope_retrain_budget_left", float(budget_left(state, ds, uc.drift.weekly_retrain_budget))))
    metric = uc.promotion.metric
    live = next((c.get(f"live_{metric}") for _, c in sorted(checks.items(), reverse=True)
                 if c.get(f"live_{metric}") is not None), None)
    if live is not None:
        out.append(Sample("glideslope_champion_live_metric", float(live), {"metric": metric}))
    return out


def collect(usecases: list[str], cfg: Settings | None = None, now: float | None = None) -> list[Sample]:
    """Every sample of ``usecases``, each labelled with its use case."""
    cfg = cfg or settings()
    now = time.time() if now is None else now
    out: list[Sample] = []
    for name in usecases:
        try:
            uc = load_usecase(name)
        except Exception:  # an invalid spec is reported by the DAG import errors, not here
            log.warning("metrics: use case %s does not load; left out", name, exc_info=True)
            continue
        lake = Lake.for_usecase(name, cfg)
        for source in SOURCES:
            try:
                got = (champion_samples(uc, cfg, now) if source == "mlflow" else
                       predictions_samples(uc, lake, now) if source == "lake" else state_samples(uc, lake))
                up = 1.0
            except Exception:
                log.warning("metrics: could not read %s of %s", source, name, exc_info=True)
                got, up = [], 0.0
            out += [Sample(s.name, s.value, {"usecase": name, **s.labels}) for s in got]
            out.append(Sample("glideslope_metrics_source_up", up, {"usecase": name, "source": source}))
    return out


def render(samples: list[Sample]) -> bytes:
    """Prometheus' text exposition format (``prometheus_client``), one family a metric name."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily

    families: dict[str, GaugeMetricFamily] = {}
    for s in samples:
        labels = sorted(s.labels)
        fam = families.get(s.name)
        if fam is None:
            fam = families[s.name] = GaugeMetricFamily(s.name, HELP.get(s.name, s.name), labels=labels)
        fam.add_metric([s.labels[k] for k in labels], s.value)

    class _Recorded:
        def collect(self) -> Any:
            return list(families.values())

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Recorded())
    return bytes(generate_latest(registry))
