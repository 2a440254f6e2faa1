"""A finished run's note says which night it was for and what it did with it (#21)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.unit


class _Run:
    def __init__(self, note=None):
        self.dag_id, self.run_id, self.note = "flight_delay__score", "asset_triggered__2026-12-07T02:10", note


class _TI:
    def __init__(self):
        self.pushed = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


def test_the_lines_a_task_pushed_become_the_runs_note_and_a_persons_note_stays():
    from glideslope.airflow import notes

    ti = _TI()
    notes.push_note({"ti": ti}, ["for night 2013-06-12", "catching up 2013-06-11 (never scored)", ""])
    assert ti.pushed[notes.NOTE_KEY] == ["for night 2013-06-12", "catching up 2013-06-11 (never scored)"]

    run = _Run()
    notes.write_note(run, ti.pushed[notes.NOTE_KEY])
    assert run.note == "for night 2013-06-12\ncatching up 2013-06-11 (never scored)"
    notes.write_note(run, ti.pushed[notes.NOTE_KEY])  # a second call (failed, then success) adds nothing
    assert run.note.count("for night 2013-06-12") == 1

    person = _Run(note="rerun after the provider's fix")
    notes.write_note(person, ["2013-06-13: quiet night, its entities partition has 0 rows: nothing to score"])
    assert person.note == ("rerun after the provider's fix\n"
                           "2013-06-13: quiet night, its entities partition has 0 rows: nothing to score")


def test_the_listener_never_fails_the_scheduler(monkeypatch):
    from glideslope.airflow import notes

    def broken(dag_run):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(notes, "_annotate", broken)
    run = _Run()
    notes.on_dag_run_success(dag_run=run, msg="success")
    assert run.note is None
    monkeypatch.setattr(notes, "_annotate", lambda dag_run: notes.write_note(dag_run, ["for night 2013-06-12"]))
    notes.on_dag_run_failed(dag_run=run, msg="task_failure")
    assert run.note == "for night 2013-06-12"
