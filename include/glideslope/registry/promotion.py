"""Champion-challenger I/O around the pure policy: evaluate, promote or reject, roll back.

* :func:`evaluate_challenger` scores the ``challenger`` and the ``champion`` versions on the same
  holdout rows (the holdout days of the challenger's own training set, never trained on) and
  applies :func:`glideslope.registry.policy.decide`. It moves nothing.
* :func:`promote` moves ``champion`` to the challenger -- only if the decision says so and only if
  ``champion`` still points where it pointed when the evaluation began (re-read right before the
  move; otherwise :class:`PromotionConflict` and nothing is overwritten).
* :func:`reject` records a rejection. :func:`rollback` moves ``champion`` back to the previous one.

MLflow has no conditional alias update, so every move of ``champion`` (promote, rollback) runs
under the registered model's ``champion-<name>`` lock (:mod:`glideslope.locks`) and is a
compare-and-set inside it: the champion *and its generation* -- the registered-model tag
``glideslope.champion_generation``, counting the moves -- are re-read under the lock and must be
what the caller saw (the evaluation's, or the one the rollback started from). So of two moves
that race, one wins and the other fails with :class:`PromotionConflict` naming what moved; a
champion that moved away and back is noticed too; the history tag is only written under the
lock (ADR 0011).

Every outcome is recorded where a person looks: tags on both model versions, a JSON artifact on
the challenger's run, and the log. The chain of champions is a JSON list in the registered
model's tag ``glideslope.champion_history`` (oldest first), which rollback walks back.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from glideslope.config import Settings, UseCase, settings
from glideslope.lake import Lake
from glideslope.locks import exclusive
from glideslope.metrics import higher_is_better
from glideslope.registry.policy import decide, gather_evidence
from glideslope.scoring.models import CHAMPION, alias_version, load_version, scores
from glideslope.training import tracking

log = logging.getLogger(__name__)

CHALLENGER = "challenger"
HISTORY_TAG = "glideslope.champion_history"
GENERATION_TAG = "glideslope.champion_generation"
HISTORY_KEEP = 50


class PromotionConflict(RuntimeError):
    """``champion`` moved while the evaluation ran; the decision was made against a stale champion."""


class NothingToEvaluate(LookupError):
    """There is no ``challenger`` to evaluate."""


class NoPreviousChampion(LookupError):
    """Rollback asked for, but there is no earlier champion to return to."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _fmt(x: Any) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def champion_history(client: Any, name: str) -> list[str]:
    """The versions that were champion, oldest first; [] before the model is registered."""
    from mlflow.exceptions import MlflowException

    try:
        raw = client.get_registered_model(name).tags.get(HISTORY_TAG)
    except MlflowException as e:
        if e.error_code == "RESOURCE_DOES_NOT_EXIST":
            return []
        raise
    return [str(v) for v in json.loads(raw)] if raw else []


def _set_history(client: Any, name: str, history: list[str]) -> None:
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history[-HISTORY_KEEP:]))


def champion_now(client: Any, name: str) -> tuple[str | None, int]:
    """``(champion version or None, generation)`` read in one call; (None, 0) before the model exists."""
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(name)
    except MlflowException:
        return None, 0
    version = model.aliases.get(CHAMPION)
    return (None if version is None else str(version)), int(model.tags.get(GENERATION_TAG) or 0)


def _champion_lock(uc: UseCase, cfg: Settings) -> Any:
    return exclusive(Lake.for_usecase(uc.name, cfg), f"champion-{uc.registered_model}")


def _move_champion(client: Any, name: str, version: str, generation: int, history: list[str]) -> int:
    """Move the alias, recording the move; the caller holds the champion lock. Returns the new generation."""
    # The generation first: a crash after it makes stale evaluations fail, never pass.
    client.set_registered_model_tag(name, GENERATION_TAG, str(generation + 1))
    client.set_registered_model_alias(name, CHAMPION, version)
    _set_history(client, name, history)
    return generation + 1


