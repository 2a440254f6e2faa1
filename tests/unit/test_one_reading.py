"""One reading of a delivery (docs/adr/0015): what the raw gate validates is what Spark reads.

A differential, property-based test. Hypothesis writes CSV deliveries the way real providers do --
quoted fields holding commas, doubled quotes and line ends, LF/CRLF/CR line ends, a byte-order
mark, empty cells next to null markers, non-ASCII text in UTF-8, Latin-1, cp1252 or UTF-16, long
lines -- and each one goes through the real path: landed with its checksum, gated
(:func:`validate_delivery`), its reading kept as the gate writes it, then read by a real Spark
session through ``SparkInputs._read_landed``. Every delivery the gate accepts must be read by Spark
to exactly the rows and values the gate saw (and, for UTF-8, the rows that were written); every one
it rejects must name the line and the column of the first bad byte.

A fixed seed and a few hundred examples by default (``derandomize``); more with
``GLIDESLOPE_HYPOTHESIS_EXAMPLES=5000``.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis")  # locked in uv.lock with the dev tools

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from glideslope.data.landing import record  # noqa: E402
from glideslope.etl.pipeline import _keep_reading  # noqa: E402
from glideslope.lake import Lake  # noqa: E402
from glideslope.quality.validate import validate_delivery  # noqa: E402

pytestmark = pytest.mark.unit

EXAMPLES = int(os.environ.get("GLIDESLOPE_HYPOTHESIS_EXAMPLES", "200"))
settings.register_profile(
    "glideslope-one-reading", max_examples=EXAMPLES, derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])

# Text a provider puts in a cell: the characters CSV must quote, and letters outside ASCII (some
# Latin-1 can encode, some it cannot).
SPECIAL = [",", '"', "\n", "\r", "\r\n", " ", "'", ";", "\t"]
LETTERS = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.sampled_from(
    ["é", "ü", "ñ", "Ø", "ß", "€", "漢", "字", "🛫", "Montréal", "São Paulo"])
CELL = st.one_of(
    st.lists(st.sampled_from(SPECIAL) | st.sampled_from("abcXYZ019.-_") | LETTERS, max_size=12).map("".join),
    st.text(st.sampled_from("abcdefghij ,\""), min_size=2000, max_size=4000),  # a long line
)
MARKERS = st.sampled_from([["NA", ""], [""], ["NA"], ["NA", "", "null"]])
NAMES = st.lists(st.from_regex(r"[a-z][a-z_0-9]{0,7}", fullmatch=True), min_size=1, max_size=4, unique=True)


@st.composite
def deliveries(draw: Any) -> dict[str, Any]:
    names = draw(NAMES)
    markers = draw(MARKERS)
    rows = draw(st.lists(st.lists(st.none() | CELL, min_size=len(names), max_size=len(names)), max_size=6))
    # A cell whose text is a null marker reads as null, quoted or not (the marker is the source's
    # word for "no value"): the written rows say so.
    rows = [[None if c is not None and c in markers else c for c in row] for row in rows]
    return {
        "names": names, "markers": markers, "rows": rows,
        "quoting": draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
        "line_end": draw(st.sampled_from(["\n", "\r\n", "\r"])),
        "bom": draw(st.booleans()),
        "encoding": draw(st.sampled_from(["utf-8"] * 6 + ["latin-1", "cp1252", "utf-16"])),
    }


def write(d: dict[str, Any]) -> tuple[bytes, str | None]:
    """The delivery's bytes, and the text as written (None when the encoding cannot write it)."""
    null_text = d["markers"][0]

    def line(cells: list[str]) -> str:
        # As RFC 4180 writers do, a field holding CR or LF is quoted whatever the file's line end
        # (Python's writer quotes only the characters of its own lineterminator).
        buf = io.StringIO()
        csv.writer(buf, quoting=d["quoting"], lineterminator="\r\n").writerow(cells)
        return buf.getvalue()[:-2] + d["line_end"]

    text = line(d["names"]) + "".join(line([null_text if c is None else c for c in row]) for row in d["rows"])
    try:
        data = text.encode(d["encoding"], errors="strict")
    except UnicodeEncodeError:
        data = text.encode(d["encoding"], errors="replace") if d["encoding"] != "utf-16" else text.encode("utf-16")
        text = data.decode(d["encoding"], errors="replace")
    if d["bom"] and d["encoding"] == "utf-8":
        data = b"\xef\xbb\xbf" + data
    return data, text


