"""A person's answer to a waiting promotion, and the timeout's default, as recorded and alerted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from glideslope.config import load_usecase
from glideslope.registry.review import review_from_answer, reviewed_rejection

pytestmark = pytest.mark.unit

AT = datetime(2013, 5, 29, 9, 30, tzinfo=UTC)


def _rule(**kw):
    return load_usecase("flight_delay").promotion.model_copy(update={"approval": "required", **kw})


def test_a_person_approves_with_a_note():
    r = review_from_answer({"chosen_options": ["Approve"], "params_input": {"note": " checked the slices "},
                            "responded_by_user": {"id": "7", "name": "oncall"}, "responded_at": AT}, _rule())
    assert r.approved and not r.timed_out and r.by == "oncall" and r.note == "checked the slices"
    assert r.summary() == f"approved by oncall at {AT}: checked the slices"


def test_a_person_rejects_and_the_rejection_says_who():
    r = review_from_answer({"chosen_options": ["Reject"], "params_input": {"note": "holiday week"},
                            "responded_by_user": {"id": "7", "name": "oncall"}, "responded_at": AT}, _rule())
    ev = reviewed_rejection({"reason": "better", "message": "beats champion"}, r)
    assert not r.approved and ev["reason"] == "rejected_by_reviewer"
    assert ev["message"].startswith("rejected by oncall") and "the policy had passed: beats champion" in ev["message"]


@pytest.mark.parametrize(("default", "option", "approved"), [("reject", "Reject", False), ("approve", "Approve", True)])
def test_no_answer_applies_the_configured_default_and_says_so(default, option, approved):
    # What Airflow's timeout sweep resumes the task with: the defaults, nobody as the responder.
    r = review_from_answer({"chosen_options": [option], "params_input": {"note": ""}, "responded_by_user": None,
                            "responded_at": AT}, _rule(approval_timeout_hours=6, approval_default=default))
    assert r.timed_out and r.approved is approved and r.by is None
    assert r.summary() == (f"no answer within 6 h: the configured default (promotion.approval_default={default}) "
                           f"applied, {'approved' if approved else 'rejected'}")
    if not approved:
        assert reviewed_rejection({"message": "m"}, r)["reason"] == "approval_timed_out"


def test_the_alert_names_the_reviewer_or_the_timeout():
    from glideslope.airflow.train import _alert

    base = {"challenger_version": "3", "champion_version": "2", "ds": "2013-05-29", "reason": "better",
            "message": "beats champion", "run_url": "http://m/run", "model_version_url": "http://m/mv"}
    person = review_from_answer({"chosen_options": ["Approve"], "responded_by_user": {"id": "7", "name": "oncall"},
                                 "responded_at": AT}, _rule()).to_dict()
    alert = _alert("flight_delay", {**base, "review": person}, "promoted")
    assert alert.title == "flight_delay: v3 promoted to champion (was v2) (approved by oncall)"
    timeout = review_from_answer({"chosen_options": ["Reject"], "responded_by_user": None, "responded_at": AT},
                                 _rule()).to_dict()
    ev = reviewed_rejection(base, review_from_answer({"chosen_options": ["Reject"], "responded_by_user": None,
                                                      "responded_at": AT}, _rule()))
    alert = _alert("flight_delay", {**ev, "review": timeout}, "rejected")
    assert "approval timed out: default applied" in alert.title and alert.severity == "warning"
    assert "no answer within 24 h" in alert.body and alert.facts["review"].startswith("no answer")


def test_an_answer_that_is_not_an_option_is_refused():
    with pytest.raises(ValueError, match="not one of"):
        review_from_answer({"chosen_options": ["Maybe"]}, _rule())
    with pytest.raises(ValueError, match="no answer"):
        review_from_answer(None, _rule())
