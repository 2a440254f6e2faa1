"""A person's answer to a promotion that waits for approval (``promotion.approval: required``).

The train DAG asks with Airflow's human-in-the-loop operator; its answer (the options chosen, who
answered and when, the note) is turned here into a :class:`Review`, which the promotion records
on the model version and the alert repeats. Nobody answering in time is an answer too: Airflow
applies ``promotion.approval_default`` and the review says the default was applied, not a person.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from glideslope.config import PromotionSpec

APPROVE = "Approve"
REJECT = "Reject"
OPTIONS = [APPROVE, REJECT]


def default_option(spec: PromotionSpec) -> str:
    return APPROVE if spec.approval_default == "approve" else REJECT


@dataclass(frozen=True)
class Review:
    approved: bool
    by: str | None  # None when the timeout's default decided
    at: str | None
    note: str
    timed_out: bool
    timeout_hours: float
    default: str

    def summary(self) -> str:
        verdict = "approved" if self.approved else "rejected"
        if self.timed_out:
            return (f"no answer within {self.timeout_hours:g} h: the configured default "
                    f"(promotion.approval_default={self.default}) applied, {verdict}")
        return f"{verdict} by {self.by} at {self.at}" + (f": {self.note}" if self.note else "")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary()}


def read_answer(answer: Mapping[str, Any] | None, options: list[str], what: str
                ) -> tuple[str, str | None, str | None, dict[str, Any]]:
    """A human-in-the-loop answer (``chosen_options``, ``responded_by_user``, ``responded_at``,
    ``params_input``) as (the one option chosen, who -- ``None`` when the timeout's default applied --,
    when, the Params' values). Raises naming ``what`` when there is no single valid choice."""
    if not answer or not answer.get("chosen_options"):
        raise ValueError(f"the {what} returned no answer ({answer!r}); nothing to carry out")
    chosen = list(answer["chosen_options"])
    if len(chosen) != 1 or chosen[0] not in options:
        raise ValueError(f"{what} answer {chosen} is not one of {options}")
    user = answer.get("responded_by_user")
    by = (user.get("name") or user.get("id")) if isinstance(user, Mapping) else (str(user) if user else None)
    params = {k: v.get("value") if isinstance(v, Mapping) and "value" in v else v
              for k, v in (answer.get("params_input") or {}).items()}
    at = answer.get("responded_at")
    return chosen[0], by, None if at is None else str(at), params


def review_from_answer(answer: Mapping[str, Any] | None, spec: PromotionSpec) -> Review:
    """The review of a human-in-the-loop answer (``chosen_options``, ``responded_by_user``, ...)."""
    choice, by, at, params = read_answer(answer, OPTIONS, "approval task")
    note = str(params.get("note") or "").strip()
    return Review(approved=choice == APPROVE, by=by, at=at, note=note,
                  timed_out=by is None, timeout_hours=spec.approval_timeout_hours, default=spec.approval_default)


def reviewed_rejection(evaluation: Mapping[str, Any], review: Review) -> dict[str, Any]:
    """The evaluation a reviewer (or the timeout's default) rejected: its reason and message say so."""
    if review.approved:
        raise ValueError("reviewed_rejection of an approved review")
    reason = "approval_timed_out" if review.timed_out else "rejected_by_reviewer"
    return {**evaluation, "reason": reason,
            "message": f"{review.summary()} (the policy had passed: {evaluation.get('message', '')})"}
