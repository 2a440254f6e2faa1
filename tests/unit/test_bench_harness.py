"""``make bench``'s harness (benchmarks/run.py): the record it reads and the table it prints.

No benchmark runs here and no timing is asserted: only that a record in the documented shape
becomes a table row, and that a benchmark without a record is reported, not fatal.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


run = _load("run")
benchkit = _load("benchkit")

ROW = {"path": "P1 batch scoring", "rows": 1_000_000, "ours_s": 12.3456, "baseline_s": 4.1, "ratio": 3.011,
       "goal": "≥ 0.5× rows/s (time ≤ 2×)", "met": False, "peak_rss_mb": 812.4, "notes": "schedule × 1000"}


def test_a_single_row_and_a_results_list_are_both_records():
    assert run.rows_of(ROW) == [ROW]
    assert run.rows_of({"benchmark": "drift", "results": [ROW, ROW], "curve": []}) == [ROW, ROW]
    with pytest.raises(ValueError, match="results"):
        run.rows_of({"benchmark": "x"})


def test_a_row_becomes_the_table_columns():
    cells = run.table_row(ROW, process_peak_mb=2000.0)
    assert cells == ["P1 batch scoring", "1,000,000", "12.346", "4.100", "3.01×", "≥ 0.5× rows/s (time ≤ 2×)",
                     "no", "812"]
    # No peak of its own: the process's; no ratio given: computed from the times.
    bare = {k: v for k, v in ROW.items() if k not in ("peak_rss_mb", "ratio", "met")} | {"rows": None}
    assert run.table_row(bare, process_peak_mb=2000.0) == [
        "P1 batch scoring", "—", "12.346", "4.100", "3.01×", "≥ 0.5× rows/s (time ≤ 2×)", "—", "2,000"]


def test_the_table_is_markdown_with_one_line_per_row():
    text = run.markdown([run.table_row(ROW, None), run.table_row(ROW, None)])
    lines = text.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("| path") and "peak RSS MB" in lines[0]
    assert set(lines[1]) <= {"|", "-"}
    assert all(line.count("|") == len(run.HEADER) + 1 for line in lines)


def test_a_missing_or_foreign_record_is_reported_not_fatal(tmp_path):
    rows, why = run.read_record(tmp_path / "scoring.json")
    assert rows is None and "wrote no" in why
    (tmp_path / "bad.json").write_text(json.dumps({"speed": 3}))
    rows, why = run.read_record(tmp_path / "bad.json")
    assert rows is None and "not a benchmark record" in why
    table = run.render([{"name": "scoring", "skipped": "benchmarks/scoring.py does not write the run.py record yet"},
                        {"name": "drift", "rows": [ROW], "wall_s": 10.0, "peak_rss_mb": 900.0}])
    assert "P1 batch scoring (skipped)" in table and "does not write the run.py record yet" in table
    assert "drift 10 s / 900 MB" in table


def test_benchkit_rows_have_the_documented_shape():
    row = benchkit.result("P5 x", 10, 3.0, 2.0, "≤ 2×", 2.0, peak_rss_mb=12.34, notes="n")
    assert {k: row[k] for k in ("ratio", "met", "peak_rss_mb")} == {"ratio": 1.5, "met": True, "peak_rss_mb": 12.3}
    assert set(ROW) <= set(row)
    assert benchkit.result("P5 x", 10, 5.0, 2.0, "≤ 2×", 2.0)["met"] is False
