"""Nightly scoring: chunked equals one-shot, features known at D only, atomic publish, online reads."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from ml_data import isolated_home, write_lake

from glideslope.config import load_usecase
from glideslope.lake import Lake

pytestmark = pytest.mark.unit

DS = "2013-01-10"  # the lake also holds D+1 and D+2: scoring must not use them


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    from glideslope.features.repo import apply_definitions
    from glideslope.registry.promotion import evaluate_challenger, promote
    from glideslope.training import train_candidates

    with isolated_home(tmp_path_factory.mktemp("scoring_home")) as home:
        uc = load_usecase("flight_delay")
        write_lake(Lake.for_usecase(uc.name), "2013-01-01", 12)
        apply_definitions(uc)
        trained = train_candidates(uc, "2013-01-09", candidates=["logistic_regression"], window_days=8,
                                   holdout_days=2)
        promote(uc, evaluate_challenger(uc, "2013-01-09", trained["challenger_version"]))
        yield home


@pytest.fixture(scope="module")
def scored(champion):
    from glideslope.scoring import score_day

    return score_day(load_usecase("flight_delay"), DS, chunk_rows=64)


def _read(ds: str) -> pd.DataFrame:
    lake = Lake.for_usecase("flight_delay")
    return lake.read_parquet(lake.predictions(ds))


def test_no_champion_skips_with_a_clear_message_and_writes_nothing(tmp_path) -> None:
    from glideslope.scoring import NoChampion, score_day

    with isolated_home(tmp_path):
        uc = load_usecase("flight_delay")
        lake = Lake.for_usecase(uc.name)
        write_lake(lake, "2013-01-01", 2, flights_per_day=40)
        with pytest.raises(NoChampion, match="no 'champion' alias yet: run flight_delay__train"):
            score_day(uc, "2013-01-01")
        assert not lake.exists(lake.predictions())


def test_every_scheduled_flight_gets_one_valid_row(scored) -> None:
    uc = load_usecase("flight_delay")
    lake = Lake.for_usecase(uc.name)
    schedule = lake.read_parquet(lake.curated("schedule", DS))
    out = _read(DS)
    assert scored["chunks"] > 1 and scored["rows"] == len(out) == len(schedule)
    assert list(out["flight_id"]) == list(schedule["flight_id"])
    assert (out["event_timestamp"] == schedule["event_timestamp"]).all()
    assert out["prediction"].between(0, 1).all()
    assert set(out["model_version"]) == {scored["model_version"]} and set(out["model_name"]) == {"flight_delay"}
    assert set(out["ds"]) == {DS}
    assert {"dep_hour", "carrier", "carrier_late_rate_7d", "wx_precip_sum"} <= set(out.columns)
    assert not [p for p in lake.fs.ls(lake.predictions()) if ".staging" in p], "no staging file left behind"


def test_chunked_scoring_equals_one_shot(scored) -> None:
    from glideslope.scoring import score_day

    chunked = _read(DS)
    one = score_day(load_usecase("flight_delay"), DS, chunk_rows=100_000)
    assert one["chunks"] == 1
    pd.testing.assert_frame_equal(_read(DS), chunked)


def test_only_features_known_at_d_are_used(scored) -> None:
    """Tomorrow's flights see day D's statistics even though D+1's features are already in the lake."""
    lake = Lake.for_usecase("flight_delay")
    out = _read(DS)
    assert lake.exists(lake.features("carrier_stats", "2013-01-11"))
    day_d = lake.read_parquet(lake.features("carrier_stats", DS)).set_index("carrier")["carrier_late_rate_7d"]
    expected = out["carrier"].map(day_d)
    assert (out["carrier_late_rate_7d"] - expected).abs().max() < 1e-12


def test_predictions_are_served_online_by_key(scored) -> None:
    from glideslope.scoring import online_predictions, push_predictions

    uc = load_usecase("flight_delay")
    pushed = push_predictions(uc, DS)
    out = _read(DS)
    assert pushed["rows"] == len(out)
    keys = list(out["flight_id"].iloc[[0, 5, -1]])
    online = online_predictions(uc, [*keys, "19990101-XX-0-AAA-BBB-0000"])
    for k in keys:
        row = out.set_index("flight_id").loc[k]
        assert online[k]["prediction"] == pytest.approx(row["prediction"])
        assert online[k]["model_version"] == row["model_version"]
    assert online["19990101-XX-0-AAA-BBB-0000"]["prediction"] is None


