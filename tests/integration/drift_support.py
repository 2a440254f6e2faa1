"""Real-data helpers for the drift tests: a small real champion and its nightly predictions.

The monitor needs a champion in the MLflow registry with a reference sample, and prediction
partitions in the lake. These helpers build both from real ETL output (curated + feature tables)
with the same point-in-time rule the feature store applies (a flight on day X sees the feature
rows of day X-1; the flights scheduled for D+1 are scored on night D with day D's features), so
the drift tests do not depend on the training and scoring stages.

Run as a script to measure the drift policy over the 2013 season change (the figures in
docs/drift.md)::

    GLIDESLOPE_HOME=/tmp/gs .venv/bin/python tests/integration/drift_support.py --etl \
        --first 2013-05-31 --nights 2013-06-01..2013-07-15
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from glideslope.config import UseCase, load_usecase, settings
from glideslope.lake import Lake
from glideslope_local.sinks import SmtpSink, WebhookReceiver


@contextlib.contextmanager
def local_alert_sinks() -> Iterator[tuple[SmtpSink, WebhookReceiver]]:
    """A real SMTP sink and webhook receiver on free loopback ports, wired to the use case's
    connections (``smtp_default``, ``slack_default``) for the duration."""
    smtp, hook = SmtpSink().start(), WebhookReceiver().start()
    conns = {
        "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps({"conn_type": "smtp", "host": smtp.host, "port": smtp.port, "extra": {
            "disable_ssl": True, "disable_tls": True, "from_email": "glideslope@localhost", "timeout": 10,
            "retry_limit": 1}}),
        "AIRFLOW_CONN_SLACK_DEFAULT": json.dumps({"conn_type": "slackwebhook",
                                                  "password": f"{hook.url}/services/glideslope"}),
    }
    old = {k: os.environ.get(k) for k in conns}
    os.environ.update(conns)
    try:
        yield smtp, hook
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        smtp.stop()
        hook.stop()


FEATURE_KEYS = {"carrier_stats": "carrier", "route_stats": "route", "origin_weather": "origin",
                "plane_features": "tailnum"}
DROP = ("event_timestamp", "created", "ds")


def days(first: str, last: str) -> list[str]:
    a, b = date.fromisoformat(first), date.fromisoformat(last)
    return [(a + timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]


def shift(ds: str, n: int) -> str:
    return (date.fromisoformat(ds) + timedelta(days=n)).isoformat()


def feature_columns(lake: Lake, ds: str) -> list[str]:
    cols: list[str] = []
    for table in FEATURE_KEYS:
        df = lake.read_parquet(lake.features(table, ds))
        cols += [c for c in df.columns if c not in DROP and c != FEATURE_KEYS[table]]
    return cols


def model_inputs(uc: UseCase, lake: Lake, ds: str) -> list[str]:
    return [*uc.features.request_columns, *feature_columns(lake, ds)]


def rows(uc: UseCase, lake: Lake, ds: str, table: str) -> pd.DataFrame:
    """Entity rows of ``curated/<table>/ds=<ds>`` with their point-in-time features.

    ``table`` = the label table (flights of day ds, features of ds-1) or the scoring table
    (flights of ds+1 scheduled on night ds, features of ds).
    """
    base = lake.read_parquet(lake.curated(table, ds))
    feature_day = shift(ds, -1) if table == uc.label.table else ds
    for t, key in FEATURE_KEYS.items():
        f = lake.read_parquet(lake.features(t, feature_day)).drop(columns=[c for c in DROP if c != key], errors="ignore")
        base = base.merge(f, on=key, how="left")
    return base


def fit(uc: UseCase, train: pd.DataFrame, inputs: list[str]) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    cat = [c for c in inputs if c in uc.features.categorical]
    pre = ColumnTransformer([("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), cat)],
                            remainder="passthrough", verbose_feature_names_out=False)
    model = Pipeline([("pre", pre), ("hgb", HistGradientBoostingClassifier(
        max_iter=150, learning_rate=0.06, categorical_features=list(range(len(cat))), random_state=0))])
    return model.fit(train[inputs], train[uc.label.column])


def predict(model: Any, frame: pd.DataFrame, inputs: list[str]) -> np.ndarray:
    return model.predict_proba(frame[inputs])[:, 1]


def train_champion(uc: UseCase, lake: Lake, first: str, last: str, *, sample_rows: int = 5000,
                   register: bool = True) -> dict[str, Any]:
    """Train on the labelled flights of ``first..last``, log to MLflow with the reference sample,
    register the model and point alias ``champion`` at it. Returns model, inputs, version."""
    import mlflow
    from mlflow.tracking import MlflowClient

    inputs = model_inputs(uc, lake, last)
    train = pd.concat([rows(uc, lake, d, uc.label.table) for d in days(first, last)], ignore_index=True)
    model = fit(uc, train, inputs)
    sample = train.sample(n=min(sample_rows, len(train)), random_state=0).reset_index(drop=True)
    ref = sample[[uc.entity_key, uc.event_timestamp, "ds", *inputs, uc.label.column]].copy()
    ref["prediction"] = predict(model, sample, inputs)
    out: dict[str, Any] = {"model": model, "inputs": inputs, "reference": ref, "window": (first, last)}
    if not register:
        return out
    cfg = settings()
    mlflow.set_tracking_uri(cfg.mlflow_tracking_uri)
    client = MlflowClient(cfg.mlflow_tracking_uri)
    exp = client.get_experiment_by_name(uc.name)
    exp_id = exp.experiment_id if exp else client.create_experiment(
        uc.name, artifact_location=f"{cfg.mlflow_artifact_root}/{uc.name}")
    with mlflow.start_run(experiment_id=exp_id, run_name=f"drift-test {first}..{last}") as run, \
            tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params({"window": f"{first}..{last}", "rows": len(train)})
        from importlib.metadata import version

        import skops.io as sio

        mlflow.sklearn.log_model(
            model, name="model", signature=mlflow.models.infer_signature(train[inputs].head(50), ref["prediction"][:50]),
            skops_trusted_types=sorted(sio.get_untrusted_types(data=sio.dumps(model))),  # the types of this pipeline
            pip_requirements=[f"{p}=={version(p)}" for p in ("scikit-learn", "skops", "pandas")],  # skip env capture
        )
        p = Path(tmp) / "reference_sample.parquet"
        ref.to_parquet(p, index=False)
        mlflow.log_artifact(str(p), artifact_path="reference")
        run_id = run.info.run_id
    mv = mlflow.register_model(f"runs:/{run_id}/model", uc.registered_model)
    client.set_registered_model_alias(uc.registered_model, "champion", mv.version)
    out.update(run_id=run_id, version=str(mv.version))
    return out


def score_nights(uc: UseCase, lake: Lake, champion: dict[str, Any], nights: list[str]) -> None:
    """Write ``predictions/ds=D`` for each night in the scoring stage's output format."""
    for d in nights:
        frame = rows(uc, lake, d, uc.scoring.table)
        out = frame[[uc.entity_key, uc.event_timestamp, *champion["inputs"]]].copy()
        out["prediction"] = predict(champion["model"], frame, champion["inputs"])
        out["model_version"] = champion.get("version", "0")
        out["model_name"] = uc.registered_model
        out["ds"] = d
        lake.publish_parquet(out, lake.predictions(d))


