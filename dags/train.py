"""Training and champion-challenger promotion for every use case: ``<usecase>__train``.

Wiring only: the stage is built by ``glideslope.airflow.train.build_train_dag`` from each use case's
``include/usecases/<name>/usecase.yaml``; the DAG's own documentation is shown in the UI.
"""

from glideslope.airflow.train import build_train_dag
from glideslope.config import list_usecases, load_usecase

for _name in list_usecases():
    globals()[f"{_name}__train"] = build_train_dag(load_usecase(_name))
