"""``glideslope check --usecase NAME``: is a use case ready to run, before any of its DAGs runs?

What it checks, in order, stopping at the first broken step (each names the file to fix):

1. the spec loads (fields, metrics of the task, outputs that cover the stages);
2. every quality suite it names exists and is valid;
3. the feed and the transform import and define ``deliveries``/``reference`` and ``build``;
4. the Feast repository parses as ``feast apply`` would, with the spec's service and prediction view;
5. Airflow builds the use case's DAGs (one per stage) from dags/ (parsed with the embedded profile's
   settings, so nothing is read from or written to ``~/airflow``; no database is needed).

The data contract of the transform's outputs is checked on its first ETL run (glideslope.contract).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from glideslope.config import STAGES


def _steps(uc: Any) -> list[tuple[str, Callable[[], str]]]:
    from glideslope.quality.suites import load_suite
    from glideslope.usecase_modules import load_module

    def suites() -> str:
        names = [s.suite for s in uc.sources if s.suite] + list(uc.output_suites.values())
        for n in names:
            load_suite(uc, n)
        return f"{len(names)} suites"

    def modules() -> str:
        wanted = {uc.feed: ("deliveries", "reference"), uc.transform: ("build",)}
        for module, functions in wanted.items():
            mod = load_module(uc, module)
            absent = [f for f in functions if not callable(getattr(mod, f, None))]
            if absent:
                raise ValueError(f"{uc.folder / (module + '.py')}: defines no {', '.join(absent)}()")
        return f"{uc.feed}.py, {uc.transform}.py"

    def feast_repo() -> str:
        from glideslope.features.repo import load_definitions

        c = load_definitions(uc)
        return f"{len(c.feature_views)} feature views, service {uc.features.service}"

    def dags() -> str:
        from airflow.dag_processing.dagbag import DagBag

        from glideslope.config import PROJECT_ROOT

        bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
        errors = {f: e for f, e in bag.import_errors.items() if uc.name in str(e) or "usecase_specs" not in f}
        if errors:
            raise ValueError("DAG import errors:\n" + "\n".join(f"{f}:\n{e}" for f, e in errors.items()))
        missing = [uc.dag_id(s) for s in STAGES if uc.dag_id(s) not in bag.dags]
        if missing:
            raise ValueError(f"Airflow did not build {missing}")
        return ", ".join(uc.dag_id(s) for s in STAGES)

    return [("quality suites", suites), ("feed and transform", modules), ("Feast repository", feast_repo),
            ("DAGs", dags)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="glideslope check", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--usecase", default=None, help="use case (required when there is more than one)")
    args = ap.parse_args(argv)

    from glideslope.config import SpecError, resolve_usecase
    from glideslope_local.env import embedded_airflow_env

    try:
        uc = resolve_usecase(args.usecase)
    except SpecError as e:
        print(f"✗ spec\n{e}", file=sys.stderr)
        return 1
    print(f"✓ spec                {uc.folder / 'usecase.yaml'} ({uc.label.task}, metric {uc.promotion.metric})")
    # Airflow reads its settings when first imported: the embedded profile's, not ~/airflow.
    for key, value in embedded_airflow_env().items():
        os.environ.setdefault(key, value)
    for title, step in _steps(uc):
        try:
            detail = step()
        except Exception as e:  # every step's error names its file; show it and stop
            print(f"✗ {title}\n{type(e).__name__}: {e}", file=sys.stderr)
            return 1
        print(f"✓ {title:<19} {detail}")
    print(f"{uc.name} is ready: its first ETL run checks the data contract (docs/usecase-guide.md)")
    return 0
