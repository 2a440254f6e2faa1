"""The drift policy: pure decisions over the numbers a drift check measured and the monitor's state.

Nothing here reads files or calls a service, so every rule is tested exhaustively in
``tests/unit/test_drift_policy.py``. The rules, in the order they are applied:

1. **Per column** (:func:`column_drifted`): Evidently picks a test per column from its type and
   the sample size (or uses the spec's ``num_method``/``cat_method``) and reports ``method``,
   ``threshold`` and a score. For p-value tests (K-S, chi-square, Z, ...) a *small* score is
   drift; for distances (Wasserstein, Jensen-Shannon, PSI, ...) a *large* one is. The direction
   is looked up from the method's name (an unknown method is an error), never assumed.
2. **Check verdict** (:func:`evaluate_check`): too few current or reference rows is
   ``insufficient_data`` (not drift, not "ok"); otherwise the check is ``drift`` when the share of
   drifted columns reaches ``drift.drift_share`` or when live performance of ``promotion.metric``
   (enough labelled rows) is worse than ``drift.performance_floor``: below it when higher is
   better (ROC-AUC, R²), above it when lower is better (RMSE, log loss), as
   :mod:`glideslope.metrics` says. A floor that cannot be checked yet (no or too few labels, an
   undefined metric) is said so in the reasons, never silently skipped.
3. **Persistence** (:func:`drift_streak`): only ``drift.persistence`` consecutive drifted checks
   act, so one noisy day does not retrain. ``insufficient_data`` days neither count nor break a
   streak; an ``ok`` day breaks it; an acknowledgement starts counting afresh.
4. **Escalation** (:func:`decide`): when the streak outlived a retrain that ran during it
   (promoted or rejected: retraining did not help) by ``persistence`` checks, escalate and pause
   automatic retraining until a person acknowledges.
5. **Loop guards** (:func:`retrain_guard`): paused, a training run already active, already
   triggered for this day, cooldown after the last retrain, weekly budget. A guarded trigger is
   ``suppress`` with the reason, recorded and alerted by the caller.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from glideslope.config import DriftSpec
from glideslope.metrics import direction, higher_is_better, worse_than

CheckStatus = Literal["ok", "drift", "insufficient_data"]
Action = Literal["none", "wait", "trigger", "suppress", "escalate", "paused", "insufficient_data"]

# How each Evidently 0.7 stat test decides (evidently/legacy/calculations/stattests/*.py), keyed by
# its registered name and by its display name: config["method"] holds the display name when
# Evidently chose the test, and the registered name when the spec named it.
_P_VALUE_LT = ("anderson", "Anderson-Darling", "chisquare", "chi-square p_value", "es", "Epps-Singleton",
               "fisher_exact", "Fisher's Exact test", "g_test", "mannw", "Mann-Whitney U-rank test",
               "empirical_mmd", "t_test", "TVD", "Total-Variation-Distance", "z", "Z-test p_value")
_P_VALUE_LE = ("ks", "K-S p_value", "cramer_von_mises", "Cramer-von Mises")
_DISTANCE_GE = ("kl_div", "Kullback-Leibler divergence", "psi", "PSI", "hellinger", "Hellinger distance",
                "jensenshannon", "Jensen-Shannon distance", "wasserstein", "Wasserstein distance (normed)")
_DISTANCE_GT = ("ed", "Energy-distance")
_RULES: dict[str, tuple[bool, bool]] = {  # method -> (is p-value, drift at equality)
    **{m: (True, False) for m in _P_VALUE_LT}, **{m: (True, True) for m in _P_VALUE_LE},
    **{m: (False, True) for m in _DISTANCE_GE}, **{m: (False, False) for m in _DISTANCE_GT},
}


def is_p_value_method(method: str) -> bool:
    """True for p-value tests (small = drift), False for distances (large = drift)."""
    if method in _RULES:
        return _RULES[method][0]
    if "p_value" in method.lower() or "p-value" in method.lower():
        return True
    raise ValueError(f"unknown drift test method {method!r}: cannot tell whether a small or a large score means "
                     f"drift; use one of Evidently's stat tests ({', '.join(sorted(_RULES))})")


def column_drifted(method: str, threshold: float, score: float) -> bool:
    """Does one column's test say drift? Direction depends on the method (see module doc)."""
    if score is None or (isinstance(score, float) and math.isnan(score)):
        return False  # Evidently could not compute a score (e.g. an empty column): no evidence of drift
    p_value = is_p_value_method(method)
    at_equality = _RULES.get(method, (p_value, not p_value))[1]
    score, threshold = float(score), float(threshold)
    if score == threshold:
        return at_equality
    return score < threshold if p_value else score > threshold


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    method: str
    threshold: float
    score: float
    drifted: bool