def evaluate_challenger(uc: UseCase, ds: str, challenger_version: str | None = None,
                        cfg: Settings | None = None) -> dict[str, Any]:
    """Score challenger and champion on the challenger's holdout and decide. Moves no alias."""
    from glideslope.features.retrieval import model_frame
    from glideslope.training.dataset import load_training_set, split

    cfg = tracking.configure(cfg or settings())
    rule = uc.promotion
    if rule.higher_is_better != higher_is_better(rule.metric):
        raise ValueError(f"{uc.folder / 'usecase.yaml'}: promotion.higher_is_better={rule.higher_is_better} "
                         f"contradicts metric {rule.metric!r}")
    client = tracking.client(cfg)
    name = uc.registered_model
    champion_at_start, generation_at_start = champion_now(client, name)
    chall_v = challenger_version or alias_version(uc, CHALLENGER, cfg)
    if chall_v is None:
        raise NothingToEvaluate(f"registered model {name!r} has no '{CHALLENGER}' alias: train first")
    chall_mv = client.get_model_version(name, chall_v)
    run = client.get_run(chall_mv.run_id)
    uri = run.data.tags.get("glideslope.training_set")
    if not uri:
        raise ValueError(f"{name} v{chall_v} (run {chall_mv.run_id}) has no glideslope.training_set tag; "
                         "it was not trained by glideslope train")
    df, meta = load_training_set(uri, cfg)
    _, hold = split(df, meta)

    challenger = load_version(uc, chall_v, cfg)
    p_chall = scores(challenger, model_frame(hold, challenger.inputs, uc.features.categorical), uc.label.task)
    p_champ = None
    if champion_at_start is not None and champion_at_start != chall_v:
        champion = load_version(uc, champion_at_start, cfg)
        absent = [c for c in champion.inputs if c not in hold.columns]
        if absent:
            raise ValueError(f"champion {name} v{champion_at_start} needs inputs {absent} that the holdout of "
                             f"{uri} does not have (feature service changed?); compare them by hand")
        p_champ = scores(champion, model_frame(hold, champion.inputs, uc.features.categorical), uc.label.task)
    elif champion_at_start == chall_v:
        p_champ = p_chall

    evidence = gather_evidence(
        hold[meta.label].to_numpy(), p_chall, p_champ,
        {c: hold[c].to_numpy() for c in rule.slices if c in hold.columns},
        rule, seed=uc.training.seed, challenger_version=chall_v, champion_version=champion_at_start,
    )
    decision = decide(evidence, rule)
    exp = run.info.experiment_id
    result = {
        "usecase": uc.name, "ds": ds, "registered_model": name,
        "challenger_version": chall_v, "champion_version": champion_at_start,
        "champion_generation": generation_at_start,
        "challenger_run_id": chall_mv.run_id, "holdout": f"{meta.holdout[0]}..{meta.holdout[-1]}",
        "holdout_rows": len(hold), "training_set": uri, "evaluated_at": _now(),
        "decision": decision.to_dict(), "outcome": decision.outcome,
        "reason": decision.reason, "message": decision.message,
        "run_url": tracking.run_url(cfg, exp, chall_mv.run_id),
        "model_version_url": tracking.model_version_url(cfg, name, chall_v),
    }
    log.info("%s v%s vs champion v%s on %d holdout rows (%s): %s -- %s", name, chall_v, champion_at_start,
             len(hold), result["holdout"], decision.outcome.upper(), decision.message)
    for c in decision.checks:
        log.info("  check %-10s %s  %s", c.name, "pass" if c.passed else "FAIL", c.detail)
    return result


