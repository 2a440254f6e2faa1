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


# -- #18: the scale benchmarks ------------------------------------------------------------------

night_scale = _load("night_scale")


def test_scale_full_goes_only_to_the_benchmarks_that_take_it_with_their_longer_timeout(tmp_path, monkeypatch):
    seen = {}

    def fake_wait(proc, timeout):  # type: ignore[no-untyped-def]
        seen[Path(proc.args[1]).stem] = (proc.args, timeout)
        proc.wait()
        return 0, 1024

    for name, source in (("takes", "--json --scale-full"), ("plain", "--json")):
        (tmp_path / f"{name}.py").write_text(f"# {source}\nimport sys\n")
    monkeypatch.setattr(run, "HERE", tmp_path)
    monkeypatch.setattr(run, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(run, "_wait", fake_wait)
    monkeypatch.setitem(run.FULL_TIMEOUTS, "takes", 9999)
    (tmp_path / "results").mkdir()
    for name in ("takes", "plain"):
        run.run_one(name, quick=False, timeout=600, log_dir=tmp_path, scale_full=True)
    assert "--scale-full" in seen["takes"][0] and seen["takes"][1] == 9999
    assert "--scale-full" not in seen["plain"][0] and seen["plain"][1] == 600
    assert run.timeout_for("night_scale", 600, scale_full=False) >= 3600
    assert run.timeout_for("night_scale", 600, scale_full=True) > run.timeout_for("night_scale", 600, False)


def test_run_process_reports_the_childs_peak_rss_and_kills_it_past_its_timeout(tmp_path):
    grow = [sys.executable, "-c", "b = bytearray(300 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"]
    rc, _, peak_mb, log = benchkit.run_process(grow, 120, tmp_path / "grow.log")
    assert rc == 0 and peak_mb >= 300 and log.exists()
    rc, _, _, _ = benchkit.run_process([sys.executable, "-c", "import time; time.sleep(60)"], 1, tmp_path / "s.log")
    assert rc == 124


def _stage(name, wall, peak, rows=None, rc=0, **extra):  # type: ignore[no-untyped-def]
    return {"stage": name, "wall_s": wall, "peak_rss_mb": peak, "rc": rc, **({"rows": rows} if rows else {}), **extra}


def test_the_night_rows_are_the_cost_curve_against_the_smallest_night_and_judge_memory():
    small = {"scale": 1, "rows": 1_000, "setup_s": 50.0,
             "stages": [_stage(s, 2.0, 500.0, 1_000) for s in night_scale.STAGES]}
    big = {"scale": 1000, "rows": 1_000_000, "setup_s": 900.0,
           "stages": [_stage(s, 100.0, 4000.0 if s == "ETL" else 1000.0, 1_000_000) for s in night_scale.STAGES]}
    rows = night_scale.rows_for([small, big])
    by_path = {r["path"]: r for r in rows}
    etl = by_path["1M night (×1000, 1,000,000 flights): ETL"]
    assert (etl["ours_s"], etl["baseline_s"], etl["ratio"]) == (100.0, 2.0, 50.0), "ratio = time vs the 1k night"
    assert etl["met"] is False, "a task process above 3 GiB misses the goal"
    assert by_path["1M night (×1000, 1,000,000 flights): scoring"]["met"] is True
    whole = by_path["1M night (×1000, 1,000,000 flights): the night without training"]
    assert whole["ours_s"] == 700.0 and whole["met"] is False, "7 stages of 100 s: over 10 minutes"
    assert by_path["1k night (×1, 1,000 flights): the night without training"]["met"] is None, "judged at 1M only"
    failed = {"scale": 100, "rows": 100_000, "stages": [_stage("land", 5.0, 800.0, 100_000, rc=1, error="boom")]}
    rows = night_scale.rows_for([small, failed])
    land = next(r for r in rows if r["path"].startswith("100k") and r["path"].endswith("land"))
    assert land["met"] is False and "boom" in land["notes"]
    assert not any(r["path"].startswith("100k") and "without training" in r["path"] for r in rows), \
        "no night total from an incomplete night"


year = _load("year")


def test_the_year_etl_is_judged_against_five_minutes_only_on_the_whole_year():
    history = [f"2013-01-{d:02d}" for d in range(1, 29)]
    steps = [{"step": "etl", "wall_s": 240.0, "peak_rss_mb": 900.0, "rc": 0, "rows": 27_000},
             {"step": "training", "wall_s": 80.0, "peak_rss_mb": 700.0, "rc": 0, "rows": 200_000,
              "train_rows_available": 250_000, "max_rows": 200_000, "window": "2013-01-01..2013-01-28",
              "champion": "promoted", "fit_s": 30.0},
             {"step": "night", "wall_s": 60.0, "peak_rss_mb": 800.0, "rc": 1, "night": "2013-01-29", "error": "boom"}]
    reduced = year.rows_for(steps, history, full=False)
    assert reduced[0]["path"].startswith("year, reduced: 28 days") and reduced[0]["met"] is None
    assert "fit on 200000 of 250000 rows" in reduced[1]["notes"] and reduced[1]["ratio"] is None
    assert reduced[2]["met"] is False and "boom" in reduced[2]["notes"] and "2013-01-29" in reduced[2]["path"]
    full = year.rows_for(steps, history, full=True)
    assert full[0]["met"] is True and full[0]["ratio"] == 0.8, "240 s against the goal's 300 s"
    assert year.rows_for([{**steps[0], "wall_s": 400.0}], history, full=True)[0]["met"] is False
    cells = run.table_row(reduced[1], None)
    assert cells[3] == "—" and cells[4] == "—", "no baseline: shown empty, not as 1.00×"