def column_results(tests: Sequence[Mapping[str, Any]]) -> list[ColumnDrift]:
    """Turn ``[{"column", "method", "threshold", "score"}]`` into decided :class:`ColumnDrift` rows."""
    out = []
    for t in tests:
        score = float(t["score"]) if t.get("score") is not None else float("nan")
        out.append(ColumnDrift(column=str(t["column"]), method=str(t["method"]), threshold=float(t["threshold"]),
                               score=score, drifted=column_drifted(str(t["method"]), float(t["threshold"]), score)))
    return out


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check (one use case, one logical day)."""

    status: CheckStatus
    data_drift: bool
    performance_breach: bool
    drift_share: float
    drifted_columns: list[str]
    tested_columns: int
    reasons: list[str] = field(default_factory=list)
    performance_unchecked: str | None = None  # why drift.performance_floor could not be applied

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_check(
    columns: Sequence[ColumnDrift],
    *,
    current_rows: int,
    reference_rows: int,
    spec: DriftSpec,
    performance: Mapping[str, Any] | None = None,
    metric: str,
) -> Verdict:
    """Decide one check. ``performance`` is ``{"rows": n_labelled, metric: value}`` or None.

    ``metric`` is the use case's ``promotion.metric``; its direction decides which side of
    ``drift.performance_floor`` is a breach.
    """
    drifted = [c.column for c in columns if c.drifted]
    share = len(drifted) / len(columns) if columns else 0.0
    if current_rows < spec.min_rows or reference_rows < spec.min_rows:
        return Verdict(
            status="insufficient_data", data_drift=False, performance_breach=False, drift_share=share,
            drifted_columns=drifted, tested_columns=len(columns),
            reasons=[f"too few rows to judge drift: current {current_rows}, reference {reference_rows}, "
                     f"drift.min_rows {spec.min_rows}"],
        )
    reasons = []
    data_drift = bool(columns) and share >= spec.drift_share
    if data_drift:
        reasons.append(f"{len(drifted)} of {len(columns)} columns drifted (share {share:.2f} >= "
                       f"drift.drift_share {spec.drift_share}): {', '.join(drifted)}")
    breach, unchecked = False, None
    floor = spec.performance_floor
    if floor is not None:
        rows = int((performance or {}).get("rows") or 0)
        value = (performance or {}).get(metric)
        if rows == 0:
            unchecked = "no labelled rows yet"
        elif rows < spec.min_rows:
            unchecked = f"only {rows} labelled rows (drift.min_rows {spec.min_rows})"
        elif value is None or math.isnan(float(value)):
            unchecked = f"live {metric} could not be computed on {rows} labelled rows"
        elif worse_than(float(value), floor, metric):
            breach = True
            side = "under" if higher_is_better(metric) else "above"
            reasons.append(f"live {metric} {float(value):.3f} on {rows} labelled rows is {side} "
                           f"drift.performance_floor {floor} ({direction(metric)})")
    if not reasons:
        reasons.append(f"{len(drifted)} of {len(columns)} columns drifted (share {share:.2f} < "
                       f"drift.drift_share {spec.drift_share})")
    if unchecked:
        unchecked = f"drift.performance_floor {floor} not checked: {unchecked}"
        reasons.append(unchecked)
    return Verdict(
        status="drift" if (data_drift or breach) else "ok", data_drift=data_drift, performance_breach=breach,
        drift_share=share, drifted_columns=drifted, tested_columns=len(columns), reasons=reasons,
        performance_unchecked=unchecked,
    )


# -- persistence, guards, escalation ------------------------------------------------------------

def _day(ds: str) -> date:
    return date.fromisoformat(ds)


def drift_streak(checks: Mapping[str, Mapping[str, Any]], ds: str, after: str | None = None) -> list[str]:
    """The days of the run of consecutive drifted checks that ends at ``ds`` (oldest first).

    ``checks`` maps ds -> {"status": ...}. Only checks on or before ``ds`` and strictly after
    ``after`` (an acknowledgement) are considered. ``insufficient_data`` checks are skipped.
    """
    days = sorted(d for d in checks if d <= ds and (after is None or d > after))
    streak: list[str] = []
    for d in reversed(days):
        status = checks[d].get("status")
        if status == "insufficient_data":
            continue
        if status != "drift":
            break
        streak.append(d)
    return list(reversed(streak))


@dataclass(frozen=True)
class Guard:
    allowed: bool
    reason: str | None = None


def retrain_guard(ds: str, state: Mapping[str, Any], spec: DriftSpec, *, train_active: bool) -> Guard:
    """May a retrain be triggered for ``ds``? Checked in order; the first failing rule is the reason."""
    paused = state.get("paused")
    if paused:
        return Guard(False, f"automatic retraining is paused since {paused.get('ds')} (escalated: "
                            f"{paused.get('reason', 'drift persisted after retraining')}); acknowledge to resume")
    if train_active:
        return Guard(False, "a training run of this use case is already queued or running")
    emitted = [t for t in state.get("triggers", []) if t.get("outcome") == "emitted"]
    if any(t.get("ds") == ds for t in emitted):
        return Guard(False, f"a retrain was already triggered for {ds}")
    retrain_days = [t["ds"] for t in emitted] + [r["ds"] for r in state.get("retrains", [])]
    last = max((d for d in retrain_days if d <= ds), default=None)
    if last is not None and spec.cooldown_days > 0:
        age = (_day(ds) - _day(last)).days
        if age < spec.cooldown_days:
            return Guard(False, f"cooldown: last retrain on {last}, {age} day(s) ago, "
                                f"drift.cooldown_days is {spec.cooldown_days}")
    week_start = (_day(ds) - timedelta(days=6)).isoformat()
    in_week = sorted(t["ds"] for t in emitted if week_start <= t["ds"] <= ds)
    if len(in_week) >= spec.weekly_retrain_budget:
        return Guard(False, f"weekly retrain budget used: {len(in_week)} of {spec.weekly_retrain_budget} "
                            f"retrains triggered in {week_start}..{ds} ({', '.join(in_week) or 'budget is 0'})")
    return Guard(True)


@dataclass(frozen=True)
class Decision:
    action: Action
    reasons: list[str]
    streak: list[str]
    retrain: dict[str, Any] | None = None  # the retrain the drift outlived (escalation)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def last_ack_ds(state: Mapping[str, Any]) -> str | None:
    return max((a["ds"] for a in state.get("acks", [])), default=None)


def decide(ds: str, state: Mapping[str, Any], spec: DriftSpec, *, train_active: bool) -> Decision:
    """What the monitor does for ``ds``, given the state with ``ds``'s check already recorded."""
    check = state.get("checks", {}).get(ds)
    if check is None:
        raise ValueError(f"no drift check recorded for {ds}; record the check before deciding")
    if check["status"] == "insufficient_data":
        return Decision("insufficient_data", list(check.get("reasons", [])), [])
    if check["status"] == "ok":
        return Decision("none", ["no drift", *([check["performance_unchecked"]] if check.get("performance_unchecked")
                                               else [])], [])

    streak = drift_streak(state["checks"], ds, after=last_ack_ds(state))
    if state.get("paused"):
        p = state["paused"]
        return Decision("paused", [f"drift continues; automatic retraining paused since {p.get('ds')} until "
                                   f"acknowledged"], streak)
    if not streak:  # drift on the day of an acknowledgement: counting starts the day after
        return Decision("wait", [f"drift continues; checks count afresh after the acknowledgement of "
                                 f"{last_ack_ds(state)}"], [])
    # A retrain that ran during this streak and that the drift outlived by `persistence` checks
    # means retraining did not help: escalate instead of retraining again.
    retrains = [r for r in state.get("retrains", []) if streak[0] <= r["ds"] < ds]
    if retrains:
        last = max(retrains, key=lambda r: r["ds"])
        after = [d for d in streak if d > last["ds"]]
        if len(after) >= spec.persistence:
            return Decision("escalate", [
                f"drift persisted for {len(after)} check(s) ({after[0]}..{after[-1]}) after the retrain of "
                f"{last['ds']} ({last.get('decision', 'unknown decision')}); drift.persistence is {spec.persistence}",
            ], streak, retrain=dict(last))
        return Decision("wait", [f"drifted again after the retrain of {last['ds']}: {len(after)} of "
                                 f"{spec.persistence} checks before escalation"], streak, retrain=dict(last))
    if len(streak) < spec.persistence:
        return Decision("wait", [f"drift on {len(streak)} of {spec.persistence} consecutive checks needed "
                                 f"(drift.persistence)"], streak)
    guard = retrain_guard(ds, state, spec, train_active=train_active)
    reasons = [f"drift on {len(streak)} consecutive checks ({streak[0]}..{streak[-1]})"]
    if not guard.allowed:
        return Decision("suppress", reasons + [guard.reason or "guarded"], streak)
    return Decision("trigger", reasons, streak)
