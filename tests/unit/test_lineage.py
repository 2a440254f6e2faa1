"""Lineage: stable dataset names, OpenLineage facets, and the trace of one day's raw delivery.

The events are real OpenLineage run events (the client's classes and serializer, as the
provider's listener sends them) built from the stages' lineage functions on a small lake.
"""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from glideslope import lineage
from glideslope.airflow.lineage import to_openlineage
from glideslope.config import load_usecase
from glideslope.lake import Lake

pytestmark = pytest.mark.unit

D, E = "2013-06-10", "2013-06-11"
_clock = itertools.count()


def event(job: str, io: tuple[list[dict], list[dict]], state: str = "COMPLETE") -> dict:
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
    from openlineage.client.serde import Serde

    inputs, outputs = io
    when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=next(_clock))
    ev = RunEvent(eventType=RunState[state], eventTime=when.isoformat(), run=Run(runId=str(uuid.uuid4())),
                  job=Job(namespace="glideslope", name=job), producer="test",
                  inputs=[to_openlineage(d, output=False) for d in inputs],
                  outputs=[to_openlineage(d, output=True) for d in outputs])
    return json.loads(Serde.to_json(ev))


@pytest.fixture
def uc():
    return load_usecase("flight_delay")


@pytest.fixture
def lake(tmp_path, uc):
    lake = Lake(root=str(tmp_path / "lake"), usecase=uc.name)
    for ds in (D, E):
        for source in ("flights", "schedule", "weather"):
            lake.publish_bytes(lake.raw(source, ds), b"a,b\n1,2\n")
        for out in uc.output_suites:
            lake.publish_parquet(pd.DataFrame({"flight_id": ["a", "b", "c"], "value": [1.0, 2.0, 3.0]}),
                                 lake.output(ds, out))
    # E's trailing windows read D's raw flights too (what the transform lists beside its outputs).
    lake.write_json(lake.staging_inputs(E), [lake.raw("flights", D), lake.raw("flights", E),
                                             lake.raw("weather", E), lake.reference("planes")])
    return lake


def test_names_follow_the_openlineage_naming_of_files_and_s3():
    assert lineage.location("s3://glideslope/lake/fd/raw/flights/ds=2013-06-10") == (
        "s3://glideslope", "lake/fd/raw/flights/ds=2013-06-10")
    assert lineage.location("/data/lake/fd/curated/flights/ds=2013-06-10") == (
        "file", "/data/lake/fd/curated/flights/ds=2013-06-10")
    lake = Lake(root="s3://glideslope/lake", usecase="fd")
    d = lineage.predictions_partition(lake, D)
    assert (d["namespace"], d["name"]) == ("s3://glideslope", "lake/fd/predictions/ds=2013-06-10")


def test_published_partitions_carry_schema_rows_and_the_gate_outcome(uc, lake):
    ev = event("flight_delay__etl.validate_and_publish", lineage.publication(uc, D, {"outputs": {
        out: {"path": lake.output(D, out), "rows": 3} for out in uc.output_suites}}, lake))
    assert {i["name"].rsplit("/", 2)[-2] for i in ev["inputs"]} == {"flights", "schedule", "weather"}
    out = next(o for o in ev["outputs"] if "/curated/flights/" in o["name"])
    assert out["name"] == f"{lake.base}/curated/flights/ds={D}" and out["namespace"] == "file"
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == 3
    assert [f["name"] for f in out["facets"]["schema"]["fields"]] == ["flight_id", "value"]
    facet = out["facets"]["glideslope"]
    assert facet["kind"] == "curated" and facet["ds"] == D and facet["details"]["quality"]["success"] is True


def _loop_events(uc, lake, *, quarantined_day: str | None = None) -> list[dict]:
    """D and E through ETL and features, a model trained on D..E, E scored and checked."""
    from glideslope.quality.validate import Failure, ValidationReport

    evs = []
    for ds in (D, E):
        if ds == quarantined_day:
            report = ValidationReport(file=lake.raw("weather", ds), suite="raw_weather", rows=24,
                                      failures=[Failure(lake.raw("weather", ds), "visib", "type", 5)])
            slot = f"{lake.quarantine('weather', ds)}/20260101T000000.000000Z-abcd1234/weather.csv"
            evs.append(event(f"{uc.name}__etl.validate_raw_day",
                             lineage.quarantined(uc, ds, [report], [slot], lake), "FAIL"))
            continue
        evs.append(event(f"{uc.name}__etl.validate_raw_day", lineage.raw_validation(uc, ds, {"files": [
            {"file": lake.raw(s, ds), "rows": 1} for s in ("flights", "schedule", "weather")]}, lake)))
        evs.append(event(f"{uc.name}__etl.validate_and_publish", lineage.publication(uc, ds, {"outputs": {
            out: {"path": lake.output(ds, out), "rows": 3} for out in uc.output_suites}}, lake)))
        evs.append(event(f"{uc.name}__features.materialize_new_interval",
                         lineage.materialization(uc, {"days": [ds], "watermark": ds}, lake)))
    days = [d for d in (D, E) if d != quarantined_day]
    tset = f"{lake.base}/training/ds={E}/training_set.parquet"
    evs.append(event(f"{uc.name}__train.build_training_set", lineage.training_set_lineage(uc, {
        "uri": tset, "ds": E, "rows": 10, "train_days": [days[0], days[0]], "holdout": [days[-1], days[-1]],
        "missing_days": []}, lake)))
    evs.append(event(f"{uc.name}__train.train_candidates", lineage.training_lineage(uc, {
        "ds": E, "window": f"{days[0]}..{days[-1]}", "training_set": tset, "challenger_version": "3",
        "best": {"name": "hgb", "run_id": "r1", "metrics": {"roc_auc": 0.71}}})))
    evs.append(event(f"{uc.name}__score.score_next_period", lineage.scoring_lineage(uc, {
        "ds": E, "rows": 3, "model_name": uc.registered_model, "model_version": "3", "mean_prediction": 0.2}, lake)))
    evs.append(event(f"{uc.name}__monitor.check_drift", lineage.drift_lineage(uc, {
        "ds": E, "champion": {"version": "3"}, "verdict": {"status": "ok", "drift_share": 0.0, "drifted_columns": []},
        "current_rows": 3}, lake)))
    return evs


