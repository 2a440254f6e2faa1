"""Lineage: the stable names of what each stage reads and writes, and the trace of a day.

Every stage reports its inputs and outputs as OpenLineage datasets (sent by Airflow's OpenLineage
provider, see :mod:`glideslope.airflow.lineage`). This module is plain Python: it names the
datasets and their facets from the stages' own results, and it reads recorded events back to
answer "what did day D's raw delivery touch?" (``glideslope lineage --usecase U --ds D``).

Names (OpenLineage's naming spec: ``file`` or ``s3://<bucket>`` namespace, the path as name)::

    raw partition        <lake>/<uc>/raw/<source>/ds=D
    reference data       <lake>/<uc>/reference/<name>.csv
    quarantine           <lake>/<uc>/quarantine/<source>/ds=D
    curated / features   <lake>/<uc>/curated/<table>/ds=D , <lake>/<uc>/features/<table>/ds=D
    training set         <lake>/<uc>/training/ds=D
    predictions          <lake>/<uc>/predictions/ds=D
    drift report         <lake>/<uc>/reports/drift/ds=D
    Feast feature view   feast://<uc>  <view>             (one per feature table; facet ``days``)
    Feast online store   feast://<uc>  online_store       (facet ``days``: the days loaded)
    MLflow model version mlflow://<tracking host>  <model>/<version>

A dataset description here is a plain dict: ``namespace``, ``name`` and the Glideslope facet
fields (``kind``, ``usecase``, ``ds``, ``days``, ``rows``, ``schema``, ``quality``, ``model``);
:mod:`glideslope.airflow.lineage` turns it into OpenLineage facets.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from glideslope.config import Settings, UseCase, settings
from glideslope.lake import Lake

log = logging.getLogger(__name__)

FACET = "glideslope"  # the dataset facet that carries kind, days, rows, model, quality
EVENTS_DIR = "lineage"  # under GLIDESLOPE_HOME: the embedded profile's file transport writes here
EVENT_FILE_PREFIX = "ol"  # file transport: <dir>/ol-<time>.json, one event a file

Dataset = dict[str, Any]


def location(path: str) -> tuple[str, str]:
    """(namespace, name) of a lake path or URI: ``("s3://bucket", "key")`` or ``("file", "/abs/path")``."""
    if path.startswith("s3://"):
        u = urlparse(path)
        return f"s3://{u.netloc}", u.path.lstrip("/")
    if path.startswith("file://"):
        path = urlparse(path).path
    return "file", str(Path(path).absolute())


def _partition_dir(path: str) -> str:
    """The ``.../ds=D`` folder of a partition file path (or the path itself when it is the folder)."""
    head, _, tail = path.rstrip("/").rpartition("/")
    return head if tail and not tail.startswith("ds=") and "/ds=" in path else path.rstrip("/")


def lake_dataset(path: str, kind: str, usecase: str, ds: str | None, **facet: Any) -> Dataset:
    namespace, name = location(_partition_dir(path))
    return {"namespace": namespace, "name": name, "kind": kind, "usecase": usecase, "ds": ds,
            **{k: v for k, v in facet.items() if v is not None}}


def raw_partition(lake: Lake, source: str, ds: str, **facet: Any) -> Dataset:
    return lake_dataset(lake.raw(source, ds), "raw", lake.usecase, ds, source=source, **facet)


def quarantine_partition(lake: Lake, source: str, ds: str, **facet: Any) -> Dataset:
    return lake_dataset(lake.quarantine(source, ds), "quarantine", lake.usecase, ds, source=source, **facet)


def zone_partition(lake: Lake, output: str, ds: str, **facet: Any) -> Dataset:
    """A published transform output: ``output`` is "curated/<table>" or "features/<table>"."""
    zone, table = output.split("/", 1)
    return lake_dataset(lake.output(ds, output), zone, lake.usecase, ds, table=table, **facet)


def predictions_partition(lake: Lake, ds: str, **facet: Any) -> Dataset:
    return lake_dataset(lake.predictions(ds), "predictions", lake.usecase, ds, **facet)


def drift_report(lake: Lake, ds: str, **facet: Any) -> Dataset:
    return lake_dataset(lake.report_dir("drift", ds), "drift_report", lake.usecase, ds, **facet)


def training_set(path: str, usecase: str, ds: str, days: list[str], **facet: Any) -> Dataset:
    return lake_dataset(path, "training_set", usecase, ds, days=days, **facet)


def feature_view(uc: UseCase, view: str, days: list[str], **facet: Any) -> Dataset:
    return {"namespace": f"feast://{uc.name}", "name": view, "kind": "feature_view",
            "usecase": uc.name, "days": sorted(days), **facet}


def online_store(uc: UseCase, days: list[str], cfg: Settings | None = None, **facet: Any) -> Dataset:
    cfg = cfg or settings()
    return {"namespace": f"feast://{uc.name}", "name": "online_store", "kind": "online_store",
            "usecase": uc.name, "days": sorted(days), "store": _redacted(cfg.feast_online_store), **facet}


def model_version(uc: UseCase, version: str | int, cfg: Settings | None = None, **facet: Any) -> Dataset:
    cfg = cfg or settings()
    return {"namespace": mlflow_namespace(cfg.mlflow_tracking_uri), "name": f"{uc.registered_model}/{version}",
            "kind": "model", "usecase": uc.name,
            "model": {"name": uc.registered_model, "version": str(version), **facet}}


def mlflow_namespace(tracking_uri: str) -> str:
    u = urlparse(tracking_uri)
    if u.scheme in ("http", "https"):
        return f"mlflow://{u.hostname}" + (f":{u.port}" if u.port else "")
    return "mlflow://local"  # a file or SQLite store on this machine


def _redacted(uri: str) -> str:
    u = urlparse(uri)
    return uri.replace(f"{u.username}:{u.password}@", "") if u.password else uri


def days_between(a: str, b: str) -> list[str]:
    from datetime import date, timedelta

    d0, d1 = date.fromisoformat(a), date.fromisoformat(b)
    return [(d0 + timedelta(days=i)).isoformat() for i in range((d1 - d0).days + 1)]


def parquet_facts(lake: Lake, path: str) -> dict[str, Any]:
    """Row count and schema of a Parquet partition, from its footer only (no data is read)."""
    import pyarrow.parquet as pq

    with lake.fs.open(path, "rb") as f:
        meta = pq.ParquetFile(f).metadata
        schema = meta.schema.to_arrow_schema()
    return {"rows": meta.num_rows, "schema": [[n, str(t)] for n, t in zip(schema.names, schema.types, strict=True)]}


# -- what each stage read and wrote, from its own result ---------------------------------------------

Lineage = tuple[list[Dataset], list[Dataset]]


def _daily_sources(uc: UseCase) -> list[str]:
    return [s.name for s in uc.sources if s.kind == "daily"]


def _source_of(path: str) -> str:
    return Path(path).parent.parent.name  # raw/<source>/ds=D/<source>.csv


def _quality(report: Mapping[str, Any]) -> dict[str, Any]:
    return {"success": bool(report.get("success", True)), "suite": report.get("suite"),
            "failures": [{"rule": f["rule"], "column": f.get("column"), "bad_rows": f.get("bad_rows")}
                         for f in report.get("failures", [])]}


def raw_validation(uc: UseCase, ds: str, result: Mapping[str, Any], lake: Lake | None = None) -> Lineage:
    """The raw gate passed: each raw partition with its rows and a passed quality outcome."""
    lake = lake or Lake.for_usecase(uc.name)
    return [raw_partition(lake, _source_of(f["file"]), ds, rows=f["rows"],
                          quality={"success": True, "suite": _source_of(f["file"]), "failures": []})
            for f in result["files"]], []


def quarantined(uc: UseCase, ds: str, reports: list[Any], moved: list[str], lake: Lake | None = None) -> Lineage:
    """A gate failed: the partitions it read (failing ones with their failures), the quarantine."""
    lake = lake or Lake.for_usecase(uc.name)
    failing = {_source_of(r.file) if "/raw/" in r.file else r.file: r.summary() for r in reports}
    inputs = []
    for source in _daily_sources(uc):
        report = failing.get(source)
        inputs.append(raw_partition(lake, source, ds, rows=report["rows"] if report else None,
                                    quality=_quality(report) if report else None))
    outputs = []
    for dest in moved:  # <lake>/<uc>/quarantine/<name>/ds=D/<slot>/<file>
        name = dest.split("/quarantine/", 1)[1].split("/", 1)[0]
        outputs.append(quarantine_partition(lake, name, ds, file=dest))
    return inputs, outputs


def _read_by_transform(lake: Lake, path: str) -> Dataset:
    """A file the transform read: a raw partition (any day of its trailing window) or reference data."""
    if "/reference/" in path:
        return lake_dataset(path, "reference", lake.usecase, None)
    day = path.rsplit("/ds=", 1)[1].split("/", 1)[0]
    return raw_partition(lake, _source_of(path), day)


def publication(uc: UseCase, ds: str, result: Mapping[str, Any], lake: Lake | None = None) -> Lineage:
    """The ETL published day ``ds``: what the transform read in, each curated and feature partition out.

    The transform's trailing windows read earlier days' raw partitions too; it lists every file it
    read beside its staged outputs (:meth:`Lake.staging_inputs`). Without that list (a transform
    from before it was written) day ``ds``'s raw partitions stand for the inputs.
    """
    lake = lake or Lake.for_usecase(uc.name)
    read = lake.read_json(lake.staging_inputs(ds), default=None)
    if read is None:
        read = [lake.raw(s, ds) for s in _daily_sources(uc) if lake.exists(lake.raw(s, ds))]
    inputs = [_read_by_transform(lake, p) for p in read]
    outputs = []
    for out, info in result["outputs"].items():
        facts = parquet_facts(lake, info["path"])
        outputs.append(zone_partition(lake, out, ds, rows=facts["rows"], schema=facts["schema"],
                                      quality={"success": True, "suite": uc.output_suites.get(out), "failures": []}))
    return inputs, outputs


def materialization(uc: UseCase, result: Mapping[str, Any], lake: Lake | None = None) -> Lineage:
    """Feature partitions of the loaded days in; the feature views and the online store out."""
    lake = lake or Lake.for_usecase(uc.name)
    days = list(result["days"])
    inputs = [zone_partition(lake, f"features/{t}", d) for t in uc.features.tables for d in days]
    outputs = [feature_view(uc, t, days) for t in uc.features.tables]
    quiet = {"quiet": result["quiet"], "skipped": result.get("reason")} if result.get("quiet") else {}
    outputs.append(online_store(uc, days, watermark=result.get("watermark"), **quiet))
    return inputs, outputs


def training_set_lineage(uc: UseCase, result: Mapping[str, Any], lake: Lake | None = None) -> Lineage:
    """Labels and features of the window in (point in time, through Feast); the training set out."""
    lake = lake or Lake.for_usecase(uc.name)
    first = result["train_days"][0]
    days = [d for d in days_between(first, result["holdout"][-1]) if d not in result.get("missing_days", [])]
    inputs = [zone_partition(lake, f"curated/{uc.label.table}", d) for d in days]
    inputs += [feature_view(uc, t, days) for t in uc.features.tables]
    out = training_set(result["uri"], uc.name, result["ds"], days, rows=result["rows"],
                       train_days=result["train_days"], holdout=result["holdout"])
    return inputs, [out]


def training_lineage(uc: UseCase, result: Mapping[str, Any]) -> Lineage:
    """The training set in; the registered challenger version, with the best candidate's metrics, out."""
    ds = result["ds"]
    window = str(result.get("window") or "")
    days = days_between(*window.split("..")) if ".." in window else [ds]
    tset = training_set(result["training_set"], uc.name, ds, days)
    model = model_version(uc, result["challenger_version"], alias="challenger", candidate=result["best"]["name"],
                          metrics=result["best"]["metrics"], run_id=result["best"]["run_id"], window=window)
    return [tset], [model]