def _record(client: Any, evaluation: dict[str, Any], outcome: str, extra: dict[str, Any] | None = None) -> dict:
    """Tags on both versions + JSON artifact on the challenger's run; returns the record."""
    name = evaluation["registered_model"]
    chall, champ = evaluation["challenger_version"], evaluation["champion_version"]
    ev = evaluation["decision"]["evidence"]
    record = {**evaluation, "final_outcome": outcome, "recorded_at": _now(), **(extra or {})}
    numbers = (f"{ev['metric']} challenger={_fmt(ev['challenger'])} champion={_fmt(ev['champion'])} "
               f"delta={_fmt(ev['delta'])} ci=[{_fmt(ev['ci_low'])}, {_fmt(ev['ci_high'])}]")
    summary = f"{outcome}: {evaluation['reason']} -- {evaluation['message']}"
    tags = {
        "glideslope.decision": outcome,
        "glideslope.decision_reason": evaluation["reason"],
        "glideslope.decision_message": evaluation["message"][:4000],
        "glideslope.decision_numbers": numbers,
        "glideslope.decision_ds": evaluation["ds"],
        "glideslope.decision_at": record["recorded_at"],
        "glideslope.decision_champion": str(champ),
    }
    if record.get("review"):
        tags["glideslope.review"] = record["review"]["summary"][:4000]
    for k, v in tags.items():
        client.set_model_version_tag(name, chall, k, v)
    if champ is not None and champ != chall:
        client.set_model_version_tag(name, champ, f"glideslope.challenge.v{chall}", f"{summary[:3500]} | {numbers}")
    client.log_dict(evaluation["challenger_run_id"], record, f"promotion/decision-v{chall}.json")
    client.set_tag(evaluation["challenger_run_id"], "glideslope.decision", outcome)
    log.info("recorded on %s v%s%s: %s | %s", name, chall, f" and v{champ}" if champ and champ != chall else "",
             summary, numbers)
    return record


def promote(uc: UseCase, evaluation: dict[str, Any], cfg: Settings | None = None,
            review: dict[str, Any] | None = None) -> dict[str, Any]:
    """Move ``champion`` to the evaluated challenger, if the decision allows and nobody moved it meanwhile.

    ``review`` (:meth:`glideslope.registry.review.Review.to_dict`) is the approval a person gave,
    or the timeout's default; it is recorded with the decision.
    """
    cfg = tracking.configure(cfg or settings())
    if not evaluation["decision"]["promote"]:
        raise ValueError(f"{evaluation['registered_model']} v{evaluation['challenger_version']} was rejected "
                         f"({evaluation['reason']}); refusing to promote it")
    client = tracking.client(cfg)
    name, chall, expected = evaluation["registered_model"], evaluation["challenger_version"], \
        evaluation["champion_version"]
    # An evaluation made before generations were recorded is compared on the version alone.
    expected_gen = evaluation.get("champion_generation")
    with _champion_lock(uc, cfg):
        current, generation = champion_now(client, name)  # re-read under the lock, right before the move
        if current != expected or (expected_gen is not None and generation != int(expected_gen)):
            _record(client, evaluation, "conflict", {"champion_now": current, "generation_now": generation})
            if expected is None:
                how = f"was set to v{current}"
            elif current != expected:
                how = f"moved from v{expected} to v{current}" if current else f"was removed from v{expected}"
            else:
                how = f"moved away from v{expected} and back (generation {expected_gen} -> {generation})"
            raise PromotionConflict(
                f"{name}: '{CHAMPION}' {how} while v{chall} was being evaluated; "
                f"v{chall} was not promoted. Re-run the evaluation against the current champion."
            )
        history = champion_history(client, name)
        if expected is not None and (not history or history[-1] != expected):
            history.append(expected)  # champion set outside glideslope: keep the chain walkable
        new_generation = _move_champion(client, name, chall, generation, [*history, chall])
        record = _record(client, evaluation, "promoted", {"previous_champion": expected,
                                                           "champion_generation_now": new_generation,
                                                           **_review(review)})
    return _result(record)


