"""P5 Feast materialization: ``__features``' load of a day into the online store against a bulk write.

* **ours** -- :func:`glideslope.features.materialize.materialize_days` for one day, as the
  ``__features`` DAG runs it: Feast 0.67 ``materialize`` of the feature service's views over the
  day's event-time interval, from the DuckDB offline store (the lake's Parquet) into the SQLite
  online store of the embedded profile.
* **baseline** -- the same rows written to the same SQLite tables in bulk: the day's Parquet read
  with pyarrow, entity keys serialized with Feast's own ``serialize_entity_key`` and values as
  Feast ``ValueProto`` bytes, one ``executemany`` upsert per table in one transaction.

Both write identical rows (the row count per table is checked). Peak memory is this process's
VmHWM during the step (reset between steps; the table's column), and how far it rose above the
RSS before the step, at each size (the notes): whether that rise is bounded by
Feast's write batch (``materialization.online_write_batch_size`` in the repository's
``feature_store.yaml``) or grows with the day.

Data: the ETL (in-process Spark, ``local[2]``) of one real day, 2013-07-10; its feature tables
are scaled by repetition (each entity copied under new keys ``<key>~<i>``) to reach the sizes.

    python benchmarks/materialize.py [--quick] [--json benchmarks/results/materialize.json]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchkit  # noqa: E402

DS = "2013-07-10"
GOAL = 2.0  # ≥ 0.5× the baseline's rows/s == time ratio ≤ 2


def bulk_write(uc: Any, fs: Any, lake: Any, views: list[str]) -> int:
    """The baseline: every feature row of ``DS`` upserted into the online store's tables in bulk."""
    import sqlite3

    import pyarrow.parquet as pq
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.infra.online_stores.sqlite import _table_id
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.type_map import python_values_to_proto_values

    from glideslope.config import settings

    version = fs.config.entity_key_serialization_version
    con = sqlite3.connect(settings().feast_online_store)
    written = 0
    try:
        with con:
            for name in views:
                fv = fs.get_feature_view(name)
                table = pq.read_table(lake.local_path(lake.features(_source_table(fv), DS)))
                key = fv.join_keys[0]
                keys = [serialize_entity_key(EntityKey(join_keys=[key], entity_values=[Value(string_val=str(v))]),
                                             entity_key_serialization_version=version)
                        for v in table.column(key).to_pylist()]
                ts = [t.replace(tzinfo=None) for t in table.column(uc.event_timestamp).to_pylist()]
                created = (table.column("created").to_pylist() if "created" in table.column_names
                           else [None] * len(keys))
                created = [c.replace(tzinfo=None) if c is not None else None for c in created]
                rows = []
                for field in fv.features:
                    protos = python_values_to_proto_values(table.column(field.name).to_pylist(),
                                                           field.dtype.to_value_type())
                    rows += [(k, field.name, p.SerializeToString(), None, t, c)
                             for k, p, t, c in zip(keys, protos, ts, created, strict=True)]
                con.executemany(
                    f'INSERT INTO "{_table_id(fs.project, fv)}" (entity_key, feature_name, value, value_text, '
                    "event_ts, created_ts) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(entity_key, feature_name) DO UPDATE "
                    "SET value = excluded.value, value_text = excluded.value_text, event_ts = excluded.event_ts, "
                    "created_ts = excluded.created_ts", rows)
                written += len(keys)
    finally:
        con.close()
    return written


def _source_table(fv: Any) -> str:
    """The lake table a view reads: its FileSource path is ``.../features/<table>/ds=*/...``."""
    parts = Path(fv.batch_source.path).parts
    return parts[parts.index("features") + 1]


def online_rows(fs: Any, views: list[str]) -> dict[str, int]:
    import sqlite3

    from feast.infra.online_stores.sqlite import _table_id

    from glideslope.config import settings

    con = sqlite3.connect(settings().feast_online_store)
    try:
        return {v: con.execute(f'SELECT COUNT(DISTINCT entity_key) FROM "{_table_id(fs.project, fs.get_feature_view(v))}"')
                .fetchone()[0] for v in views}
    finally:
        con.close()


