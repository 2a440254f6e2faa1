"""The champion-challenger promotion policy: pure functions, no I/O.

:func:`gather_evidence` turns labels and the two models' scores on the same holdout rows into
numbers (metric of each model, a paired bootstrap confidence interval of the difference, per-slice
differences). :func:`decide` turns those numbers and the use case's ``promotion`` rule into a
decision with a reason. Both are deterministic for a given seed, so a decision can be replayed.

Every difference ("delta") is oriented so that positive means *the challenger is better*, whatever
the metric's direction: for ROC-AUC it is challenger - champion, for log loss champion - challenger.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from glideslope.config import PromotionSpec
from glideslope.metrics import metric

TIE_TOLERANCE = 1e-12

# Reasons, in the order the checks are applied; the first failing check is the reason.
PROMOTE_FIRST = "no_champion"
PROMOTE_BETTER = "better"
REASON_UNDEFINED = "metric_undefined"
REASON_FLOOR = "below_floor"
REASON_SAME = "same_version"
REASON_TIE = "tie"
REASON_WORSE = "worse"
REASON_MARGIN = "within_margin"
REASON_CI = "ci_includes_zero"
REASON_SLICE = "slice_regression"


@dataclass(frozen=True)
class SliceResult:
    column: str
    value: str
    rows: int
    champion: float
    challenger: float
    delta: float  # oriented: positive = challenger better


@dataclass(frozen=True)
class Evidence:
    """What the policy decides on. ``champion`` fields are None when there is no champion."""

    metric: str
    higher_is_better: bool
    rows: int
    challenger: float
    champion: float | None = None
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float = 0.95
    bootstrap_rounds: int = 0
    slices: tuple[SliceResult, ...] = ()
    slices_skipped: int = 0
    challenger_version: str | None = None
    champion_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    message: str
    checks: tuple[Check, ...]
    evidence: Evidence
    worst_slice: SliceResult | None = field(default=None)

    @property
    def outcome(self) -> str:
        return "promote" if self.promote else "reject"

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "promote": self.promote,
            "reason": self.reason,
            "message": self.message,
            "checks": [asdict(c) for c in self.checks],
            "evidence": self.evidence.to_dict(),
            "worst_slice": asdict(self.worst_slice) if self.worst_slice else None,
        }


def orient(challenger: float, champion: float, higher_is_better: bool) -> float:
    """Challenger minus champion, sign flipped for lower-is-better metrics."""
    return challenger - champion if higher_is_better else champion - challenger


def clears_floor(value: float, floor: float, higher_is_better: bool) -> bool:
    return value >= floor if higher_is_better else value <= floor


def paired_bootstrap(
    y: np.ndarray,
    p_challenger: np.ndarray,
    p_champion: np.ndarray,
    metric_name: str,
    higher_is_better: bool,
    rounds: int,
    confidence: float,
    seed: int,
) -> tuple[float, float]:
    """Percentile CI of the oriented metric delta; both models are scored on the same resamples."""
    fn = metric(metric_name)
    rng = np.random.default_rng(seed)
    n = len(y)
    deltas = []
    for _ in range(rounds):
        idx = rng.integers(0, n, size=n)
        a, b = fn(y[idx], p_challenger[idx]), fn(y[idx], p_champion[idx])
        if not (math.isnan(a) or math.isnan(b)):
            deltas.append(orient(a, b, higher_is_better))
    if not deltas:
        return math.nan, math.nan
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(np.asarray(deltas), [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def compare_slices(
    y: np.ndarray,
    p_challenger: np.ndarray,
    p_champion: np.ndarray,
    slices: Mapping[str, np.ndarray],
    metric_name: str,
    higher_is_better: bool,
    min_rows: int,
) -> tuple[tuple[SliceResult, ...], int]:
    """Metric of both models on every slice value with at least ``min_rows`` rows.

    Returns the comparable slices and how many slice values were too small or undefined.
    """
    fn = metric(metric_name)
    out: list[SliceResult] = []
    skipped = 0
    for column, values in slices.items():
        values = np.asarray(values).astype(str)
        for value in sorted(set(values.tolist())):
            mask = values == value
            rows = int(mask.sum())
            if rows < min_rows:
                skipped += 1
                continue
            a, b = fn(y[mask], p_challenger[mask]), fn(y[mask], p_champion[mask])
            if math.isnan(a) or math.isnan(b):
                skipped += 1
                continue
            out.append(SliceResult(column, value, rows, champion=b, challenger=a,
                                   delta=orient(a, b, higher_is_better)))
    return tuple(out), skipped


def gather_evidence(
    y: Any,
    p_challenger: Any,
    p_champion: Any | None,
    slices: Mapping[str, Any],
    rule: PromotionSpec,
    seed: int,
    challenger_version: str | None = None,
    champion_version: str | None = None,
) -> Evidence:
    """Numbers for :func:`decide`, from labels and both models' scores on the same rows."""
    y_arr = np.asarray(y, dtype="float64")
    chall = np.asarray(p_challenger, dtype="float64")
    if len(chall) != len(y_arr):
        raise ValueError(f"challenger scores: {len(chall)} rows, labels: {len(y_arr)} rows")
    fn = metric(rule.metric)
    base: dict[str, Any] = {"metric": rule.metric, "higher_is_better": rule.higher_is_better, "rows": len(y_arr),
            "challenger": fn(y_arr, chall), "confidence": rule.confidence,
            "challenger_version": challenger_version, "champion_version": champion_version}
    if p_champion is None:
        return Evidence(**base)
    champ = np.asarray(p_champion, dtype="float64")
    if len(champ) != len(y_arr):
        raise ValueError(f"champion scores: {len(champ)} rows, labels: {len(y_arr)} rows")
    champion_value = fn(y_arr, champ)
    lo, hi = paired_bootstrap(y_arr, chall, champ, rule.metric, rule.higher_is_better,
                              rule.bootstrap_rounds, rule.confidence, seed)
    slice_results, skipped = compare_slices(y_arr, chall, champ, slices, rule.metric, rule.higher_is_better,
                                            rule.min_slice_rows)
    return Evidence(**base, champion=champion_value,
                    delta=orient(base["challenger"], champion_value, rule.higher_is_better),
                    ci_low=lo, ci_high=hi, bootstrap_rounds=rule.bootstrap_rounds,
                    slices=slice_results, slices_skipped=skipped)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def decide(ev: Evidence, rule: PromotionSpec) -> Decision:
    """Promote the challenger or keep the champion, with the first failing check as the reason.

    Checks, in order: the metric is defined; the challenger clears the absolute floor (with no
    champion this alone decides); it is not the champion itself; it is not tied with the champion;
    it is better; by at least the margin; the bootstrap CI of the delta lies above zero; and no
    slice with enough rows regresses by more than the tolerance.
    """
    m = ev.metric
    checks: list[Check] = []

    def check(name: str, passed: bool, detail: str) -> bool:
        checks.append(Check(name, passed, detail))
        return passed

    def result(promote: bool, reason: str, message: str, worst: SliceResult | None = None) -> Decision:
        return Decision(promote, reason, message, tuple(checks), ev, worst)

    if not check("defined", not math.isnan(ev.challenger) and (ev.champion is None or not math.isnan(ev.champion)),
                 f"challenger {m}={_fmt(ev.challenger)}, champion {m}={_fmt(ev.champion)}"):
        return result(False, REASON_UNDEFINED, f"{m} is undefined on the holdout ({ev.rows} rows); nothing to decide on")

    floor_word = ">=" if rule.higher_is_better else "<="
    if not check("floor", clears_floor(ev.challenger, rule.floor, rule.higher_is_better),
                 f"challenger {m}={_fmt(ev.challenger)}, required {floor_word} {rule.floor}"):
        return result(False, REASON_FLOOR,
                      f"challenger {m} {_fmt(ev.challenger)} does not clear the floor {floor_word} {rule.floor}")

    if ev.champion is None:
        return result(True, PROMOTE_FIRST,
                      f"no champion yet; challenger {m} {_fmt(ev.challenger)} clears the floor {rule.floor}")

    if not check("distinct", ev.challenger_version is None or ev.challenger_version != ev.champion_version,
                 f"challenger v{ev.challenger_version}, champion v{ev.champion_version}"):
        return result(False, REASON_SAME, f"challenger v{ev.challenger_version} already is the champion")

    delta = ev.delta if ev.delta is not None else orient(ev.challenger, ev.champion, rule.higher_is_better)
    if not check("not_tied", abs(delta) > TIE_TOLERANCE, f"delta {_fmt(delta)}"):
        return result(False, REASON_TIE, f"tie: challenger and champion both have {m} {_fmt(ev.challenger)}; "
                                         "the champion stays")
    if not check("better", delta > 0, f"delta {_fmt(delta)} (positive = challenger better)"):
        return result(False, REASON_WORSE, f"challenger {m} {_fmt(ev.challenger)} is worse than the champion's "
                                           f"{_fmt(ev.champion)}")
    if not check("margin", delta >= rule.margin, f"delta {_fmt(delta)}, margin {rule.margin}"):
        return result(False, REASON_MARGIN, f"challenger is better by {_fmt(delta)}, less than the margin "
                                            f"{rule.margin}")
    ci_ok = ev.ci_low is not None and not math.isnan(ev.ci_low) and ev.ci_low > 0
    if not check("confidence", ci_ok,
                 f"{ev.confidence:.0%} CI of delta [{_fmt(ev.ci_low)}, {_fmt(ev.ci_high)}] "
                 f"over {ev.bootstrap_rounds} paired bootstrap rounds"):
        return result(False, REASON_CI, f"the {ev.confidence:.0%} CI of the {m} delta "
                                        f"[{_fmt(ev.ci_low)}, {_fmt(ev.ci_high)}] includes zero")

    worst = min(ev.slices, key=lambda s: s.delta) if ev.slices else None
    regressed = [s for s in ev.slices if s.delta < -rule.slice_tolerance]
    if not check("slices", not regressed,
                 f"{len(ev.slices)} slices compared ({ev.slices_skipped} too small), tolerance {rule.slice_tolerance}, "
                 f"worst {worst.column}={worst.value} delta {_fmt(worst.delta)}" if worst else
                 f"no slice with >= {rule.min_slice_rows} rows"):
        w = min(regressed, key=lambda s: s.delta)
        return result(False, REASON_SLICE,
                      f"{len(regressed)} slice(s) regress beyond {rule.slice_tolerance}: worst {w.column}={w.value} "
                      f"({w.rows} rows) {m} {_fmt(w.champion)} -> {_fmt(w.challenger)}", w)

    return result(True, PROMOTE_BETTER,
                  f"challenger {m} {_fmt(ev.challenger)} beats champion {_fmt(ev.champion)} by {_fmt(delta)} "
                  f"(CI [{_fmt(ev.ci_low)}, {_fmt(ev.ci_high)}]); no slice regresses beyond {rule.slice_tolerance}",
                  worst)
