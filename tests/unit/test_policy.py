"""The champion-challenger policy: every reason a challenger is promoted or kept out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from glideslope.config import PromotionSpec
from glideslope.registry import policy
from glideslope.registry.policy import Evidence, SliceResult, decide, gather_evidence

pytestmark = pytest.mark.unit

RULE = PromotionSpec(metric="roc_auc", higher_is_better=True, floor=0.60, margin=0.005, confidence=0.95,
                     bootstrap_rounds=200, slices=["carrier"], slice_tolerance=0.03, min_slice_rows=50)
LOSS_RULE = PromotionSpec(metric="log_loss", higher_is_better=False, floor=0.55, margin=0.005,
                          bootstrap_rounds=200, slices=["carrier"], slice_tolerance=0.02, min_slice_rows=50)


def ev(challenger: float, champion: float | None = None, ci: tuple[float, float] | None = None,
       slices: tuple[SliceResult, ...] = (), rule: PromotionSpec = RULE, **kw) -> Evidence:
    delta = None if champion is None else policy.orient(challenger, champion, rule.higher_is_better)
    lo, hi = ci if ci else ((delta, delta) if delta is not None else (None, None))
    return Evidence(metric=rule.metric, higher_is_better=rule.higher_is_better, rows=1000, challenger=challenger,
                    champion=champion, delta=delta, ci_low=lo, ci_high=hi, bootstrap_rounds=rule.bootstrap_rounds,
                    slices=slices, challenger_version=kw.pop("cv", "2"), champion_version=kw.pop("pv", "1"), **kw)


def sl(value: str, delta: float, rows: int = 400) -> SliceResult:
    return SliceResult("carrier", value, rows, champion=0.70, challenger=0.70 + delta, delta=delta)


# name: (evidence, promote?, reason)
CASES = {
    "no champion, clears the floor": (ev(0.65, pv=None), True, policy.PROMOTE_FIRST),
    "no champion, exactly at the floor": (ev(0.60, pv=None), True, policy.PROMOTE_FIRST),
    "no champion, below the floor": (ev(0.59, pv=None), False, policy.REASON_FLOOR),
    "below the floor though better than the champion": (ev(0.59, 0.55, ci=(0.01, 0.07)), False, policy.REASON_FLOOR),
    "challenger is the champion": (ev(0.70, 0.70, cv="3", pv="3"), False, policy.REASON_SAME),
    "tie": (ev(0.70, 0.70), False, policy.REASON_TIE),
    "worse": (ev(0.68, 0.70, ci=(-0.04, -0.01)), False, policy.REASON_WORSE),
    "better but within the margin": (ev(0.703, 0.70, ci=(0.001, 0.005)), False, policy.REASON_MARGIN),
    "exactly the margin, CI above zero": (ev(0.705, 0.70, ci=(0.001, 0.01)), True, policy.PROMOTE_BETTER),
    "CI crosses zero": (ev(0.72, 0.70, ci=(-0.004, 0.044)), False, policy.REASON_CI),
    "CI touches zero": (ev(0.72, 0.70, ci=(0.0, 0.04)), False, policy.REASON_CI),
    "CI undefined": (ev(0.72, 0.70, ci=(math.nan, math.nan)), False, policy.REASON_CI),
    "a slice regresses beyond the tolerance": (
        ev(0.72, 0.70, ci=(0.01, 0.03), slices=(sl("UA", 0.02), sl("EV", -0.031))), False, policy.REASON_SLICE),
    "a slice regresses within the tolerance": (
        ev(0.72, 0.70, ci=(0.01, 0.03), slices=(sl("UA", 0.02), sl("EV", -0.029))), True, policy.PROMOTE_BETTER),
    "a slice regresses exactly by the tolerance": (
        ev(0.72, 0.70, ci=(0.01, 0.03), slices=(sl("EV", -0.03),)), True, policy.PROMOTE_BETTER),
    "better everywhere": (ev(0.72, 0.70, ci=(0.01, 0.03), slices=(sl("UA", 0.01),)), True, policy.PROMOTE_BETTER),
    "challenger metric undefined": (ev(math.nan, 0.70), False, policy.REASON_UNDEFINED),
    "champion metric undefined": (ev(0.70, math.nan), False, policy.REASON_UNDEFINED),
}


@pytest.mark.parametrize("name", list(CASES))
def test_decision(name: str) -> None:
    evidence, promote, reason = CASES[name]
    d = decide(evidence, RULE)
    assert (d.promote, d.reason) == (promote, reason), d.message
    assert d.outcome == ("promote" if promote else "reject")
    # Every check that ran is recorded; only the last one may have failed.
    assert all(c.passed for c in d.checks[:-1])
    if not promote:
        assert not d.checks[-1].passed
    assert d.to_dict()["evidence"]["challenger"] == evidence.challenger or math.isnan(evidence.challenger)


def test_reasons_name_the_numbers_a_person_checks() -> None:
    d = decide(ev(0.72, 0.70, ci=(0.01, 0.03), slices=(sl("EV", -0.05),)), RULE)
    assert "carrier=EV" in d.message and "400 rows" in d.message
    assert d.worst_slice is not None and d.worst_slice.value == "EV"
    d = decide(ev(0.72, 0.70, ci=(-0.004, 0.044)), RULE)
    assert "[-0.0040, 0.0440]" in d.message
    d = decide(ev(0.55, pv=None), RULE)
    assert "0.5500" in d.message and ">= 0.6" in d.message


@pytest.mark.parametrize(("challenger", "champion", "ci", "promote", "reason"), [
    (0.50, 0.60, (0.05, 0.15), True, policy.PROMOTE_BETTER),       # lower loss is better
    (0.62, 0.60, (-0.05, -0.01), False, policy.REASON_FLOOR),       # above the loss ceiling
    (0.54, 0.52, (-0.04, -0.01), False, policy.REASON_WORSE),
    (0.52, 0.522, (0.0005, 0.004), False, policy.REASON_MARGIN),
])
def test_lower_is_better_metrics_are_oriented(challenger, champion, ci, promote, reason) -> None:
    d = decide(ev(challenger, champion, ci=ci, rule=LOSS_RULE), LOSS_RULE)
    assert (d.promote, d.reason) == (promote, reason), d.message


def _synthetic(n: int = 3000, seed: int = 0):
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * signal))).astype(float)
    good = 1 / (1 + np.exp(-2 * signal))
    noisy = 1 / (1 + np.exp(-(2 * signal + rng.normal(scale=2.5, size=n))))
    carriers = rng.choice(["AA", "UA", "EV", "tiny"], size=n, p=[0.33, 0.33, 0.33, 0.01])
    return y, good, noisy, carriers


def test_clearly_better_challenger_is_promoted_from_raw_scores() -> None:
    y, good, noisy, carriers = _synthetic()
    e = gather_evidence(y, good, noisy, {"carrier": carriers}, RULE, seed=1, challenger_version="2",
                        champion_version="1")
    assert e.delta > 0.05 and e.ci_low > 0
    assert {s.value for s in e.slices} == {"AA", "UA", "EV"} and e.slices_skipped == 1  # "tiny" < 50 rows
    assert decide(e, RULE).promote


def test_a_worse_challenger_is_kept_out_from_raw_scores() -> None:
    y, good, noisy, carriers = _synthetic()
    e = gather_evidence(y, noisy, good, {"carrier": carriers}, RULE, seed=1, challenger_version="2",
                        champion_version="1")
    assert e.delta < 0 and e.ci_high < 0
    assert decide(e, RULE).reason == policy.REASON_WORSE


def test_identical_scores_are_a_tie_with_a_zero_width_interval() -> None:
    y, good, _, carriers = _synthetic()
    e = gather_evidence(y, good, good.copy(), {"carrier": carriers}, RULE, seed=1, challenger_version="2",
                        champion_version="1")
    assert e.delta == 0 and e.ci_low == 0 and e.ci_high == 0
    assert decide(e, RULE).reason == policy.REASON_TIE


def test_two_equally_noisy_models_on_few_rows_are_not_significantly_different() -> None:
    y, good, _, carriers = _synthetic(n=300, seed=3)
    logit = np.log(good / (1 - good))
    rng = np.random.default_rng(100)
    a = 1 / (1 + np.exp(-(logit + rng.normal(scale=2.5, size=300))))
    b = 1 / (1 + np.exp(-(logit + rng.normal(scale=2.5, size=300))))
    rule = RULE.model_copy(update={"margin": 0.0})
    e = gather_evidence(y, a, b, {"carrier": carriers}, rule, seed=1, challenger_version="2", champion_version="1")
    assert e.delta > 0, "the challenger looks better on this holdout..."
    assert e.ci_low < 0 < e.ci_high, "...but the interval says it could be luck"
    assert decide(e, rule).reason == policy.REASON_CI


def test_a_slice_the_challenger_breaks_is_caught() -> None:
    y, good, _, carriers = _synthetic()
    broken = good.copy()
    ev_mask = carriers == "EV"
    broken[ev_mask] = np.random.default_rng(5).random(ev_mask.sum())  # random scores for one carrier
    champion = 0.3 * good + 0.7 * np.random.default_rng(6).random(len(good))  # weaker overall
    e = gather_evidence(y, broken, champion, {"carrier": carriers}, RULE, seed=1, challenger_version="2",
                        champion_version="1")
    d = decide(e, RULE)
    assert e.delta > 0 and e.ci_low > 0, "better on the whole holdout"
    assert (d.reason, d.worst_slice.value) == (policy.REASON_SLICE, "EV")


def test_bootstrap_is_deterministic_for_a_seed_and_paired() -> None:
    y, good, noisy, _ = _synthetic(n=800)
    a = policy.paired_bootstrap(y, good, noisy, "roc_auc", True, 100, 0.9, seed=7)
    b = policy.paired_bootstrap(y, good, noisy, "roc_auc", True, 100, 0.9, seed=7)
    assert a == b
    # Pairing: a model compared with itself plus a constant shift of scores (same ranking) has zero spread.
    assert policy.paired_bootstrap(y, good, good * 0.5, "roc_auc", True, 50, 0.9, seed=7) == (0.0, 0.0)


def test_slices_with_one_class_or_too_few_rows_are_skipped() -> None:
    y = np.array([0, 1] * 100 + [0] * 100, dtype=float)
    p = np.linspace(0, 1, 300)
    carriers = np.array(["AA"] * 200 + ["UA"] * 100)
    results, skipped = policy.compare_slices(y, p, p[::-1].copy(), {"carrier": carriers}, "roc_auc", True, 50)
    assert [r.value for r in results] == ["AA"] and skipped == 1  # UA has only negatives


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="challenger scores: 2 rows, labels: 3 rows"):
        gather_evidence([0, 1, 0], [0.1, 0.2], None, {}, RULE, seed=1)
    with pytest.raises(ValueError, match="champion scores: 2 rows"):
        gather_evidence([0, 1, 0], [0.1, 0.2, 0.3], [0.1, 0.2], {}, RULE, seed=1)


def test_without_champion_no_comparison_is_computed() -> None:
    y, good, _, carriers = _synthetic(n=500)
    e = gather_evidence(y, good, None, {"carrier": carriers}, RULE, seed=1)
    assert e.champion is None and e.delta is None and e.slices == () and e.bootstrap_rounds == 0
    assert decide(e, RULE).reason == policy.PROMOTE_FIRST
