"""Nightly precomputed scoring: the champion scores the entities of the next period.

For logical day D the entities are ``curated/<scoring.table>/ds=D`` (for flight_delay: the flights
scheduled on D+1). Features come from the Feast *offline* store, joined point in time as of the
moment D's features were published (the newest feature timestamp of day D) -- not from the online
store, because

* the online store holds only the latest values: a rerun or backfill of D after D+1 was loaded
  would score with D+1's features, so reruns would neither be identical nor leakage-free;
* the join is the one the training set used, so training and serving see features the same way.

The model is loaded once, by version; rows are scored in chunks of ``scoring.chunk_rows`` (memory
stays bounded by the chunk, not the day) and written to a staging file. Each chunk is validated
with Great Expectations before it is written (row count equals the input, no nulls, probabilities
in [0, 1], unique keys); only a complete, valid file replaces ``predictions/ds=D/data.parquet``.
A batch that fails a gate is not deleted: the chunks scored so far, the failing one included, go
to ``quarantine/predictions/ds=D/<slot>/data.parquet`` with ``_reason.json`` for a person to look
at, and the last good predictions stay as they were.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from glideslope.config import Settings, UseCase, settings
from glideslope.errors import PermanentError
from glideslope.lake import Lake
from glideslope.quality.validate import DataQualityError
from glideslope.scoring.models import LoadedModel, champion_version, load_version, scores
from glideslope.training import tracking

log = logging.getLogger(__name__)

PREDICTION = "prediction"
SYSTEM_COLUMNS = [PREDICTION, "model_version", "model_name", "ds"]


def feature_cutoff(uc: UseCase, ds: str, lake: Lake) -> Any:
    """When day ``ds``'s features became known: the newest feature timestamp of that day (UTC)."""
    import pandas as pd
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    newest = None
    for table in uc.features.tables:
        path = lake.features(table, ds)
        if not lake.exists(path):
            raise FileNotFoundError(f"{path} not found: the features of {ds} are needed to score its entities; "
                                    f"run {uc.dag_id('etl')} for {ds} first")
        with lake.fs.open(path, "rb") as f:
            col = pq.read_table(f, columns=[uc.event_timestamp]).column(uc.event_timestamp)
        if len(col):
            mx = pc.max(col).as_py()
            newest = mx if newest is None else max(newest, mx)
    if newest is None:
        raise ValueError(f"feature partitions of {ds} are empty under {lake.base}/features")
    ts = pd.Timestamp(newest)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def output_columns(uc: UseCase, inputs: list[str]) -> list[str]:
    cols = [uc.entity_key, uc.event_timestamp, *inputs, *SYSTEM_COLUMNS]
    return list(dict.fromkeys(cols))


def score_frame(uc: UseCase, entities: Any, model: LoadedModel, fs: Any, as_of: Any, ds: str) -> Any:
    """Score one chunk of entity rows: point-in-time features as of ``as_of``, then the model."""

    from glideslope.features.asof import utc_timestamps
    from glideslope.features.retrieval import historical_features, model_frame

    ent = entities.reset_index(drop=True)
    event_ts = utc_timestamps(ent[uc.event_timestamp])
    # Join as of min(event time, the moment D's features were known): nothing published later is used.
    query = ent.copy()
    query[uc.event_timestamp] = event_ts.where(event_ts <= as_of, as_of).astype(event_ts.dtype)
    joined = historical_features(uc, query, fs)
    X = model_frame(joined, model.inputs, uc.features.categorical)
    out = X.copy()
    # ``.array``, not ``.to_numpy()``: a zoned timestamp column as numpy is one object per row.
    out.insert(0, uc.event_timestamp, event_ts.astype("datetime64[us, UTC]").array)
    out.insert(0, uc.entity_key, ent[uc.entity_key].astype(str).to_numpy())
    out[PREDICTION] = scores(model, X, uc.label.task)
    out["model_version"] = model.version
    out["model_name"] = model.name
    out["ds"] = ds
    return out[output_columns(uc, model.inputs)]


def _expectations(uc: UseCase, rows: int) -> list[Any]:
    import great_expectations.expectations as gxe

    exps: list[Any] = [gxe.ExpectTableRowCountToEqual(value=rows)]
    for col in [uc.entity_key, uc.event_timestamp, *SYSTEM_COLUMNS]:
        exps.append(gxe.ExpectColumnValuesToNotBeNull(column=col))
    exps.append(gxe.ExpectColumnValuesToBeUnique(column=uc.entity_key))
    if uc.label.task == "binary_classification":
        exps.append(gxe.ExpectColumnValuesToBeBetween(column=PREDICTION, min_value=0.0, max_value=1.0))
    return exps