def reject(uc: UseCase, evaluation: dict[str, Any], cfg: Settings | None = None,
           review: dict[str, Any] | None = None) -> dict[str, Any]:
    """Record that the challenger stays a challenger; ``champion`` is not touched."""
    cfg = tracking.configure(cfg or settings())
    record = _record(tracking.client(cfg), evaluation, "rejected", _review(review))
    return _result(record)


def _review(review: dict[str, Any] | None) -> dict[str, Any]:
    return {"review": review} if review else {}


def _result(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("usecase", "ds", "registered_model", "challenger_version", "champion_version", "reason", "message",
            "final_outcome", "run_url", "model_version_url", "review")
    return {k: record[k] for k in keys if k in record}


def rollback(uc: UseCase, reason: str, to_version: str | None = None, ds: str | None = None,
             cfg: Settings | None = None, from_version: str | None = None) -> dict[str, Any]:
    """Move ``champion`` back to the previous champion (or to ``to_version``), recorded like a decision.

    The rollback is from the champion of the moment it is asked for (or ``from_version``, what the
    person saw): if another move lands first -- another rollback, a promotion -- this one fails
    with :class:`PromotionConflict` rather than roll back something nobody looked at.
    """
    cfg = tracking.configure(cfg or settings())
    client = tracking.client(cfg)
    name = uc.registered_model
    seen, seen_gen = champion_now(client, name)
    if from_version is not None and str(from_version) != seen:
        raise PromotionConflict(f"{name}: the champion is v{seen}, not v{from_version}; not rolled back")
    if seen is None:
        raise NoPreviousChampion(f"{name} has no '{CHAMPION}': nothing to roll back")
    with _champion_lock(uc, cfg):
        current, generation = champion_now(client, name)
        if (current, generation) != (seen, seen_gen):
            how = (f"moved from v{seen} to v{current}" if current != seen else
                   f"moved away from v{seen} and back (generation {seen_gen} -> {generation})")
            raise PromotionConflict(f"{name}: '{CHAMPION}' {how} while this rollback waited for the champion "
                                    f"lock; not rolled back. Check the champion and run it again if it "
                                    "still has to go.")
        assert current is not None
        history = champion_history(client, name)
        if not history or history[-1] != current:
            history.append(current)
        if to_version is not None:
            target = str(to_version)
            client.get_model_version(name, target)  # raises with MLflow's message if it does not exist
            if target == current:
                raise ValueError(f"{name} v{target} already is the champion")
        else:
            earlier = [v for v in history[:-1] if v != current]
            if not earlier:
                raise NoPreviousChampion(f"{name}: v{current} is the first champion; there is no previous one "
                                         f"(history {history})")
            target = earlier[-1]
        # Walking back drops the demoted version from the chain, so a second rollback goes further back.
        new_history = history[:-1] if history[-2:-1] == [target] else [*history, target]
        new_generation = _move_champion(client, name, target, generation, new_history)
        at = _now()
        record = {"usecase": uc.name, "ds": ds, "registered_model": name, "from_version": current,
                  "to_version": target, "reason": reason, "rolled_back_at": at, "history": new_history,
                  "champion_generation": new_generation,
                  "model_version_url": tracking.model_version_url(cfg, name, target)}
        client.set_model_version_tag(name, current, "glideslope.decision", "rolled_back")
        client.set_model_version_tag(name, current, "glideslope.rolled_back",
                                     json.dumps({"to": target, "reason": reason, "at": at, "ds": ds}))
        client.set_model_version_tag(name, target, "glideslope.restored",
                                     json.dumps({"from": current, "reason": reason, "at": at, "ds": ds}))
    target_run = client.get_model_version(name, target).run_id
    if target_run:
        client.log_dict(target_run, record, f"promotion/rollback-from-v{current}-{at.replace(':', '')}.json")
        exp = client.get_run(target_run).info.experiment_id
        record["run_url"] = tracking.run_url(cfg, exp, target_run)
    log.warning("%s: champion rolled back v%s -> v%s (%s)", name, current, target, reason)
    return record
