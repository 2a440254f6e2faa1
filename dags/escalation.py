"""A person's answer to a drift escalation, for every use case: ``<usecase>__escalation``.

Wiring only: ``glideslope.airflow.escalation.build_escalation_dag`` builds the stage from each use
case's ``include/usecases/<name>/usecase.yaml``; the DAG's own documentation is shown in the UI. A
use case whose spec is invalid is skipped here and reported by ``usecase_specs.py`` (docs/adr/0008).
"""

from glideslope.airflow.escalation import build_escalation_dag
from glideslope.airflow.wiring import build_for_every_usecase

globals().update(build_for_every_usecase(build_escalation_dag))
