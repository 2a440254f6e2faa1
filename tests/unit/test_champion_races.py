"""Two processes move the champion at the same instant: exactly one wins, nothing is lost.

The contenders are real processes against the embedded profile's MLflow registry (SQLite) and
its file lock (see tests/race_support.py for how they are released together). Each scenario
has its own registered model, so the tests do not depend on each other or on their order.
"""

from __future__ import annotations

import json
import uuid

import pytest
from ml_data import isolated_home

from race_support import Arena, cli_job, promote_job, rollback_job

pytestmark = pytest.mark.unit

DS = "2013-01-08"
HISTORY = "glideslope.champion_history"
GENERATION = "glideslope.champion_generation"


@pytest.fixture(scope="module")
def arena(tmp_path_factory):
    with isolated_home(tmp_path_factory.mktemp("champion_races")):
        a = Arena()
        try:
            yield a
        finally:
            a.close()


def _client():
    from glideslope.training import tracking

    return tracking.client()


def _model(versions: int, name: str | None = None) -> tuple[str, dict[str, str]]:
    """A registered model with ``versions`` versions, each from its own run; {version: run_id}."""
    client = _client()
    name = name or f"race_{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    runs = {}
    for _ in range(versions):
        run = client.create_run("0")
        mv = client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
        runs[str(mv.version)] = run.info.run_id
    return name, runs


def _state(name: str) -> tuple[str | None, list[str], int]:
    model = _client().get_registered_model(name)
    champion = model.aliases.get("champion")
    return (None if champion is None else str(champion), json.loads(model.tags.get(HISTORY, "[]")),
            int(model.tags.get(GENERATION) or 0))


def _evaluation(name: str, runs: dict[str, str], challenger: str) -> dict:
    """A passing evaluation of ``challenger`` against the champion of now (the policy has its own tests)."""
    champion, _, generation = _state(name)
    return {
        "usecase": name, "ds": DS, "registered_model": name, "challenger_version": challenger,
        "champion_version": champion, "champion_generation": generation,
        "challenger_run_id": runs[challenger], "holdout": f"{DS}..{DS}", "holdout_rows": 100,
        "training_set": "", "evaluated_at": "", "outcome": "promote", "reason": "better",
        "message": f"v{challenger} is better", "run_url": "", "model_version_url": "",
        "decision": {"promote": True, "evidence": {"metric": "roc_auc", "challenger": 0.7, "champion": 0.6,
                                                   "delta": 0.1, "ci_low": 0.05, "ci_high": 0.15}},
    }


def _chain(name: str, runs: dict[str, str], *versions: str) -> None:
    """Promote ``versions`` one after the other (one process, no race)."""
    from glideslope.config import load_usecase
    from glideslope.registry.promotion import promote

    uc = load_usecase("flight_delay")
    uc = uc if name == uc.name else uc.model_copy(update={"name": name})
    for v in versions:
        promote(uc, _evaluation(name, runs, v))


def _one_winner(outcomes: list[tuple]) -> tuple[int, tuple]:
    ok = [i for i, o in enumerate(outcomes) if o[0] == "ok"]
    assert len(ok) == 1, f"expected exactly one winner, got {outcomes}"
    loser = outcomes[1 - ok[0]]
    assert loser[0] == "error" and loser[1] == "PromotionConflict", loser
    return ok[0], loser


def test_two_first_promotions(arena) -> None:
    name, runs = _model(2)
    outcomes = arena.race((promote_job, (name, _evaluation(name, runs, "1"))),
                          (promote_job, (name, _evaluation(name, runs, "2"))))
    won, loser = _one_winner(outcomes)
    winner, other = str(won + 1), str(2 - won)
    assert _state(name) == (winner, [winner], 1)
    assert f"'champion' was set to v{winner} while v{other} was being evaluated" in loser[2]
    tags = _client().get_model_version(name, other).tags
    assert tags["glideslope.decision"] == "conflict", "the loser's decision is recorded, not lost"


def test_two_promotions_against_the_same_champion(arena) -> None:
    name, runs = _model(3)
    _chain(name, runs, "1")
    outcomes = arena.race((promote_job, (name, _evaluation(name, runs, "2"))),
                          (promote_job, (name, _evaluation(name, runs, "3"))))
    won, _ = _one_winner(outcomes)
    winner = str(won + 2)
    assert _state(name) == (winner, ["1", winner], 2)


def test_a_promotion_and_a_rollback(arena) -> None:
    name, runs = _model(3)
    _chain(name, runs, "1", "2")
    outcomes = arena.race((promote_job, (name, _evaluation(name, runs, "3"))),
                          (rollback_job, (name, "bad night")))
    won, _ = _one_winner(outcomes)
    if won == 0:
        assert _state(name) == ("3", ["1", "2", "3"], 3)
    else:
        assert outcomes[1][1]["from_version"] == "2"
        assert _state(name) == ("1", ["1"], 3)


def test_two_rollbacks_released_together(arena) -> None:
    name, runs = _model(3)
    _chain(name, runs, "1", "2", "3")
    outcomes = arena.race((rollback_job, (name, "first reason")), (rollback_job, (name, "second reason")))
    won, loser = _one_winner(outcomes)
    assert outcomes[won][1]["from_version"] == "3" and outcomes[won][1]["to_version"] == "2"
    assert "moved from v3 to v2" in loser[2] and "not rolled back" in loser[2]
    assert _state(name) == ("2", ["1", "2"], 4), "the champion moved once, and the history says so"
    restored = json.loads(_client().get_model_version(name, "2").tags["glideslope.restored"])
    assert restored["reason"] == ("first reason", "second reason")[won], "the winner's reason is the one recorded"


def test_cli_rollbacks_to_two_different_versions(arena) -> None:
    name, runs = _model(3, name="flight_delay")
    _chain(name, runs, "1", "2", "3")
    base = ["rollback", "--usecase", "flight_delay", "--reason", "cli race", "--to-version"]
    outcomes = arena.race((cli_job, (base + ["1"],)), (cli_job, (base + ["2"],)))
    assert all(o[0] == "ok" for o in outcomes), outcomes
    exits = [o[1]["exit"] for o in outcomes]
    assert sorted(exits) == [0, 1], outcomes
    won = exits.index(0)
    target = ("1", "2")[won]
    assert "glideslope rollback:" in outcomes[1 - won][1]["stderr"]
    assert f"moved from v3 to v{target}" in outcomes[1 - won][1]["stderr"]
    history = ["1", "2", "3", "1"] if target == "1" else ["1", "2"]
    assert _state(name) == (target, history, 4), "exactly the winner's change, nothing silently lost"


def test_a_champion_that_moved_away_and_back_is_noticed() -> None:
    """No second process needed: the evaluation's generation no longer matches the registry's."""
    from glideslope.config import load_usecase
    from glideslope.registry.promotion import PromotionConflict, promote, rollback

    name, runs = _model(3)
    uc = load_usecase("flight_delay").model_copy(update={"name": name})
    _chain(name, runs, "1", "2")
    stale = _evaluation(name, runs, "3")  # evaluated against v2
    rollback(uc, "away", "1")
    rollback(uc, "and back", "2")
    assert _state(name)[0] == "2"
    with pytest.raises(PromotionConflict, match=r"moved away from v2 and back \(generation 2 -> 4\)"):
        promote(uc, stale)
    assert _state(name) == ("2", ["1", "2"], 4)
    assert _client().get_model_version(name, "3").tags["glideslope.decision"] == "conflict"
