"""Every file in dags/ imports cleanly, stays light at parse time, and Airflow's own gate agrees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from dagfolder import DAG_FILES, DAGS_DIR, HEAVY_MODULES, SPEC_CHECK_FILE

pytestmark = pytest.mark.dags

# What the DAG processor does with a file: parse it into a DagBag and serialize each DAG.
_PARSE_IN_FRESH_PROCESS = textwrap.dedent("""
    import json, sys
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    bag = DagBag(dag_folder=sys.argv[1])
    for dag in bag.dags.values():
        DagSerialization.to_dict(dag)
    loaded = {name.split(".")[0] for name in sys.modules}
    print(json.dumps({"errors": bag.import_errors, "dags": sorted(bag.dags),
                      "heavy": sorted(loaded & set(sys.argv[2:]))}))
""")


@pytest.mark.parametrize("path", DAG_FILES, ids=[p.name for p in DAG_FILES])
def test_dag_file_imports_without_errors(path: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(path))
    assert not bag.import_errors, "\n".join(f"{f}:\n{err}" for f, err in bag.import_errors.items())
    _assert_builds_dags_unless_spec_check(path, bag.dags)


def _assert_builds_dags_unless_spec_check(path: Path, dags) -> None:
    if path == SPEC_CHECK_FILE:
        assert not dags, f"{path} only reports invalid use-case specs; it must build no DAG, got {sorted(dags)}"
    else:
        assert dags, f"{path} defines no DAG"


@pytest.mark.parametrize("path", DAG_FILES, ids=[p.name for p in DAG_FILES])
def test_parsing_does_not_import_heavy_libraries(path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PARSE_IN_FRESH_PROCESS, str(path), *HEAVY_MODULES],
        capture_output=True, text=True, timeout=180, env=os.environ.copy(), check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert not result["errors"], result["errors"]
    _assert_builds_dags_unless_spec_check(path, result["dags"])
    assert not result["heavy"], (
        f"parsing {path} imports {result['heavy']}: move these imports into the task functions "
        "(the DAG processor re-parses the file every few seconds)"
    )


def test_airflow_reports_no_import_errors(airflow_db) -> None:
    """`airflow dags list-import-errors --local` is the gate a deployment would run."""
    out = subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "dags", "list-import-errors", "--local",
         "--output", "json"],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR)},
    )
    assert out.returncode == 0, f"exit {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
