"""Quiet nights and runs about their own night (#21), with a real champion on a small lake.

A quiet night is one whose delivery was empty: the ETL publishes 0-row partitions. Scoring skips
it with a reason and publishes nothing; materialization loads nothing; training's holdout counts
only nights with labelled rows. A scoring run scores the night its request names (and catches up
earlier unscored nights, saying so); the retry of a failed night never scores the next one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ml_data import isolated_home, write_lake

from glideslope.config import load_usecase
from glideslope.lake import Lake
from glideslope.runrequest import EventRef, build

pytestmark = pytest.mark.unit

D, D1 = "2013-01-10", "2013-01-11"   # the failing night and the next one
QUIET = "2013-01-12"                   # an empty delivery: every partition has 0 rows
NO_EVENTS = "2013-01-13"               # nothing happened (features empty), but tomorrow has entities


def _event(ds: str) -> EventRef:
    return EventRef("flight_delay.online_features", {"ds": ds}, "flight_delay__features/r", f"{ds}T03:00:00+00:00")


def _run(ds: str):  # noqa: ANN202 - a RunRequest
    return build("flight_delay", run_type="asset_triggered", run_id=f"asset_triggered__{ds}", events=[_event(ds)])


def _publish_empty(lake: Lake, uc, ds: str, like: str, *, keep: tuple[str, ...] = ()) -> None:
    """0-row partitions of night ``ds`` with the schema of night ``like`` (as the ETL publishes them)."""
    tables = [lake.curated(t, like) for t in ("flights", "schedule")] + [lake.features(t, like)
                                                                         for t in uc.features.tables]
    for path in tables:
        df = lake.read_parquet(path)
        target = path.replace(f"ds={like}", f"ds={ds}")
        keep_rows = any(f"/{name}/" in path for name in keep)
        lake.publish_parquet(df if keep_rows else df.iloc[0:0], target)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    from glideslope.features.repo import apply_definitions
    from glideslope.registry.promotion import evaluate_challenger, promote
    from glideslope.training import train_candidates

    with isolated_home(tmp_path_factory.mktemp("quiet_home")) as home:
        uc = load_usecase("flight_delay")
        write_lake(Lake.for_usecase(uc.name), "2013-01-01", 10)  # D is the newest night; D+1 not delivered yet
        apply_definitions(uc)
        trained = train_candidates(uc, "2013-01-09", candidates=["logistic_regression"], window_days=8,
                                   holdout_days=2)
        promote(uc, evaluate_challenger(uc, "2013-01-09", trained["challenger_version"]))
        yield home


@pytest.fixture(scope="module")
def sequence(home):
    """The sequence of #21: the first champion's night D fails; D+1's features land; D's retry runs; then D+1's run."""
    from glideslope.scoring import score, score_run

    uc = load_usecase("flight_delay")
    lake = Lake.for_usecase(uc.name)
    real = score.score_frame

    def down(*args, **kwargs):
        raise ConnectionError("the offline store is not reachable")

    score.score_frame = down
    try:
        with pytest.raises(ConnectionError):
            score_run(uc, _run(D))           # attempt 1 of the run for D
    finally:
        score.score_frame = real
    after_failure = sorted(p.name for p in Path(lake.predictions()).glob("ds=*"))
    write_lake(lake, "2013-01-01", 11)       # D+1 is delivered (earlier days republished identical)
    retry = score_run(uc, _run(D))           # attempt 2 of the run for D
    next_run = score_run(uc, _run(D1))       # D+1's own run
    return {"after_failure": after_failure, "retry": retry, "next": next_run}


def test_a_failed_night_leaves_no_empty_predictions_folder(sequence) -> None:
    assert sequence["after_failure"] == [], "no predictions/ds=… folder without predictions"


def test_the_retry_of_night_d_scores_d_and_the_next_run_scores_d_plus_1(sequence) -> None:
    from glideslope.scoring import scored_by

    lake = Lake.for_usecase("flight_delay")
    retry, nxt = sequence["retry"], sequence["next"]
    assert [s["ds"] for s in retry.scored] == [D], "the retry of D never scores D+1"
    assert [s["ds"] for s in nxt.scored] == [D1], "D+1 is scored by D+1's own run"
    for ds in (D, D1):
        rec = scored_by(lake, ds)
        assert rec == {"ds": ds, "run_id": f"asset_triggered__{ds}", "trigger": "asset", "role": "own"}, rec
        assert set(lake.read_parquet(lake.predictions(ds))["ds"]) == {ds}
    assert retry.lines[0] == f"for night {D}" and nxt.lines[0] == f"for night {D1}"


