"""``make demo``: the whole loop of a use case on replayed real days, run by Airflow itself.

The demo starts (or reuses) the embedded stack that ``make up`` serves — API server and UI,
scheduler, DAG processor, triggerer, LocalExecutor, the MLflow UI and the local alert sinks — and
then drives it only as a data engineer would, through the REST API:

1. unpauses the use case's DAGs (one per stage);
2. triggers ONE range run of ``<uc>__etl`` over the history window (Params ``start``/``end``: one
   set-wise Spark pass, each day published as its own partition); the scheduler runs
   ``<uc>__features`` from its Asset event, which lists every published day;
3. triggers ``<uc>__train`` by hand for the first model (the only run a person starts besides
   the nightly ETL);
4. for each replayed night creates the ``<uc>__etl`` run with that logical date. Everything
   downstream — features, scoring, monitoring, a drift-triggered training and its promotion,
   the escalation — is created by the scheduler from Asset events. The demo follows the runs
   through the API and prints a line per night and stage (state, duration, the monitor's
   decision);
5. checks its own story from the API, the MLflow registry and the alert sinks, and exits
   non-zero naming what did not happen;
6. prints the UI's URL and login. The stack stays up; ``make down`` stops it.

The bundled timeline (defaults, measured in docs/drift.md): history 2013-05-04 … 2013-06-11,
first model as of 2013-05-31, nights 2013-06-12 … 2013-07-03.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from email import policy
from email.parser import BytesParser
from typing import Any

from glideslope.config import STAGES, SpecError, UseCase, resolve_usecase, settings
from glideslope_local.api import Airflow, ApiError, until

QUESTION_TIMEOUT_S = 180.0  # from the escalation to <uc>__escalation's question: an Asset run and a deferral
RUN_TIMEOUT_S = 900.0
NEXT_RUN_TIMEOUT_S = 180.0

# The replay's days; without them on the command line they come from the spec's ``demo`` section.
DATES = ("history_start", "history_end", "train_on", "first_night", "last_night")


def days_between(start: str, end: str) -> list[str]:
    a, b = date.fromisoformat(start), date.fromisoformat(end)
    return [(a + timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]


def _seconds(run: dict[str, Any]) -> float:
    from datetime import datetime

    if not run.get("start_date") or not run.get("end_date"):
        return 0.0
    a = datetime.fromisoformat(run["start_date"].replace("Z", "+00:00"))
    b = datetime.fromisoformat(run["end_date"].replace("Z", "+00:00"))
    return (b - a).total_seconds()


@dataclass
class Night:
    ds: str
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    decision: dict[str, Any] = field(default_factory=dict)
    wall_seconds: float = 0.0  # from creating the ETL run to the end of the night's last run


class StoryError(AssertionError):
    """The replay did not show what the demo claims; the message names what did not happen."""


class Demo:
    def __init__(self, uc: UseCase, af: Airflow, args: argparse.Namespace, out: Any = None):
        self.uc = uc
        self.af = af
        self.args = args
        self.say = out or (lambda text: print(text, flush=True))
        self.cfg = settings()
        self.nights: list[Night] = []
        self.first_model: dict[str, Any] = {}
        self.history_run: dict[str, Any] = {}
        self.history_published: list[str] = []
        self.timings: dict[str, list[float]] = {s: [] for s in STAGES}

    def dag(self, stage: str) -> str:
        return self.uc.dag_id(stage)

    def wait_run(self, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            self.scheduler_alive()
            run = self.af.run(dag_id, run_id)
            return run if run["state"] in ("success", "failed") else None

        try:
            return until(f"{dag_id} run {run_id} finished", finished, timeout)
        except TimeoutError as e:
            raise StoryError(str(e)) from None

    def scheduler_alive(self) -> None:
        """Fail at once, naming the log, when the scheduler stopped heartbeating (it is what runs the loop)."""
        health = self.af.get("/api/v2/monitor/health").get("scheduler") or {}
        if health.get("status") != "healthy":
            self._unhealthy = getattr(self, "_unhealthy", 0) + 1
            if self._unhealthy >= 30:  # about a minute of polls
                raise StoryError(f"the Airflow scheduler is {health.get('status')} (last heartbeat "
                                 f"{health.get('latest_scheduler_heartbeat')}): see "
                                 f"{self.cfg.home / 'airflow' / 'standalone.log'}")
        else:
            self._unhealthy = 0

    # -- following runs ---------------------------------------------------------------------
    def _line(self, ds: str, stage: str, run: dict[str, Any], extra: str = "") -> None:
        secs = _seconds(run)
        self.timings[stage].append(secs)
        self.say(f"  {ds}  {self.dag(stage):<24} {run['run_type']:<16} {run['state']:<8} {secs:6.1f}s"
                 + (f"  {extra}" if extra else ""))

    def next_run(self, stage: str, after: str, why: str, timeout: float = NEXT_RUN_TIMEOUT_S) -> dict[str, Any]:
        """The first run of ``stage`` queued after ``after`` (ISO time), once it has finished."""
        def created() -> dict[str, Any] | None:
            self.scheduler_alive()
            runs = [r for r in self.af.runs(self.dag(stage)) if (r.get("queued_at") or "") > after]
            return min(runs, key=lambda r: r["queued_at"]) if runs else None

        try:
            run = until(f"the scheduler creates a {self.dag(stage)} run ({why})", created, timeout)
        except TimeoutError as e:
            raise StoryError(str(e)) from None
        return self.wait_run(self.dag(stage), run["dag_run_id"], RUN_TIMEOUT_S)

    def skipped(self, stage: str, run: dict[str, Any], task_id: str) -> bool:
        tis = self.af.task_instances(self.dag(stage), run["dag_run_id"])
        return tis.get(task_id, {}).get("state") == "skipped"

    def failed_tasks(self, stage: str, run: dict[str, Any]) -> str:
        tis = self.af.task_instances(self.dag(stage), run["dag_run_id"])
        return ", ".join(t for t, ti in tis.items() if ti["state"] in ("failed", "upstream_failed")) or "?"

    def must_succeed(self, stage: str, run: dict[str, Any], ds: str) -> None:
        if run["state"] != "success":
            raise StoryError(f"{self.dag(stage)} run {run['dag_run_id']} for {ds} {run['state']} "
                             f"(tasks: {self.failed_tasks(stage, run)}); its logs are in the UI")

    # -- the phases ---------------------------------------------------------------------------
    def start(self) -> None:
        dags = [self.dag(s) for s in STAGES]
        self.af.wait_for_dags(dags)
        for d in dags:
            self.af.set_paused(d, False)
        self.say(f"Unpaused {', '.join(dags)}")

    def backfill(self) -> None:
        """The history: ONE range run of ``<uc>__etl`` (Params start/end), one set-wise Spark pass."""
        days = days_between(self.args.history_start, self.args.history_end)
        self.say(f"\n1. History: one range run of {self.dag('etl')} for {days[0]} … {days[-1]} ({len(days)} days, "
                 "one Spark pass)")
        t0 = time.monotonic()
        run = self.af.trigger(self.dag("etl"), conf={"start": days[0], "end": days[-1],
                                                     "reason": f"demo history {days[0]} … {days[-1]}"})
        final = self.wait_run(self.dag("etl"), run["dag_run_id"], RUN_TIMEOUT_S + 10 * len(days))
        self.history_run = final
        self.history_published = list((self.af.xcom(self.dag("etl"), run["dag_run_id"], "validate_and_publish")
                                       or {}).get("days") or []) if final["state"] == "success" else []
        self._line(f"{days[0]}…{days[-1]}", "etl", final, f"{len(self.history_published)} days published")
        self.say(f"  range run {run['dag_run_id']}: {len(self.history_published)} of {len(days)} days published in "
                 f"{time.monotonic() - t0:.0f}s")
        if final["state"] != "success":
            raise StoryError(f"the history's range run {run['dag_run_id']} of {self.dag('etl')} {final['state']} "
                             "(its check_every_day_published task names the days; see the run in the UI)")
        # The features DAG runs from the range run's one Asset event (every published day in it);
        # wait until it and the scoring it causes have caught up.
        self.wait_quiet(("features", "score"), since=run.get("queued_at") or "")

    def wait_quiet(self, stages: tuple[str, ...], since: str, grace: float = 8.0) -> None:
        """Until no run of ``stages`` is active and none was created for ``grace`` seconds."""
        quiet_since = [time.monotonic()]

        def quiet() -> bool:
            active = [r for s in stages for r in self.af.runs(self.dag(s), state=["queued", "running"])]
            if active:
                quiet_since[0] = time.monotonic()
                return False
            return time.monotonic() - quiet_since[0] >= grace

        until(f"{', '.join(self.dag(s) for s in stages)} finished the runs the backfill caused", quiet,
              RUN_TIMEOUT_S, every=2.0)
        for s in stages:
            for r in self.af.runs(self.dag(s)):
                if (r.get("queued_at") or "") > since and r["state"] == "failed":
                    raise StoryError(f"{self.dag(s)} run {r['dag_run_id']} failed during the history backfill")

    def train_first_model(self) -> None:
        ds = self.args.train_on
        self.say(f"\n2. First model: {self.dag('train')} triggered by hand, window ending {ds}")
        conf: dict[str, Any] = {"ds": ds, "reason": "first model of the demo"}
        if self.args.first_model_candidates:
            conf["candidates"] = self.args.first_model_candidates.split(",")
        if self.args.first_model_window_days:
            conf["window_days"] = self.args.first_model_window_days
            conf["holdout_days"] = max(1, min(self.uc.training.holdout_days, self.args.first_model_window_days // 3))
        run = self.af.trigger(self.dag("train"), conf=conf, note="first model (glideslope demo)")
        run = self.wait_run(self.dag("train"), run["dag_run_id"], RUN_TIMEOUT_S)
        self.must_succeed("train", run, ds)
        self.first_model = run
        self._line(ds, "train", run, self.training_outcome(run))

    def training_outcome(self, run: dict[str, Any]) -> str:
        notified = self.af.xcom(self.dag("train"), run["dag_run_id"], "notify") or {}
        return str(notified.get("title") or notified.get("reason") or notified.get("kind") or "")

    def night(self, ds: str) -> Night:
        t0 = time.monotonic()
        night = self._night(ds)
        night.wall_seconds = round(time.monotonic() - t0, 1)
        return night

    def _night(self, ds: str) -> Night:
        night = Night(ds)
        etl = self.af.trigger(self.dag("etl"), logical_date=f"{ds}T02:00:00Z", note=f"replayed night {ds}")
        etl = self.wait_run(self.dag("etl"), etl["dag_run_id"], RUN_TIMEOUT_S)
        night.runs["etl"] = etl
        self._line(ds, "etl", etl)
        self.must_succeed("etl", etl, ds)
        after = etl["queued_at"]
        for stage, why in (("features", "Asset event of the ETL"), ("score", "Asset event of the features"),
                           ("monitor", "Asset event of the scoring")):
            run = self.next_run(stage, after, why)
            night.runs[stage] = run
            self.must_succeed(stage, run, ds)
            after = run["queued_at"]
            if stage == "score" and self.skipped(stage, run, "score_next_period"):
                self._line(ds, stage, run, "skipped: no champion or nothing to score")
                return night
            if stage == "monitor":
                night.decision = self.af.xcom(self.dag("monitor"), run["dag_run_id"], "decide_action",
                                              "decision") or {}
                reasons = "; ".join(night.decision.get("reasons") or [])
                self._line(ds, stage, run, f"{night.decision.get('action', '?')}: {reasons}")
            elif stage == "score":
                scored = self.af.xcom(self.dag("score"), run["dag_run_id"], "score_next_period") or []
                self._line(ds, stage, run, ", ".join(f"{s['ds']}: {s['rows']} {self.uc.entity_noun}, v{s['model_version']}"
                                                     for s in scored))
            else:
                self._line(ds, stage, run)
        if night.decision.get("action") == "trigger":
            run = self.next_run("train", night.runs["monitor"]["queued_at"], f"drift event of {ds}")
            night.runs["train"] = run
            self._line(ds, "train", run, self.training_outcome(run))
            self.must_succeed("train", run, ds)
        return night

    def replay(self) -> None:
        nights = days_between(self.args.first_night, self.args.last_night)
        self.say(f"\n3. Nights {nights[0]} … {nights[-1]}: the demo creates each {self.dag('etl')} run; "
                 "the scheduler does the rest")
        for i, ds in enumerate(nights, 1):
            self.say(f"night {i}/{len(nights)}  {ds}")
            self.nights.append(self.night(ds))

    # -- the story, checked --------------------------------------------------------------------
    def check_story(self, expect: list[str]) -> list[str]:
        """What the demo claims, checked from the API, the registry and the sinks; returns findings."""
        problems: list[str] = []
        ok: list[str] = []
        history = days_between(self.args.history_start, self.args.history_end)
        if self.history_run.get("state") != "success" or self.history_published != history:
            problems.append(f"the history's range run published {len(self.history_published)} of {len(history)} days")
        else:
            ok.append(f"history: one range run of {self.dag('etl')}, all {len(history)} days published")

        train_runs = {r["dag_run_id"]: r for r in self.af.runs(self.dag("train"))}
        drift_events = [e for e in self.af.asset_events(f"{self.uc.name}.drift")
                        if e.get("source_dag_id") == self.dag("monitor")]
        answered: dict[int, list[str]] = {}
        for rid, r in train_runs.items():
            if r["run_type"] != "asset_triggered":
                continue
            for ev in self.af.upstream_events(self.dag("train"), rid):
                answered.setdefault(ev["id"], []).append(rid)
        for ev in drift_events:
            runs = answered.get(ev["id"], [])
            if len(runs) != 1:
                problems.append(f"drift event {ev['id']} ({ev['extra'].get('ds')}) triggered {len(runs)} "
                                f"{self.dag('train')} runs, not one")
        if drift_events and not problems:
            ok.append(f"{len(drift_events)} drift event(s), each answered by exactly one asset_triggered training run")
        by_hand = [rid for rid, r in train_runs.items() if r["run_type"] == "manual"]
        if len(by_hand) != 1:
            problems.append(f"expected one training started by hand (the first model), saw {by_hand}")
        for kind in ("features", "score", "monitor"):
            wrong = [r["dag_run_id"] for r in self.af.runs(self.dag(kind)) if r["run_type"] != "asset_triggered"]
            if wrong:
                problems.append(f"{self.dag(kind)} runs not created from Asset events: {wrong}")

        promotions = self.promotions()
        for p in promotions:
            first = self.first_scoring_after(p["at"])
            if first is None:
                continue
            versions = {str(s["model_version"]) for s in first["scored"]}
            if versions != {p["version"]}:
                problems.append(f"the first scoring after v{p['version']} was promoted ({first['run_id']}) used "
                                f"v{', v'.join(sorted(versions))}")
        ok += [f"promoted v{p['version']} ({p['trigger']}): {p['reason']}" for p in promotions]

        escalations = [n for n in self.nights if n.decision.get("action") == "escalate"]
        if escalations:
            state = self.drift_state()
            if not state.get("paused"):
                problems.append(f"the monitor escalated on {escalations[0].ds} but automatic retraining is not paused")
            subjects = self.alert_subjects()
            if not any("escalat" in s.lower() for s in subjects):
                problems.append(f"no escalation e-mail arrived in {self.cfg.home / 'alerts' / 'mail'}")
            else:
                ok.append(f"escalated on {escalations[0].ds}: automatic retraining paused, alert e-mailed")
            try:
                run, question = until(f"{self.dag('escalation')} asks a person what to do",
                                      lambda: self.af.waiting_question(self.dag("escalation"), "decide_escalation"),
                                      QUESTION_TIMEOUT_S, 2.0)
                ok.append(f"{self.dag('escalation')} ({run['run_type']}) waits for a person's answer: "
                          f"\"{question['subject']}\" in the UI's Required actions")
            except TimeoutError as e:
                problems.append(f"{e} (the Asset {self.uc.name}.escalation should have scheduled it)")

        for item in expect:
            kind, _, value = item.partition("=")
            if kind in ("trigger", "escalate", "suppress"):
                hit = [n for n in self.nights if n.ds == value and n.decision.get("action") == kind]
                if not hit:
                    seen = [f"{n.ds}:{n.decision.get('action')}" for n in self.nights if n.ds == value]
                    problems.append(f"expected the monitor to {kind} on {value}; it decided {seen or 'nothing'}")
            elif kind == "promotions":
                if len(promotions) != int(value):
                    problems.append(f"expected {value} promotions, saw {len(promotions)}: "
                                    f"{[p['version'] for p in promotions]}")
            else:
                problems.append(f"unknown expectation {item!r} (trigger=D, escalate=D, suppress=D, promotions=N)")
        for line in ok:
            self.say(f"  ✓ {line}")
        for line in problems:
            self.say(f"  ✗ {line}")
        return problems

    def promotions(self) -> list[dict[str, Any]]:
        out = []
        for r in self.af.runs(self.dag("train")):
            if r["state"] != "success":
                continue
            promoted = self.af.xcom(self.dag("train"), r["dag_run_id"], "promote_champion")
            if promoted:
                out.append({"version": str(promoted.get("version") or promoted.get("challenger_version")),
                            "at": r["end_date"], "run_id": r["dag_run_id"],
                            "trigger": r["run_type"], "reason": promoted.get("message") or promoted.get("reason", "")})
        return out

    def first_scoring_after(self, when: str) -> dict[str, Any] | None:
        for r in self.af.runs(self.dag("score")):
            if (r.get("queued_at") or "") > when and r["state"] == "success":
                scored = self.af.xcom(self.dag("score"), r["dag_run_id"], "score_next_period")
                if scored:
                    return {"run_id": r["dag_run_id"], "scored": scored}
        return None

    def drift_state(self) -> dict[str, Any]:
        from glideslope.drift.state import load_state

        return load_state(self.uc)

    def alert_subjects(self) -> list[str]:
        subjects = []
        for path in sorted((self.cfg.home / "alerts" / "mail").glob("*.eml")):
            msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            subjects.append(str(msg["subject"]))
        return subjects

    def report_timings(self) -> None:
        self.say("\nWhere the nights' time went (run wall time per stage, seconds):")
        for stage, secs in self.timings.items():
            if secs:
                self.say(f"  {self.dag(stage):<24} runs {len(secs):3d}   median {sorted(secs)[len(secs) // 2]:6.1f}"
                         f"   total {sum(secs):7.1f}")


def _fill_dates(uc: UseCase, args: argparse.Namespace) -> None:
    """Dates not given on the command line come from the spec's ``demo`` section; none there is an error."""
    given = [k for k in DATES if getattr(args, k) is not None]
    if len(given) == len(DATES):
        return
    if uc.demo is None:
        missing = ", ".join("--" + k.replace("_", "-") for k in DATES if k not in given)
        raise SpecError(f"{uc.folder / 'usecase.yaml'} has no demo section: give {missing}")
    for k in DATES:
        if getattr(args, k) is None:
            setattr(args, k, getattr(uc.demo, k).isoformat())


