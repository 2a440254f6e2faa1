"""The registry moves around the policy: no racing the champion alias, the record, rollback."""

from __future__ import annotations

import copy
import json

import pytest
from ml_data import isolated_home, write_lake

from glideslope.config import load_usecase
from glideslope.lake import Lake

pytestmark = pytest.mark.unit

DS = "2013-01-08"


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    """v1 promoted as the first champion; v2 trained and evaluated against it."""
    from glideslope.features.repo import apply_definitions
    from glideslope.registry.promotion import evaluate_challenger, promote
    from glideslope.training import train_candidates

    with isolated_home(tmp_path_factory.mktemp("promotion_home")) as home:
        uc = load_usecase("flight_delay")
        write_lake(Lake.for_usecase(uc.name), "2013-01-01", 8, flights_per_day=150)
        apply_definitions(uc)
        first = train_candidates(uc, DS, candidates=["logistic_regression"], window_days=8, holdout_days=2)
        promote(uc, evaluate_challenger(uc, DS, first["challenger_version"]))
        second = train_candidates(uc, DS, candidates=["logistic_regression"], window_days=8, holdout_days=2,
                                  candidate_params={"logistic_regression": {"C": 0.01}})
        yield {"home": home, "uc": uc, "evaluation": evaluate_challenger(uc, DS, second["challenger_version"])}


def _client():
    from glideslope.training import tracking

    return tracking.client()


@pytest.fixture(autouse=True)
def champion_is_v1(two_versions):
    """Each test starts from the fixture's registry: v1 the one champion, v2 evaluated against it."""
    from glideslope.registry.promotion import GENERATION_TAG, HISTORY_TAG

    client = _client()
    client.set_registered_model_alias("flight_delay", "champion", "1")
    client.set_registered_model_tag("flight_delay", HISTORY_TAG, json.dumps(["1"]))
    client.set_registered_model_tag("flight_delay", GENERATION_TAG, str(two_versions["evaluation"]["champion_generation"]))


def _champion() -> str:
    return str(_client().get_registered_model("flight_delay").aliases["champion"])


def _as_passing(evaluation: dict) -> dict:
    """The same evaluation with a passing decision (the policy itself is tested in test_policy.py)."""
    ev = copy.deepcopy(evaluation)
    ev["decision"]["promote"], ev["outcome"], ev["reason"] = True, "promote", "better"
    return ev


def test_the_evaluation_is_against_the_champion_of_the_moment(two_versions) -> None:
    ev = two_versions["evaluation"]
    assert (ev["challenger_version"], ev["champion_version"]) == ("2", "1")
    assert ev["holdout"] == "2013-01-07..2013-01-08" and ev["holdout_rows"] == 300
    assert ev["decision"]["evidence"]["champion"] is not None
    assert _champion() == "1", "evaluating moves nothing"


def test_a_rejected_challenger_cannot_be_promoted(two_versions) -> None:
    from glideslope.registry.promotion import promote

    ev = copy.deepcopy(two_versions["evaluation"])
    ev["decision"]["promote"] = False
    with pytest.raises(ValueError, match="refusing to promote it"):
        promote(two_versions["uc"], ev)
    assert _champion() == "1"


def test_champion_moved_during_evaluation_is_not_overwritten(two_versions) -> None:
    from glideslope.registry.promotion import PromotionConflict, promote

    client = _client()
    client.set_registered_model_alias("flight_delay", "champion", "2")  # someone else, meanwhile
    with pytest.raises(PromotionConflict, match="moved from v1 to v2 while v2 was being evaluated"):
        promote(two_versions["uc"], _as_passing(two_versions["evaluation"]))
    assert _champion() == "2"
    assert client.get_model_version("flight_delay", "2").tags["glideslope.decision"] == "conflict"


def test_promotion_records_and_rollback_walks_the_history(two_versions) -> None:
    from glideslope.cli import main
    from glideslope.registry.promotion import HISTORY_TAG, promote

    uc, client = two_versions["uc"], _client()
    done = promote(uc, _as_passing(two_versions["evaluation"]))
    assert done["final_outcome"] == "promoted" and _champion() == "2"
    assert json.loads(client.get_registered_model("flight_delay").tags[HISTORY_TAG]) == ["1", "2"]
    tags = client.get_model_version("flight_delay", "2").tags
    assert tags["glideslope.decision"] == "promoted" and tags["glideslope.decision_champion"] == "1"
    assert client.get_model_version("flight_delay", "1").tags["glideslope.challenge.v2"].startswith("promoted")

    assert main(["rollback", "--usecase", "flight_delay", "--reason", "bad night"]) == 0
    assert _champion() == "1"
    assert json.loads(client.get_registered_model("flight_delay").tags[HISTORY_TAG]) == ["1"]
    assert json.loads(client.get_model_version("flight_delay", "2").tags["glideslope.rolled_back"])["to"] == "1"

    assert main(["rollback", "--usecase", "flight_delay", "--reason", "again"]) == 1, "no earlier champion"
    assert _champion() == "1"

    assert main(["rollback", "--usecase", "flight_delay", "--reason", "forward", "--to-version", "2"]) == 0
    assert _champion() == "2"
    assert json.loads(client.get_registered_model("flight_delay").tags[HISTORY_TAG]) == ["1", "2"]