# -- the season measurement (docs/drift.md) --------------------------------------------------

def train_window(uc: UseCase, ds: str) -> tuple[str, str]:
    """Training days of a retrain on day ``ds``: the window minus the holdout, as the train stage does."""
    return shift(ds, -(uc.training.window_days - 1)), shift(ds, -uc.training.holdout_days)


def check_numbers(uc: UseCase, lake: Lake, ref: pd.DataFrame, window: list[pd.DataFrame], ds: str) -> dict[str, Any]:
    """One check as the monitor makes it (Evidently + policy), on frames already scored."""
    from glideslope.drift.monitor import compare, drift_columns, performance
    from glideslope.drift.policy import column_results, evaluate_check

    cur = pd.concat(window, ignore_index=True)
    cols, cat = drift_columns(uc, ref, cur, "measure")
    _, tests, _ = compare(ref, cur, cols, cat, uc.drift)
    labelled = []
    for frame in window:
        night = frame["ds"].iloc[0]
        if shift(night, 1) <= ds:
            lab = lake.read_parquet(lake.curated(uc.label.table, shift(night, 1)), columns=[uc.entity_key,
                                                                                           uc.label.column])
            labelled.append(frame.merge(lab, on=uc.entity_key))
    lab = pd.concat(labelled) if labelled else pd.DataFrame({uc.label.column: [], "prediction": []})
    perf = performance(lab[uc.label.column], lab["prediction"], uc.label.task)
    v = evaluate_check(column_results(tests), current_rows=len(cur), reference_rows=len(ref), spec=uc.drift,
                       performance=perf, metric=uc.promotion.metric)
    return {"status": v.status, "share": round(v.drift_share, 2), "drifted": v.drifted_columns,
            "roc_auc": None if "roc_auc" not in perf else round(perf["roc_auc"], 3), "rows": len(cur),
            "scores": {t["column"]: round(t["score"], 2) for t in tests}, "reasons": v.reasons}


def holdout_auc(uc: UseCase, lake: Lake, champ: dict[str, Any], ds: str) -> float:
    from sklearn.metrics import roc_auc_score

    hold = pd.concat([rows(uc, lake, d, uc.label.table) for d in days(shift(ds, -(uc.training.holdout_days - 1)),
                                                                       ds)])
    return float(roc_auc_score(hold[uc.label.column], predict(champ["model"], hold, champ["inputs"])))


