"""Which files the DAG tests check: the folder Airflow parses in this test session."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# tests/conftest.py points Airflow at the project's dags/ before anything imports Airflow.
DAGS_DIR = Path(os.environ.get("AIRFLOW__CORE__DAGS_FOLDER", ROOT / "dags"))
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))

# Libraries that cost seconds to import; the DAG processor re-parses every file every few seconds.
HEAVY_MODULES = ("pandas", "numpy", "pyspark", "mlflow", "feast", "evidently", "great_expectations",
                 "xgboost", "sklearn", "pyarrow")
