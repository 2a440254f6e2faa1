"""Nightly precomputed scoring with the champion: lake partition + online store."""

from glideslope.scoring.models import NoChampion
from glideslope.scoring.score import online_predictions, push_predictions, score_day

__all__ = ["NoChampion", "online_predictions", "push_predictions", "score_day"]
