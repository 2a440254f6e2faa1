"""``glideslope check`` warns when a window of the spec can be too thin on the nights the data has.

A season of games one to eight days apart, with a break (the sparse calendar of issue #21). As
training and the monitor count them, a holdout is the last ``training.holdout_days`` nights with
events of a ``training.window_days``-night window, and the monitor's current window the last
``drift.reference_days`` nights with predictions: a break cannot empty those, but it can leave a
training window too few nights with events to train, and sparse nights too few rows for a verdict.
"""

from __future__ import annotations

import sys
from datetime import date, timedelta

import pytest

from glideslope.config import load_usecase
from glideslope.scaffold import create
from glideslope_local.check import Calendar, calendar_step, csv_rows, window_warnings

pytestmark = pytest.mark.unit

SEASON_START = date(2009, 1, 1)
# Nights with a game, as offsets from SEASON_START: gaps of 1 to 8 days, then a 25-night break
# (2009-02-07..2009-03-03) before the second half.
GAME_NIGHTS = [0, 1, 3, 4, 6, 9, 10, 12, 13, 15, 16, 18, 20, 28, 29, 31, 32, 34, 36, 62, 63, 65, 66, 68,
               70, 71, 73, 74, 76, 78, 79, 81, 82, 84]


def _night(offset: int) -> str:
    return (SEASON_START + timedelta(days=offset)).isoformat()


def _season(rows_a_game: int) -> Calendar:
    return Calendar("curated/events", {_night(i): rows_a_game for i in GAME_NIGHTS})


@pytest.fixture()
def usecase(tmp_path, monkeypatch):
    """The binary skeleton: window_days 28, holdout_days 4, reference_days 7, min_slice_rows 200, min_rows 500."""
    for name in [m for m in sys.modules if m.startswith("glideslope_usecases.games")]:
        monkeypatch.delitem(sys.modules, name)  # each test's own feed.py, not an earlier test's
    create("games", "binary_classification", tmp_path)
    return load_usecase("games", tmp_path)


def test_a_break_that_leaves_a_training_window_too_few_nights_with_events_is_named(usecase):
    warnings = window_warnings(usecase, _season(900), None)
    (warning,) = warnings
    # 28 nights ending 2009-03-03 hold only 2009-02-05 and 2009-02-06: no 4-night holdout plus one.
    assert warning.startswith("training.window_days: 28")
    assert "can hold only 2 nights with events in curated/events" in warning
    assert "fewer than training.holdout_days + 1 = 5" in warning
    assert "nights without events 2009-02-07..2009-03-03 (25)" in warning


def test_sparse_nights_too_thin_for_the_holdout_and_the_monitor_are_named(usecase):
    warnings = window_warnings(usecase, _season(40), _season(40))
    fields = [w.split(" — ")[0] for w in warnings]
    assert fields == ["training.window_days: 28", "training.holdout_days: 4", "drift.min_rows: 500"]
    assert "as few as 160 rows" in warnings[1] and "promotion.min_slice_rows 200" in warnings[1]
    assert "as few as 280 scored events" in warnings[2] and "2009-01-01..2009-01-11" in warnings[2]


def test_a_calendar_with_events_every_night_gives_no_warning(usecase):
    every_night = Calendar("curated/events", {_night(i): 900 for i in range(60)})
    assert window_warnings(usecase, every_night, every_night) == []


def test_a_quiet_night_now_and_then_is_no_warning(usecase):
    # Games on six nights of seven: a holdout and the monitor's window count nights with events.
    mostly = Calendar("curated/events", {_night(i): 900 for i in range(60) if i % 7 != 3})
    assert window_warnings(usecase, mostly, mostly) == []