def test_an_invalid_batch_is_not_published(scored, monkeypatch) -> None:
    from glideslope.quality.validate import DataQualityError
    from glideslope.scoring import score, score_day

    before = Lake.for_usecase("flight_delay").local_path(Lake.for_usecase("flight_delay").predictions(DS))
    content = before.read_bytes()
    monkeypatch.setattr(score, "scores", lambda model, X, task: [1.5] * len(X))
    with pytest.raises(DataQualityError, match=r"column 'prediction' rule be_between\(min_value=0.0, max_value=1.0\): 64 bad rows"):
        score_day(load_usecase("flight_delay"), DS, chunk_rows=64)
    assert before.read_bytes() == content, "the previous predictions stay in place"


def _quarantined_batches(lake: Lake, ds: str) -> list[Path]:
    """Every prediction batch quarantined for ``ds`` (walked on disk, whatever the slot layout)."""
    return sorted(Path(lake.base, "quarantine", "predictions", f"ds={ds}").rglob("*.parquet"))


def test_a_batch_that_fails_its_gate_is_kept_in_quarantine_with_the_reason(scored, monkeypatch) -> None:
    from glideslope.quality.validate import DataQualityError
    from glideslope.scoring import score, score_day

    lake = Lake.for_usecase("flight_delay")
    published = lake.local_path(lake.predictions(DS))
    content = published.read_bytes()
    before = _quarantined_batches(lake, DS)
    # A broken model: the second chunk's probabilities leave [0, 1].
    calls = {"n": 0}
    real = score.scores

    def drifting(model, X, task):
        calls["n"] += 1
        out = real(model, X, task)
        return out if calls["n"] == 1 else [1.5] * len(X)

    monkeypatch.setattr(score, "scores", drifting)
    with pytest.raises(DataQualityError, match=r"moved to quarantine \(nothing deleted\): .*quarantine/predictions") as exc:
        score_day(load_usecase("flight_delay"), DS, chunk_rows=64)
    assert published.read_bytes() == content, "the last good predictions stay byte-identical"
    (batch,) = [p for p in _quarantined_batches(lake, DS) if p not in before]
    assert exc.value.quarantined == [str(batch)]
    kept = pd.read_parquet(batch)
    assert len(kept) == 128, "the good first chunk and the failing second chunk are both kept"
    assert (kept["prediction"].iloc[64:] == 1.5).all() and kept["prediction"].iloc[:64].between(0, 1).all()
    reason = lake.read_json(str(batch.parent / "_reason.json"))
    assert reason["ds"] == DS and reason["rows_in_file"] == 128
    assert reason["model_version"] == scored["model_version"]
    assert reason["would_have_replaced"] == lake.predictions(DS)
    assert any(f["column"] == "prediction" and f["bad_rows"] == 64 for f in reason["failures"])
    assert not [p for p in lake.fs.ls(lake.predictions()) if ".staging" in p]
    assert not [p for p in Path(lake.predictions(DS)).parent.iterdir() if p.name != "data.parquet"]


def test_keys_repeating_across_chunks_quarantine_the_batch(scored) -> None:
    """A source partition with a repeated flight (in two chunks) fails the batch gate; nothing is lost."""
    from glideslope.scoring import PredictionGateError, score_day

    uc = load_usecase("flight_delay")
    lake = Lake.for_usecase(uc.name)
    ds = "2013-01-11"
    score_day(uc, ds, chunk_rows=64)
    published = lake.local_path(lake.predictions(ds))
    content = published.read_bytes()
    source = lake.local_path(lake.curated(uc.scoring.table, ds))
    original = source.read_bytes()
    schedule = pd.read_parquet(source)
    try:
        lake.publish_parquet(pd.concat([schedule, schedule.head(3)], ignore_index=True), str(source))
        with pytest.raises(PredictionGateError, match=r"entity keys repeat across chunks(.|\n)*moved to quarantine"):
            score_day(uc, ds, chunk_rows=64)
    finally:
        source.write_bytes(original)
    assert published.read_bytes() == content, "the last good predictions stay byte-identical"
    (batch,) = _quarantined_batches(lake, ds)
    kept = pd.read_parquet(batch)
    assert len(kept) == len(schedule) + 3, "every scored row is kept, the repeated ones included"
    reason = lake.read_json(str(batch.parent / "_reason.json"))
    assert reason["error_type"] == "PredictionGateError" and "repeat across chunks" in reason["error"]