def test_the_trace_of_a_day_reaches_curated_features_model_and_predictions(uc, lake):
    t = lineage.trace(_loop_events(uc, lake), uc.name, D)
    assert {n.name.rsplit("/", 2)[-2] for n in t.raw} == {"flights", "schedule", "weather"}
    assert all(n.name.endswith(f"ds={D}") for n in t.raw)
    # D's own partitions, and E's, whose trailing windows read D's raw flights
    assert {n.name for n in t.by_kind("curated")} == {f"{lake.base}/curated/{table}/ds={ds}"
                                                     for table in ("flights", "schedule") for ds in (D, E)}
    assert {n.name.rsplit("/", 2)[-2] for n in t.by_kind("features")} == set(uc.features.tables)
    assert {n.name for n in t.by_kind("feature_view")} == set(uc.features.tables)
    assert [n.name for n in t.by_kind("model")] == [f"{uc.registered_model}/3"]
    assert [n.name for n in t.by_kind("predictions")] == [f"{lake.base}/predictions/ds={E}"]
    assert [n.name for n in t.by_kind("drift_report")] == [f"{lake.base}/reports/drift/ds={E}"]
    assert not t.stopped


def test_a_model_trained_on_a_window_without_the_day_is_not_downstream_of_it(uc, lake):
    evs = _loop_events(uc, lake)
    train = next(e for e in evs if e["job"]["name"].endswith("build_training_set"))
    for d in train["inputs"] + train["outputs"]:  # the window is E only
        if d["facets"]["glideslope"].get("days"):
            d["facets"]["glideslope"]["days"] = [E]
    train["inputs"] = [d for d in train["inputs"] if not d["name"].endswith(f"ds={D}")]
    for ev in evs:  # and E's features were made from E's raw data only
        if ev["job"]["name"].endswith("validate_and_publish") and ev["outputs"][0]["name"].endswith(f"ds={E}"):
            ev["inputs"] = [d for d in ev["inputs"] if not d["name"].endswith(f"ds={D}")]
    t = lineage.trace(evs, uc.name, D)
    assert t.by_kind("curated") and not t.by_kind("model") and not t.by_kind("predictions")


def test_a_quarantined_day_is_an_input_of_the_failed_run_and_of_nothing_after(uc, lake):
    # the bad delivery was moved to quarantine, so E's transform did not read it
    lake.write_json(lake.staging_inputs(E), [lake.raw("flights", E), lake.raw("weather", E)])
    evs = _loop_events(uc, lake, quarantined_day=D)
    failed = next(e for e in evs if e["eventType"] == "FAIL")
    weather = next(i for i in failed["inputs"] if "/raw/weather/" in i["name"])
    (assertion,) = weather["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert (assertion["assertion"], assertion["column"], assertion["success"]) == ("type", "visib", False)
    assert assertion["actual"] == "5 bad rows"
    assert [o["facets"]["glideslope"]["kind"] for o in failed["outputs"]] == ["quarantine"]
    t = lineage.trace(evs, uc.name, D)
    assert t.raw and [s["job"] for s in t.stopped] == [f"{uc.name}__etl.validate_raw_day"]
    assert t.downstream == []
    assert "downstream: nothing" in "\n".join(t.lines())
    assert not any(D in json.dumps(e["inputs"]) for e in evs if e["eventType"] == "COMPLETE")


def test_the_cli_reads_a_file_transport_folder(uc, lake, tmp_path, capsys):
    folder = tmp_path / "events"
    folder.mkdir()
    for i, ev in enumerate(_loop_events(uc, lake)):
        (folder / f"ol-20260101-0000{i:02d}.000000.json").write_text(json.dumps(ev) + "\n")
    assert lineage.main(["--usecase", uc.name, "--ds", D, "--events", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"{uc.registered_model}/3" in out and f"predictions/ds={E}" in out
    assert lineage.main(["--usecase", uc.name, "--ds", "2013-01-01", "--events", str(folder)]) == 1


def test_a_lineage_description_that_fails_never_fails_the_task(uc, lake):
    from types import SimpleNamespace

    from glideslope.airflow.lineage import GlideslopeExtractor, report

    ti = SimpleNamespace(dag_id=f"{uc.name}__etl", task_id="validate_and_publish", run_id=str(uuid.uuid4()),
                         map_index=-1)
    report({"ti": ti}, lineage.publication, uc, D, {"outputs": {"curated/flights": {"path": "/nowhere/ds=x"}}}, lake)
    assert GlideslopeExtractor(SimpleNamespace()).extract_on_complete(ti).outputs == []
    report({"ti": ti}, lineage.raw_validation, uc, D, {"files": [{"file": lake.raw("weather", D), "rows": 1}]}, lake)
    (got,) = GlideslopeExtractor(SimpleNamespace()).extract_on_complete(ti).inputs
    assert got.name == f"{lake.base}/raw/weather/ds={D}"
