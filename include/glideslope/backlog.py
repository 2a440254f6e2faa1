"""The days each stage still owes, read from the lake rather than from the events.

Asset events can arrive merged or in part: a run attaches only some of the events queued behind
a running consumer (apache/airflow#56050), and a person may trigger a stage by hand. So a stage
never trusts the events to list its work. Each function here takes the run's request and returns
the days to do now:

- features: every published day after the online watermark, up to the newest one;
- scoring: every night after the newest predicted night that has its entities and features;
- monitoring: every predicted night after the newest check.

A ``ds`` Param always means exactly that day (a person asked for it, e.g. a rerun). A run's
logical date is not a day of work here: a run triggered by hand now has a logical date the
replayed feed never delivers.
"""

from __future__ import annotations

from collections.abc import Iterable

from glideslope.config import UseCase
from glideslope.lake import Lake
from glideslope.runrequest import RunRequest


def _explicit(req: RunRequest) -> list[str] | None:
    return [str(req.params["ds"])] if req.params.get("ds") else None


def feature_days(uc: UseCase, lake: Lake) -> list[str]:
    """Days whose partitions exist for every feature table."""
    per_table = [set(lake.partitions(lake.features(t))) for t in uc.features.tables]
    return sorted(set.intersection(*per_table)) if per_table else []


def _after(days: Iterable[str], mark: str | None, upto: str | None) -> list[str]:
    return sorted(d for d in days if (mark is None or d > mark) and (upto is None or d <= upto))


def features_to_load(uc: UseCase, req: RunRequest, lake: Lake) -> list[str]:
    """Days to hand to the materialization (it fills the gap after its watermark itself)."""
    explicit = _explicit(req)
    if explicit:
        return explicit
    # The days the ETL's events name, never a run's logical date: a run triggered by hand today
    # has a logical date the feed may never deliver.
    days = set(req.event_days())
    published = feature_days(uc, lake)
    if published:
        days.add(published[-1])  # the newest day, even when its event was lost
    return sorted(days)


def predicted_days(lake: Lake) -> list[str]:
    return sorted(lake.partitions(lake.predictions()))


def nights_to_score(uc: UseCase, req: RunRequest, lake: Lake) -> list[str]:
    """Every night after the newest predicted night that has its entities and features.

    Not only the nights the events name: an event merged into another (or a gap) is caught up.
    With no predictions yet only the newest night is scored: history before the first champion
    is not scored after the fact.
    """
    explicit = _explicit(req)
    if explicit:
        return explicit
    ready = [d for d in feature_days(uc, lake) if lake.exists(lake.curated(uc.scoring.table, d))]
    if not ready:
        return []
    done = predicted_days(lake)
    if not done:
        return ready[-1:]
    return _after(ready, done[-1], None)


def nights_to_check(req: RunRequest, lake: Lake, checked: Iterable[str]) -> list[str]:
    """Every predicted night after the newest check.

    A run for nights that were all checked already (a rerun by hand or a repeated event) checks
    the requested nights again.
    """
    explicit = _explicit(req)
    if explicit:
        return explicit
    todo = _after(predicted_days(lake), max(checked, default=None), None)
    return todo or req.event_days()