def test_the_calendar_is_read_from_what_the_feed_delivers(usecase):
    """A feed that delivers a header only on nights without a game: check reads the break from it."""
    games = {_night(i) for i in GAME_NIGHTS}
    feed = (
        f"GAMES = {sorted(games)!r}\n"
        "HEADER = b'event_id,event_time,group,x1,label\\n'\n"
        "def deliveries(ds):\n"
        "    body = b'g-' + ds.encode() + b',' + ds.encode() + b' 19:00,home,1.5,1\\n' if ds in GAMES else b''\n"
        "    return {'events': HEADER + body, 'to_score': HEADER + body}\n"
        "def reference():\n"
        "    return {}\n")
    (usecase.folder / "feed.py").write_text(feed)
    read, warnings = calendar_step(usecase, start=_night(0), end=_night(84))
    assert "feed.deliveries() events: 85 nights 2009-01-01..2009-03-26" in read
    assert f"{85 - len(GAME_NIGHTS)} without events" in read
    assert any(w.startswith("training.window_days: 28") and "2009-02-07..2009-03-03 (25)" in w for w in warnings)
    assert any(w.startswith("drift.min_rows: 500") for w in warnings)  # one event a night
    # The skeleton's raw suites ask for at least one row: the gate would reject every quiet night.
    quiet = 85 - len(GAME_NIGHTS)
    assert any(w.startswith(f"quality/raw_events.yaml rows.min: 1 — {quiet} of the 85 nights") and
               "2009-01-03: 0" in w for w in warnings)
    for suite in ("raw_events.yaml", "raw_to_score.yaml"):
        path = usecase.folder / "quality" / suite
        path.write_text(path.read_text().replace("rows: {min: 1,", "rows: {min: 0,"))
    _, warnings = calendar_step(usecase, start=_night(0), end=_night(84))
    assert not [w for w in warnings if "rows.min" in w]


def test_a_feed_that_sends_no_file_on_quiet_nights_has_quiet_nights_and_no_gate_to_fail(usecase):
    """every_night: false: no file at all on a night without games; nothing reaches the gate that night."""
    games = {_night(i) for i in GAME_NIGHTS}
    (usecase.folder / "feed.py").write_text(
        f"GAMES = {sorted(games)!r}\n"
        "def deliveries(ds):\n"
        "    if ds not in GAMES:\n"
        "        return {}\n"
        "    body = b'event_id,event_time,group,x1,label\\ng-' + ds.encode() + b',' + ds.encode() + b' 19:00,h,1.5,1\\n'\n"
        "    return {'events': body, 'to_score': body}\n"
        "def reference():\n"
        "    return {}\n")
    read, warnings = calendar_step(usecase, start=_night(0), end=_night(84))
    assert f"85 nights 2009-01-01..2009-03-26, {85 - len(GAME_NIGHTS)} without events" in read
    assert any(w.startswith("training.window_days: 28") for w in warnings)
    assert not [w for w in warnings if "rows.min" in w]


def test_the_skeleton_feed_not_written_yet_is_said_not_failed(usecase):
    read, warnings = calendar_step(usecase)
    assert "deliveries() is not written yet" in read and warnings == []


def test_published_partitions_win_over_the_feed(usecase, tmp_path, monkeypatch):
    """Once the ETL published nights (quiet ones as 0-row partitions), the calendar is the label table's."""
    import pandas as pd

    from glideslope.lake import Lake

    monkeypatch.setenv("GLIDESLOPE_HOME", str(tmp_path / "home"))
    lake = Lake.for_usecase(usecase.name)
    for i in range(40):
        rows = 0 if 5 <= i < 32 else 50  # 27 quiet nights
        df = pd.DataFrame({"event_id": [f"e{i}-{k}" for k in range(rows)], "label": [1] * rows})
        lake.publish_parquet(df, lake.curated("events", _night(i)))
    read, warnings = calendar_step(usecase)  # the skeleton's feed would raise: it is not asked
    assert read.startswith("curated/events: 40 nights 2009-01-01..2009-02-09, 27 without events")
    assert any(w.startswith("training.window_days: 28") and "2009-01-06..2009-02-01 (27)" in w for w in warnings)


def test_landed_raw_files_are_read_before_the_etl_published_anything(usecase, tmp_path, monkeypatch):
    from glideslope.lake import Lake

    monkeypatch.setenv("GLIDESLOPE_HOME", str(tmp_path / "home"))
    lake = Lake.for_usecase(usecase.name)
    header = b"event_id,event_time,group,x1,label\n"
    for i in range(40):
        body = b"" if 5 <= i < 32 else b"".join(b"e%d-%d,%s 10:00,a,1.0,0\n" % (i, k, _night(i).encode())
                                                for k in range(3))
        for source in ("events", "to_score"):
            lake.publish_bytes(lake.raw(source, _night(i)), header + body)
    read, warnings = calendar_step(usecase)
    assert read.startswith("raw/events: 40 nights 2009-01-01..2009-02-09, 27 without events")
    assert "raw/to_score" in read
    assert any(w.startswith("training.window_days: 28") for w in warnings)
    assert any(w.startswith("quality/raw_events.yaml rows.min: 1 — 27 of the 40 nights of raw/events")
               for w in warnings)


def test_rows_of_a_delivered_file_exclude_its_header_and_keep_quoted_line_breaks():
    assert csv_rows(b"a,b\n") == 0 and csv_rows(b"") == 0
    assert csv_rows(b'a,b\n1,"two\nlines"\n3,4') == 2
