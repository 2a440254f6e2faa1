"""Every answer to an escalation, carried out by Airflow's own scheduler on the replayed stack.

The replay (tests/loop_fixture.py) ends with ``flights_e2e`` escalated, a person answering
**Keep paused** through the API the UI's Required actions use, and an acknowledgement
(asserted in tests/integration/test_loop_e2e.py). Here the same question is asked three more
times and answered with each other option, one after the other, as the monitor asks it: its
outcome written to the drift state (retraining paused) and the ``flights_e2e.escalation`` Asset
event posted as its ``escalate`` task emits it. The scheduler runs ``flights_e2e__escalation``;
the answer goes through the REST API as ``glideslope ack`` and the UI send it. Each run's
recorded decision, what it changed (the reference sample, the champion alias, the train run it
started) and the alert it sent are asserted.

This module sorts after test_loop_e2e.py on purpose: it moves the champion and the drift state
that the replay's own tests read.
"""

from __future__ import annotations

from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from glideslope_local.api import TERMINAL, Airflow, until
from loop_fixture import NIGHTS, USECASE, Replay, post_event, replayed
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


def _champion(loop: Replay) -> str:
    from mlflow import MlflowClient

    from glideslope.config import settings

    client = MlflowClient(tracking_uri=settings(loop.env_settings()).mlflow_tracking_uri)
    return str(client.get_registered_model(USECASE).aliases["champion"])


def _escalate_and_answer(loop: Replay, choice: str, params: dict[str, Any]) -> dict[str, Any]:
    """Pause retraining as the monitor does, post its escalation event, answer ``choice``; what happened."""
    from glideslope.drift.state import add_history, load_state, update_state

    af, lake, dag_id = loop.af, loop.lake(), loop.dag("escalation")
    reason = f"drift persisted after the retrain (asked again to answer {choice!r})"
    with update_state(USECASE, lake) as state:  # what drift.loop.decide_and_record writes when it escalates
        state["paused"] = {"ds": ESCALATED_ON, "reason": reason, "retrain": None}
        add_history(state, ESCALATED_ON, "decision:escalate", [reason])
    af.set_paused(dag_id, False)  # unpaused by the replay's own escalation; said here, not assumed
    known = {r["dag_run_id"] for r in af.runs(dag_id)}
    mails_before = set(_mails(loop))
    post_event(af, f"{USECASE}.escalation", {"ds": ESCALATED_ON, "reasons": [reason]})
    run = until(f"{dag_id} starts on the escalation event",
                lambda: next((r for r in af.runs(dag_id) if r["dag_run_id"] not in known), None), WAIT_S, every=2.0)
    run_id = run["dag_run_id"]

    def asked() -> bool:
        ti = af.task_instances(dag_id, run_id).get("decide_escalation") or {}
        if ti.get("state") in ("awaiting_input", "deferred"):
            return True
        assert af.run(dag_id, run_id)["state"] not in TERMINAL, af.task_instances(dag_id, run_id)
        return False

    until(f"{dag_id} asks what to do", asked, WAIT_S, every=2.0)
    champion_before = _champion(loop)
    af.answer(dag_id, run_id, "decide_escalation", choice, params)
    finished = af.wait_run(dag_id, run_id, WAIT_S)
    tasks = {t: ti["state"] for t, ti in af.task_instances(dag_id, run_id).items()}
    branch = next((t for t in ("request_retraining", "roll_back", "accept_reference", "keep_paused")
                   if tasks.get(t) == "success"), None)
    mails = _mails(loop)
    return {"run": finished, "run_id": run_id, "tasks": tasks, "branch": branch,
            "decision": af.xcom(dag_id, run_id, branch, key="decision") if branch else None,
            "result": af.xcom(dag_id, run_id, branch) if branch else None,
            "notify": af.xcom(dag_id, run_id, "notify"), "state": load_state(USECASE, lake),
            "champion_before": champion_before, "champion_after": _champion(loop),
            "new_mails": {s: b for s, b in mails.items() if s not in mails_before}}


@pytest.fixture(scope="module")
def answers(loop: Replay) -> dict[str, dict[str, Any]]:
    """Accept, then roll back, then retrain: each on a fresh escalation of the same night."""
    from glideslope.drift.escalation import ACCEPT, RETRAIN, ROLL_BACK

    out = {"accept_reference": _escalate_and_answer(loop, ACCEPT, {"note": "the new units are here to stay"})}
    out["rollback"] = _escalate_and_answer(loop, ROLL_BACK, {"note": "the retrained model misbehaves"})
    out["retrain"] = _escalate_and_answer(loop, RETRAIN, {"note": "a shorter window", "window_days": 5,
                                                          "candidates": ["dummy"]})
    train = out["retrain"]["decision"]["outcome"]["train_run"] if out["retrain"]["decision"] else None
    if train:  # the train run the answer started: waited for, so the stack is idle for the next tests
        out["retrain"]["train_run"] = loop.af.wait_run(loop.dag("train"), train, WAIT_S)
        out["retrain"]["train_plan"] = loop.af.xcom(loop.dag("train"), train, "plan_training")
    return out


