"""The deadline on nightly scoring: a run still unfinished N minutes after it was queued alerts.

Built on Airflow's Deadline Alerts (``DeadlineAlert`` on the DAG): the scheduler computes the
need-by time of each run from ``DeadlineReference.DAGRUN_QUEUED_AT`` plus
``scoring.deadline_minutes`` and, when the run has not finished by then, queues
:func:`scoring_missed_deadline` on the executor (``SyncCallback``: it runs where the tasks run,
with the same Airflow connections the alerts use). The queue time is the reference because the
score DAG is scheduled by an Asset: its runs have no logical date to count from.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from glideslope.config import UseCase

CALLBACK = "glideslope.airflow.deadline.scoring_missed_deadline"


def scoring_deadline(uc: UseCase) -> Any:
    """The ``deadline=`` of ``<uc>__score`` (None without ``scoring.deadline_minutes``)."""
    from airflow.sdk.definitions.callback import SyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    minutes = uc.scoring.deadline_minutes
    if minutes is None:
        return None
    return DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT, interval=timedelta(minutes=minutes),
                         callback=SyncCallback(CALLBACK, kwargs={"usecase": uc.name, "minutes": minutes}),
                         name=f"{uc.name} nightly scoring")


def pending_nights(usecase: str) -> str:
    """The nights a late asset-triggered scoring run is for, read from the lake (never the wall clock).

    Such a run has no logical date and the scheduler's context does not carry its events: the
    nights it owes are the published nights not scored yet (the newest published night if none).
    """
    try:
        from glideslope.airflow.notifications import nights_label
        from glideslope.backlog import feature_days, plan_scoring
        from glideslope.config import load_usecase
        from glideslope.lake import Lake
        from glideslope.runrequest import build

        uc = load_usecase(usecase)
        lake = Lake.for_usecase(usecase)
        nights = plan_scoring(uc, build(usecase, run_type="manual"), lake).nights or feature_days(uc, lake)[-1:]
        return nights_label(nights) if nights else "no night named"
    except Exception:  # the alert goes out even when the lake cannot be read
        return "no night named"


def missed_deadline_alert(usecase: str, minutes: int, context: dict[str, Any] | None) -> Any:
    """The alert of a scoring run that missed its deadline (``context``: what the scheduler passes)."""
    from glideslope.alerts import Alert
    from glideslope.alerts.links import airflow_run_url

    run = (context or {}).get("dag_run") or {}
    deadline = (context or {}).get("deadline") or {}
    dag_id, run_id = run.get("dag_id") or f"{usecase}__score", run.get("dag_run_id") or run.get("run_id")
    ds = str((run.get("conf") or {}).get("ds") or (run.get("logical_date") or "")[:10]) or pending_nights(usecase)
    links = {"Airflow run": airflow_run_url(dag_id, run_id)} if run_id else {}
    return Alert(
        usecase=usecase, ds=ds, kind="scoring_late", severity="warning",
        title=f"{usecase}: nightly scoring not finished {minutes} min after it was queued",
        body=(f"Run {run_id} of {dag_id} (state {run.get('state')}, queued at {run.get('queued_at')}) missed its "
              f"deadline {deadline.get('deadline_time')} (scoring.deadline_minutes={minutes}). Predictions of the "
              "night may be late; the previous night's predictions stay in place."),
        links=links, facts={"run_id": run_id, "state": run.get("state"), "deadline_minutes": minutes})


def scoring_missed_deadline(usecase: str, minutes: int, context: dict[str, Any] | None = None, **_: Any) -> None:
    """Airflow's deadline callback: deliver the alert through the use case's normal routes."""
    from glideslope.airflow.notifications import send_alert

    send_alert(usecase, missed_deadline_alert(usecase, minutes, context))
