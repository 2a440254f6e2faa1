"""Point-in-time training sets: labelled events of a window of days, joined to their features.

The training set of logical day D covers the ``window_days`` days ending at D. Its most recent
``holdout_days`` days *with labelled rows* are the holdout (quiet nights, whose partitions have
no rows, do not count): never trained on, used to compare candidates and to judge the
challenger against the champion. The set is written once per (D, window) to the lake, so the
training step (in-process or in a GPU pod) and the evaluation step read exactly the same rows.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from glideslope.config import Settings, UseCase, settings
from glideslope.lake import Lake

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

META_KEY = b"glideslope"


@dataclass(frozen=True)
class TrainingSetMeta:
    """What a training set file is, stored in its Parquet schema metadata."""

    usecase: str
    ds: str
    window_days: int
    holdout_days: int
    days: list[str]
    train_days: list[str]
    holdout: list[str]
    missing_days: list[str]
    inputs: list[str]
    categorical: list[str]
    label: str
    task: str
    entity_key: str
    feature_service: str

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


def training_set_path(lake: Lake, ds: str, window_days: int, holdout_days: int, label: str) -> str:
    return f"{lake.base}/training/ds={ds}/window={window_days}-holdout={holdout_days}/label={label}/data.parquet"


def window(ds: str, window_days: int) -> list[str]:
    """The ``window_days`` calendar days ending at ``ds``, oldest first."""
    end = date.fromisoformat(ds)
    return [(end - timedelta(days=i)).isoformat() for i in range(window_days - 1, -1, -1)]


def split_days(days: list[str], holdout_days: int) -> tuple[list[str], list[str]]:
    """(training days, holdout days): the holdout is the ``holdout_days`` most recent days."""
    days = sorted(days)
    if len(days) <= holdout_days:
        raise ValueError(f"{len(days)} labelled days cannot hold a {holdout_days}-day holdout and a training part")
    return days[:-holdout_days], days[-holdout_days:]


def labelled_days(lake: Lake, table: str, days: list[str]) -> tuple[list[str], list[str]]:
    """(days with labelled rows, quiet days whose partition has 0 rows) among ``days``, oldest first.

    The holdout and the training part are counted in nights with events: a quiet night (an empty
    delivery) is neither, so a holdout never falls into a break with no rows at all.
    """
    from glideslope.backlog import partition_rows

    present, quiet = [], []
    for d in sorted(days):
        rows = partition_rows(lake, lake.curated(table, d))
        if rows:
            present.append(d)
        elif rows == 0:
            quiet.append(d)
    return present, quiet


def latest_label_day(uc: UseCase, cfg: Settings | None = None) -> str | None:
    lake = Lake.for_usecase(uc.name, cfg or settings())
    days = lake.partitions(lake.curated(uc.label.table))
    return days[-1] if days else None


def _entity_columns(uc: UseCase, keys: list[str]) -> list[str]:
    cols = [uc.entity_key, uc.event_timestamp, *keys, *uc.features.request_columns, *uc.promotion.slices,
            uc.label.column, "ds"]
    return list(dict.fromkeys(cols))


def build_training_set(
    uc: UseCase,
    ds: str,
    window_days: int | None = None,
    holdout_days: int | None = None,
    cfg: Settings | None = None,
) -> dict[str, Any]:
    """Join the labelled events of the window ending at ``ds`` to their features; write it to the lake.

    Days of the window without a label partition (not landed yet, or quarantined) are left out and
    listed in the result; at least ``holdout_days + 1`` labelled days are required.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from glideslope.features import store
    from glideslope.features.retrieval import historical_features, join_keys, model_inputs

    cfg = cfg or settings()
    window_days = window_days or uc.training.window_days
    holdout_days = holdout_days or uc.training.holdout_days
    if holdout_days >= window_days:
        raise ValueError(f"holdout_days ({holdout_days}) must be smaller than window_days ({window_days})")
    lake = Lake.for_usecase(uc.name, cfg)
    wanted = window(ds, window_days)
    present, quiet = labelled_days(lake, uc.label.table, wanted)
    missing = [d for d in wanted if d not in present and d not in quiet]
    if len(present) < holdout_days + 1:
        raise FileNotFoundError(
            f"training set {uc.name} ds={ds}: only {len(present)} of the {window_days} days {wanted[0]}..{wanted[-1]} "
            f"have labelled rows under {lake.curated(uc.label.table)}/ds=<day>/data.parquet ({len(quiet)} quiet "
            f"nights with 0 rows, {len(missing)} without a partition); need at least {holdout_days + 1} "
            f"(holdout {holdout_days} + 1). Run {uc.dag_id('etl')} for the missing days, or widen "
            "training.window_days for a use case whose events skip nights."
        )
    if missing:
        log.warning("training set %s ds=%s: no labels for %s; training without them", uc.name, ds, missing)
    if quiet:
        log.info("training set %s ds=%s: quiet nights (0 labelled rows) %s; the holdout is the last %d nights "
                 "with labelled rows", uc.name, ds, quiet, holdout_days)
    train_days, holdout = split_days(present, holdout_days)

    fs = store(uc, cfg)
    keys = join_keys(uc, fs)
    cols = _entity_columns(uc, keys)
    frames = []
    for d in present:
        df = lake.read_parquet(lake.curated(uc.label.table, d))
        absent = [c for c in cols if c not in df.columns]
        if absent:
            raise ValueError(f"{lake.curated(uc.label.table, d)}: columns {absent} missing (needed for training)")
        frames.append(df[cols])
    events = pd.concat(frames, ignore_index=True)
    if events[uc.label.column].isna().any():
        n = int(events[uc.label.column].isna().sum())
        raise ValueError(f"{lake.curated(uc.label.table)}: {n} rows with a null label {uc.label.column!r}")
    joined = historical_features(uc, events, fs)

    meta = TrainingSetMeta(
        usecase=uc.name, ds=ds, window_days=window_days, holdout_days=holdout_days, days=present,
        train_days=train_days, holdout=holdout, missing_days=missing, inputs=model_inputs(uc, fs),
        categorical=list(uc.features.categorical), label=uc.label.column, task=uc.label.task,
        entity_key=uc.entity_key, feature_service=uc.features.service,
    )
    table = pa.Table.from_pandas(joined, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: meta.to_json().encode()})
    path = training_set_path(lake, ds, window_days, holdout_days, uc.label.column)
    with lake.publishing(path) as staging, lake.fs.open(staging, "wb") as f:
        pq.write_table(table, f, coerce_timestamps="us", allow_truncated_timestamps=True)
    is_train = joined["ds"].isin(train_days)
    summary = {
        "uri": path, "ds": ds, "rows": len(joined), "train_rows": int(is_train.sum()),
        "holdout_rows": int((~is_train).sum()), "window_days": window_days, "holdout_days": holdout_days,
        "train_days": [train_days[0], train_days[-1]], "holdout": [holdout[0], holdout[-1]],
        "missing_days": missing, "quiet_days": quiet, "inputs": meta.inputs,
    }
    if uc.label.task == "binary_classification":
        summary["positive_rate"] = round(float(joined[uc.label.column].mean()), 4)
    log.info("training set %s", summary)
    return summary


def load_training_set(uri: str, cfg: Settings | None = None) -> tuple[pd.DataFrame, TrainingSetMeta]:
    """A training set written by :func:`build_training_set`, with its metadata."""
    import pyarrow.parquet as pq

    from glideslope.lake import filesystem

    fs = filesystem(uri, (cfg or settings()).s3_endpoint_url)
    if not fs.exists(uri):
        raise FileNotFoundError(f"training set {uri} not found; build it first (build_training_set)")
    with fs.open(uri, "rb") as f:
        table = pq.read_table(f)
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise ValueError(f"{uri}: no glideslope metadata in the Parquet schema; not a training set")
    return table.to_pandas(), TrainingSetMeta(**json.loads(raw))


def split(df: pd.DataFrame, meta: TrainingSetMeta) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows, holdout rows) of a loaded training set."""
    is_holdout = df["ds"].isin(meta.holdout)
    return df[~is_holdout].reset_index(drop=True), df[is_holdout].reset_index(drop=True)
