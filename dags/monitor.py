"""Nightly drift monitor for every use case: ``<usecase>__monitor``.

Wiring only: the stage is built by ``glideslope.airflow.monitor.build_monitor_dag`` from each use
case's ``include/usecases/<name>/usecase.yaml``; the DAG's own documentation is shown in the UI.
"""

from glideslope.airflow.monitor import build_monitor_dag
from glideslope.config import list_usecases, load_usecase

for _name in list_usecases():
    globals()[f"{_name}__monitor"] = build_monitor_dag(load_usecase(_name))
