"""A use case's model health, read from what the stages already record; feeds the UI's health page.

Nothing here computes anything new or writes anything. The sources:

* **champion timeline** — the MLflow registry: every version of the registered model with its
  ``glideslope.decision*`` tags (written by :mod:`glideslope.registry.promotion`), the decision
  artifact ``promotion/decision-v<N>.json`` on its run (delta, CI, slices), ``glideslope.rolled_back``
  / ``glideslope.restored`` and the ``champion`` alias;
* **nights** — the drift state (:mod:`glideslope.drift.state`): each night's check (drift share and
  drifted columns, the live ``promotion.metric`` of the champion, the report), the prediction
  partition of that night in the lake (rows, mean score), and the data-quality outcome (a day whose
  files or outputs went to quarantine names each failing file, column and rule);
* **guards** — cooldown, weekly budget, pause and open escalation, from the state and the spec's
  ``drift`` section, evaluated for the newest checked night (a replay's "today").

The metric is the use case's ``promotion.metric`` (:mod:`glideslope.metrics`): ROC-AUC for the
bundled binary case, RMSE or MAE for a regression case.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from glideslope.alerts.links import REPORTS_PREFIX
from glideslope.config import Settings, UseCase, settings
from glideslope.drift.state import load_state
from glideslope.lake import Lake
from glideslope.metrics import higher_is_better, label

log = logging.getLogger(__name__)

DEFAULT_NIGHTS = 90  # without a range, the page shows this many nights up to the newest one


def _in_range(ds: str | None, start: str | None, end: str | None) -> bool:
    return ds is not None and (start is None or ds >= start) and (end is None or ds <= end)


def spec_summary(uc: UseCase) -> dict[str, Any]:
    """What the page needs to label its charts: the metric, its direction, floor and threshold."""
    metric = uc.promotion.metric
    return {
        "usecase": uc.name, "description": uc.description, "task": uc.label.task,
        "metric": {"name": metric, "label": label(metric), "higher_is_better": higher_is_better(metric)},
        "performance_floor": uc.drift.performance_floor, "drift_share_threshold": uc.drift.drift_share,
        "dag_ids": {stage: uc.dag_id(stage) for stage in ("etl", "features", "train", "score", "monitor")},
    }


# -- nights ------------------------------------------------------------------------------------

def _live(check: dict[str, Any], metric: str) -> float | None:
    value = check.get(f"live_{metric}")
    if value is None and metric == "roc_auc":
        value = check.get("live_roc_auc")  # states written before metrics were named per use case
    return None if value is None else float(value)


def _predictions(lake: Lake, ds: str) -> dict[str, Any] | None:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = lake.predictions(ds)
    if not lake.exists(path):
        return None
    with lake.fs.open(path, "rb") as f:
        table = pq.read_table(f, columns=["prediction", "model_version"])
    mean = pc.mean(table["prediction"]).as_py() if table.num_rows else None
    versions = sorted({str(v) for v in table["model_version"].unique().to_pylist() if v is not None})
    return {"rows": table.num_rows, "mean_score": None if mean is None else round(float(mean), 6),
            "model_versions": versions, "path": path}


def _quarantined(lake: Lake, start: str | None, end: str | None) -> dict[str, list[dict[str, Any]]]:
    """``{ds: [one entry per failing rule of each quarantined file]}`` in the range."""
    fs = lake.fs
    root = f"{lake.base}/quarantine"
    out: dict[str, list[dict[str, Any]]] = {}
    if not fs.exists(root):
        return out
    for source_dir in fs.ls(root, detail=False):
        source = str(source_dir).rstrip("/").rsplit("/", 1)[-1]
        for day_dir in fs.ls(source_dir, detail=False):
            name = str(day_dir).rstrip("/").rsplit("/", 1)[-1]
            ds = name[3:] if name.startswith("ds=") else None
            if not _in_range(ds, start, end):
                continue
            assert ds is not None
            for slot in lake.quarantined(source, ds):
                reason = lake.read_json(f"{slot}/_reason.json", default={}) or {}
                failures = reason.get("failures") or [{"rule": reason.get("error_type") or "unknown",
                                                       "column": None, "bad_rows": None,
                                                       "file": reason.get("moved_from")}]
                for f in failures:
                    out.setdefault(ds, []).append({
                        "source": source, "file": f.get("file") or reason.get("moved_from") or reason.get("file"),
                        "column": f.get("column"), "rule": f.get("rule"), "bad_rows": f.get("bad_rows"),
                        "moved_to": reason.get("moved_to"), "moved_at": reason.get("moved_at"),
                    })
    return out


def _landed_days(uc: UseCase, lake: Lake) -> set[str]:
    days: set[str] = set()
    for source in uc.sources:
        if source.kind == "daily":
            folder = f"{lake.base}/raw/{source.name}"
            if lake.fs.exists(folder):
                days |= {str(p).rstrip("/").rsplit("ds=", 1)[-1] for p in lake.fs.ls(folder, detail=False)
                         if "ds=" in str(p)}
    return days


def default_range(days: list[str], nights: int = DEFAULT_NIGHTS) -> tuple[str | None, str | None]:
    if not days:
        return None, None
    end = max(days)
    return max(min(days), (date.fromisoformat(end) - timedelta(days=nights - 1)).isoformat()), end


def nights(uc: UseCase, start: str | None = None, end: str | None = None,
           cfg: Settings | None = None) -> dict[str, Any]:
    """One entry per night in ``start..end`` (inclusive) on which any stage recorded something."""
    cfg = cfg or settings()
    lake = Lake.for_usecase(uc.name, cfg)
    state = load_state(uc.name, lake)
    checks = state["checks"]
    predicted = set(lake.partitions(lake.predictions()))
    landed = _landed_days(uc, lake)
    published = set(lake.partitions(lake.curated(uc.scoring.table)))
    if start is None and end is None:
        start, end = default_range(sorted(set(checks) | predicted | landed))
    quarantine = _quarantined(lake, start, end)
    metric = uc.promotion.metric
    days = sorted(d for d in set(checks) | predicted | landed | set(quarantine) if _in_range(d, start, end))
    out = []
    for ds in days:
        check = checks.get(ds)
        failing = quarantine.get(ds, [])
        quality = ("quarantined" if failing else "passed" if ds in published else
                   "landed" if ds in landed else None)
        out.append({
            "ds": ds,
            "check": None if check is None else {
                "status": check.get("status"), "drift_share": check.get("drift_share"),
                "drifted_columns": check.get("drifted_columns") or [], "live_metric": _live(check, metric),
                "labelled_rows": check.get("labelled_rows"), "current_rows": check.get("current_rows"),
                "champion_version": check.get("champion_version"), "reasons": check.get("reasons") or [],
                "report_url": f"{REPORTS_PREFIX}/{uc.name}/drift/{ds}" if check.get("report") else None,
            },
            "predictions": _predictions(lake, ds) if ds in predicted else None,
            "quality": {"status": quality, "failures": failing},
        })
    return {"usecase": uc.name, "start": start, "end": end, "metric": metric, "nights": out}


# -- guards ------------------------------------------------------------------------------------

def guards(uc: UseCase, cfg: Settings | None = None) -> dict[str, Any]:
    """The loop's guards as the drift policy (``glideslope.drift.policy.retrain_guard``) sees them."""
    cfg = cfg or settings()
    state = load_state(uc.name, Lake.for_usecase(uc.name, cfg))
    spec = uc.drift
    today = max(state["checks"], default=None)
    emitted = [t for t in state["triggers"] if t.get("outcome") == "emitted"]
    retrain_days = sorted({t["ds"] for t in emitted} | {r["ds"] for r in state["retrains"] if r.get("ds")})
    last = max((d for d in retrain_days if today is None or d <= today), default=None)
    cooldown_until = None
    if last is not None and spec.cooldown_days > 0:
        cooldown_until = (date.fromisoformat(last) + timedelta(days=spec.cooldown_days)).isoformat()
    used: list[str] = []
    if today is not None:
        week_start = (date.fromisoformat(today) - timedelta(days=6)).isoformat()
        used = sorted(t["ds"] for t in emitted if week_start <= t["ds"] <= today)
    paused = state.get("paused")
    return {
        "as_of": today,
        "cooldown_days": spec.cooldown_days, "last_retrain": last, "cooldown_until": cooldown_until,
        "in_cooldown": bool(cooldown_until and today and today < cooldown_until),
        "weekly_retrain_budget": spec.weekly_retrain_budget, "retrains_this_week": used,
        "budget_left": max(spec.weekly_retrain_budget - len(used), 0),
        "paused": paused is not None,
        "escalation": paused,  # {ds, reason, retrain} while open; cleared when a person acts
        "acks": state["acks"][-5:],
        "triggers": [t for t in state["triggers"] if _in_range(t.get("ds"), None, today)][-20:],
        "retrains": state["retrains"][-20:],
    }


