"""Which files the DAG tests check: the folder Airflow parses in this test session."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# tests/conftest.py points Airflow at the project's dags/ before anything imports Airflow.
DAGS_DIR = Path(os.environ.get("AIRFLOW__CORE__DAGS_FOLDER", ROOT / "dags"))
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))
# The one file that builds no DAG: it reports invalid use-case specs as its import error (ADR 0008).
SPEC_CHECK_FILE = DAGS_DIR / "usecase_specs.py"
# One file per pipeline stage, each building <usecase>__<stage> for every valid use case.
STAGE_FILES = [p for p in DAG_FILES if p != SPEC_CHECK_FILE]

# Libraries that cost seconds to import; the DAG processor re-parses every file every few seconds.
HEAVY_MODULES = ("pandas", "numpy", "pyspark", "mlflow", "feast", "evidently", "great_expectations",
                 "xgboost", "sklearn", "pyarrow")
