"""Data you can trust (#19): one reading of every delivery, reference data gated and versioned, a raw
zone that proves it is unchanged. Each case drives the real stage (land, gate, Spark, publish) on the
real feed, between the good day D0 and the day D it breaks (see conftest.py).
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest

from glideslope.etl.pipeline import BackfillIncomplete, run_days
from glideslope.lake import Lake

from .conftest import D0, UC, D, assert_nothing_doubled, case, of_day, published

NEXT = "2013-03-06"


def _planes_rows(feed: Any) -> list[str]:
    return feed.reference()["planes"].decode().split("\n")[:-1]


def _reissue_planes(feed: Any, monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    real = feed.reference
    monkeypatch.setattr(feed, "reference", lambda: {**real(), "planes": data})


def _quoted_manufacturer(lines: list[str], row: int, value: str) -> list[str]:
    cells = next(csv.reader([lines[row]]))
    cells[3] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells)
    return [*lines[:row], out.getvalue(), *lines[row + 1:]]


@case("a reference row with a doubled quote inside a quoted field",
      before="the gate read RFC 4180 (one quote), Spark read without escape='\"': the field split in two and "
             "every later column shifted; 335 planes rows published `plane_seats` = the `engines` value, no error",
      after="one reader parses the delivery once at the gate and Spark reads that table: plane_features of D "
            "is byte-identical to a clean run's")
def test_a_doubled_quote_in_a_reference_reads_as_one_field(lake: Lake, spark: Any, feed: Any,
                                                           reference: dict[str, str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _planes_rows(feed)
    tails = {line.split(",", 1)[0]: i for i, line in enumerate(lines)}
    flown = set(lake.read_parquet(f"{lake.base}/curated/flights/ds={D0}/data.parquet")["tailnum"].dropna())
    rows = sorted(tails[t] for t in flown if t in tails)[:335]
    for i in rows:
        lines = _quoted_manufacturer(lines, i, 'BOEING "COMMERCIAL", INC.')
    data = ("\n".join(lines) + "\n").encode()
    assert data.count(b'""COMMERCIAL""') == len(rows) > 100
    _reissue_planes(feed, monkeypatch, data)
    before = published(lake)

    run_days(UC, [D], lake=lake, spark=spark)

    assert of_day(published(lake), D) == reference, "the re-issued planes read to the same seats and years"
    assert {k: v for k, v in published(lake).items() if k in before} == before
    inputs = lake.read_json(f"{lake.base}/_staging/ds={D}/_inputs.json", default=None)
    if inputs is not None:  # the lineage names the version D used
        assert lake.reference_version("planes", D) in inputs
    assert_nothing_doubled(lake)


@case("a reference file in Latin-1",
      before="reference data was never gated: Spark decoded `Montréal` as `Montr\\ufffdal` and published it",
      after="the re-issued planes lands as a new version and is gated: `text is UTF-8` names the line, the "
            "column and the byte; the version goes to quarantine and D is not published; the fixed (UTF-8) "
            "re-issue lands as D's version and publishes")
def test_a_latin1_reference_is_rejected_with_line_and_column(lake: Lake, spark: Any, feed: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _planes_rows(feed)
    lines = _quoted_manufacturer(lines, 7, "AÉROSPATIALE DE MONTRÉAL")
    text = "\n".join(lines) + "\n"
    _reissue_planes(feed, monkeypatch, text.encode("latin-1"))
    before = published(lake)

    with pytest.raises(BackfillIncomplete) as exc:
        run_days(UC, [D], lake=lake, spark=spark)
    message = str(exc.value)
    assert re.search(r"reference/planes/since=2013-03-05/planes\.csv: column 'manufacturer' rule text is UTF-8: "
                     r"1 bad rows.*line 8, column 'manufacturer', byte \d+", message), message
    assert list(exc.value.failed) == [D] and published(lake) == before
    (slot,) = lake.quarantined("planes", D)
    with open(f"{slot}/planes.csv", "rb") as f:
        assert f.read() == text.encode("latin-1"), "the bad version is kept byte for byte"
    assert lake.reference_versions("planes") == [D0], "the version in effect before D is untouched"

    _reissue_planes(feed, monkeypatch, text.encode("utf-8"))  # the provider fixes the encoding
    run_days(UC, [D], lake=lake, spark=spark)
    assert lake.reference_versions("planes") == [D0, D]
    assert of_day(published(lake), D), "D publishes with the fixed version"
    assert_nothing_doubled(lake)


@case("a landed file changed in place, then the day rerun",
      before="the rerun republished D-1 from the altered file (955 flights instead of 965, every statistic "
             "changed) and the next night's trailing windows used it; a full rerun failed with "
             "RawZoneConflict, which blamed the provider and escaped BackfillIncomplete",
      after="every reader checks the manifest: the rerun fails with RawFileChanged naming the file, the recorded "
            "and the found sha256 and `glideslope redeliver`; nothing republished; a changed gated reading "
            "stops the next day's window the same way; `glideslope redeliver` restores the day")
def test_a_landed_file_changed_in_place_is_never_read(lake: Lake, spark: Any) -> None:
    from glideslope.config import load_usecase
    from glideslope.data.landing import RawFileChanged, redeliver

    before = published(lake)
    path = lake.raw("flights", D0)
    with open(path, "rb") as f:
        original = f.read()
    altered = b"\n".join(original.split(b"\n")[:-11]) + b"\n"  # ten flights lost by a bad copy
    with open(path, "wb") as f:
        f.write(altered)

    with pytest.raises((BackfillIncomplete, RawFileChanged)) as exc:
        run_days(UC, [D0], lake=lake, spark=spark)
    message = str(exc.value)
    assert path in message and "recorded sha256" in message and "glideslope redeliver" in message, message
    assert published(lake) == before, "nothing republished from the altered file"

    with open(path, "wb") as f:  # restored; now the gated reading is damaged instead
        f.write(original)
    reading = lake.parsed(path)
    with open(reading, "ab") as f:
        f.write(b"\0")
    with pytest.raises((BackfillIncomplete, RawFileChanged)) as exc:
        run_days(UC, [D], lake=lake, spark=spark)  # D's trailing window reads D0
    assert reading in str(exc.value) and "changed after the gate wrote it" in str(exc.value), str(exc.value)
    assert {k: v for k, v in published(lake).items() if k in before} == before

    out = redeliver(load_usecase(UC), "flights", D0, lake=lake, reason="bad copy")
    assert out["rebuild"] == [D0] and out["quarantined"]
    run_days(UC, [D], lake=lake, spark=spark)
    assert_nothing_doubled(lake)


@case("a corrected reference re-issued",
      before="land_day wrote a reference only when none had landed: the corrected file was silently ignored "
             "forever",
      after="it lands as a new version beside the old one, effective from the night it came with, is gated, "
            "and used from that day on (the staged inputs name the version); the days before keep the old one")
def test_a_corrected_reference_is_used_from_its_day_on(lake: Lake, spark: Any, feed: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from glideslope.data.landing import reference_path

    flown = lake.read_parquet(f"{lake.base}/features/plane_features/ds={D0}/data.parquet")
    known = flown.dropna(subset=["plane_seats"])
    tail = str(known["tailnum"].iloc[0])
    lines = _planes_rows(feed)
    head = lines[0].split(",")
    for i, line in enumerate(lines):
        cells = next(csv.reader([line]))
        if cells[0] == tail:
            cells[head.index("seats")] = "321"
            out = io.StringIO()
            csv.writer(out, lineterminator="").writerow(cells)
            lines[i] = out.getvalue()
    _reissue_planes(feed, monkeypatch, ("\n".join(lines) + "\n").encode())

    run_days(UC, [D], lake=lake, spark=spark)

    assert lake.reference_versions("planes") == [D0, D], "the old version is kept beside the new one"
    assert reference_path(lake, "planes", D0).endswith(f"since={D0}/planes.csv")
    assert reference_path(lake, "planes", NEXT).endswith(f"since={D}/planes.csv")
    today = lake.read_parquet(f"{lake.base}/features/plane_features/ds={D}/data.parquet")
    if tail in set(today["tailnum"]):
        assert float(today.set_index("tailnum").loc[tail, "plane_seats"]) == 321.0
    else:  # the corrected plane did not fly on D: the whole reading is the new version's
        import pandas as pd

        planes = pd.read_parquet(lake.parsed(reference_path(lake, "planes", D)))
        assert planes.set_index("tailnum").loc[tail, "seats"] == "321"
    inputs = lake.read_json(f"{lake.base}/_staging/ds={D}/_inputs.json", default=None)
    if inputs is not None:
        assert lake.reference_version("planes", D) in inputs, inputs
    assert_nothing_doubled(lake)
