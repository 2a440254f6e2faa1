"""One parse of the whole DAG folder, shared by the structure tests."""

from __future__ import annotations

import pytest
from dagfolder import DAG_FILES, DAGS_DIR


@pytest.fixture(scope="session")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    assert DAG_FILES, f"no DAG files in {DAGS_DIR}"
    # Import errors are reported per file by test_import.py; here the DAGs that did load are checked.
    return DagBag(dag_folder=str(DAGS_DIR))
