"""Airflow's human-in-the-loop branch, with the person's answer kept for the tasks after it.

``HITLBranchOperator`` returns the branches to run, not the answer: the chosen option, the Params
the person filled in, who answered and when stay in Airflow's HITL record, which a task cannot
read. :class:`AnsweredBranch` also pushes them as the XCom ``answer`` (the timeout's default
arrives the same way, with ``responded_by_user`` empty), so the branch that runs can record who
chose it and why.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.hitl import HITLBranchOperator

ANSWER_KEY = "answer"


class AnsweredBranch(HITLBranchOperator):
    """A ``HITLBranchOperator`` whose answer is the XCom :data:`ANSWER_KEY` of its task."""

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        if "error" not in event:
            at: Any = event.get("responded_at")
            context["ti"].xcom_push(key=ANSWER_KEY, value={
                "chosen_options": list(event.get("chosen_options") or []),
                "params_input": dict(event.get("params_input") or {}),
                "responded_at": at.isoformat() if at is not None and hasattr(at, "isoformat") else at,
                "responded_by_user": event.get("responded_by_user"),
            })
        return super().execute_complete(context, event)


def answer_of(ti: Any, task_id: str) -> Any:
    """The answer an :class:`AnsweredBranch` task pushed (``None`` if it has not been answered)."""
    return ti.xcom_pull(task_ids=task_id, key=ANSWER_KEY)