def main(argv: list[str] | None = None) -> int:
    ap = benchkit.arguments(__doc__, "materialize")
    args = ap.parse_args(argv)
    scales = [1, 4] if args.quick else [1, 10, 40]
    home = benchkit.scratch_home("materialize")

    from glideslope.config import load_usecase
    from glideslope.etl.pipeline import run_days
    from glideslope.lake import Lake

    uc = load_usecase("flight_delay")
    lake = Lake.for_usecase(uc.name)
    t0 = time.perf_counter()
    spark = benchkit.local_spark()
    run_days(uc, [DS], spark=spark, lake=lake)
    spark.stop()
    etl_s = time.perf_counter() - t0
    originals = {t: lake.read_parquet(lake.features(t, DS)) for t in uc.features.tables}

    from glideslope.features.materialize import materialize_days, online_views
    from glideslope.features.repo import apply_definitions
    from glideslope.features.store import store

    apply_definitions(uc)
    fs = store(uc)
    views = online_views(uc, fs)
    keys = {v: fs.get_feature_view(v).join_keys[0] for v in views}
    table_key = {_source_table(fs.get_feature_view(v)): keys[v] for v in views}
    batch_size = fs.config.materialization_config.online_write_batch_size
    materialize_days(uc, [DS])  # warm: DuckDB, the registry cache, the SQLite tables

    results, curve = [], []
    for scale in scales:
        import pandas as pd

        rows = 0
        for table, frame in originals.items():
            key = table_key[table]
            scaled = pd.concat([frame.assign(**{key: frame[key].astype(str) + (f"~{i}" if i else "")})
                                for i in range(scale)], ignore_index=True)
            lake.publish_parquet(scaled, lake.features(table, DS))
            rows += len(scaled)
        values = sum(len(originals[t]) * scale * len(fs.get_feature_view(v).features)
                     for v in views for t in [_source_table(fs.get_feature_view(v))])
        ours, base, ours_peak, base_peak, ours_abs = [], [], 0.0, 0.0, 0.0
        for _ in range(2):
            rss0 = benchkit.rss_mb()
            benchkit.reset_peak_rss()
            t = time.perf_counter()
            materialize_days(uc, [DS])  # a rerun of the watermark day: loaded again
            ours.append(time.perf_counter() - t)
            ours_abs = max(ours_abs, benchkit.peak_rss_mb())
            ours_peak = max(ours_peak, benchkit.peak_rss_mb() - rss0)
            loaded = online_rows(fs, views)
            rss0 = benchkit.rss_mb()
            benchkit.reset_peak_rss()
            t = time.perf_counter()
            written = bulk_write(uc, fs, lake, views)
            base.append(time.perf_counter() - t)
            base_peak = max(base_peak, benchkit.peak_rss_mb() - rss0)
        expected = {v: len(originals[_source_table(fs.get_feature_view(v))]) * scale for v in views}
        if written != rows or any(loaded[v] < expected[v] for v in views):
            print(f"scale {scale}: rows differ: feast {loaded}, bulk {written}, expected {expected}", file=sys.stderr)
            return 1
        ours_s, base_s = min(ours), min(base)
        results.append(benchkit.result(
            f"P5 Feast materialize, 1 day × {scale}", rows, ours_s, base_s, "≥ 0.5× rows/s (time ≤ 2×)", GOAL,
            peak_rss_mb=ours_abs, peak_above_start_mb=round(ours_peak, 1), baseline_peak_above_start_mb=round(base_peak, 1),
            values=values,
            notes=(f"{rows:,} entity rows ({values:,} feature values) in {len(views)} views; peak above start "
                   f"{ours_peak:.0f} MB (bulk {base_peak:.0f} MB); write batch {batch_size or 'whole day'}"
                   + ("; rows repeated under new keys" if scale > 1 else ""))))
        curve.append({"rows": rows, "values": values, "ours_s": round(ours_s, 4), "baseline_s": round(base_s, 4),
                      "ours_rows_per_s": round(rows / ours_s), "baseline_rows_per_s": round(rows / base_s),
                      "ours_peak_mb": round(ours_peak, 1), "baseline_peak_mb": round(base_peak, 1)})
        print(f"×{scale:>3} {rows:>8,} rows: feast {ours_s:6.2f} s ({rows / ours_s:8,.0f} rows/s, +{ours_peak:5.0f} MB)"
              f"  bulk {base_s:6.2f} s ({rows / base_s:8,.0f} rows/s, +{base_peak:5.0f} MB)", flush=True)
    benchkit.write_results(args.json, "materialize", results, curve=curve, etl_setup_s=round(etl_s, 1),
                           online_write_batch_size=batch_size, home=str(home))
    return 0


if __name__ == "__main__":
    sys.exit(main())
