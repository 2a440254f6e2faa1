"""Load the newest feature rows into the online store, one interval per run, never backwards.

The online store keeps one row per entity: the latest one written. Loading an older day after a
newer one would make the online store go back in time, so the stage keeps a watermark (the last
day loaded) and only ever loads days after it, plus the watermark day itself when it is rerun
with corrected data.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from glideslope.config import Settings, UseCase, settings
from glideslope.features.store import store
from glideslope.lake import Lake

log = logging.getLogger(__name__)

WATERMARK = "online_watermark"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class OnlineStoreUnavailable(ConnectionError):
    """The online store does not answer: the watermark is not moved; a retry loads the same days."""


def _unreachable(e: BaseException) -> bool:
    if isinstance(e, (ConnectionError, TimeoutError)):
        return True
    try:
        import redis
    except ImportError:
        return False
    return isinstance(e, (redis.ConnectionError, redis.TimeoutError))


def _store_address(connection: str) -> str:
    """``host:port`` of a Redis connection string (never its password), or the SQLite path."""
    return connection.split(",", 1)[0]


def materialization_days(event_days: list[str], watermark: str | None) -> list[str]:
    """Days to load now, given the days the ETL just published and the last day already loaded.

    - nothing loaded yet: every published day;
    - days after the watermark: from the day after the watermark (filling any gap) to the newest;
    - a rerun of the watermark day: that day again (its corrected rows replace the old ones);
    - only days before the watermark (a backfill): nothing, the online store already holds newer rows.
    """
    if not event_days:
        return []
    newest = max(event_days)
    if watermark is None:
        first = min(event_days)
    elif newest < watermark:
        return []
    else:
        first = max(min(min(event_days), _next(watermark)), watermark)
    d, end, out = date.fromisoformat(first), date.fromisoformat(newest), []
    while d <= end:
        out.append(d.isoformat())
        d += timedelta(days=1)
    return out


def _next(ds: str) -> str:
    return (date.fromisoformat(ds) + timedelta(days=1)).isoformat()


def online_views(uc: UseCase, fs: Any) -> list[str]:
    """Feature views loaded from the lake: those of the use case's feature service."""
    service = fs.get_feature_service(uc.features.service, allow_cache=False)
    return [p.name for p in service.feature_view_projections]


def _interval(lake: Lake, tables: list[str], days: list[str], ts_col: str) -> tuple[datetime, datetime] | None:
    """Smallest and largest feature timestamp of ``days`` across ``tables`` (None if no partition)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    lo: datetime | None = None
    hi: datetime | None = None
    for table in tables:
        for ds in days:
            path = lake.features(table, ds)
            if not lake.exists(path):
                continue
            with lake.fs.open(path, "rb") as f:
                col = pq.read_table(f, columns=[ts_col]).column(ts_col)
            if len(col) == 0:
                continue
            mm = pc.min_max(col).as_py()
            lo = mm["min"] if lo is None else min(lo, mm["min"])
            hi = mm["max"] if hi is None else max(hi, mm["max"])
    if lo is None or hi is None:
        return None
    return _utc(lo), _utc(hi)


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def materialize_days(uc: UseCase, event_days: list[str], cfg: Settings | None = None) -> dict[str, Any]:
    """Load the feature rows of the newly published days into the online store.

    Returns a small summary; ``days`` is empty when there was nothing newer to load. Quiet nights
    (every feature partition of the days has 0 rows) load nothing: ``loaded`` is False, ``quiet``
    lists them, ``reason`` says so, and the watermark moves past them.
    """
    cfg = cfg or settings()
    lake = Lake.for_usecase(uc.name, cfg)
    state = lake.read_json(lake.state(WATERMARK), default={}) or {}
    watermark = state.get("ds")
    days = materialization_days(event_days, watermark)
    if not days:
        log.info("Days %s are not newer than the online watermark %s: nothing to load", event_days, watermark)
        return {"days": [], "watermark": watermark, "loaded": False}
    missing = [d for d in days if not all(lake.exists(lake.features(t, d)) for t in uc.features.tables)]
    if days[-1] in missing:
        raise FileNotFoundError(
            f"feature partitions of {days[-1]} missing under {lake.base}/features/<table>/ds={days[-1]}/data.parquet "
            f"(tables {uc.features.tables}); run {uc.dag_id('etl')} for that day first"
        )
    if missing:
        # A day the ETL quarantined has no features; the newer days still go online.
        log.warning("No feature partitions for %s: skipped", missing)
        days = [d for d in days if d not in missing]
    interval = _interval(lake, uc.features.tables, days, uc.event_timestamp)
    if interval is None:
        # Quiet nights: the ETL published 0-row partitions (an empty delivery). Nothing is new, so
        # nothing is loaded and the online store keeps the values of the last night with events;
        # the watermark moves on so these nights are not looked at again.
        reason = (f"quiet night{'s' if len(days) > 1 else ''} {', '.join(days)}: the feature partitions have 0 rows, "
                  "nothing to load (the online store keeps the last night with events)")
        log.info("%s", reason)
        lake.write_json(lake.state(WATERMARK), {**state, "ds": days[-1], "quiet": days,
                                                "at": datetime.now(UTC).isoformat()})
        return {"days": days, "skipped": missing, "quiet": days, "watermark": days[-1], "loaded": False,
                "reason": reason}
    fs = store(uc, cfg)
    views = online_views(uc, fs)
    start, end = interval
    log.info("Materializing %s for days %s..%s: event timestamps [%s, %s]", views, days[0], days[-1], start, end)
    # Feast prints coloured progress to stdout; keep task logs readable by logging it plain.
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            fs.materialize(start_date=start, end_date=end, feature_views=views)
    except Exception as e:
        if not _unreachable(e):
            raise
        raise OnlineStoreUnavailable(
            f"online store {cfg.feast_online_type} {_store_address(cfg.feast_online_store)} is not reachable "
            f"({type(e).__name__}: {e}); the load of {days[0]}..{days[-1]} did not finish and the watermark stays "
            f"at {watermark or 'none (nothing loaded yet)'}, so the next run loads these days again"
        ) from e
    for line in ANSI.sub("", out.getvalue()).splitlines():
        if line.strip():
            log.info("feast: %s", line.strip())
    lake.write_json(lake.state(WATERMARK), {"ds": days[-1], "start": start.isoformat(), "end": end.isoformat(),
                                            "views": views, "at": datetime.now(UTC).isoformat()})
    return {"days": days, "skipped": missing, "start": start.isoformat(), "end": end.isoformat(),
            "views": views, "watermark": days[-1], "loaded": True}


def latest_feature_day(uc: UseCase, cfg: Settings | None = None) -> str | None:
    """Newest day whose partitions exist for every feature table of ``uc``."""
    lake = Lake.for_usecase(uc.name, cfg or settings())
    per_table = [set(lake.partitions(lake.features(t))) for t in uc.features.tables]
    common = set.intersection(*per_table) if per_table else set()
    return max(common) if common else None
