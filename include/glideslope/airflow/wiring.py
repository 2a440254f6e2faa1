"""What the files in dags/ call: build one stage for every valid use case; report the invalid specs.

Airflow keeps import errors per DAG file, and an import error on a file marks every DAG of that file
stale. So a stage file never fails for one use case's spec: it builds the use cases whose
usecase.yaml loads and skips the others, and ``dags/usecase_specs.py``, which builds no DAG, fails
instead with an error naming each invalid usecase.yaml and field (docs/adr/0008).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from glideslope.config import SpecError, UseCase, load_all_usecases, usecases_dir

log = logging.getLogger(__name__)


def build_for_every_usecase(build: Callable[[UseCase], Any]) -> dict[str, Any]:
    """``{dag_id: DAG}`` of one stage for every use case whose spec is valid.

    A DAG file puts the result in its globals, where Airflow's parser finds the DAGs.
    """
    specs, errors = load_all_usecases()
    for err in errors:
        log.warning("skipped (reported by dags/usecase_specs.py): %s", str(err).splitlines()[0])
    dags = {}
    for uc in specs:
        dag = build(uc)
        dags[dag.dag_id] = dag
    return dags


def raise_invalid_specs() -> None:
    """Fail with every invalid use-case spec, each naming its usecase.yaml and field; else nothing."""
    _, errors = load_all_usecases()
    if errors:
        raise SpecError(
            f"{len(errors)} invalid use-case spec(s) under {usecases_dir()}; their DAGs are not built "
            "until fixed, the other use cases' DAGs are unaffected.\n\n" + "\n\n".join(map(str, errors))
        )
