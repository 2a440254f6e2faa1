"""Two processes move the champion at the same instant: exactly one wins, nothing is lost.

The contenders are real processes against the embedded profile's MLflow registry (SQLite) and
its file lock (see tests/race_support.py for how they are released together). Each scenario
has its own registered model, so the tests do not depend on each other or on their order.
"""

from __future__ import annotations

import json

import pytest
from ml_data import isolated_home

from race_support import (
    Arena,
    champion_state,
    cli_job,
    new_model,
    passing_evaluation,
    promote_chain,
    promote_job,
    rollback_job,
    tracking_client,
)

pytestmark = pytest.mark.unit



@pytest.fixture(scope="module")
def arena(tmp_path_factory):
    with isolated_home(tmp_path_factory.mktemp("champion_races")):
        a = Arena()
        try:
            yield a
        finally:
            a.close()


def _one_winner(outcomes: list[tuple]) -> tuple[int, tuple]:
    ok = [i for i, o in enumerate(outcomes) if o[0] == "ok"]
    assert len(ok) == 1, f"expected exactly one winner, got {outcomes}"
    loser = outcomes[1 - ok[0]]
    assert loser[0] == "error" and loser[1] == "PromotionConflict", loser
    return ok[0], loser


def test_two_first_promotions(arena) -> None:
    name, runs = new_model(2)
    outcomes = arena.race((promote_job, (name, passing_evaluation(name, runs, "1"))),
                          (promote_job, (name, passing_evaluation(name, runs, "2"))))
    won, loser = _one_winner(outcomes)
    winner, other = str(won + 1), str(2 - won)
    assert champion_state(name) == (winner, [winner], 1)
    assert f"'champion' was set to v{winner} while v{other} was being evaluated" in loser[2]
    tags = tracking_client().get_model_version(name, other).tags
    assert tags["glideslope.decision"] == "conflict", "the loser's decision is recorded, not lost"


def test_two_promotions_against_the_same_champion(arena) -> None:
    name, runs = new_model(3)
    promote_chain(name, runs, "1")
    outcomes = arena.race((promote_job, (name, passing_evaluation(name, runs, "2"))),
                          (promote_job, (name, passing_evaluation(name, runs, "3"))))
    won, _ = _one_winner(outcomes)
    winner = str(won + 2)
    assert champion_state(name) == (winner, ["1", winner], 2)


def test_a_promotion_and_a_rollback(arena) -> None:
    name, runs = new_model(3)
    promote_chain(name, runs, "1", "2")
    outcomes = arena.race((promote_job, (name, passing_evaluation(name, runs, "3"))),
                          (rollback_job, (name, "bad night")))
    won, _ = _one_winner(outcomes)
    if won == 0:
        assert champion_state(name) == ("3", ["1", "2", "3"], 3)
    else:
        assert outcomes[1][1]["from_version"] == "2"
        assert champion_state(name) == ("1", ["1"], 3)


def test_two_rollbacks_released_together(arena) -> None:
    name, runs = new_model(3)
    promote_chain(name, runs, "1", "2", "3")
    outcomes = arena.race((rollback_job, (name, "first reason")), (rollback_job, (name, "second reason")))
    won, loser = _one_winner(outcomes)
    assert outcomes[won][1]["from_version"] == "3" and outcomes[won][1]["to_version"] == "2"
    assert "moved from v3 to v2" in loser[2] and "not rolled back" in loser[2]
    assert champion_state(name) == ("2", ["1", "2"], 4), "the champion moved once, and the history says so"
    restored = json.loads(tracking_client().get_model_version(name, "2").tags["glideslope.restored"])
    assert restored["reason"] == ("first reason", "second reason")[won], "the winner's reason is the one recorded"


def test_cli_rollbacks_to_two_different_versions(arena) -> None:
    name, runs = new_model(3, name="flight_delay")
    promote_chain(name, runs, "1", "2", "3")
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
    assert champion_state(name) == (target, history, 4), "exactly the winner's change, nothing silently lost"


def test_a_champion_that_moved_away_and_back_is_noticed() -> None:
    """No second process needed: the evaluation's generation no longer matches the registry's."""
    from glideslope.config import load_usecase
    from glideslope.registry.promotion import PromotionConflict, promote, rollback

    name, runs = new_model(3)
    uc = load_usecase("flight_delay").model_copy(update={"name": name})
    promote_chain(name, runs, "1", "2")
    stale = passing_evaluation(name, runs, "3")  # evaluated against v2
    rollback(uc, "away", "1")
    rollback(uc, "and back", "2")
    assert champion_state(name)[0] == "2"
    with pytest.raises(PromotionConflict, match=r"moved away from v2 and back \(generation 2 -> 4\)"):
        promote(uc, stale)
    assert champion_state(name) == ("2", ["1", "2"], 4)
    assert tracking_client().get_model_version(name, "3").tags["glideslope.decision"] == "conflict"


def test_rollback_from_a_version_that_is_no_longer_champion_is_refused() -> None:
    from glideslope.config import load_usecase
    from glideslope.registry.promotion import PromotionConflict, rollback

    name, runs = new_model(3)
    uc = load_usecase("flight_delay").model_copy(update={"name": name})
    promote_chain(name, runs, "1", "2", "3")
    with pytest.raises(PromotionConflict, match="the champion is v3, not v2; not rolled back"):
        rollback(uc, "looked at v2", from_version="2")
    assert champion_state(name) == ("3", ["1", "2", "3"], 3)
    assert rollback(uc, "looked at v3", from_version="3")["to_version"] == "2"
