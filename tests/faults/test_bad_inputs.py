"""The bad-input corpus: one broken delivery of day D between good days, on the real feed.

What passes and why: CRLF line ends and a UTF-8 byte-order mark are encodings of the same table
(pandas and Spark read them to the same values), so they pass and publish byte-identical outputs.
A weather delivery with a few bad readings passes with those rows quarantined (the spec's
``on_bad_rows: quarantine_rows``, up to 5%). Everything else is rejected: the delivery goes to
quarantine byte for byte, the error names file, column and rule, and the fixed re-delivery of the
day publishes exactly what a clean run publishes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from glideslope.etl.pipeline import BackfillIncomplete, run_days
from glideslope.lake import Lake

from .conftest import D0, UC, D, assert_nothing_doubled, of_day, published, raw_lines

NEXT = "2013-03-06"
WEATHER_NUMBERS = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib"]


def _join(lines: list[str], end: str = "\n") -> bytes:
    return (end.join(lines) + end).encode()


def _set(lines: list[str], column: str, value: str, rows: list[int]) -> list[str]:
    idx = lines[0].split(",").index(column)
    out = list(lines)
    for r in rows:
        cells = out[r].split(",")
        cells[idx] = value
        out[r] = ",".join(cells)
    return out


def _insert_column(lines: list[str], after: str, name: str, value: str) -> list[str]:
    idx = lines[0].split(",").index(after) + 1
    out = []
    for i, line in enumerate(lines):
        cells = line.split(",")
        cells.insert(idx, name if i == 0 else value)
        out.append(",".join(cells))
    return out


def _swap(lines: list[str], a: str, b: str) -> list[str]:
    head = lines[0].split(",")
    i, j = head.index(a), head.index(b)
    out = []
    for line in lines:
        cells = line.split(",")
        cells[i], cells[j] = cells[j], cells[i]
        out.append(",".join(cells))
    return out


@dataclass
class Bad:
    name: str
    source: str
    make: Callable[[Any], bytes]  # feed -> the bad bytes of ``source`` for day D
    before: str
    after: str
    error: str | None = None  # regex the error must match; None: the delivery passes
    quarantined_rows: int = 0
    # After the fixed re-delivery publishes, run the next good day too and compare it with a clean
    # run's: the cases that used to leak into, or block, the days after them.
    full_recovery: bool = False
    info: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.info = {"case": f"bad input: {self.name}", "before": self.before, "after": self.after}


CAUGHT = "caught at the raw gate with file, column and rule (unchanged)"
CORPUS = [
    Bad("renamed column", "flights",
        lambda f: _join([raw_lines(f, "flights")[0].replace("distance", "dist"), *raw_lines(f, "flights")[1:]]),
        CAUGHT, "rejected: `dist` is not a declared column, `distance` is missing; quarantined",
        r"flights\.csv: column 'dist' rule is declared in suite raw_flights(?s:.*)column 'distance' rule "
        r"to_exist"),
    Bad("text in a numeric column", "flights",
        lambda f: _join(_set(raw_lines(f, "flights"), "dep_delay", "late", [3, 9])),
        CAUGHT, "rejected: `dep_delay` does not match the int pattern, 2 bad rows; quarantined",
        r"column 'dep_delay' rule matches regex .*: 2 bad rows, e\.g\. \['late', 'late'\]"),
    Bad("duplicated keys", "flights",
        lambda f: _join([*raw_lines(f, "flights"), raw_lines(f, "flights")[5]]),
        CAUGHT, "rejected: the compound key is not unique; quarantined",
        r"column 'year\+month\+day\+carrier\+flight\+origin\+dest\+sched_dep_time' rule compound_columns"),
    Bad("truncated file", "flights", lambda f: _join(raw_lines(f, "flights"))[:-37],
        CAUGHT, "rejected: the last line is cut off; quarantined", r"file looks truncated"),
    Bad("header-only file", "flights", lambda f: _join(raw_lines(f, "flights")[:1]),
        "caught, but the row-count failure did not show the observed count",
        "rejected: row count 100..5000, observed 0 rows; quarantined", r"observed 0 rows"),
    Bad("rows outside the partition's day", "flights",
        lambda f: _join([*raw_lines(f, "flights"), *raw_lines(f, "flights", D0)[1:40],
                         *raw_lines(f, "flights", NEXT)[1:40]]),
        "passed the gate; D's carrier statistics counted D-1 and D+1 rows (label leakage) and the next good "
        "day failed its output gate (`flight_id be_unique`) on every rerun",
        "rejected: 78 rows not dated on D, the dates named; quarantined; the next good day is not blocked",
        r"column 'year\+month\+day' rule dates every row on 2013-03-05: 78 bad rows, e\.g\. \['2013-03-04', "
        r"'2013-03-06'\]", full_recovery=True),
    Bad("all-null weather", "weather",
        lambda f: _join([raw_lines(f, "weather")[0], *[
            line for line in _set_many(raw_lines(f, "weather"), WEATHER_NUMBERS, "NA")[1:]]]),
        "passed; the day published origin_weather with every wx_* NaN",
        "rejected: `temp` (and every measured column) at most 50% null, observed 100%; quarantined",
        r"column 'temp' rule not_be_null\(mostly=0\.5\) \(observed 100% null\)", full_recovery=True),
    Bad("an absurd weather reading", "weather",
        lambda f: _join(_set(raw_lines(f, "weather"), "wind_speed", "1048.36058", [4])),
        "the whole weather delivery was quarantined and the day was lost (2013-02-12 of the real data)",
        "passes: the one row goes to quarantine with its reason (`wind_speed above 200`), the day publishes "
        "from the other rows", None, quarantined_rows=1),
    Bad("text in a weather reading", "weather",
        lambda f: _join(_set(raw_lines(f, "weather"), "temp", "warm", [2])),
        "the whole weather delivery was quarantined", "passes with that row quarantined (its reason: the "
        "float pattern of `temp`)", None, quarantined_rows=1),
    Bad("too many absurd weather readings", "weather",
        lambda f: _join(_set(raw_lines(f, "weather"), "wind_speed", "1048", list(range(1, 12)))),
        "the whole weather delivery was quarantined",
        "rejected as a whole: 11 bad rows are more than max_bad_rows 5%; quarantined",
        r"column 'wind_speed' rule be_between\(min_value=0\.0, max_value=200\.0\): 11 bad rows"),
    Bad("absurd value in flights", "flights",
        lambda f: _join(_set(raw_lines(f, "flights"), "distance", "99999", [8])),
        CAUGHT, "rejected (flights carry the labels: whole or not at all); quarantined",
        r"column 'distance' rule be_between\(min_value=1\.0, max_value=6000\.0\): 1 bad rows"),
    Bad("non-UTF-8 bytes", "flights",
        lambda f: _non_utf8(raw_lines(f, "flights")),
        "a bare UnicodeDecodeError (no file, column or rule); not quarantined; the next day's statistics "
        "included its rows; the fixed re-delivery was refused as a conflict",
        "rejected: `text is UTF-8`, naming line 7, the column and the byte; quarantined; the fixed "
        "re-delivery lands and publishes",
        r"flights\.csv: column 'tailnum' rule text is UTF-8: 1 bad rows.*line 7, column 'tailnum', byte \d+", full_recovery=True),
    Bad("0-byte file", "flights", lambda f: b"", CAUGHT, "rejected: `file is not empty`; quarantined",
        r"flights\.csv: table rule file is not empty"),
    Bad("extra column in the middle", "flights",
        lambda f: _join(_insert_column(raw_lines(f, "flights"), "carrier", "gate", "A1")),
        "passed the gate; Spark mapped columns by position: a cast error naming no file, the file stayed in "
        "raw/, and the next day published 709 of 901 routes as garbage (`N0EGMQ-EWR`)",
        "rejected: `gate` is an unexpected column at position 11; quarantined",
        r"column 'gate' rule is declared in suite raw_flights \(an unexpected column at position 11", full_recovery=True),
    Bad("columns swapped", "flights",
        lambda f: _join(_swap(raw_lines(f, "flights"), "dep_time", "sched_dep_time")),
        "passed the gate (it reads by name); Spark maps CSV columns by position (found reading the code)",
        "rejected: `sched_dep_time` is not at its declared position; quarantined",
        r"column 'sched_dep_time' rule is at position 5 as declared \(found at position 4\)", full_recovery=True),
    Bad("schedule of the wrong day", "schedule",
        lambda f: f.deliveries(NEXT)["schedule"],
        "passed the gate, which had no day rule (found reading the code): D+2's flights would be scored as D+1's",
        "rejected: every row must be dated D+1; quarantined",
        r"schedule\.csv: column 'year\+month\+day' rule dates every row on 2013-03-06"),
    Bad("CRLF line ends", "flights", lambda f: _join(raw_lines(f, "flights"), "\r\n"),
        "passed", "passes: the same table; the outputs are byte-identical to a clean run's", None),
    Bad("UTF-8 byte-order mark", "flights", lambda f: b"\xef\xbb\xbf" + _join(raw_lines(f, "flights")),
        "passed", "passes: the same table; the outputs are byte-identical to a clean run's", None),
]


def _set_many(lines: list[str], columns: list[str], value: str) -> list[str]:
    for c in columns:
        lines = _set(lines, c, value, list(range(1, len(lines))))
    return lines


def _non_utf8(lines: list[str]) -> bytes:
    idx = lines[0].split(",").index("tailnum")
    cells = lines[6].split(",")
    cells[idx] = "N\udcff\udcfe1"  # two lone bytes 0xff 0xfe in a tail number
    lines = [*lines[:6], ",".join(cells), *lines[7:]]
    return ("\n".join(lines) + "\n").encode("utf-8", errors="surrogateescape")


@pytest.mark.parametrize("bad", CORPUS, ids=[b.name.replace(" ", "-") for b in CORPUS])
def test_bad_delivery(bad: Bad, lake: Lake, spark: Any, feed: Any, reference: dict[str, str],
                      reference_raw: dict[str, str], reference_next: dict[str, str],
                      monkeypatch: pytest.MonkeyPatch) -> None:
    before = published(lake)
    data = bad.make(feed)
    real = feed.deliveries
    monkeypatch.setattr(feed, "deliveries", lambda ds: {**real(ds), **({bad.source: data} if ds == D else {})})

    if bad.error is None:
        out = run_days(UC, [D], lake=lake, spark=spark)
        now = published(lake)
        assert {k: v for k, v in now.items() if k in before} == before, "the last good day is untouched"
        changed = {k for k, v in of_day(now, D).items() if reference.get(k) != v}
        if bad.quarantined_rows:
            assert changed == {f"features/origin_weather/ds={D}/data.parquet"}, changed
            (slot,) = lake.quarantined(bad.source, D)
            with open(f"{slot}/bad_rows.csv") as f:
                assert len(f.read().splitlines()) == 1 + bad.quarantined_rows
            assert lake.read_json(f"{slot}/_reason.json")["rows_quarantined"] == bad.quarantined_rows
        else:
            assert not changed, f"{bad.name}: outputs differ from a clean run: {changed}"
        assert set(out[D]["outputs"]) == {k.split("/ds=")[0] for k in reference}
        assert_nothing_doubled(lake)
        return

    with pytest.raises(BackfillIncomplete) as exc:
        run_days(UC, [D], lake=lake, spark=spark)
    message = str(exc.value)
    assert re.search(bad.error, message), message
    assert list(exc.value.failed) == [D] and not exc.value.published
    assert published(lake) == before, "the last good output is byte-identical and nothing of D is visible"
    (slot,) = lake.quarantined(bad.source, D)
    with open(f"{slot}/{bad.source}.csv", "rb") as f:
        assert f.read() == data, "the bad delivery is kept byte for byte"
    assert_nothing_doubled(lake)

    monkeypatch.undo()  # the provider re-issues the day, fixed
    run_days(UC, [D], lake=lake, spark=spark)
    assert of_day(published(lake, ("raw",)), D) == reference_raw, "the re-delivery lands as a clean run's"
    assert of_day(published(lake), D) == reference, "the fixed re-delivery publishes what a clean run does"
    if bad.full_recovery:  # the cases that used to leak into, or block, the day after them
        run_days(UC, [NEXT], lake=lake, spark=spark)
        assert of_day(published(lake), NEXT) == reference_next, "the next good day publishes what a clean run does"
    assert {k: v for k, v in published(lake).items() if k in before} == before
    assert_nothing_doubled(lake)
