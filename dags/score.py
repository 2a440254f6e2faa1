"""Nightly precomputed scoring for every use case: ``<usecase>__score``.

Wiring only: the stage is built by ``glideslope.airflow.score.build_score_dag`` from each use case's
``include/usecases/<name>/usecase.yaml``; the DAG's own documentation is shown in the UI.
"""

from glideslope.airflow.score import build_score_dag
from glideslope.config import list_usecases, load_usecase

for _name in list_usecases():
    globals()[f"{_name}__score"] = build_score_dag(load_usecase(_name))
