"""docs/reliability.md lists exactly the battery's cases, from one run of a named commit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
# Where the battery's cases live: tests/faults, and the services layer's PostgreSQL restart.
BATTERY = ["tests/faults", "tests/services/test_metadata_db_restart.py"]


def _collected(tmp_path: Path) -> list[str]:
    """The case names a run of the battery collects (pytest's own collection, in a child)."""
    out = tmp_path / "cases.json"
    env = {**os.environ, "GLIDESLOPE_FAULT_CASES_OUT": str(out),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "fault_cases",
                           "-p", "no:cacheprovider", *BATTERY], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return sorted(c["case"] for c in json.loads(out.read_text()))


def _documented() -> tuple[list[str], str]:
    text = DOC.read_text()
    rows = [line.split(" | ")[1] for line in text.splitlines() if line.startswith("| ") and line[2:3].isdigit()]
    return sorted(r.replace("\\|", "|") for r in rows), text


def test_the_reliability_page_lists_exactly_the_collected_cases_of_one_run(tmp_path: Path) -> None:
    documented, text = _documented()
    collected = _collected(tmp_path)
    assert documented == collected, (
        f"docs/reliability.md differs from the battery: only on the page {sorted(set(documented) - set(collected))}, "
        f"only collected {sorted(set(collected) - set(documented))}. Run the battery whole "
        f"(`pytest {' '.join(BATTERY)}`) and `python tests/faults/render.py`.")
    assert "One run at commit `" in text, "the page does not name the run and commit it was rendered from"


def test_a_run_that_did_not_reach_a_collected_case_is_not_rendered(tmp_path: Path, monkeypatch) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "faults"))
    try:
        import render
    finally:
        sys.path.remove(str(ROOT / "tests" / "faults"))
    results = tmp_path / "faults.json"
    case = {"case": "a case", "before": "b", "after": "a", "test": "tests/faults/test_x.py::test_a", "outcome": "passed"}
    results.write_text(json.dumps({"commit": "abc", "started_at": "t", "collected": [case["test"], "tests/faults/"
                                   "test_x.py::test_b"], "results": [case]}))
    doc = tmp_path / "reliability.md"
    monkeypatch.setattr(render, "RESULTS", results)
    monkeypatch.setattr(render, "DOC", doc)
    assert render.main() == 1 and not doc.exists()
    run = json.loads(results.read_text())
    run["collected"] = [case["test"]]
    results.write_text(json.dumps(run))
    assert render.main() == 0
    assert "One run at commit `abc`" in doc.read_text() and "| 1 | a case | b | a | passed |" in doc.read_text()
