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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from glideslope.config import Settings, UseCase, settings
from glideslope.errors import PermanentError
from glideslope.lake import Lake
from glideslope.quality.validate import DataQualityError
from glideslope.runrequest import RunRequest
from glideslope.scoring.models import LoadedModel, champion_version, load_version, scores
from glideslope.training import tracking

log = logging.getLogger(__name__)

PREDICTION = "prediction"
SYSTEM_COLUMNS = [PREDICTION, "model_version", "model_name", "ds"]


def _newest_feature_time(uc: UseCase, ds: str, lake: Lake) -> Any:
    """The newest feature timestamp of night ``ds`` across the feature tables; None when they are all empty."""
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
    return newest


def feature_cutoff(uc: UseCase, ds: str, lake: Lake) -> Any:
    """When day ``ds``'s features became known: the newest feature timestamp of that day (UTC).

    A quiet night (its feature partitions have no rows) learnt nothing new: what was known then is
    what the newest earlier night with features published, so the cutoff is that night's.
    """
    import pandas as pd

    newest = _newest_feature_time(uc, ds, lake)
    if newest is None:
        from glideslope.backlog import feature_days

        for earlier in reversed([d for d in feature_days(uc, lake) if d < ds]):
            newest = _newest_feature_time(uc, earlier, lake)
            if newest is not None:
                log.info("feature partitions of %s are empty (a quiet night): features as known after %s", ds, earlier)
                break
    if newest is None:
        raise ValueError(f"feature partitions of {ds} and of every earlier night are empty under "
                         f"{lake.base}/features: no features to score {ds}'s entities with")
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


class NothingToScore(Exception):
    """A quiet night: its entities partition has no rows. Not a failure: the run skips the night."""


RUN_METADATA_KEY = b"glideslope.run"


def scored_by(lake: Lake, ds: str) -> dict[str, Any] | None:
    """The run that published ``predictions/ds=<ds>`` (run id, trigger, own night or catch-up), from the file."""
    import json

    import pyarrow.parquet as pq

    path = lake.predictions(ds)
    if not lake.exists(path):
        return None
    with lake.fs.open(path, "rb") as f:
        raw = (pq.read_schema(f).metadata or {}).get(RUN_METADATA_KEY)
    return json.loads(raw) if raw else None


def _remove_if_empty(lake: Lake, folder: str) -> None:
    """Remove a partition folder this run created and left empty: no ``ds=`` folder without predictions."""
    import os

    if lake.is_remote or not os.path.isdir(folder):
        return
    try:
        os.rmdir(folder)  # only succeeds when empty
    except OSError:
        return


