"""Training: point-in-time training sets from Feast, candidate models, MLflow runs, the challenger.

``glideslope train`` (:mod:`glideslope.training.cli`) is the entry point both for the in-process
training task of the embedded profile and for the GPU pod of the kubernetes backend.
"""

from glideslope.training.dataset import build_training_set, load_training_set
from glideslope.training.trainer import train_candidates, train_for_plan

__all__ = ["build_training_set", "load_training_set", "train_candidates", "train_for_plan"]
