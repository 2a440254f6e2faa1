"""The raw gate's day rule: every row of night D's delivery is dated on the day the delivery is for.

Two forms of a suite's ``day``: three numeric columns ``[year, month, day]``, or one date column
(``day: game_date``) whose text is ``YYYY-MM-DD``, alone or starting a timestamp.
"""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from glideslope.config import SpecError
from glideslope.quality.suites import Suite, load_suite
from glideslope.quality.validate import bad_row_reasons, validate_csv_bytes

pytestmark = pytest.mark.unit

DAY = "2009-02-07"


def _suite(text: str) -> Suite:
    return Suite.model_validate({**yaml.safe_load(text), "name": "raw_games"})


GAMES = _suite("""
rows: {min: 1}
columns:
  game_id: {type: str, not_null: true}
  game_date: {type: str}
  home_score: {type: int}
day: game_date
""")


def _csv(*dates: str) -> bytes:
    rows = "".join(f"g{i},{d},{i}\n" for i, d in enumerate(dates))
    return f"game_id,game_date,home_score\n{rows}".encode()


@pytest.mark.parametrize("form", ["day: game_date", "day: [game_date]"])
def test_a_single_date_column_is_a_day_rule(form):
    suite = _suite(f"columns: {{game_date: {{type: str}}}}\n{form}\n")
    assert suite.day == ["game_date"]


def test_rows_of_the_delivery_day_pass_as_a_date_or_a_timestamp():
    report = validate_csv_bytes(_csv(DAY, f"{DAY} 19:30", f"{DAY}T19:30:00Z", f"{DAY}T23:10:00-05:00"),
                                GAMES, "raw/games/ds=2009-02-07/games.csv", day=DAY)
    assert report.success, report.failures


def test_a_row_of_another_day_fails_naming_the_column_and_the_dates_seen():
    report = validate_csv_bytes(_csv(DAY, "2009-02-08 13:00", "2009-02-070", DAY),
                                GAMES, "raw/games/ds=2009-02-07/games.csv", day=DAY)
    (failure,) = [f for f in report.failures if f.rule == f"dates every row on {DAY}"]
    assert failure.column == "game_date" and failure.bad_rows == 2
    assert failure.examples == ["2009-02-070", "2009-02-08 13:00"]


def test_quarantine_rows_names_the_off_day_and_undated_rows():
    text = pd.DataFrame({"game_id": ["a", "b", "c"], "game_date": [DAY, "2009-02-06", None],
                         "home_score": ["1", "2", "3"]}, dtype=object)
    reasons = bad_row_reasons(text, GAMES, DAY).tolist()
    assert reasons[0] == ""
    assert reasons[1] == reasons[2] == f"dated on another day than {DAY}"


def test_the_three_column_form_still_reads_year_month_day():
    suite = _suite("columns: {year: {type: int}, month: {type: int}, day: {type: int}}\nday: [year, month, day]\n")
    ok = validate_csv_bytes(b"year,month,day\n2009,2,7\n", suite, "f.csv", day=DAY)
    off = validate_csv_bytes(b"year,month,day\n2009,2,7\n2009,2,8\n", suite, "f.csv", day=DAY)
    assert ok.success and [f.bad_rows for f in off.failures if f.column == "year+month+day"] == [1]


def test_a_day_rule_of_two_columns_is_refused_naming_the_suite_file(tmp_path):
    from glideslope.config import load_usecase
    from glideslope.scaffold import create

    create("games", root=tmp_path)
    uc = load_usecase("games", tmp_path)
    (uc.folder / "quality" / "raw_bad.yaml").write_text("columns: {d: {type: str}}\nday: [year, month]\n")
    with pytest.raises(SpecError, match=r"raw_bad\.yaml: invalid suite \(day: .*expected \[year, month, day\] "
                                        r"or one date column"):
        load_suite(uc, "raw_bad.yaml")