def test_a_quiet_night_is_a_skip_with_its_reason_and_publishes_nothing(sequence) -> None:
    from glideslope.scoring import NothingToScore, score_day, score_run

    uc = load_usecase("flight_delay")
    lake = Lake.for_usecase(uc.name)
    _publish_empty(lake, uc, QUIET, like=D1)
    run = score_run(uc, _run(QUIET))
    assert run.scored == [] and [d for d, _ in run.skipped] == [QUIET]
    assert f"{QUIET}: quiet night, its entities partition has 0 rows: nothing to score" in run.lines
    assert not Path(lake.predictions(QUIET)).parent.exists(), "no predictions/ds= folder for a quiet night"
    with pytest.raises(NothingToScore, match=f"{QUIET} is a quiet night: .*has 0 rows"):
        score_day(uc, QUIET)
    assert not Path(lake.predictions(QUIET)).parent.exists()


def test_entities_on_a_night_without_events_are_scored_with_the_last_known_features(sequence) -> None:
    """Nothing happened on the night (0-row features), but tomorrow's entities exist: they are scored."""
    from glideslope.scoring import score_day
    from glideslope.scoring.score import feature_cutoff

    uc = load_usecase("flight_delay")
    lake = Lake.for_usecase(uc.name)
    _publish_empty(lake, uc, QUIET, like=D1)
    _publish_empty(lake, uc, NO_EVENTS, like=D1, keep=("schedule",))
    scored = score_day(uc, NO_EVENTS)
    assert scored["rows"] == len(lake.read_parquet(lake.curated("schedule", NO_EVENTS))) > 0
    # Features as they were known after the last night with events (D+1): nothing newer existed.
    assert feature_cutoff(uc, NO_EVENTS, lake) == feature_cutoff(uc, D1, lake)
    assert scored["as_of"] == feature_cutoff(uc, D1, lake).isoformat()


def test_materializing_a_quiet_night_loads_nothing_and_says_why(sequence) -> None:
    from glideslope.features.materialize import WATERMARK, materialize_days

    uc = load_usecase("flight_delay")
    lake = Lake.for_usecase(uc.name)
    _publish_empty(lake, uc, QUIET, like=D1)
    lake.write_json(lake.state(WATERMARK), {"ds": D1})
    result = materialize_days(uc, [QUIET])
    assert result["loaded"] is False and result["quiet"] == [QUIET]
    assert "quiet night" in result["reason"] and "0 rows" in result["reason"]
    assert lake.read_json(lake.state(WATERMARK))["ds"] == QUIET, "the watermark moves past the quiet night"


def test_the_holdout_counts_nights_with_labelled_rows(sequence) -> None:
    """A quiet night at the end of the window is not a holdout day: the holdout is never empty."""
    from glideslope.training.dataset import build_training_set

    uc = load_usecase("flight_delay")
    _publish_empty(Lake.for_usecase(uc.name), uc, QUIET, like=D1)
    summary = build_training_set(uc, QUIET, window_days=8, holdout_days=2)
    assert summary["holdout"] == [D, D1] and summary["quiet_days"] == [QUIET]
    assert summary["holdout_rows"] > 0 and QUIET not in summary["missing_days"]


def test_a_run_takes_the_events_merged_into_it_and_never_a_later_runs(monkeypatch) -> None:
    """Events posted while the run waited are its own (apache/airflow#56050); later ones, on a retry or a clear, are not."""
    from datetime import datetime, timedelta
    from types import SimpleNamespace

    from glideslope.airflow import request
    from glideslope.airflow.score import merged_events

    due = datetime.fromisoformat("2026-12-07T02:00:00+00:00")
    started = due + timedelta(minutes=5)
    posted = {"2013-06-11": due, "2013-06-12": due + timedelta(minutes=2), "2013-06-13": started + timedelta(hours=1)}
    monkeypatch.setattr(request, "queued_events", lambda context, asset, after: [
        EventRef("flight_delay.online_features", {"ds": ds}, "flight_delay__features/r", ts.isoformat())
        for ds, ts in posted.items() if ts.isoformat() > after])

    def context(clear_number: int = 0) -> dict:
        return {"dag_run": SimpleNamespace(run_type="asset_triggered", run_after=due, start_date=started,
                                           clear_number=clear_number)}

    # The night of 06-12 was posted while the run waited: merged. 06-13 came after it started (a try
    # waiting for its retry sees it in the lake): that night is its own run's.
    assert [e.ds for e in merged_events(context(), None)] == ["2013-06-12"]
    # Cleared by a person, the run restarts now: it keeps to the events it was given.
    assert merged_events(context(clear_number=1), None) == []
