"""Point-in-time feature retrieval for training and scoring, and the model's input columns.

Both the training set and the nightly scoring batch are built by the same join: each entity row
gets the latest feature row of Feast's offline store stamped at or before the row's event
timestamp (within the view's TTL). Using one path for both is what keeps training and serving
from drifting apart. The join runs in one DuckDB pass over the store's Parquet files
(:mod:`glideslope.features.asof`, checked against Feast's own join by a test), or through Feast
where a view is something else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from glideslope.config import UseCase

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

ROW_ID = "__glideslope_row"


def service_features(uc: UseCase, fs: FeatureStore) -> list[str]:
    """Feature columns of the use case's feature service, in declaration order."""
    service = fs.get_feature_service(uc.features.service, allow_cache=False)
    out: list[str] = []
    for proj in service.feature_view_projections:
        out += [f.name for f in proj.features if f.name not in out]
    return out


def join_keys(uc: UseCase, fs: FeatureStore) -> list[str]:
    """Entity columns an entity row needs for every view of the feature service."""
    service = fs.get_feature_service(uc.features.service, allow_cache=False)
    keys: list[str] = []
    for proj in service.feature_view_projections:
        view = fs.get_feature_view(proj.name, allow_registry_cache=True)
        keys += [c.name for c in view.entity_columns if c.name not in keys]
    return keys


def model_inputs(uc: UseCase, fs: FeatureStore) -> list[str]:
    """Model input columns: the request columns, then the feature service's features."""
    feats = service_features(uc, fs)
    return [*uc.features.request_columns, *[f for f in feats if f not in uc.features.request_columns]]


def historical_features(uc: UseCase, entity_df: pd.DataFrame, fs: FeatureStore,
                        engine: str = "auto") -> pd.DataFrame:
    """``entity_df`` (same rows, same order) with the feature service's features joined as of each row.

    ``engine`` is ``"duckdb"`` (one ``ASOF`` join over the offline store's Parquet files,
    :mod:`glideslope.features.asof`), ``"feast"`` (Feast's ``get_historical_features``), or
    ``"auto"``: DuckDB where it gives Feast's answer (every view a Parquet file source), else Feast.
    Raises when the join returns a different number of rows: a join that drops or duplicates
    entity rows would silently bias a training set.
    """
    from glideslope.features import asof

    missing = [c for c in [uc.event_timestamp, *join_keys(uc, fs)] if c not in entity_df.columns]
    if missing:
        raise ValueError(f"entity rows for {uc.features.service} lack columns {missing}")
    if engine not in ("auto", "duckdb", "feast"):
        raise ValueError(f"engine must be auto, duckdb or feast, not {engine!r}")
    joins = asof.plan(uc, fs) if engine != "feast" else "Feast asked for"
    if isinstance(joins, str) and engine == "duckdb":
        raise ValueError(f"{uc.features.service}: {joins}; the DuckDB join cannot answer it")
    if not isinstance(joins, str):
        from glideslope.features.store import offline_connection

        return asof.point_in_time(uc, entity_df, fs, joins, con=offline_connection([j.path for j in joins]))
    ent = entity_df.reset_index(drop=True).copy()
    ent[ROW_ID] = range(len(ent))
    service = fs.get_feature_service(uc.features.service, allow_cache=False)
    out = fs.get_historical_features(entity_df=ent, features=service).to_df()
    if len(out) != len(ent) or out[ROW_ID].nunique() != len(ent):
        raise RuntimeError(
            f"point-in-time join of {uc.features.service} returned {len(out)} rows for {len(ent)} entity rows"
        )
    out = out.sort_values(ROW_ID).drop(columns=[ROW_ID]).reset_index(drop=True)
    # Feast may hand timestamps back in another unit or zone; keep the caller's.
    out[uc.event_timestamp] = ent[uc.event_timestamp].to_numpy()
    return out


def model_frame(df: pd.DataFrame, inputs: list[str], categorical: list[str]) -> pd.DataFrame:
    """The model's input columns with stable dtypes: float64 numerics, object strings for categories.

    Training and scoring both go through here, so the logged signature matches what scoring sends
    (an int column that gains a null would otherwise turn float and fail schema enforcement).
    """
    import numpy as np
    import pandas as pd

    missing = [c for c in inputs if c not in df.columns]
    if missing:
        raise ValueError(f"model inputs missing from the frame: {missing}")
    out: dict[str, Any] = {}
    for c in inputs:
        if c in categorical:
            col = df[c].astype("object")
            out[c] = col.where(col.notna(), None).map(lambda v: v if v is None else str(v))
        else:
            out[c] = pd.to_numeric(df[c], errors="raise").astype(np.float64)
    return pd.DataFrame(out, index=df.index)
