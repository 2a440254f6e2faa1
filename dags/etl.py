"""Nightly ETL for every use case: ``<usecase>__etl``.

Wiring only: the stage is built by ``glideslope.airflow.etl.build_etl_dag`` from each use case's
``include/usecases/<name>/usecase.yaml``; the DAG's own documentation is shown in the UI.
"""

from glideslope.airflow.etl import build_etl_dag
from glideslope.config import list_usecases, load_usecase

for _name in list_usecases():
    globals()[f"{_name}__etl"] = build_etl_dag(load_usecase(_name))