def score_day(uc: UseCase, ds: str, chunk_rows: int | None = None, cfg: Settings | None = None,
              run: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score the entities of night ``ds`` with the champion; publish ``predictions/ds=<ds>`` atomically.

    Raises :class:`NothingToScore` (nothing written) for a quiet night, whose entities partition
    has no rows, and :class:`NoChampion` (nothing written) when there is no champion yet. A failed
    gate raises :class:`DataQualityError` or :class:`PredictionGateError` naming the quarantined
    batch. ``run`` (the run id, its trigger, and whether ``ds`` is the run's own night or a
    catch-up) is stored in the file's metadata: :func:`scored_by` reads it back.
    """
    import json

    from glideslope.features import store

    cfg = cfg or settings()
    t0 = time.perf_counter()
    lake = Lake.for_usecase(uc.name, cfg)
    source = lake.curated(uc.scoring.table, ds)
    if not lake.exists(source):
        raise FileNotFoundError(f"{source} not found: nothing to score for {ds}; run {uc.dag_id('etl')} for {ds}")
    from glideslope.backlog import partition_rows

    if partition_rows(lake, source) == 0:
        raise NothingToScore(f"{ds} is a quiet night: {source} has 0 rows, nothing to score (no predictions "
                             "are published for it)")
    tracking.require_server(cfg, f"scoring {uc.name} for {ds}")
    version = champion_version(uc, cfg)  # before anything is read or written
    model = load_version(uc, version, cfg)
    as_of = feature_cutoff(uc, ds, lake)
    fs = store(uc, cfg)
    chunk_rows = chunk_rows or uc.scoring.chunk_rows
    final = lake.predictions(ds)
    folder = final.rsplit("/", 1)[0]
    new_folder = not lake.exists(folder)
    lake.sweep_partitions(lake.predictions())  # what killed scoring runs of other nights left
    run_meta = {RUN_METADATA_KEY: json.dumps({"ds": ds, **(run or {})}, sort_keys=True, default=str).encode()}
    try:
        summary = _score_into(uc, ds, lake, source, final, model, as_of, fs, chunk_rows, run_meta)
    except BaseException:
        if new_folder:
            _remove_if_empty(lake, folder)
        raise
    seconds = time.perf_counter() - t0
    summary.update(seconds=round(seconds, 2),
                   rows_per_second=round(summary["rows"] / seconds, 1) if seconds else None,
                   scored_at=datetime.now(UTC).isoformat(), **{k: v for k, v in (run or {}).items()
                                                                if k in ("run_id", "role")})
    log.info("scored %s ds=%s: %d rows with %s v%s in %d chunk(s) -> %s", uc.name, ds, summary["rows"], model.name,
             model.version, summary["chunks"], final)
    return summary


def _score_into(uc: UseCase, ds: str, lake: Lake, source: str, final: str, model: LoadedModel, as_of: Any,
                fs: Any, chunk_rows: int, run_meta: dict[bytes, bytes]) -> dict[str, Any]:
    """Score ``source`` chunk by chunk into a staging file that replaces ``final`` when whole and valid."""
    import pyarrow as pa
    import pyarrow.parquet as pq

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
                            schema = table.schema.with_metadata({**(table.schema.metadata or {}), **run_meta})
                            writer = pq.ParquetWriter(dst, schema, coerce_timestamps="us",
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
        if writer is None:  # the footer said rows, the file had none: nothing is published
            raise NothingToScore(f"{ds} is a quiet night: {source} has no rows to score")
    return {
        "usecase": uc.name, "ds": ds, "path": final, "rows": rows_out, "chunks": chunks,
        "model_name": model.name, "model_version": model.version, "as_of": as_of.isoformat(),
        "mean_prediction": round(positives / rows_out, 6) if rows_out else None,
    }


@dataclass
class ScoringRun:
    """What one scoring run did: its plan, the nights it scored, and one line per night for its note."""

    plan: Any  # glideslope.backlog.ScoringPlan
    scored: list[dict[str, Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (night, reason)

    def summary(self) -> dict[str, Any]:
        return {"plan": self.plan.summary(), "scored": [s["ds"] for s in self.scored], "lines": self.lines,
                "skipped": [{"ds": d, "reason": r} for d, r in self.skipped]}


def score_run(uc: UseCase, req: RunRequest, cfg: Settings | None = None, plan: Any = None) -> ScoringRun:
    """Score the nights of one run's request (:func:`glideslope.backlog.plan_scoring`), oldest first.

    Each predictions file records the run and whether the night was the run's own or a catch-up.
    A quiet night is skipped with its reason, never failed. :class:`NoChampion` propagates (the
    caller skips the run); any other error stops the run with the nights before it published.
    ``plan`` is the run's plan when the caller made it already (to record it before scoring).
    """
    from glideslope.backlog import plan_scoring

    cfg = cfg or settings()
    plan = plan or plan_scoring(uc, req, Lake.for_usecase(uc.name, cfg))
    run = ScoringRun(plan)
    if plan.own:
        run.lines.append(f"for night {', '.join(plan.own)}")
    if plan.catch_up:
        run.lines.append(f"catching up {', '.join(plan.catch_up)} (never scored: an earlier run failed or its "
                         "event was lost)")
    for line in plan.reasons():
        run.lines.append(line)
    run.skipped += [(d, "quiet night: 0 entity rows") for d in plan.quiet]
    for ds in plan.nights:
        try:
            s = score_day(uc, ds, cfg=cfg, run={"run_id": req.run_id, "trigger": req.trigger, "role": plan.role(ds)})
        except NothingToScore as e:
            run.lines.append(f"{ds}: skipped: {e}")
            run.skipped.append((ds, str(e)))
            continue
        run.scored.append(s)
        run.lines.append(f"{ds}: scored{' (catch-up)' if s.get('role') == 'catch_up' else ''}: {s['rows']} rows "
                         f"with v{s['model_version']}")
    return run


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
