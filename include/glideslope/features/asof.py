"""The point-in-time join of a feature service, in one DuckDB pass over the offline store's Parquet.

Feast's DuckDB offline store builds the join through ibis as an inner join of every feature row
at or before each entity row, ranked and deduplicated afterwards. That is the right answer but an
expensive way to get it: on a nightly scoring batch most of the time goes there. This module asks
the same question with DuckDB's ``ASOF LEFT JOIN`` over the same files, with Feast's semantics:

* a feature row matches an entity row on the view's join keys when its event timestamp is at or
  before the entity row's, and (when the view has a TTL) no older than the TTL;
* of the matching rows the newest event timestamp wins; among rows with the same event timestamp,
  the newest ``created`` timestamp wins;
* an entity row with no match gets nulls; rows keep their number and order.

:func:`point_in_time` answers only what it can answer exactly the same way: every view of the
service a plain Parquet :class:`~feast.FileSource`, no on-demand views. For anything else
:func:`supported` says why and the caller uses Feast. ``tests/unit/test_asof_join.py`` checks the
answers against ``get_historical_features`` on the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from glideslope.config import UseCase

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

ROW = "__glideslope_row"
TS = "__glideslope_ts"


@dataclass(frozen=True)
class ViewJoin:
    """What one view of the service contributes: its files, keys, timestamps and feature columns."""

    name: str
    path: str
    join_keys: dict[str, str]  # column in the feature files -> column in the entity rows
    timestamp: str
    created: str | None
    features: dict[str, str]  # column in the feature files -> output column
    ttl: timedelta | None


def plan(uc: UseCase, fs: FeatureStore) -> list[ViewJoin] | str:
    """The per-view joins of ``uc``'s feature service, or the reason Feast must answer instead."""
    from feast import FileSource
    from feast.data_format import ParquetFormat

    service = fs.get_feature_service(uc.features.service, allow_cache=False)
    joins: list[ViewJoin] = []
    for proj in service.feature_view_projections:
        try:
            view = fs.get_feature_view(proj.name, allow_registry_cache=True)
        except Exception:  # an on-demand or stream view: not a plain table lookup
            return f"{proj.name} is not a batch feature view"
        source = view.batch_source
        if not isinstance(source, FileSource) or not isinstance(source.file_format, ParquetFormat):
            return f"{proj.name} does not read Parquet files"
        if "://" in source.path and not source.path.startswith("s3://"):
            return f"{proj.name} reads {source.path}, which DuckDB is not set up for here"
        to_file = {new: old for old, new in (source.field_mapping or {}).items()}
        keys = {to_file.get(c.name, c.name): (proj.join_key_map or {}).get(c.name, c.name)
                for c in view.entity_columns}
        features = {to_file.get(f.name, f.name): f.name for f in proj.features}
        joins.append(ViewJoin(
            name=proj.name, path=source.path, join_keys=keys,
            timestamp=to_file.get(source.timestamp_field, source.timestamp_field),
            created=to_file.get(source.created_timestamp_column, source.created_timestamp_column) or None,
            features=features, ttl=view.ttl if view.ttl and view.ttl > timedelta(0) else None,
        ))
    return joins


def supported(uc: UseCase, fs: FeatureStore) -> str | None:
    """``None`` when :func:`point_in_time` can answer for ``uc``'s service, else the reason why not."""
    joins = plan(uc, fs)
    return joins if isinstance(joins, str) else None


