"""The run's note says which night a run was for and what it did with it.

A task of a stage pushes one line per night (:func:`push_note`, XCom key :data:`NOTE_KEY`): the
night it scored, caught up, or skipped and why. When the run finishes, the scheduler calls
:func:`on_dag_run_success` / :func:`on_dag_run_failed` (a dag-run listener registered by the
plugin) and the lines become the run's note, shown at the top of the run in the UI. A note a
person wrote stays: the lines are added under it, once.

The Task SDK cannot write a run's note; the scheduler, which owns the run, can.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)

NOTE_KEY = "night_note"


def note_text(lines: Iterable[str]) -> str:
    """The run's note from the lines its tasks pushed (order kept, repeats dropped)."""
    return "\n".join(dict.fromkeys(line.strip() for line in lines if line and line.strip()))


def push_note(context: Any, lines: Iterable[str]) -> None:
    """Record ``lines`` for the run's note, and in the task log (a note never fails a task)."""
    lines = [line for line in lines if line]
    for line in lines:
        log.info("%s", line)
    try:
        context["ti"].xcom_push(key=NOTE_KEY, value=list(lines))
    except Exception:
        log.warning("could not record the run's note %r", lines, exc_info=True)


def merged_note(existing: str | None, lines: Iterable[str]) -> str | None:
    """``existing`` with ``lines`` added under it; None when there is nothing new to add."""
    text = note_text(lines)
    if not text:
        return None
    if existing and text in existing:
        return None
    return f"{existing.rstrip()}\n{text}" if existing and existing.strip() else text


def _pushed_lines(dag_run: Any, session: Any) -> list[str]:
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    rows = session.scalars(select(XComModel).where(
        XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id, XComModel.key == NOTE_KEY,
    ).order_by(XComModel.timestamp)).all()
    lines: list[str] = []
    for row in rows:
        value = XComModel.deserialize_value(row)
        lines.extend(str(v) for v in (value if isinstance(value, list) else [value]))
    return lines


def write_note(dag_run: Any, lines: list[str]) -> None:
    note = merged_note(getattr(dag_run, "note", None), lines)
    if note is not None:
        dag_run.note = note


def _annotate(dag_run: Any) -> None:
    """Write the note on ``dag_run`` in the session that holds it (the scheduler's), else in a new one."""
    from sqlalchemy.orm import object_session

    session = object_session(dag_run)
    if session is not None:
        write_note(dag_run, _pushed_lines(dag_run, session))
        return
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as own:
        run = own.scalar(select(DagRun).where(DagRun.dag_id == dag_run.dag_id, DagRun.run_id == dag_run.run_id))
        if run is not None:
            write_note(run, _pushed_lines(run, own))


def _on_finished(dag_run: Any) -> None:
    if not str(getattr(dag_run, "dag_id", "")).count("__"):
        return  # not a Glideslope stage
    try:
        _annotate(dag_run)
    except Exception:  # a note is a convenience; the scheduler must never stumble on it
        log.warning("could not write the note of %s %s", dag_run.dag_id, dag_run.run_id, exc_info=True)


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    _on_finished(dag_run)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    _on_finished(dag_run)