def _answered(a: dict[str, Any], kind: str, user: str, note: str) -> dict[str, Any]:
    """The run succeeded through the ``kind`` branch alone and recorded the person's answer."""
    assert a["run"]["state"] == "success" and a["run"]["run_type"] == "asset_triggered", a["run"]
    branches = {"retrain": "request_retraining", "rollback": "roll_back", "accept_reference": "accept_reference",
                "keep_paused": "keep_paused"}
    assert a["branch"] == branches[kind], a["tasks"]
    assert {a["tasks"][t] for t in branches.values() if t != branches[kind]} == {"skipped"}, a["tasks"]
    assert a["tasks"]["notify"] == "success" and a["notify"]["kind"] == kind, a["notify"]
    decision = a["state"]["decisions"][-1]
    assert decision == a["decision"], (decision, a["decision"])
    assert (decision["kind"], decision["by"], decision["note"], decision["ds"]) == (kind, user, note, ESCALATED_ON)
    assert decision["was_paused"]["ds"] == ESCALATED_ON
    assert a["state"]["paused"] is None, "this answer resumes automatic retraining"
    assert a["state"]["acks"][-1]["decision"] == kind and a["state"]["acks"][-1]["by"] == user
    return decision


def _alert(a: dict[str, Any], title: str) -> str:
    """The body of the one ``escalation_answered`` alert the run sent."""
    sent = [(s, b) for s, b in a["new_mails"].items() if USECASE in s and "escalation answered" in s]
    assert len(sent) == 1, sorted(a["new_mails"])
    subject, body = sent[0]
    assert title in subject, subject
    return body


def _facts(body: str) -> dict[str, str]:
    """The alert's facts table (the mail's HTML rows, or ``key: value`` lines of a plain body)."""
    import re

    rows = re.findall(r"<th[^>]*>(.*?)</th><td>(.*?)</td>", body)
    if not rows:
        rows = re.findall(r"^\W*([\w ]+):\s*(.+)$", body, flags=re.M)
    return {k.strip(): v.strip() for k, v in rows}


def test_accepting_the_data_makes_the_last_night_the_champions_reference(answers, loop: Replay) -> None:
    a = answers["accept_reference"]
    decision = _answered(a, "accept_reference", loop.af.user, "the new units are here to stay")
    outcome = decision["outcome"]
    assert outcome["champion_version"] == a["champion_before"] == a["champion_after"]
    reference = a["state"]["reference"]
    assert reference["version"] == a["champion_before"] and reference["path"] == outcome["reference"]
    lake = loop.lake()
    rows = lake.read_parquet(reference["path"])
    assert len(rows) == outcome["reference_rows"] > 0
    assert set(rows["model_version"].astype(str)) == {a["champion_before"]}
    body = _alert(a, "escalation answered: accept the current data as the new reference")
    assert "the champion's reference now" in body and reference["path"] in body, body


def test_rolling_back_moves_champion_and_the_record_and_alert_name_both_versions(answers, loop: Replay) -> None:
    a = answers["rollback"]
    decision = _answered(a, "rollback", loop.af.user, "the retrained model misbehaves")
    first = loop.af.xcom(loop.dag("train"), loop.summary["first_model_run_id"], "promote_champion")
    assert a["champion_after"] == str(first["challenger_version"]) != a["champion_before"]
    assert decision["outcome"] == {"champion_version": a["champion_after"], "rolled_back_from": a["champion_before"]}
    assert (a["result"]["from_version"], a["result"]["to_version"]) == (a["champion_before"], a["champion_after"])
    body = _alert(a, "escalation answered: roll back to an earlier version")
    assert "champion rolled back" in body, body
    facts = _facts(body)
    assert (facts.get("champion_version"), facts.get("rolled_back_from")) == (a["champion_after"],
                                                                             a["champion_before"]), facts


def test_retraining_starts_the_train_dag_with_the_window_and_candidates_asked_for(answers, loop: Replay) -> None:
    a = answers["retrain"]
    decision = _answered(a, "retrain", loop.af.user, "a shorter window")
    outcome = decision["outcome"]
    assert outcome["train_dag"] == loop.dag("train") and outcome["train_run"] == f"escalation__{a['run_id']}"
    assert outcome["conf"]["window_days"] == 5 and outcome["conf"]["candidates"] == ["dummy"]
    assert a["train_run"]["state"] == "success", a["train_run"]
    assert a["train_run"]["conf"]["window_days"] == 5
    plan = a["train_plan"]
    assert plan["window_days"] == 5 and plan["candidates"] == ["dummy"] and not plan.get("skip"), plan
    body = _alert(a, "escalation answered: retrain with another window or candidates")
    assert "automatic retraining resumed" in body and outcome["train_run"] in body, body


# --- the scoring deadline, fired by the scheduler --------------------------------------------------

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
