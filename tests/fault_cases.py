"""The fault battery's cases, wherever they live (tests/faults, and a services test that needs the
production stack): :func:`case` names one and says what happened before the fix and what happens
now.

A test session that runs any case writes ``test-results/faults.json`` afresh: at its first case's
result the file is replaced by one that names the commit, the time and every case the session
collected, and each case's outcome is added as it finishes (an interrupted run keeps what it
found, and shows what it did not reach). ``python tests/faults/render.py`` writes
``docs/reliability.md`` from that one run, and refuses when a collected case has no result.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "test-results" / "faults.json"

_RUN: dict[str, Any] = {}  # the session whose run the results file holds


def case(name: str, before: str, after: str) -> Callable[[Any], Any]:
    """Name a battery case and say what happened before the fix and what happens now."""
    def mark(fn: Any) -> Any:
        fn._fault_case = {"case": name, "before": before, "after": after}
        return fn
    return mark


def case_of(item: pytest.Item) -> dict[str, str] | None:
    """The battery case a collected test is (name, before, after, test id), or ``None``."""
    info = getattr(getattr(item, "function", None), "_fault_case", None)
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "bad" in callspec.params:
        info = callspec.params["bad"].info
    elif callspec is not None and info:
        info = {**info, "case": f"{info['case']} [{callspec.id}]"}
    return {**info, "test": item.nodeid} if info else None


def commit() -> str:
    """The checked-out commit, with ``+changes`` when the working tree differs from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def _start_run(session: pytest.Session) -> None:
    """Replace the results file with this session's run: its commit and the cases it collected."""
    collected = sorted((c for c in (case_of(i) for i in session.items) if c), key=lambda c: c["test"])
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"commit": commit(), "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                                   "collected": [c["test"] for c in collected], "results": []}, indent=2) + "\n")
    _RUN["session"] = session


def record_outcome(item: pytest.Item, report: pytest.TestReport) -> None:
    """After a case's call (or a failed or skipped setup): its outcome, added to this run's results."""
    info = case_of(item)
    if not info or not (report.when == "call" or (report.when == "setup" and report.outcome != "passed")):
        return
    if _RUN.get("session") is not item.session:
        _start_run(item.session)
    run = json.loads(RESULTS.read_text())
    run["results"] = sorted([r for r in run["results"] if r["test"] != info["test"]]
                            + [{**info, "outcome": report.outcome}], key=lambda r: r["test"])
    RESULTS.write_text(json.dumps(run, indent=2) + "\n")


def pytest_collection_finish(session: pytest.Session) -> None:
    """As a plugin (``-p fault_cases``) with ``GLIDESLOPE_FAULT_CASES_OUT`` set: write the collected cases there."""
    import os

    out = os.environ.get("GLIDESLOPE_FAULT_CASES_OUT")
    if out:
        Path(out).write_text(json.dumps([c for c in (case_of(i) for i in session.items) if c], indent=2))
