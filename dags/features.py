"""Feast features to the online store for every use case: ``<usecase>__features``.

Wiring only: the stage is built by ``glideslope.airflow.features.build_features_dag`` from each use
case's ``include/usecases/<name>/usecase.yaml``; the DAG's own documentation is shown in the UI.
"""

from glideslope.airflow.features import build_features_dag
from glideslope.config import list_usecases, load_usecase

for _name in list_usecases():
    globals()[f"{_name}__features"] = build_features_dag(load_usecase(_name))
