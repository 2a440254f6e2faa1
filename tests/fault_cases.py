"""The fault battery's cases, wherever they live (tests/faults, and a services test that needs the
production stack): :func:`case` names one and says what happened before the fix and what happens
now; every run of a case merges its outcome into ``test-results/faults.json``, from which
``python tests/faults/render.py`` writes ``docs/reliability.md``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

RESULTS = Path(__file__).resolve().parents[1] / "test-results" / "faults.json"


def case(name: str, before: str, after: str) -> Callable[[Any], Any]:
    """Name a battery case and say what happened before the fix and what happens now."""
    def mark(fn: Any) -> Any:
        fn._fault_case = {"case": name, "before": before, "after": after}
        return fn
    return mark


def record_outcome(item: pytest.Item, report: pytest.TestReport) -> None:
    """After a case's call (or a failed setup): its outcome, merged into the results file."""
    info = getattr(getattr(item, "function", None), "_fault_case", None)
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "bad" in callspec.params:
        info = callspec.params["bad"].info
    elif callspec is not None and info:
        info = {**info, "case": f"{info['case']} [{callspec.id}]"}
    if info and (report.when == "call" or (report.when == "setup" and report.outcome != "passed")):
        _record({**info, "test": item.nodeid, "outcome": report.outcome})


def _record(result: dict[str, Any]) -> None:
    """Merge one case's result into the results file at once (a run of some cases updates only
    those, and an interrupted run keeps what it found)."""
    RESULTS.parent.mkdir(exist_ok=True)
    kept = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    merged = [r for r in kept if r["test"] != result["test"]] + [result]
    RESULTS.write_text(json.dumps(sorted(merged, key=lambda r: r["test"]), indent=2) + "\n")