# -- champion timeline -------------------------------------------------------------------------

def _json_tag(tags: dict[str, str], key: str) -> dict[str, Any] | None:
    import json

    raw = tags.get(key)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return {"detail": raw}
    return value if isinstance(value, dict) else {"detail": value}


def _decision_record(run_id: str, version: str) -> dict[str, Any] | None:
    import mlflow

    try:
        record = mlflow.artifacts.load_dict(f"runs:/{run_id}/promotion/decision-v{version}.json")
    except Exception as e:  # a version decided before the artifact existed still shows its tags
        log.debug("no decision artifact for v%s (run %s): %s", version, run_id, e)
        return None
    return record if isinstance(record, dict) else None


def _evidence(record: dict[str, Any] | None) -> dict[str, Any] | None:
    if not record:
        return None
    decision = record.get("decision") or {}
    ev = decision.get("evidence") or {}
    keep = ("metric", "rows", "challenger", "champion", "delta", "ci_low", "ci_high", "confidence")
    return {**{k: ev.get(k) for k in keep},
            "slices": ev.get("slices") or [], "worst_slice": decision.get("worst_slice"),
            "checks": decision.get("checks") or [], "holdout": record.get("holdout")}


def timeline(uc: UseCase, start: str | None = None, end: str | None = None,
             cfg: Settings | None = None) -> dict[str, Any]:
    """Every version of the registered model and what happened to it, oldest first.

    An event's ``ds`` is the logical day it was decided for (``glideslope.decision_ds``), ``at``
    when it was recorded. ``start``/``end`` keep the events whose day is in range (versions stay).
    """
    from glideslope.scoring.models import CHAMPION
    from glideslope.training import tracking

    cfg = tracking.configure(cfg or settings())
    client = tracking.client(cfg)
    name = uc.registered_model
    try:
        model = client.get_registered_model(name)
    except Exception as e:
        if "RESOURCE_DOES_NOT_EXIST" in str(e) or "not found" in str(e).lower():
            return {"usecase": uc.name, "registered_model": name, "champion": None, "versions": [], "events": [],
                    "note": f"registered model {name!r} does not exist yet: nothing was trained"}
        raise
    champion = (model.aliases or {}).get(CHAMPION)
    champion = None if champion is None else str(champion)
    experiments: dict[str, str] = {}
    versions, events = [], []
    for mv in sorted(client.search_model_versions(f"name='{name}'"), key=lambda m: int(m.version)):
        v, tags = str(mv.version), dict(mv.tags or {})
        run_url = None
        if mv.run_id:
            if mv.run_id not in experiments:
                experiments[mv.run_id] = client.get_run(mv.run_id).info.experiment_id
            run_url = tracking.run_url(cfg, experiments[mv.run_id], mv.run_id)
        decision = tags.get("glideslope.decision")
        # A rolled-back version keeps the tags of the promotion that made it champion.
        decided = decision in ("promoted", "rejected") or (decision == "rolled_back"
                                                           and "glideslope.decision_ds" in tags)
        record = _decision_record(mv.run_id, v) if mv.run_id and decided else None
        entry = {"version": v, "run_id": mv.run_id, "run_url": run_url,
                 "model_version_url": tracking.model_version_url(cfg, name, v),
                 "registered_at": mv.creation_timestamp, "is_champion": v == champion, "decision": decision}
        versions.append(entry)
        if decided:
            events.append({
                "kind": "rejected" if decision == "rejected" else "promoted", "version": v,
                "previous_champion": tags.get("glideslope.decision_champion"),
                "ds": tags.get("glideslope.decision_ds"), "at": tags.get("glideslope.decision_at"),
                "reason": tags.get("glideslope.decision_reason"), "message": tags.get("glideslope.decision_message"),
                "numbers": tags.get("glideslope.decision_numbers"), "evidence": _evidence(record),
                "review": tags.get("glideslope.review"),  # who approved or rejected (promotion.approval)
                "run_url": run_url, "model_version_url": entry["model_version_url"],
            })
        rolled = _json_tag(tags, "glideslope.rolled_back")
        if rolled:
            events.append({"kind": "rolled_back", "version": v, "to_version": rolled.get("to"),
                           "reason": rolled.get("reason"), "at": rolled.get("at"), "ds": rolled.get("ds"),
                           "run_url": run_url, "model_version_url": entry["model_version_url"]})
    events.sort(key=lambda e: (e.get("ds") or "", e.get("at") or ""))
    events = [e for e in events if start is None and end is None or _in_range(e.get("ds"), start, end)]
    return {"usecase": uc.name, "registered_model": name, "champion": champion, "versions": versions,
            "events": events}