def validate_chunk(uc: UseCase, chunk: Any, expected_rows: int, where: str) -> None:
    """Great Expectations gate of one scored chunk; raises DataQualityError naming column and rule."""
    from glideslope.quality.validate import DataQualityError, run_expectations

    report = run_expectations(chunk, _expectations(uc, expected_rows), where, f"{uc.name}_predictions")
    if not report.success:
        raise DataQualityError([report])


class PredictionGateError(PermanentError, ValueError):
    """A prediction batch is inconsistent as a whole (keys repeat across chunks, rows went missing)."""


def _append_failing_chunk(writer: Any, dst: Any, chunk: Any) -> Any:
    """Add the chunk that failed its gate to the batch file, so quarantine holds what was scored."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pa.Table.from_pandas(chunk, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(dst, table.schema, coerce_timestamps="us", allow_truncated_timestamps=True)
        writer.write_table(table)
    except Exception:  # the batch so far is still worth keeping; the gate's error is what is raised
        log.exception("could not add the failing chunk to the quarantined prediction batch")
    return writer


def _quarantine_batch(uc: UseCase, lake: Lake, staging: str, ds: str, err: Exception, model: LoadedModel,
                      rows: int) -> Exception:
    """Move the staged batch to ``quarantine/predictions/ds=<ds>/<slot>/`` with its reason.

    Returns the error to raise: the gate's own, naming where the batch now is.
    """
    slot = lake.quarantine_slot("predictions", ds)
    dest = f"{slot}/data.parquet"
    reason: dict[str, Any] = {
        "usecase": uc.name, "ds": ds, "error": str(err), "error_type": type(err).__name__,
        "model_name": model.name, "model_version": model.version, "rows_in_file": rows,
        "would_have_replaced": lake.predictions(ds), "moved_to": dest,
        "moved_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if isinstance(err, DataQualityError):
        reason["failures"] = [f for r in err.reports for f in r.summary()["failures"]]
    try:
        lake.write_json(f"{slot}/_reason.json", reason)
        lake.fs.mv(staging, dest)
    except Exception:
        log.exception("could not quarantine the failing prediction batch %s; it is deleted", staging)
        return err
    log.warning("prediction batch of %s ds=%s failed its gate; quarantined at %s (%d rows)", uc.name, ds,
                dest, rows)
    if isinstance(err, DataQualityError):
        return DataQualityError(err.reports, [dest])
    return PredictionGateError(f"{err}\nmoved to quarantine (nothing deleted): {dest}")


def score_day(uc: UseCase, ds: str, chunk_rows: int | None = None, cfg: Settings | None = None) -> dict[str, Any]:
    """Score the entities of night ``ds`` with the champion; publish ``predictions/ds=<ds>`` atomically.

    Raises :class:`NoChampion` (nothing written) when there is no champion yet. A failed gate
    raises :class:`DataQualityError` or :class:`PredictionGateError` naming the quarantined batch.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from glideslope.features import store

    cfg = cfg or settings()
    t0 = time.perf_counter()
    lake = Lake.for_usecase(uc.name, cfg)
    tracking.require_server(cfg, f"scoring {uc.name} for {ds}")
    version = champion_version(uc, cfg)  # before anything is read or written
    source = lake.curated(uc.scoring.table, ds)
    if not lake.exists(source):
        raise FileNotFoundError(f"{source} not found: nothing to score for {ds}; run {uc.dag_id('etl')} for {ds}")
    model = load_version(uc, version, cfg)
    as_of = feature_cutoff(uc, ds, lake)
    fs = store(uc, cfg)
    chunk_rows = chunk_rows or uc.scoring.chunk_rows
    final = lake.predictions(ds)
    lake.sweep_partitions(lake.predictions())  # what killed scoring runs of other nights left
    rows_in = rows_out = chunks = 0
    positives = 0.0
    seen: set[str] = set()
    with lake.publishing(final) as staging:
        failing: Any = None  # the chunk whose gate failed; it goes to quarantine with the rest
        try:
            with lake.fs.open(source, "rb") as src, lake.fs.open(staging, "wb") as dst:
                reader = pq.ParquetFile(src)
                writer = None
                try:
                    for batch in reader.iter_batches(batch_size=chunk_rows):
                        entities = batch.to_pandas()
                        out = score_frame(uc, entities, model, fs, as_of, ds)
                        failing = out
                        validate_chunk(uc, out, len(entities), f"{final} (chunk {chunks + 1})")
                        keys = set(out[uc.entity_key])
                        dup = keys & seen
                        if dup:
                            raise PredictionGateError(f"{source}: entity keys repeat across chunks, "
                                                      f"e.g. {sorted(dup)[:3]}")
                        failing = None
                        seen |= keys
                        table = pa.Table.from_pandas(out, preserve_index=False)
                        if writer is None:
                            writer = pq.ParquetWriter(dst, table.schema, coerce_timestamps="us",
                                                      allow_truncated_timestamps=True)
                        writer.write_table(table)
                        rows_in += len(entities)
                        rows_out += len(out)
                        positives += float(out[PREDICTION].sum())
                        chunks += 1
                finally:
                    if failing is not None:
                        writer = _append_failing_chunk(writer, dst, failing)
                    if writer is not None:
                        writer.close()
            if rows_out != reader.metadata.num_rows or rows_out != rows_in:
                raise PredictionGateError(f"{final}: wrote {rows_out} rows for {reader.metadata.num_rows} "
                                          f"input rows in {source}")
        except (DataQualityError, PredictionGateError) as e:
            # A failed gate keeps the batch for a person: quarantine, not delete. The last good
            # predictions are untouched (the staging file was never renamed over them).
            kept = rows_out + (len(failing) if failing is not None else 0)
            raise _quarantine_batch(uc, lake, staging, ds, e, model, kept) from e
        if writer is None:
            raise ValueError(f"{source} has no rows to score for {ds}")
    seconds = time.perf_counter() - t0
    summary = {
        "usecase": uc.name, "ds": ds, "path": final, "rows": rows_out, "chunks": chunks,
        "model_name": model.name, "model_version": model.version, "as_of": as_of.isoformat(),
        "mean_prediction": round(positives / rows_out, 6) if rows_out else None,
        "seconds": round(seconds, 2), "rows_per_second": round(rows_out / seconds, 1) if seconds else None,
        "scored_at": datetime.now(UTC).isoformat(),
    }
    log.info("scored %s ds=%s: %d rows with %s v%s in %d chunk(s) -> %s", uc.name, ds, rows_out, model.name,
             model.version, chunks, final)
    return summary