def simulate(uc: UseCase, lake: Lake, first_ds: str, nights: tuple[str, str]) -> dict[str, Any]:
    """Replay the nightly loop with the real policy: score, check, decide, retrain on a trigger.

    The champion is trained on day ``first_ds``; a trigger on day D retrains on D (same window
    as the train stage) and the challenger is promoted when its holdout ROC-AUC beats the
    champion's by the promotion margin, else rejected. Escalation pauses, as in production.
    """
    from glideslope.drift.policy import decide
    from glideslope.drift.state import empty_state

    champ = train_champion(uc, lake, *train_window(uc, first_ds), register=False)
    champ["version"] = 1
    state = empty_state(uc.name)
    scored: dict[str, pd.DataFrame] = {}
    timeline = []
    for d in days(*nights):
        frame = rows(uc, lake, d, uc.scoring.table)
        frame["prediction"] = predict(champ["model"], frame, champ["inputs"])
        frame["ds"], frame["model_version"] = d, champ["version"]
        scored[d] = frame
        window = [scored[x] for x in days(shift(d, -(uc.drift.reference_days - 1)), d)
                  if x in scored and scored[x]["model_version"].iloc[0] == champ["version"]]
        n = check_numbers(uc, lake, champ["reference"], window, d)
        state["checks"][d] = {"status": n["status"]}
        decision = decide(d, state, uc.drift, train_active=False)
        event = {"ds": d, "champion": champ["version"], **{k: n[k] for k in ("status", "share", "drifted", "roc_auc",
                                                                              "rows", "scores")},
                 "action": decision.action, "reasons": decision.reasons}
        if decision.action == "trigger":
            state["triggers"].append({"ds": d, "outcome": "emitted"})
            new = train_champion(uc, lake, *train_window(uc, d), register=False)
            old_auc, new_auc = holdout_auc(uc, lake, champ, d), holdout_auc(uc, lake, new, d)
            promoted = new_auc >= old_auc + uc.promotion.margin and new_auc >= uc.promotion.floor
            state["retrains"].append({"ds": d, "decision": "promoted" if promoted else "rejected"})
            event["retrain"] = {"holdout_auc_champion": round(old_auc, 3), "holdout_auc_challenger": round(new_auc, 3),
                                "decision": "promoted" if promoted else "rejected"}
            if promoted:
                new["version"] = champ["version"] + 1
                champ = new
        elif decision.action == "suppress":
            state["triggers"].append({"ds": d, "outcome": "suppressed"})
        elif decision.action == "escalate":
            state["paused"] = {"ds": d, "reason": decision.reasons[0]}
        timeline.append(event)
    return {"first_training_day": first_ds, "timeline": timeline}


def aa_checks(uc: UseCase, lake: Lake, train: tuple[str, str], seeds: int = 5) -> list[dict[str, Any]]:
    """A/A: two random halves of the same labelled rows must not look drifted."""
    from glideslope.drift.monitor import compare, drift_columns
    from glideslope.drift.policy import column_results, evaluate_check

    champ = train_champion(uc, lake, *train, register=False)
    pool = pd.concat([rows(uc, lake, x, uc.label.table) for x in days(*train)], ignore_index=True)
    pool["prediction"] = predict(champ["model"], pool, champ["inputs"])
    out = []
    for seed in range(seeds):
        perm = pool.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        a = perm.iloc[: len(perm) // 2].sample(n=min(uc.training.reference_sample_rows, len(perm) // 2),
                                               random_state=seed)
        b = perm.iloc[len(perm) // 2:]
        cols, cat = drift_columns(uc, a, b, "A/A")
        _, tests, _ = compare(a, b, cols, cat, uc.drift)
        v = evaluate_check(column_results(tests), current_rows=len(b), reference_rows=len(a), spec=uc.drift,
                           metric=uc.promotion.metric)
        out.append({"seed": seed, "status": v.status, "share": v.drift_share,
                    "max_score": round(max(t["score"] for t in tests), 3)})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--first", default="2013-05-31", help="day the first champion is trained on")
    ap.add_argument("--nights", default="2013-06-01..2013-06-30")
    ap.add_argument("--etl", action="store_true", help="run the ETL for the needed days first")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    uc = load_usecase("flight_delay")
    lake = Lake.for_usecase(uc.name)
    nights = tuple(args.nights.split(".."))
    if args.etl:
        from glideslope.etl.pipeline import run_days

        run_days(uc, days(shift(args.first, -uc.training.window_days), shift(nights[1], 1)))
    result = simulate(uc, lake, args.first, nights)  # type: ignore[arg-type]
    result["aa"] = aa_checks(uc, lake, train_window(uc, args.first))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, default=str))
    for e in result["timeline"]:
        print(e["ds"], f"v{e['champion']}", e["status"].ljust(17), f"share={e['share']:.2f}", f"auc={e['roc_auc']}",
              e["action"].ljust(10), ",".join(e["drifted"]), e.get("retrain", ""))
    print("A/A:", result["aa"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