def first_non_utf8(data: bytes) -> int | None:
    try:
        data.decode("utf-8")
        return None
    except UnicodeDecodeError as e:
        return e.start


def line_of(text: bytes, offset: int) -> int:
    ends = re.findall(rb"\r\n|\r|\n", text[:offset])
    return len(ends) + 1


def column_of(data: bytes, offset: int, names: list[str]) -> str:
    """The column of byte ``offset``, by reading the records before it with Python's csv module
    (an oracle independent of the gate's own scan); in the header itself, its field number."""
    prefix = data[:offset].decode("utf-8")
    rows = list(csv.reader(io.StringIO(prefix + "x", newline="")))  # x: the bad byte's place
    field = len(rows[-1]) - 1
    if len(rows) == 1:
        return f"header field {field + 1}"
    return names[field] if field < len(names) else f"field {field + 1}"


@pytest.fixture(scope="module")
def spark() -> Any:
    from glideslope.etl.spark_job import spark_session

    session = spark_session("glideslope-one-reading")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return Lake(root=str(tmp_path_factory.mktemp("one-reading") / "lake"), usecase="one_reading")


COUNTER = iter(range(10**9))


@settings(settings.get_profile("glideslope-one-reading"))
@given(d=deliveries())
def test_what_the_gate_accepts_is_what_spark_reads(d: dict[str, Any], spark: Any, lake: Lake) -> None:
    from glideslope.etl.spark_job import SparkInputs

    data, text = write(d)
    day = f"2013-01-01-{next(COUNTER)}"  # one raw folder per example
    path = f"{lake.base}/raw/delivery/ds={day}/delivery.csv"
    lake.publish_bytes(path, data)
    record(lake, path, data)

    report, parsed = validate_delivery(data, None, path, null_markers=d["markers"])
    bad = first_non_utf8(data)
    if bad is not None:
        assert not report.success, "bytes that are not UTF-8 are never read (no U+FFFD)"
        (failure,) = [f for f in report.failures if f.rule == "text is UTF-8"]
        clean = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
        at = first_non_utf8(clean)
        assert at is not None
        want = f"line {line_of(clean, at)}, column {column_of(clean, at, d['names'])!r}"
        assert failure.examples[0].startswith(want), (failure.examples, want)
        assert failure.column == column_of(clean, at, d["names"])
        return

    assert report.success, [str(f) for f in report.failures]
    seen = [tuple(r.values()) for r in parsed.table.to_pylist()]
    assert parsed.header == d["names"]
    if d["encoding"] == "utf-8":  # what the gate saw is what was written
        assert seen == [tuple(r) for r in d["rows"]]

    _keep_reading(lake, path, parsed.table)
    frame = SparkInputs(spark, lake)._read_landed([path], "delivery")
    assert frame.columns == d["names"]
    read = [tuple(r) for r in frame.collect()]
    assert read == seen, "Spark read other rows or values than the gate validated"


def test_the_planes_row_that_used_to_shift_its_columns(spark: Any, lake: Lake) -> None:
    """The case that started this: a doubled quote inside a quoted manufacturer (#19)."""
    from glideslope.etl.spark_job import SparkInputs

    data = (b'tailnum,year,type,manufacturer,model,engines,seats,speed,engine\n'
            b'N10156,2004,Fixed wing multi engine,"BOEING ""COMMERCIAL"", INC.",EMB-145XR,2,55,NA,Turbo-fan\n')
    path = f"{lake.base}/reference/planes/since=2013-01-01/planes.csv"
    lake.publish_bytes(path, data)
    record(lake, path, data)
    report, parsed = validate_delivery(data, None, path)
    assert report.success
    _keep_reading(lake, path, parsed.table)
    (row,) = SparkInputs(spark, lake)._read_landed([path], "planes").collect()
    assert row["manufacturer"] == 'BOEING "COMMERCIAL", INC.' and row["seats"] == "55" and row["speed"] is None
    assert Path(lake.parsed(path)).exists()
