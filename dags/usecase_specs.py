"""Checks every ``include/usecases/<name>/usecase.yaml``; builds no DAG.

Airflow shows an import error for this file, listing each invalid spec with its file and field,
while the stage files (etl.py, features.py, ...) build the DAGs of every valid use case. An invalid
spec gets no DAGs until it is fixed; it never takes the other use cases' DAGs with it (an import
error on a stage file would mark all of that file's DAGs stale). See docs/adr/0008.
"""

from glideslope.airflow.wiring import raise_invalid_specs

raise_invalid_specs()