def promotion_lineage(uc: UseCase, result: Mapping[str, Any]) -> Lineage:
    """The decision on a challenger: the version in, and out again with the alias it now has."""
    version = result.get("challenger_version")
    if not version:
        return [], []
    outcome = result.get("final_outcome") or result.get("outcome") or result.get("decision")
    alias = "champion" if outcome == "promoted" else "challenger"
    return [model_version(uc, version)], [model_version(uc, version, alias=alias, decision=outcome)]


def scoring_lineage(uc: UseCase, result: Mapping[str, Any], lake: Lake | None = None) -> Lineage:
    """The champion version, the night's entities and its features in; the predictions partition out."""
    lake = lake or Lake.for_usecase(uc.name)
    ds = result["ds"]
    inputs = [model_version(uc, result["model_version"]), zone_partition(lake, f"curated/{uc.scoring.table}", ds)]
    inputs += [feature_view(uc, t, [ds]) for t in uc.features.tables]
    out = predictions_partition(lake, ds, rows=result["rows"], mean_prediction=result.get("mean_prediction"),
                                model={"name": result.get("model_name"), "version": str(result["model_version"])})
    return inputs, [out]


def push_lineage(uc: UseCase, days: list[str], lake: Lake | None = None) -> Lineage:
    """Published predictions in; the prediction view of the online store out."""
    lake = lake or Lake.for_usecase(uc.name)
    return ([predictions_partition(lake, d) for d in days], [feature_view(uc, uc.features.prediction_view, days)])


