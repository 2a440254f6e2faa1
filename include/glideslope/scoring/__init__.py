"""Nightly precomputed scoring with the champion: lake partition + online store."""

from glideslope.scoring.models import NoChampion
from glideslope.scoring.score import PredictionGateError, online_predictions, push_predictions, score_day

__all__ = ["NoChampion", "PredictionGateError", "online_predictions", "push_predictions", "score_day"]
