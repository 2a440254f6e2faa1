"""An escalation is a question in the Airflow UI: ``<uc>__escalation`` asks, its branches carry out."""

from __future__ import annotations

from datetime import timedelta

import pytest

from glideslope.config import list_usecases, load_usecase

pytestmark = pytest.mark.dags


def test_the_monitor_escalates_by_emitting_the_asset_that_schedules_the_question(dagbag) -> None:
    for uc in list_usecases():
        monitor = dagbag.dags[f"{uc}__monitor"]
        assert [o.name for o in monitor.get_task("escalate").outlets] == [f"{uc}.escalation"]
        question = dagbag.dags[f"{uc}__escalation"]
        assert [a.name for a in question.timetable.asset_condition.objects] == [f"{uc}.escalation"]


def test_the_question_offers_the_real_options_and_defaults_to_keep_paused(dagbag) -> None:
    from airflow.providers.standard.operators.hitl import HITLBranchOperator

    from glideslope.drift.escalation import KEEP, OPTIONS

    uc = load_usecase("flight_delay")
    dag = dagbag.dags["flight_delay__escalation"]
    ask = dag.get_task("decide_escalation")
    assert isinstance(ask, HITLBranchOperator)
    assert ask.options == OPTIONS and ask.defaults == [KEEP]
    assert ask.options_mapping == dict(zip(OPTIONS, ["request_retraining", "roll_back", "accept_reference",
                                                     "keep_paused"], strict=True))
    assert ask.response_timeout == timedelta(hours=uc.drift.escalation_timeout_hours)
    assert {"window_days", "candidates", "to_version", "note"} <= set(ask.params)
    assert dag.get_task("summarize_escalation").downstream_task_ids == {"decide_escalation"}
    assert ask.downstream_task_ids == set(ask.options_mapping.values())
    assert dag.get_task("notify").upstream_task_ids == set(ask.options_mapping.values())
    assert dag.get_task("notify").trigger_rule == "none_failed_min_one_success"


def test_the_question_shows_the_escalation_and_its_links(dagbag) -> None:
    from jinja2 import Environment

    ask = dagbag.dags["flight_delay__escalation"].get_task("decide_escalation")
    summary = {"ds": "2013-07-02", "reasons": ["drift persisted 2 checks after the retrain of 2013-06-30"],
               "drifted_columns": ["wx_temp_mean", "prediction"], "champion_version": "5",
               "earlier_versions": ["4", "2"], "report_url": "http://af/glideslope/reports/x"}

    class TI:
        @staticmethod
        def xcom_pull(task_ids: str) -> dict:
            assert task_ids == "summarize_escalation"
            return summary

    env = Environment()
    body = env.from_string(ask.body).render(ti=TI)
    subject = env.from_string(ask.subject).render(ti=TI)
    assert "2013-07-02" in subject
    for text in ("drift persisted 2 checks", "wx_temp_mean, prediction", "v5", "4, 2",
                 "(http://af/glideslope/reports/x)", "**Keep paused**"):
        assert text in body, text


def test_the_dag_processor_can_store_the_dag_with_its_question(dagbag) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    dag = dagbag.dags["flight_delay__escalation"]
    stored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    assert stored.get_task("decide_escalation").downstream_task_ids == dag.get_task("decide_escalation").downstream_task_ids


def test_the_answer_is_kept_for_the_branch_that_runs(monkeypatch) -> None:
    """HITLBranchOperator returns only the branches; ours also pushes who chose what, and why."""
    from datetime import UTC, datetime

    from airflow.providers.standard.operators.hitl import HITLBranchOperator

    from glideslope.airflow.hitl import ANSWER_KEY, AnsweredBranch, answer_of
    from glideslope.drift.escalation import KEEP, answer_from_hitl

    pushed: dict = {}

    class TI:
        @staticmethod
        def xcom_push(key: str, value) -> None:
            pushed[key] = value

        @staticmethod
        def xcom_pull(task_ids: str, key: str):
            return pushed.get(key)

    monkeypatch.setattr(HITLBranchOperator, "execute_complete", lambda self, context, event: ["keep_paused"])
    op = AnsweredBranch(task_id="ask", subject="?", options=[KEEP, "Other"], options_mapping={KEEP: "keep_paused"})
    at = datetime(2013, 7, 3, 8, 0, tzinfo=UTC)
    out = op.execute_complete({"ti": TI}, {"chosen_options": [KEEP], "params_input": {"note": "wait"},
                                           "responded_at": at, "responded_by_user": {"id": "1", "name": "erin"}})
    assert out == ["keep_paused"]
    answer = answer_from_hitl(answer_of(TI, "ask"))
    assert (answer.choice, answer.by, answer.note, answer.at) == (KEEP, "erin", "wait", at.isoformat())
    pushed.clear()
    op.execute_complete({"ti": TI}, {"error": "timeout", "error_type": "timeout"})
    assert ANSWER_KEY not in pushed
