"""The use-case contract: what the spec checks when it loads, and what an ETL run checks of the outputs.

Each rule is broken the way a person writing a new use case would break it, and the error must
name the file, the table or field, and the column.
"""

from __future__ import annotations

import pandas as pd
import pytest
from regression_data import regression_spec, write_spec

from glideslope.config import SpecError, load_usecase, parse_usecase, resolve_usecase
from glideslope.contract import ContractError, check_outputs, required_columns
from glideslope.errors import PermanentError
from glideslope.quality.suites import load_suite
from glideslope.quality.validate import validate_csv_bytes

pytestmark = pytest.mark.unit


def _spec(tmp_path, **changes):
    raw = regression_spec()
    for dotted, value in changes.items():
        section, _, field = dotted.partition("__")
        if field:
            raw[section][field] = value
        else:
            raw[section] = value
    return write_spec(tmp_path, raw)


def test_an_unversioned_feature_service_fails_at_load_naming_the_field(tmp_path):
    with pytest.raises(SpecError) as e:
        parse_usecase(_spec(tmp_path, features__service="arrival_features"))
    assert "usecase.yaml" in str(e.value) and "features.service" in str(e.value) and "_v" in str(e.value)


def test_a_label_table_that_is_no_output_fails_at_load(tmp_path):
    with pytest.raises(SpecError) as e:
        parse_usecase(_spec(tmp_path, label={"column": "arr_delay", "task": "regression", "table": "arrivals"}))
    assert "'curated/arrivals' (label.table) is not an output" in str(e.value)
    assert "output_suites" in str(e.value)


def test_a_feature_table_without_a_suite_fails_at_load(tmp_path):
    raw = regression_spec()
    raw["output_suites"].pop("features/route_stats")
    with pytest.raises(SpecError) as e:
        parse_usecase(write_spec(tmp_path, raw))
    assert "'features/route_stats' (features.tables[1])" in str(e.value)


def test_label_horizon_and_null_markers_have_defaults_and_are_read(tmp_path):
    uc = parse_usecase(_spec(tmp_path))
    assert uc.label.horizon_days == 1
    assert uc.source("flights").null_markers == ["NA", ""]
    bike = load_usecase("bike_demand")
    assert bike.source("rentals").null_markers == [""] and bike.entity_noun == "hours"


def test_null_markers_decide_what_the_raw_gate_counts_as_missing(tmp_path):
    uc = load_usecase("bike_demand")
    suite = load_suite(uc, "raw_rentals.yaml")
    header = "dteday,season,hr,holiday,weekday,workingday,weathersit,temp,atemp,hum,windspeed,casual,registered,cnt\n"
    row = "2012-06-01,summer,8am,No,Fri,Yes,{wx},20.0,21.0,50.0,10.0,30,400,430\n"
    ok = validate_csv_bytes((header + row.format(wx="")).encode(), suite, "rentals.csv", null_markers=[""])
    assert ok.success, [str(f) for f in ok.failures]
    # With only "NA" as a marker an empty cell is a value, and not an allowed one.
    bad = validate_csv_bytes((header + row.format(wx="NA")).encode(), suite, "rentals.csv", null_markers=[""])
    assert not bad.success and any(f.column == "weathersit" for f in bad.failures)


def _frames(uc):
    cols = required_columns(uc)
    return {out: pd.DataFrame({c: [1.0] for c in [*need, "extra"]}) for out, need in cols.items()}


def test_outputs_that_keep_the_contract_pass():
    uc = load_usecase("bike_demand")
    check_outputs(uc, _frames(uc))


def test_a_label_table_without_the_label_fails_naming_table_and_column():
    uc = load_usecase("bike_demand")
    frames = _frames(uc)
    frames["curated/rentals"] = frames["curated/rentals"].drop(columns=["cnt"])
    with pytest.raises(ContractError) as e:
        check_outputs(uc, frames)
    msg = str(e.value)
    assert "curated/rentals: missing column(s) ['cnt']" in msg
    assert "transform.py" in msg and "usecase.yaml" in msg
    assert isinstance(e.value, PermanentError)


def test_a_feature_table_without_created_and_a_text_label_fail_together():
    uc = load_usecase("bike_demand")
    frames = _frames(uc)
    frames["features/slot_demand"] = frames["features/slot_demand"].drop(columns=["created"])
    frames["curated/rentals"]["cnt"] = ["many"]
    with pytest.raises(ContractError) as e:
        check_outputs(uc, frames)
    assert "features/slot_demand: missing column(s) ['created']" in str(e.value)
    assert "label column 'cnt' is object, not numeric" in str(e.value)


def test_usecase_is_required_when_there_are_several(tmp_path):
    for name in ("one", "two"):
        write_spec(tmp_path, regression_spec(name))
    with pytest.raises(SpecError, match="--usecase is required.*one, two"):
        resolve_usecase(None, tmp_path)
    assert resolve_usecase("two", tmp_path).name == "two"
    (tmp_path / "two" / "usecase.yaml").unlink()
    assert resolve_usecase(None, tmp_path).name == "one"


def test_the_demo_takes_its_dates_and_story_from_the_spec(tmp_path):
    import argparse

    from glideslope_local.demo import DATES, _fill_dates, _story

    flights = load_usecase("flight_delay")
    args = argparse.Namespace(**dict.fromkeys(DATES), expect=None, first_model_candidates="")
    _fill_dates(flights, args)
    assert (args.history_start, args.last_night) == ("2013-05-04", "2013-07-03")
    assert _story(flights, args) == list(flights.demo.expect) and "escalate=2013-07-02" in _story(flights, args)
    args.last_night = "2013-06-20"  # another replay: the spec's story does not hold for it
    assert _story(flights, args) == []

    raw = regression_spec()
    raw.pop("demo", None)
    bare = parse_usecase(write_spec(tmp_path, raw))
    with pytest.raises(SpecError, match="no demo section: give --history-start, --history-end"):
        _fill_dates(bare, argparse.Namespace(**dict.fromkeys(DATES), expect=None, first_model_candidates=""))
    raw["demo"] = {"history_start": "2013-06-10", "history_end": "2013-06-01", "train_on": "2013-06-01",
                   "first_night": "2013-06-11", "last_night": "2013-06-12"}
    with pytest.raises(SpecError, match="demo"):
        parse_usecase(write_spec(tmp_path, raw))