def utc_timestamps(col: pd.Series) -> pd.Series:
    """``col`` as zoned UTC timestamps; a column that already holds timestamps is converted, not
    parsed (``pd.to_datetime`` walks a zoned column row by row: 0.2 s per 100,000 rows)."""
    import pandas as pd

    if isinstance(col.dtype, pd.DatetimeTZDtype):
        return col.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(col.dtype):
        return col.dt.tz_localize("UTC")
    return pd.to_datetime(col, utc=True)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _view_query(join: ViewJoin, entity_ts: str) -> str:
    """One view's ASOF LEFT JOIN: the entity row number, and its features (null past the TTL)."""
    keys = list(join.join_keys)
    part = ", ".join(_ident(k) for k in keys)
    order = f"{_ident(join.created)} DESC NULLS LAST" if join.created else "1"
    inner = (
        f"SELECT {', '.join(_ident(k) for k in keys)}, "
        f"CAST({_ident(join.timestamp)} AS TIMESTAMPTZ) AS {TS}, "
        + ", ".join(f"{_ident(src)} AS {_ident('f_' + dst)}" for src, dst in join.features.items())
        + f" FROM read_parquet({_text(join.path)}, union_by_name = true)"
        # Only rows that can match: not after the newest entity row, not older than the TTL allows.
        + f" WHERE CAST({_ident(join.timestamp)} AS TIMESTAMPTZ) <= (SELECT max({_ident(entity_ts)}) FROM ent)"
        + (f" AND CAST({_ident(join.timestamp)} AS TIMESTAMPTZ) >= (SELECT min({_ident(entity_ts)}) FROM ent)"
           f" - INTERVAL {int(join.ttl.total_seconds())} SECOND" if join.ttl else "")
        + f" QUALIFY row_number() OVER (PARTITION BY {part}, {TS} ORDER BY {order}) = 1"
    )
    on = " AND ".join(f"e.{_ident(ent)} = f.{_ident(src)}" for src, ent in join.join_keys.items())
    fresh = (f"f.{TS} >= e.{_ident(entity_ts)} - INTERVAL {int(join.ttl.total_seconds())} SECOND"
             if join.ttl else "TRUE")
    cols = ", ".join(f"CASE WHEN {fresh} THEN f.{_ident('f_' + dst)} END AS {_ident(dst)}"
                     for dst in join.features.values())
    return (f"SELECT e.{ROW}, {cols} FROM ent e ASOF LEFT JOIN ({inner}) f "
            f"ON {on} AND e.{_ident(entity_ts)} >= f.{TS}")


def point_in_time(uc: UseCase, entity_df: pd.DataFrame, fs: FeatureStore,
                  joins: list[ViewJoin] | None = None, con: Any = None) -> pd.DataFrame:
    """``entity_df`` (same rows, same order) with the service's features joined as of each row.

    The entity timestamps must be timezone-aware (UTC). ``con`` is a DuckDB connection able to read
    the lake (for ``s3://``, one with ``httpfs`` and the S3 secret); by default a fresh local one.
    """
    import duckdb
    import pyarrow as pa

    if joins is None:
        planned = plan(uc, fs)
        if isinstance(planned, str):
            raise ValueError(f"{uc.features.service}: {planned}; use Feast's get_historical_features")
        joins = planned
    ts_col = uc.event_timestamp
    ent = entity_df.reset_index(drop=True)
    keys = sorted({k for j in joins for k in j.join_keys.values()})
    missing = [c for c in [ts_col, *keys] if c not in ent.columns]
    if missing:
        raise ValueError(f"entity rows for {uc.features.service} lack columns {missing}")
    ts = utc_timestamps(ent[ts_col])
    query = pa.table({ROW: pa.array(range(len(ent)), pa.int64()),
                      ts_col: pa.Array.from_pandas(ts.astype("datetime64[us, UTC]")),
                      **{k: pa.Array.from_pandas(ent[k]) for k in keys if k != ts_col}})
    own = con is None
    con = con or duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        # Below this many feature rows DuckDB turns an ASOF join into a nested loop over every
        # entity row (a 100,000-row night: 1.4 s instead of 0.1 s per view); always merge.
        con.execute("SET asof_loop_join_threshold = 0")
        con.register("ent", query)
        out = ent.copy()
        for join in joins:
            got = con.execute(f"{_view_query(join, ts_col)} ORDER BY {ROW}").to_arrow_table()
            if got.num_rows != len(ent):
                raise RuntimeError(f"point-in-time join of {join.name} returned {got.num_rows} rows "
                                   f"for {len(ent)} entity rows")
            frame = got.drop([ROW]).to_pandas()
            for col in frame.columns:
                out[col] = frame[col].to_numpy()
        con.unregister("ent")
    finally:
        if own:
            con.close()
    return out
