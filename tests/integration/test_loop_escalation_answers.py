"""The scoring deadline fired by Airflow's own scheduler on the replayed stack.

A scoring run past its deadline sends the ``scoring_late`` alert through the scheduler's Deadline
Alerts. (Answering an escalation with Keep paused runs in tests/integration/test_loop_e2e.py; the
other three answers under the scheduler are not covered here yet.)

This module sorts after test_loop_e2e.py on purpose: it reads the replay that module made.
"""

from __future__ import annotations

from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from glideslope_local.api import Airflow, until
from loop_fixture import NIGHTS, USECASE, Replay, replayed
from stack_fixture import AirflowStack, shared_stack

pytestmark = pytest.mark.integration

WAIT_S = 600.0
ESCALATED_ON = NIGHTS[-1]


@pytest.fixture(scope="session")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    with shared_stack(tmp_path_factory) as s:
        yield s


@pytest.fixture(scope="session")
def loop(running: AirflowStack) -> Replay:
    r = replayed(Airflow(running.url, running.user, running.password), running.home, running.env)
    assert r.demo.returncode == 0, f"glideslope demo exited {r.demo.returncode}:\n{r.demo.stdout[-4000:]}"
    return r


def _mails(loop: Replay) -> dict[str, str]:
    """Every alert the mail sink holds: subject -> its body (the HTML, entities decoded)."""
    import html

    out = {}
    for p in sorted((loop.home / "alerts" / "mail").glob("*.eml")):
        msg = BytesParser(policy=policy.default).parsebytes(p.read_bytes())
        part = msg.get_body(preferencelist=("html", "plain"))
        out[str(msg["subject"])] = html.unescape(part.get_content()) if part is not None else ""
    return out


def _facts(body: str) -> dict[str, str]:
    """The alert's facts table (the mail's HTML rows, or ``key: value`` lines of a plain body)."""
    import re

    rows = re.findall(r"<th[^>]*>(.*?)</th><td>(.*?)</td>", body)
    if not rows:
        rows = re.findall(r"^\W*([\w ]+):\s*(.+)$", body, flags=re.M)
    return {k.strip(): v.strip() for k, v in rows}


def _move_deadline_into_the_past(db: Path, dag_id: str, run_id: str) -> str:
    """Move the run's deadline (queued_at + scoring.deadline_minutes) to an hour ago, as if the hours had passed."""
    import sqlite3
    from datetime import UTC, datetime, timedelta

    with sqlite3.connect(db, timeout=60) as con:
        row = con.execute("SELECT d.id, d.deadline_time FROM deadline d JOIN dag_run r ON r.id = d.dagrun_id "
                          "WHERE r.dag_id = ? AND r.run_id = ?", (dag_id, run_id)).fetchone()
        assert row is not None, f"Airflow created no deadline for {dag_id} run {run_id}"
        deadline_id, was = row
        now = datetime.now(UTC)
        if datetime.fromisoformat(was).tzinfo is None:  # stored as naive UTC: written the same way
            now = now.replace(tzinfo=None)
        past = (now - timedelta(hours=1)).isoformat(sep=" ")
        con.execute("UPDATE deadline SET deadline_time = ? WHERE id = ?", (past, deadline_id))
    return str(was)


def test_a_scoring_run_past_its_deadline_alerts_through_the_scheduler(loop: Replay, running: AirflowStack) -> None:
    """The scheduler finds the missed deadline, the executor runs the callback, the alert reaches the sink.

    The run is kept unfinished by triggering it while the DAG is paused (it stays queued); its
    deadline, which Airflow computed when it created the run, is then moved into the past rather
    than waiting the spec's three hours.
    """
    af, dag_id = loop.af, loop.dag("score")
    minutes = 180
    af.set_paused(dag_id, True)
    run_id = af.trigger(dag_id, conf={"ds": ESCALATED_ON})["dag_run_id"]
    try:
        assert af.run(dag_id, run_id)["state"] == "queued"
        _move_deadline_into_the_past(running.home / "airflow" / "airflow.db", dag_id, run_id)
        late = until("the scheduler's scoring_late alert", lambda: next(
            (b for s, b in _mails(loop).items() if USECASE in s and "nightly scoring not finished" in s), None),
            WAIT_S, every=2.0)
    finally:
        af.call("DELETE", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", accept=(404,))
        af.set_paused(dag_id, False)
    facts = _facts(late)
    assert facts.get("run_id") == run_id and facts.get("deadline_minutes") == str(minutes), facts
    assert "missed its deadline" in late, late
