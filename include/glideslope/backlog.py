"""The days each stage still owes, read from the lake rather than from the events.

Asset events can arrive merged or in part: a run attaches only some of the events queued behind
a running consumer (apache/airflow#56050), and a person may trigger a stage by hand. So a stage
never trusts the events to list its work. Each function here takes the run's request and returns
the days to do now:

- features: every published day after the online watermark, up to the newest one;
- scoring: the nights the run is for (its events, or the ``ds`` Param), and every unscored night
  before them that has its entities and features (:class:`ScoringPlan`: explicit catch-up; a run
  never scores a night after its own, and a quiet night is a skip with its reason);
- monitoring: every predicted night after the newest check.

A ``ds`` Param always means exactly that day (a person asked for it, e.g. a rerun). A run's
logical date is not a day of work here: a run triggered by hand now has a logical date the
replayed feed never delivers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

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


def partition_rows(lake: Lake, path: str) -> int | None:
    """Rows of a Parquet partition from its footer (no data read); None when it is not there."""
    import pyarrow.parquet as pq

    if not lake.exists(path):
        return None
    with lake.fs.open(path, "rb") as f:
        return int(pq.ParquetFile(f).metadata.num_rows)


@dataclass(frozen=True)
class ScoringPlan:
    """What one scoring run does, and why, said before anything is scored.

    ``own`` are the nights the run is for: the ``ds`` Param, or the nights of the Asset events it
    was given (with those merged into it, apache/airflow#56050). ``catch_up`` are earlier nights
    nobody scored yet (a failed run, a lost event), scored by this run and recorded as such.
    ``quiet`` are nights among those whose entities partition has no rows: nothing to score, a
    skip with its reason, never a failure. ``missing`` are own nights without their entities or
    features in the lake. A run never scores a night after its own: that night belongs to its
    own run, whatever a retry finds in the lake by then.
    """

    own: tuple[str, ...] = ()
    catch_up: tuple[str, ...] = ()
    quiet: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    @property
    def nights(self) -> list[str]:
        """The nights to score now, oldest first (quiet and missing ones left out)."""
        return sorted({*self.own, *self.catch_up} - {*self.quiet, *self.missing})

    def role(self, ds: str) -> str:
        return "own" if ds in self.own else "catch_up"

    def reasons(self) -> list[str]:
        """One line per night that is not scored, for the task log and the run's note."""
        return ([f"{d}: quiet night, its entities partition has 0 rows: nothing to score" for d in self.quiet]
                + [f"{d}: no entities or features in the lake for this night" for d in self.missing])

    def summary(self) -> dict[str, Any]:
        return {"own": list(self.own), "catch_up": list(self.catch_up), "quiet": list(self.quiet),
                "missing": list(self.missing), "nights": self.nights}


def _ready(uc: UseCase, lake: Lake, ds: str, features: set[str]) -> bool:
    return ds in features and lake.exists(lake.curated(uc.scoring.table, ds))


def own_nights(req: RunRequest) -> list[str]:
    """The nights a run is for: the ``ds`` Param, else every night its Asset events name."""
    explicit = _explicit(req)
    if explicit:
        return explicit
    days = set(req.event_days())
    for e in req.events:  # a features event names every day its materialization loaded
        days.update(str(d) for d in (e.extra.get("days") or []) if d)
    return sorted(days)


def plan_scoring(uc: UseCase, req: RunRequest, lake: Lake) -> ScoringPlan:
    """The nights a scoring run scores: its own, and the unscored nights before them.

    - a ``ds`` Param: exactly that night;
    - Asset events: the nights they name, plus every night after the newest predicted night and
      before the first of them that has its entities and features (a failed night, a lost event);
      with no predictions yet, only its own nights (history before the first champion is not
      scored after the fact);
    - no night named (a run by hand without ``ds``): every ready night after the newest
      predicted one, all as catch-up; with no predictions yet, the newest ready night.

    Nights whose entities partition has no rows are quiet: listed, never scored.
    """
    features = set(feature_days(uc, lake))
    own = own_nights(req)
    done = predicted_days(lake)
    newest_done = done[-1] if done else None
    if own:
        candidates = ([d for d in sorted(features) if (newest_done is not None and d > newest_done)
                       and d < own[0] and _ready(uc, lake, d, features)] if not _explicit(req) else [])
        # A night a person named is scored or fails naming what it lacks; an event's night that
        # lacks its partitions is reported and skipped.
        missing = [] if _explicit(req) else [d for d in own if not _ready(uc, lake, d, features)]
        catch_up = candidates
    else:
        ready = [d for d in sorted(features) if _ready(uc, lake, d, features)]
        catch_up = _after(ready, newest_done, None) if newest_done else ready[-1:]
        missing = []
    quiet = [d for d in [*own, *catch_up] if d not in missing
             and partition_rows(lake, lake.curated(uc.scoring.table, d)) == 0]
    # A quiet night before the run's own is simply passed over; only the run's own quiet night
    # is reported (its run skips it), so a long quiet spell is not repeated night after night.
    catch_up = [d for d in catch_up if d not in quiet]
    return ScoringPlan(own=tuple(own), catch_up=tuple(catch_up), quiet=tuple(d for d in quiet if d in own),
                       missing=tuple(missing))


def nights_to_score(uc: UseCase, req: RunRequest, lake: Lake) -> list[str]:
    """The nights :func:`plan_scoring` scores (see there)."""
    return plan_scoring(uc, req, lake).nights


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
