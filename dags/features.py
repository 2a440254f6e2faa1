"""Feast features to the online store for every use case: ``<usecase>__features``.

Wiring only: ``glideslope.airflow.features.build_features_dag`` builds the stage from each use case's
``include/usecases/<name>/usecase.yaml``; the DAG's own documentation is shown in the UI. A use case
whose spec is invalid is skipped here and reported by ``usecase_specs.py`` (docs/adr/0008).
"""

from glideslope.airflow.features import build_features_dag
from glideslope.airflow.wiring import build_for_every_usecase

globals().update(build_for_every_usecase(build_features_dag))
