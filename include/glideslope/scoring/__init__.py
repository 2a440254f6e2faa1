"""Nightly precomputed scoring with the champion: lake partition + online store."""

from glideslope.scoring.models import NoChampion
from glideslope.scoring.score import (
    NothingToScore,
    PredictionGateError,
    ScoringRun,
    online_predictions,
    push_predictions,
    score_day,
    score_run,
    scored_by,
)

__all__ = ["NoChampion", "NothingToScore", "PredictionGateError", "ScoringRun", "online_predictions",
           "push_predictions", "score_day", "score_run", "scored_by"]