def drift_lineage(uc: UseCase, numbers: Mapping[str, Any], lake: Lake | None = None) -> Lineage:
    """Predictions (and the champion's reference) of the night in; the drift report out."""
    lake = lake or Lake.for_usecase(uc.name)
    ds = numbers["ds"]
    inputs = [predictions_partition(lake, ds)]
    champ = numbers.get("champion") or {}
    if champ.get("version"):
        inputs.append(model_version(uc, champ["version"]))
    verdict = numbers.get("verdict") or {}
    out = drift_report(lake, ds, rows=numbers.get("current_rows"), status=verdict.get("status"),
                       drift_share=verdict.get("drift_share"), drifted_columns=verdict.get("drifted_columns"),
                       performance=numbers.get("performance"))
    return inputs, [out]


# -- reading the recorded events back ---------------------------------------------------------------

def events_dir(cfg: Settings | None = None) -> Path:
    return (cfg or settings()).home / EVENTS_DIR


def read_events(folder: Path) -> list[dict[str, Any]]:
    """Every run event of a file transport's folder (one JSON document a file), oldest first."""
    events = []
    for path in sorted(folder.glob(f"{EVENT_FILE_PREFIX}-*.json")):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: not an OpenLineage event ({e})") from e
            if "eventType" in event and "run" in event:
                events.append(event)
    return sorted(events, key=lambda e: e.get("eventTime", ""))


