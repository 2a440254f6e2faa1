"""The drift policy's rules: test direction, verdicts, persistence, loop guards, escalation, acknowledgement."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from glideslope.config import DriftSpec
from glideslope.drift.policy import (
    ColumnDrift,
    column_drifted,
    column_results,
    decide,
    drift_streak,
    evaluate_check,
    retrain_guard,
)
from glideslope.drift.state import empty_state

pytestmark = pytest.mark.unit

SPEC = DriftSpec(drift_share=0.4, min_rows=500, performance_floor=0.6, persistence=2, cooldown_days=3,
                 weekly_retrain_budget=2, reference_days=3)


def day(n: int) -> str:
    return (date(2013, 6, 1) + timedelta(days=n)).isoformat()


def cols(drifted: int, total: int = 10) -> list[ColumnDrift]:
    return [ColumnDrift(f"c{i}", "Wasserstein distance (normed)", 0.1, 0.5 if i < drifted else 0.01, i < drifted)
            for i in range(total)]


# -- per-column direction ---------------------------------------------------------------------

@pytest.mark.parametrize(("method", "threshold", "score", "drifted"), [
    ("K-S p_value", 0.05, 0.01, True),            # small p-value: the samples differ
    ("K-S p_value", 0.05, 0.30, False),
    ("chi-square p_value", 0.05, 0.049, True),
    ("Z-test p_value", 0.05, 0.05, False),         # exactly at threshold is not below it
    ("Wasserstein distance (normed)", 0.1, 0.25, True),   # large distance: the samples differ
    ("Wasserstein distance (normed)", 0.1, 0.02, False),
    ("Wasserstein distance (normed)", 0.1, 0.1, True),    # at threshold counts as drift (Evidently's >=)
    ("Jensen-Shannon distance", 0.1, 0.05, False),
    ("PSI", 0.1, 0.3, True),
    # the spec names a test: config["method"] is then Evidently's registered name
    ("wasserstein", 1.0, 1.2, True),
    ("wasserstein", 1.0, 0.9, False),
    ("ks", 0.05, 0.05, True),                      # K-S: p <= threshold
    ("ks", 0.05, 0.2, False),
    ("anderson", 0.05, 0.01, True),
    ("jensenshannon", 0.1, 0.2, True),
    ("ed", 0.1, 0.1, False),                       # energy distance: strictly greater
])
def test_direction_of_each_test_is_read_from_its_method(method, threshold, score, drifted):
    assert column_drifted(method, threshold, score) is drifted


def test_same_number_means_opposite_things_for_p_values_and_distances():
    assert column_drifted("K-S p_value", 0.1, 0.02) is True
    assert column_drifted("Wasserstein distance (normed)", 0.1, 0.02) is False


def test_an_unknown_method_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="unknown drift test method 'my_test'"):
        column_drifted("my_test", 0.1, 0.5)


def test_a_missing_score_is_no_evidence_of_drift():
    assert column_drifted("K-S p_value", 0.05, float("nan")) is False
    assert column_results([{"column": "a", "method": "K-S p_value", "threshold": 0.05, "score": None}])[0].drifted \
        is False


# -- one check ----------------------------------------------------------------------------------

def test_share_at_or_above_drift_share_is_drift():
    v = evaluate_check(cols(4), current_rows=3000, reference_rows=5000, spec=SPEC, metric="roc_auc")
    assert v.status == "drift" and v.data_drift and v.drift_share == pytest.approx(0.4)
    assert v.drifted_columns == ["c0", "c1", "c2", "c3"]
    assert "4 of 10 columns drifted" in v.reasons[0]


def test_share_below_drift_share_is_ok():
    v = evaluate_check(cols(3), current_rows=3000, reference_rows=5000, spec=SPEC, metric="roc_auc")
    assert v.status == "ok" and not v.data_drift and v.drifted_columns == ["c0", "c1", "c2"]


@pytest.mark.parametrize(("current", "reference"), [(499, 5000), (3000, 120), (0, 0)])
def test_too_few_rows_is_insufficient_data_not_drift(current, reference):
    v = evaluate_check(cols(10), current_rows=current, reference_rows=reference, spec=SPEC, metric="roc_auc")
    assert v.status == "insufficient_data"
    assert not v.data_drift and not v.performance_breach
    assert "min_rows 500" in v.reasons[0]


def test_performance_under_the_floor_is_drift_even_without_data_drift():
    v = evaluate_check(cols(0), current_rows=3000, reference_rows=5000, spec=SPEC,
                       performance={"rows": 1900, "roc_auc": 0.55}, metric="roc_auc")
    assert v.status == "drift" and v.performance_breach and not v.data_drift
    assert "roc_auc 0.550" in v.reasons[0] and "performance_floor 0.6" in v.reasons[0]


def test_performance_on_too_few_labels_or_without_floor_is_ignored():
    few = evaluate_check(cols(0), current_rows=3000, reference_rows=5000, spec=SPEC,
                         performance={"rows": 100, "roc_auc": 0.40}, metric="roc_auc")
    assert few.status == "ok" and not few.performance_breach
    no_floor = evaluate_check(cols(0), current_rows=3000, reference_rows=5000,
                              spec=SPEC.model_copy(update={"performance_floor": None}),
                              performance={"rows": 3000, "roc_auc": 0.40}, metric="roc_auc")
    assert no_floor.status == "ok"


RMSE_SPEC = SPEC.model_copy(update={"performance_floor": 30.0})


@pytest.mark.parametrize(("value", "breach"), [(34.2, True), (30.0, False), (22.5, False)])
def test_a_lower_is_better_floor_is_breached_above_it(value, breach):
    v = evaluate_check(cols(0), current_rows=3000, reference_rows=5000, spec=RMSE_SPEC,
                       performance={"rows": 1900, "rmse": value}, metric="rmse")
    assert v.performance_breach is breach and v.status == ("drift" if breach else "ok")
    if breach:
        assert v.reasons[0] == ("live rmse 34.200 on 1900 labelled rows is above drift.performance_floor 30.0 "
                                "(lower is better)")


@pytest.mark.parametrize(("metric", "value", "breach"), [("r2", 0.2, True), ("r2", 0.45, False),
                                                        ("log_loss", 0.7, True), ("log_loss", 0.5, False)])
def test_the_floors_direction_comes_from_the_metric(metric, value, breach):
    spec = SPEC.model_copy(update={"performance_floor": {"r2": 0.3, "log_loss": 0.6}[metric]})
    v = evaluate_check(cols(0), current_rows=3000, reference_rows=5000, spec=spec,
                       performance={"rows": 1900, metric: value}, metric=metric)
    assert v.performance_breach is breach


@pytest.mark.parametrize(("performance", "why"), [
    (None, "no labelled rows yet"),
    ({"rows": 0}, "no labelled rows yet"),
    ({"rows": 120, "rmse": 50.0}, "only 120 labelled rows (drift.min_rows 500)"),
    ({"rows": 3000}, "live rmse could not be computed on 3000 labelled rows"),
    ({"rows": 3000, "rmse": float("nan")}, "live rmse could not be computed on 3000 labelled rows"),
])
def test_a_floor_that_cannot_be_checked_says_why(performance, why):
    v = evaluate_check(cols(0), current_rows=3000, reference_rows=5000, spec=RMSE_SPEC, performance=performance,
                       metric="rmse")
    assert v.status == "ok" and not v.performance_breach
    assert v.performance_unchecked == f"drift.performance_floor 30.0 not checked: {why}"
    assert v.reasons[-1] == v.performance_unchecked
    state = state_with({day(0): {"status": "ok", "reasons": v.reasons,
                                 "performance_unchecked": v.performance_unchecked}})
    assert decide(day(0), state, SPEC, train_active=False).reasons == ["no drift", v.performance_unchecked]


def test_without_a_floor_nothing_is_said_about_performance():
    v = evaluate_check(cols(0), current_rows=3000, reference_rows=5000,
                       spec=SPEC.model_copy(update={"performance_floor": None}), performance=None, metric="rmse")
    assert v.performance_unchecked is None and len(v.reasons) == 1


# -- persistence --------------------------------------------------------------------------------

def checks(*statuses: str, start: int = 0) -> dict[str, dict]:
    return {day(start + i): {"status": s} for i, s in enumerate(statuses)}


def test_streak_counts_consecutive_drift_back_from_the_day():
    c = checks("drift", "ok", "drift", "drift", "drift")
    assert drift_streak(c, day(4)) == [day(2), day(3), day(4)]
    assert drift_streak(c, day(1)) == []


def test_insufficient_data_neither_counts_nor_breaks_a_streak():
    c = checks("drift", "insufficient_data", "drift")
    assert drift_streak(c, day(2)) == [day(0), day(2)]


def test_streak_ignores_checks_up_to_an_acknowledgement():
    c = checks("drift", "drift", "drift", "drift")
    assert drift_streak(c, day(3), after=day(1)) == [day(2), day(3)]


def state_with(checks_: dict, **kw) -> dict:
    s = empty_state("uc")
    s["checks"] = checks_
    s.update(kw)
    return s


def test_one_noisy_day_does_not_act():
    d = decide(day(1), state_with(checks("ok", "drift")), SPEC, train_active=False)
    assert d.action == "wait" and "1 of 2" in d.reasons[0]


def test_persistent_drift_triggers_a_retrain():
    d = decide(day(2), state_with(checks("ok", "drift", "drift")), SPEC, train_active=False)
    assert d.action == "trigger" and d.streak == [day(1), day(2)]


def test_ok_and_insufficient_days_do_nothing():
    assert decide(day(0), state_with(checks("ok")), SPEC, train_active=False).action == "none"
    d = decide(day(0), state_with({day(0): {"status": "insufficient_data", "reasons": ["too few rows"]}}), SPEC,
               train_active=False)
    assert d.action == "insufficient_data" and d.reasons == ["too few rows"]


def test_deciding_needs_the_days_check():
    with pytest.raises(ValueError, match="no drift check recorded"):
        decide(day(5), state_with(checks("drift")), SPEC, train_active=False)


# -- loop guards -------------------------------------------------------------------------------

def emitted(ds: str) -> dict:
    return {"ds": ds, "outcome": "emitted"}


def test_cooldown_after_a_retrain_suppresses():
    s = state_with(checks(*["drift"] * 6), retrains=[{"ds": day(3), "decision": "promoted"}])
    g = retrain_guard(day(5), s, SPEC, train_active=False)
    assert not g.allowed and "cooldown" in g.reason and day(3) in g.reason
    assert retrain_guard(day(6), s, SPEC, train_active=False).allowed


def test_cooldown_counts_from_an_emitted_trigger_too():
    s = state_with(checks(*["drift"] * 3), triggers=[emitted(day(1))])
    assert "cooldown" in retrain_guard(day(2), s, SPEC, train_active=False).reason


def test_weekly_budget_suppresses():
    spec = SPEC.model_copy(update={"cooldown_days": 0})
    s = state_with({}, triggers=[emitted(day(0)), emitted(day(3))])
    g = retrain_guard(day(6), s, spec, train_active=False)
    assert not g.allowed and "budget" in g.reason and "2 of 2" in g.reason
    assert retrain_guard(day(7), s, spec, train_active=False).allowed  # day(0) left the 7-day window


def test_suppressed_triggers_do_not_use_the_budget():
    spec = SPEC.model_copy(update={"cooldown_days": 0, "weekly_retrain_budget": 1})
    s = state_with({}, triggers=[{"ds": day(1), "outcome": "suppressed"}])
    assert retrain_guard(day(2), s, spec, train_active=False).allowed


def test_zero_budget_never_retrains():
    spec = SPEC.model_copy(update={"weekly_retrain_budget": 0})
    assert not retrain_guard(day(0), state_with({}), spec, train_active=False).allowed


def test_one_training_run_at_a_time():
    g = retrain_guard(day(0), state_with({}), SPEC, train_active=True)
    assert not g.allowed and "already queued or running" in g.reason


def test_duplicate_trigger_for_the_same_day_is_suppressed():
    spec = SPEC.model_copy(update={"cooldown_days": 0})
    g = retrain_guard(day(2), state_with({}, triggers=[emitted(day(2))]), spec, train_active=False)
    assert not g.allowed and "already triggered" in g.reason


def test_guarded_persistent_drift_is_suppress_with_the_reason():
    s = state_with(checks("drift", "drift", "drift", "drift"), triggers=[emitted(day(1))])
    d = decide(day(3), s, SPEC, train_active=False)
    assert d.action == "suppress" and any("cooldown" in r for r in d.reasons)


# -- escalation and acknowledgement ------------------------------------------------------------

@pytest.mark.parametrize("decision", ["promoted", "rejected"])
def test_drift_that_outlives_a_retrain_escalates(decision):
    s = state_with(checks("drift", "drift", "drift", "drift"), triggers=[emitted(day(1))],
                   retrains=[{"ds": day(1), "decision": decision}])
    assert decide(day(2), s, SPEC, train_active=False).action == "wait"   # 1 check after the retrain
    d = decide(day(3), s, SPEC, train_active=False)
    assert d.action == "escalate" and d.retrain["decision"] == decision
    assert f"after the retrain of {day(1)} ({decision})" in d.reasons[0]


def test_a_retrain_that_helped_does_not_escalate_a_later_drift():
    # drift -> retrain -> ok days -> a new drift episode months later retrains again
    s = state_with(checks("drift", "drift", "ok", "ok", "ok", "drift", "drift"), triggers=[emitted(day(1))],
                   retrains=[{"ds": day(1), "decision": "promoted"}])
    assert decide(day(6), s, SPEC, train_active=False).action == "trigger"


def test_paused_use_case_does_not_retrain_or_escalate_again():
    s = state_with(checks(*["drift"] * 6), paused={"ds": day(3), "reason": "drift persisted"},
                   retrains=[{"ds": day(1), "decision": "rejected"}])
    d = decide(day(5), s, SPEC, train_active=False)
    assert d.action == "paused"
    assert not retrain_guard(day(5), s, SPEC, train_active=False).allowed


def test_acknowledgement_resumes_and_counts_afresh():
    s = state_with(checks(*["drift"] * 7), retrains=[{"ds": day(1), "decision": "rejected"}],
                   acks=[{"ds": day(3), "by": "alice"}])
    assert decide(day(3), s, SPEC, train_active=False).action == "wait"     # the ack day itself does not count
    assert decide(day(4), s, SPEC, train_active=False).action == "wait"     # 1 of 2 after the ack
    assert decide(day(5), s, SPEC, train_active=False).action == "trigger"  # no escalation: old retrain forgotten
