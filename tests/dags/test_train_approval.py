"""``promotion.approval: required`` puts a person between a passing policy and the champion move."""

from __future__ import annotations

from datetime import timedelta

import pytest

from glideslope.config import load_usecase

pytestmark = pytest.mark.dags


def _train_dag(approval: str, **rule):
    from glideslope.airflow.train import build_train_dag

    uc = load_usecase("flight_delay")
    uc = uc.model_copy(update={"promotion": uc.promotion.model_copy(update={"approval": approval, **rule})})
    return uc, build_train_dag(uc)


def test_the_bundled_use_case_promotes_without_asking(dagbag) -> None:
    assert load_usecase("flight_delay").promotion.approval == "none"
    dag = dagbag.dags["flight_delay__train"]
    assert "request_approval" not in dag.task_dict
    assert dag.get_task("decide_promotion").downstream_task_ids == {"promote_champion", "keep_champion"}


def test_required_approval_waits_on_a_person_before_champion_moves() -> None:
    from airflow.providers.standard.operators.hitl import HITLBranchOperator

    uc, dag = _train_dag("required", approval_timeout_hours=6, approval_default="approve")
    ask = dag.get_task("request_approval")
    assert isinstance(ask, HITLBranchOperator)
    assert dag.get_task("decide_promotion").downstream_task_ids == {"request_approval", "keep_champion"}
    assert ask.downstream_task_ids == {"promote_champion", "keep_champion_after_review"}
    assert dag.get_task("promote_champion").upstream_task_ids == {"request_approval", "evaluate_challenger"}
    assert ask.options == ["Approve", "Reject"] and ask.defaults == ["Approve"]
    assert ask.options_mapping == {"Approve": "promote_champion", "Reject": "keep_champion_after_review"}
    assert ask.response_timeout == timedelta(hours=6)
    assert "note" in ask.params
    assert "**approve** (promotion.approval_default)" in ask.body.lower()
    assert "request_approval" in dag.doc_md and "**required**" in dag.doc_md
    assert dag.get_task("notify").upstream_task_ids >= {"promote_champion", "keep_champion",
                                                         "keep_champion_after_review", "rollback_champion"}


def test_the_question_shows_the_decision_and_its_links() -> None:
    from jinja2 import Environment

    _, dag = _train_dag("required")
    ask = dag.get_task("request_approval")
    ev = {"challenger_version": "3", "champion_version": "2", "holdout": "2013-05-25..2013-05-26",
          "holdout_rows": 1800, "reason": "better", "message": "challenger beats champion",
          "decision": {"evidence": {"metric": "roc_auc", "challenger": 0.71, "champion": 0.66, "delta": 0.05,
                                    "ci_low": 0.02, "ci_high": 0.08}},
          "run_url": "http://mlflow/#/experiments/1/runs/abc", "model_version_url": "http://mlflow/#/models/x/versions/3"}

    class TI:
        @staticmethod
        def xcom_pull(task_ids: str):
            assert task_ids == "evaluate_challenger"
            return ev

    env = Environment()
    subject = env.from_string(ask.subject).render(ti=TI())
    body = env.from_string(ask.body).render(ti=TI())
    assert subject == "flight_delay: promote v3 to champion?"
    assert "challenger **v3**" in body and "champion **v2**" in body and "delta 0.05" in body
    assert "(http://mlflow/#/experiments/1/runs/abc)" in body and "**reject** (promotion.approval_default)" in body


def test_the_dag_processor_can_store_the_dag_with_its_question() -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    _, dag = _train_dag("required")
    stored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    assert stored.get_task("request_approval").downstream_task_ids == {"promote_champion", "keep_champion_after_review"}