def facet_of(dataset: Mapping[str, Any]) -> dict[str, Any]:
    return dict((dataset.get("facets") or {}).get(FACET) or {})


@dataclass(frozen=True)
class Node:
    namespace: str
    name: str
    kind: str
    days: tuple[str, ...] = ()

    def label(self) -> str:
        where = self.name if self.namespace == "file" else f"{self.namespace}/{self.name}"
        days = (f" (days {self.days[0]}..{self.days[-1]})" if len(self.days) > 1 else
                f" (day {self.days[0]})" if self.days else "")
        return f"{self.kind:<13} {where}{days}"


def _node(d: Mapping[str, Any]) -> Node:
    f = facet_of(d)
    return Node(d["namespace"], d["name"], f.get("kind", "?"), tuple(f.get("days") or ()))


def _touches(node: Node, tainted: Mapping[tuple[str, str], set[str] | None]) -> bool:
    key = (node.namespace, node.name)
    if key not in tainted:
        return False
    days = tainted[key]
    return days is None or not node.days or bool(days & set(node.days))


@dataclass
class Trace:
    """Everything downstream of one day's raw delivery, as the recorded events tell it."""

    usecase: str
    ds: str
    raw: list[Node] = field(default_factory=list)
    stopped: list[dict[str, Any]] = field(default_factory=list)  # failed runs that read it
    downstream: list[tuple[str, Node]] = field(default_factory=list)  # (job, dataset) in event order

    def by_kind(self, kind: str) -> list[Node]:
        return [n for _, n in self.downstream if n.kind == kind]

    def lines(self) -> list[str]:
        out = [f"lineage of {self.usecase} raw delivery {self.ds}:"]
        out += [f"  read   {n.label()}" for n in self.raw] or ["  no recorded event read this day's raw partitions"]
        for s in self.stopped:
            out.append(f"  FAILED {s['job']} (run {s['run_id']}) stopped at: "
                       + ", ".join(n.label().split(None, 1)[1] for n in s["outputs"]) if s["outputs"]
                       else f"  FAILED {s['job']} (run {s['run_id']})")
        if not self.downstream:
            out.append("  downstream: nothing")
        for job, n in self.downstream:
            out.append(f"  {n.label()}   <- {job}")
        return out