def _story(uc: UseCase, args: argparse.Namespace) -> list[str]:
    """What to check: --expect; else the spec's demo story when the replay is the spec's own."""
    if args.expect is not None:
        return [e for e in args.expect if e]
    own = uc.demo is not None and all(getattr(args, k) == getattr(uc.demo, k).isoformat() for k in DATES)
    return list(uc.demo.expect) if own and uc.demo is not None and not args.first_model_candidates else []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="glideslope demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--usecase", default=None, help="use case to replay (required when there is more than one)")
    ap.add_argument("--history-start", help="first day of the history (one range run) (default: the spec's demo section)")
    ap.add_argument("--history-end", help="last day of the history")
    ap.add_argument("--train-on", help="day whose labels end the first model's window")
    ap.add_argument("--first-night", help="first night replayed")
    ap.add_argument("--last-night", help="last night replayed")
    ap.add_argument("--first-model-candidates", default="",
                    help="comma-separated candidates of the first model (default: the spec's), e.g. dummy")
    ap.add_argument("--first-model-window-days", type=int, default=None,
                    help="days of labels for the first model (default: training.window_days)")
    ap.add_argument("--expect", action="append", default=None,
                    help="what the replay must show, repeatable: trigger=D, escalate=D, suppress=D, promotions=N "
                         "(default: the spec's demo.expect for the spec's own dates; nothing for others)")
    ap.add_argument("--keep", action="store_true", help="keep the previous demo's lake, models, runs and stack")
    args = ap.parse_args(argv)

    cfg = settings()
    if cfg.profile != "embedded":
        print("The demo runs on the embedded profile (GLIDESLOPE_PROFILE=embedded).", file=sys.stderr)
        return 2
    try:
        uc = resolve_usecase(args.usecase)
        _fill_dates(uc, args)
    except SpecError as e:
        print(f"glideslope demo: {e}", file=sys.stderr)
        return 2
    from glideslope_local import stack

    started = time.monotonic()
    running = stack.read_state(cfg).get("airflow")
    if not args.keep:
        if running is not None:
            print(f"Stopping the stack on {cfg.home} to start the demo from an empty home (--keep reuses it) …")
            stack.down([])
        for sub in ("lake", "mlflow", "feast", "alerts", "demo", "airflow"):
            shutil.rmtree(cfg.home / sub, ignore_errors=True)
    print(f"Glideslope demo — {uc.name}, home {cfg.home}")
    if stack.read_state(cfg).get("airflow") is None and stack.up([]) != 0:
        return 1
    env = stack.airflow_env(cfg, stack.airflow_port())
    password = stack.read_password(env)
    url = env["AIRFLOW__API__BASE_URL"]
    if password is None:
        print(f"glideslope demo: no admin password in {stack.password_file(env)}", file=sys.stderr)
        return 1
    demo = Demo(uc, Airflow(url, stack.ADMIN_USER, password), args)
    problems: list[str]
    try:
        demo.start()
        demo.backfill()
        demo.train_first_model()
        demo.replay()
        time.sleep(2)  # the last alert e-mails
        print("\n4. The story, checked")
        problems = demo.check_story(_story(uc, args))
    except (StoryError, TimeoutError, ApiError) as e:
        problems = [str(e)]
        print(f"\nglideslope demo: {e}", file=sys.stderr)
    demo.report_timings()
    summary = {"usecase": uc.name, "wall_seconds": round(time.monotonic() - started, 1), "problems": problems,
               "first_model_run_id": demo.first_model.get("dag_run_id"),
               "nights": [{"ds": n.ds, "action": n.decision.get("action"), "reasons": n.decision.get("reasons"),
                           "wall_seconds": n.wall_seconds,
                           "runs": {s: {"run_id": r["dag_run_id"], "state": r["state"], "seconds": _seconds(r)}
                                    for s, r in n.runs.items()}} for n in demo.nights],
               "timings": demo.timings}
    out = cfg.home / "demo" / "summary.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, default=str))
    print(f"\nWall time {summary['wall_seconds']:.0f}s; summary in {out}")
    print(f"Airflow UI: {url}   user {stack.ADMIN_USER}   password {password}")
    mlflow = stack.read_state(cfg).get("mlflow")
    if mlflow is not None:
        print(f"MLflow UI:  {mlflow.url}")
    print(f"Alerts:     {cfg.home / 'alerts'} (mail/*.eml, slack/*.json)")
    print("The stack stays up: make down stops it.")
    if problems:
        print(f"\nThe demo's story did not hold ({len(problems)} finding(s)):", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    return 0