def push_predictions(uc: UseCase, ds: str, cfg: Settings | None = None, batch_rows: int = 50_000) -> dict[str, Any]:
    """Write the published predictions of ``ds`` to the online store's prediction view, by entity key."""
    import pyarrow.parquet as pq

    from glideslope.features import store

    cfg = cfg or settings()
    lake = Lake.for_usecase(uc.name, cfg)
    path = lake.predictions(ds)
    if not lake.exists(path):
        raise FileNotFoundError(f"{path} not found: score {ds} before pushing it online")
    fs = store(uc, cfg)
    view = fs.get_feature_view(uc.features.prediction_view, allow_registry_cache=False)
    fields = [f.name for f in view.features]
    with lake.fs.open(path, "rb") as f:
        names = pq.read_schema(f).names
    absent = [c for c in fields if c not in names]
    if absent:
        raise ValueError(f"prediction view {view.name!r} declares {absent}, which {path} does not have")
    if view.stream_source is None:
        raise ValueError(f"prediction view {view.name!r} has no push source to write through")
    cols = [uc.entity_key, uc.event_timestamp, *fields]
    rows = 0
    with lake.fs.open(path, "rb") as f:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_rows, columns=cols):
            df = batch.to_pandas()
            fs.push(view.stream_source.name, df)
            rows += len(df)
    log.info("pushed %d predictions of %s ds=%s to the online view %s", rows, uc.name, ds, view.name)
    return {"usecase": uc.name, "ds": ds, "rows": rows, "view": view.name}


def online_predictions(uc: UseCase, keys: list[str], cfg: Settings | None = None) -> dict[str, dict[str, Any]]:
    """Precomputed scores by entity key, as an application reads them from the online store."""
    from glideslope.features import store

    fs = store(uc, cfg or settings())
    view = fs.get_feature_view(uc.features.prediction_view, allow_registry_cache=True)
    refs = [f"{view.name}:{f.name}" for f in view.features]
    res = fs.get_online_features(features=refs, entity_rows=[{uc.entity_key: k} for k in keys]).to_dict()
    return {k: {f.name: res[f.name][i] for f in view.features} for i, k in enumerate(res[uc.entity_key])}