def trace(events: Iterable[Mapping[str, Any]], usecase: str, ds: str) -> Trace:
    """Follow day ``ds``'s raw partitions through every successful run that read what they made.

    A dataset with days (a feature view, a training set, the online store) is touched only where
    its days include a touched day, so a model trained on a window without D is not listed. A
    failed run (a quarantine) stops the trace: its outputs are listed as where it stopped.
    """
    out = Trace(usecase, ds)
    tainted: dict[tuple[str, str], set[str] | None] = {}
    complete: list[Mapping[str, Any]] = []
    for e in events:
        kind = e.get("eventType")
        read_day = False
        for d in e.get("inputs") or []:
            f = facet_of(d)
            if f.get("kind") == "raw" and f.get("usecase") == usecase and f.get("ds") == ds:
                node = _node(d)
                if node not in out.raw:
                    out.raw.append(node)
                tainted[(node.namespace, node.name)] = None
                read_day = True
        if read_day and kind == "FAIL":
            out.stopped.append({"job": e["job"]["name"], "run_id": e["run"]["runId"],
                                "outputs": [_node(o) for o in e.get("outputs") or []]})
        if kind == "COMPLETE":
            complete.append(e)
    seen: set[Node] = set()
    for e in complete:  # in time order: a stage reads what an earlier one wrote
        if not any(_touches(_node(d), tainted) for d in e.get("inputs") or []):
            continue
        for o in e.get("outputs") or []:
            node = _node(o)
            key = (node.namespace, node.name)
            if node.days:
                prior = tainted.get(key)
                if key not in tainted or prior is not None:
                    tainted[key] = (prior or set()) | ({ds} if ds in node.days else set(node.days))
            else:
                tainted[key] = None
            if node not in seen:
                seen.add(node)
                out.downstream.append((e["job"]["name"], node))
    return out


def _iter_kinds(t: Trace) -> Iterator[tuple[str, int]]:
    for kind in ("curated", "features", "feature_view", "online_store", "training_set", "model",
                 "predictions", "drift_report"):
        yield kind, len(t.by_kind(kind))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="glideslope lineage",
                                 description="Everything downstream of day D's raw delivery, from the "
                                             "recorded OpenLineage events.")
    ap.add_argument("--usecase", required=True)
    ap.add_argument("--ds", required=True, help="the day of the raw delivery, YYYY-MM-DD")
    ap.add_argument("--events", type=Path, default=None,
                    help=f"folder of a file transport's events (default: $GLIDESLOPE_HOME/{EVENTS_DIR})")
    ap.add_argument("--json", action="store_true", help="print the trace as JSON")
    args = ap.parse_args(argv)
    folder = args.events or events_dir()
    if not folder.is_dir():
        print(f"glideslope lineage: no events folder {folder} (is [openlineage] transport a file transport "
              f"writing there?)", file=sys.stderr)
        return 2
    t = trace(read_events(folder), args.usecase, args.ds)
    if args.json:
        print(json.dumps({"usecase": t.usecase, "ds": t.ds, "raw": [n.__dict__ for n in t.raw],
                          "stopped": [{**s, "outputs": [n.__dict__ for n in s["outputs"]]} for s in t.stopped],
                          "downstream": [{"job": j, **n.__dict__} for j, n in t.downstream]}, indent=2, default=list))
    else:
        print("\n".join(t.lines()))
        print("  counts: " + ", ".join(f"{k} {n}" for k, n in _iter_kinds(t)))
    return 0 if t.raw else 1
