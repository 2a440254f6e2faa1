"""``make demo``: the whole loop of the bundled use case on replayed real 2013 days.

The embedded profile, one machine, no services. The demo plays the nightly scheduler: it runs
each DAG for its logical day with ``dag.test()`` against the same Airflow metadata database that
``make up`` serves, so every run it makes is listed in the UI afterwards.

Timeline (defaults; the choice of dates is explained in docs/drift.md):

1. history backfill, 2013-05-04 … 2013-06-11: the ETL stage (land → gate → Spark → gate →
   publish) in one Spark job, then feature materialization;
2. the first model: ``flight_delay__train`` as of 2013-05-31 → champion v1;
3. nightly cycles 2013-06-12 … 2013-07-03 through Airflow: ``__etl`` → ``__features`` →
   ``__score`` → ``__monitor``; a drift event from the monitor starts ``__train`` with the
   event's payload, exactly what the scheduler does for the Asset-scheduled DAG. June's drift
   retrains twice (06-19, 06-30); the July storms outlive the second retrain and the monitor
   escalates on 07-02 and pauses automatic retraining;
4. a summary: champion, predictions, alerts sent (the local mail sink and webhook receiver
   keep them as files), where to look.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import runpy
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from glideslope.config import PROJECT_ROOT, load_usecase, settings
from glideslope_local.env import embedded_airflow_env

STAGES = ("etl", "features", "train", "score", "monitor")


def _days(start: str, end: str) -> list[str]:
    a, b = date.fromisoformat(start), date.fromisoformat(end)
    return [(a + timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]


class Demo:
    def __init__(self, args: argparse.Namespace, console: Any):
        self.args = args
        self.console = console
        self.uc = load_usecase(args.usecase)
        self.cfg = settings()
        self.log_path = self.cfg.home / "demo" / "demo.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.timeline: list[tuple[str, str, str]] = []
        self.dags: dict[str, Any] = {}

    # -- plumbing --------------------------------------------------------------------------
    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """Send everything Airflow, Spark and the libraries print to the demo log."""
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        with open(self.log_path, "ab") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                os.close(saved[0])
                os.close(saved[1])

    def say(self, ds: str, what: str, style: str = "") -> None:
        self.timeline.append((ds, what, style))
        self.console.print(f"  [dim]{ds}[/dim]  " + (f"[{style}]{what}[/{style}]" if style else what))

    def dag(self, stage: str) -> Any:
        if stage not in self.dags:
            with self.quiet():
                self.dags[stage] = runpy.run_path(str(PROJECT_ROOT / "dags" / f"{stage}.py"))[
                    self.uc.dag_id(stage)]
        return self.dags[stage]

    def run(self, stage: str, ds: str, conf: dict[str, Any] | None = None) -> Any:
        """Run one DAG for logical day ``ds``; return the finished DagRun."""
        import pendulum

        y, m, d = map(int, ds.split("-"))
        t0 = time.monotonic()
        with self.console.status(f"[bold]{self.uc.dag_id(stage)}[/bold] for {ds} …"), self.quiet():
            dr = self.dag(stage).test(logical_date=pendulum.datetime(y, m, d, 6, tz="UTC"),
                                      run_conf={"ds": ds, **(conf or {})})
        states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
        if dr.state != "success":
            failed = [t for t, s in states.items() if s == "failed"]
            raise RuntimeError(f"{self.uc.dag_id(stage)} failed for {ds} (tasks {failed}); see {self.log_path}")
        self.console.print(f"  [dim]{ds}[/dim]  {self.uc.dag_id(stage):<22} [green]success[/green] "
                           f"[dim]{time.monotonic() - t0:5.1f}s[/dim]")
        return dr

    # -- what the demo looks at --------------------------------------------------------------
    def xcom(self, dr: Any, task_id: str, key: str = "return_value") -> Any:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            row = session.scalars(select(XComModel).where(
                XComModel.dag_id == dr.dag_id, XComModel.run_id == dr.run_id,
                XComModel.task_id == task_id, XComModel.key == key)).first()
            return XComModel.deserialize_value(row) if row is not None else None

    def report_monitor(self, ds: str, dr: Any) -> None:
        decision = self.xcom(dr, "decide_action", "decision") or {}
        action = decision.get("action", "?")
        reasons = "; ".join(decision.get("reasons") or [])
        style = {"trigger": "bold red", "escalate": "bold red", "suppress": "yellow"}.get(action, "dim")
        self.say(ds, f"monitor: {action} — {reasons}" if reasons else f"monitor: {action}", style)

    def drift_event(self, dr: Any) -> dict[str, Any] | None:
        from airflow.models.asset import AssetEvent, AssetModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            ev = session.scalars(
                select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .where(AssetModel.name == f"{self.uc.name}.drift", AssetEvent.source_run_id == dr.run_id)
            ).first()
            return dict(ev.extra or {}) if ev is not None else None

    def champion(self) -> tuple[str | None, dict[str, float]]:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=self.cfg.mlflow_tracking_uri)
        try:
            mv = client.get_model_version_by_alias(self.uc.registered_model, "champion")
        except Exception:  # no registered model or no alias yet
            return None, {}
        metrics = client.get_run(mv.run_id).data.metrics if mv.run_id else {}
        return mv.version, metrics

    def report_training(self, ds: str, dr: Any) -> None:
        states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
        version, metrics = self.champion()
        promoted = states.get("promote_champion") == "success"
        reason = self.xcom(dr, "evaluate_challenger", "message")
        if promoted:
            self.say(ds, f"challenger promoted: champion is now v{version}" + (f" — {reason}" if reason else ""),
                     "bold green")
        else:
            self.say(ds, f"challenger rejected: champion stays v{version}" + (f" — {reason}" if reason else ""),
                     "bold yellow")

    # -- the phases ----------------------------------------------------------------------
    def backfill(self) -> None:
        from glideslope.etl.pipeline import run_days

        days = _days(self.args.history_start, self.args.history_end)
        self.console.rule(f"1. History backfill: {days[0]} … {days[-1]} ({len(days)} days)")
        t0 = time.monotonic()
        with self.console.status(f"ETL stage for {len(days)} days in one Spark job …"), self.quiet():
            out = run_days(self.uc, days)
        rows = sum(v["outputs"][f"curated/{self.uc.label.table}"]["rows"] for v in out.values())
        self.say(days[-1], f"landed, validated and transformed {len(days)} days ({rows:,} flights) "
                           f"in {time.monotonic() - t0:.0f}s")
        self.run("features", days[-1])

    def first_model(self) -> None:
        ds = self.args.train_on
        self.console.rule(f"2. First model, trained as of {ds}")
        dr = self.run("train", ds, {"reason": "initial model for the demo"})
        self.report_training(ds, dr)

    def nightly(self) -> None:
        nights = _days(self.args.first_night, self.args.last_night)
        self.console.rule(f"3. Nightly cycles {nights[0]} … {nights[-1]}: etl → features → score → monitor")
        for i, ds in enumerate(nights, 1):
            self.console.print(f"[bold]night {i}/{len(nights)}[/bold] {ds}")
            self.run("etl", ds)
            self.run("features", ds)
            self.run("score", ds)
            mon = self.run("monitor", ds)
            self.report_monitor(ds, mon)
            event = self.drift_event(mon)
            if event is None:
                continue
            cols = ", ".join(event.get("drifted_columns") or [])
            self.say(ds, f"drift detected ({cols}) → Asset event {self.uc.name}.drift → {self.uc.dag_id('train')}",
                     "bold red")
            dr = self.run("train", ds, {"reason": f"drift event of {ds}: {cols}"})
            self.report_training(ds, dr)

    def summary(self, started: float) -> None:
        from rich.table import Table

        from glideslope.lake import Lake

        self.console.rule("4. Summary")
        lake = Lake.for_usecase(self.uc.name, self.cfg)
        version, metrics = self.champion()
        days = lake.partitions(lake.predictions())
        table = Table(show_header=False, box=None)
        table.add_row("champion", f"models:/{self.uc.registered_model}@champion = v{version}")
        shown = {k: v for k, v in sorted(metrics.items()) if k.startswith(("holdout_", "roc", "pr_", "log", "brier"))}
        table.add_row("its metrics", ", ".join(f"{k}={v:.3f}" for k, v in list(shown.items())[:6]) or "-")
        if days:
            last = lake.read_parquet(lake.predictions(days[-1]))
            table.add_row("predictions", f"{len(days)} nights, last {days[-1]}: {len(last):,} flights "
                                         f"→ {lake.predictions(days[-1])}")
        mails = sorted((self.cfg.home / "alerts" / "mail").glob("*.eml"))
        hooks = sorted((self.cfg.home / "alerts" / "slack").glob("*.json"))
        table.add_row("alerts sent", f"{len(mails)} e-mails in {self.cfg.home / 'alerts' / 'mail'}, "
                                     f"{len(hooks)} Slack messages in {self.cfg.home / 'alerts' / 'slack'}")
        table.add_row("lake", lake.base)
        table.add_row("Airflow UI", "make up  → http://127.0.0.1:8080 (the demo's runs are listed)")
        table.add_row("MLflow UI", "make mlflow-ui → http://127.0.0.1:5000")
        table.add_row("full log", str(self.log_path))
        table.add_row("wall time", f"{time.monotonic() - started:.0f}s")
        self.console.print(table)
        if mails:
            self.console.print("[bold]Alert subjects:[/bold]")
            from email import policy
            from email.parser import BytesParser

            for path in mails:
                msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
                self.console.print(f"  • {msg['subject']}")


def _prepare_airflow(console: Any) -> None:
    for key, value in embedded_airflow_env().items():
        os.environ.setdefault(key, value)
    db = Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"
    if not db.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        with console.status("Creating the Airflow metadata database …"):
            subprocess.run([str(Path(sys.executable).with_name("airflow")), "db", "migrate"], check=True,
                           capture_output=True)


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    ap = argparse.ArgumentParser(prog="glideslope demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--usecase", default="flight_delay")
    ap.add_argument("--history-start", default="2013-05-04")
    ap.add_argument("--history-end", default="2013-06-11")
    ap.add_argument("--train-on", default="2013-05-31")
    ap.add_argument("--first-night", default="2013-06-12")
    ap.add_argument("--last-night", default="2013-07-03")
    ap.add_argument("--keep", action="store_true", help="keep the previous demo's lake, models and runs")
    args = ap.parse_args(argv)

    console = Console(highlight=False)
    started = time.monotonic()
    cfg = settings()
    if cfg.profile != "embedded":
        console.print("[red]The demo runs on the embedded profile (GLIDESLOPE_PROFILE=embedded).[/red]")
        return 2
    from glideslope_local.stack import read_state

    if read_state(cfg):
        console.print("[red]Airflow (make up) is running on this home: stop it with `make down`, run the demo, "
                      "then `make up` again to browse the demo's runs.[/red]")
        return 2
    if not args.keep:
        for sub in ("lake", "mlflow", "feast", "alerts", "demo"):
            shutil.rmtree(cfg.home / sub, ignore_errors=True)
        shutil.rmtree(cfg.home / "airflow", ignore_errors=True)
    console.rule(f"[bold]Glideslope demo[/bold] — {args.usecase}, home {cfg.home}")
    _prepare_airflow(console)

    from glideslope_local.sinks import start_sinks, stop_sinks

    sinks = start_sinks(cfg.home / "alerts")
    console.print(f"Local SMTP sink on 127.0.0.1:{os.environ['GLIDESLOPE_SMTP_PORT']}, webhook receiver on "
                  f"127.0.0.1:{os.environ['GLIDESLOPE_WEBHOOK_PORT']}: alerts land in {cfg.home / 'alerts'}")
    demo = Demo(args, console)
    try:
        demo.backfill()
        demo.first_model()
        demo.nightly()
        time.sleep(1)  # let the last mails arrive
        demo.summary(started)
    except Exception as e:
        console.print(f"[bold red]demo failed:[/bold red] {e}")
        console.print(f"full log: {demo.log_path}")
        return 1
    finally:
        stop_sinks(*sinks)
    return 0
