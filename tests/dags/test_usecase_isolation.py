"""One broken use case breaks only itself: its bad usecase.yaml is an Airflow import error that names
the file and the field, while every other use case's DAGs still load (docs/adr/0008).

The use-case root is a temporary folder holding a copy of the bundled ``flight_delay`` and
``broken_spec``, the same spec with one field of the wrong type; ``GLIDESLOPE_USECASES_DIR`` points
the DAG files at it. Airflow parses the project's dags/ folder in a fresh process each time.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from dagfolder import DAGS_DIR, STAGE_FILES

from glideslope.config import DEFAULT_USECASES_DIR

pytestmark = pytest.mark.dags

GOOD, BROKEN = "flight_delay", "broken_spec"
BAD_FIELD = "training.window_days"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))

_PARSE = textwrap.dedent("""
    import json, sys
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=sys.argv[1])
    print(json.dumps({"errors": bag.import_errors,
                      "dags": {dag_id: dag.fileloc for dag_id, dag in bag.dags.items()}}))
""")


@pytest.fixture(scope="module")
def usecases_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("usecases")
    shutil.copytree(DEFAULT_USECASES_DIR / GOOD, root / GOOD)
    shutil.copytree(DEFAULT_USECASES_DIR / GOOD, root / BROKEN)
    spec = yaml.safe_load((root / BROKEN / "usecase.yaml").read_text())
    spec["name"] = BROKEN
    spec["training"]["window_days"] = "four weeks"  # an integer field given a string
    (root / BROKEN / "usecase.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


@pytest.fixture(scope="module")
def env(usecases_root: Path) -> dict[str, str]:
    return {**os.environ, "GLIDESLOPE_USECASES_DIR": str(usecases_root),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR)}


@pytest.fixture(scope="module")
def parsed(env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", _PARSE, str(DAGS_DIR)], capture_output=True, text=True,
                         timeout=300, env=env, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _names_the_bad_spec(text: str, usecases_root: Path) -> bool:
    return str(usecases_root / BROKEN / "usecase.yaml") in text and repr(BAD_FIELD) in text


def test_the_good_usecase_keeps_all_its_dags(parsed) -> None:
    expected = {f"{GOOD}__{p.stem}" for p in STAGE_FILES}
    missing = sorted(expected - set(parsed["dags"]))
    assert not missing, f"{GOOD} lost {missing} because another use case's spec is broken: {parsed['errors']}"
    assert not [d for d in parsed["dags"] if d.startswith(f"{BROKEN}__")], "a DAG was built from an invalid spec"


def test_the_bad_spec_is_an_import_error_naming_its_file_and_field(parsed, usecases_root: Path) -> None:
    errors = parsed["errors"]
    assert len(errors) == 1 and _names_the_bad_spec(next(iter(errors.values())), usecases_root), (
        f"expected one import error naming {BROKEN}/usecase.yaml and {BAD_FIELD!r}, got {len(errors)}:\n"
        + "\n".join(f"{f}:\n{text}" for f, text in errors.items())
    )
    # Airflow marks every DAG of a file with an import error stale: the error must sit on a file
    # that defines no DAG, or the good use case's DAGs would disappear from the UI and scheduler.
    shared = {f for f in errors if any(Path(loc) == Path(f) for loc in parsed["dags"].values())}
    assert not shared, f"import errors on files that also define DAGs: {sorted(shared)}"


def test_list_import_errors_fails_naming_the_bad_spec(env, usecases_root: Path, airflow_db: Path) -> None:
    out = subprocess.run([AIRFLOW, "dags", "list-import-errors", "--local", "--output", "json"],
                         capture_output=True, text=True, timeout=300, env=env, check=False)
    assert out.returncode != 0, f"exit 0 with an invalid spec in {usecases_root}:\n{out.stdout[-3000:]}"
    assert _names_the_bad_spec(out.stdout, usecases_root), out.stdout[-3000:] + out.stderr[-3000:]


def test_the_metadata_db_shows_the_error_and_keeps_the_good_dags_active(
    env, usecases_root: Path, airflow_db: Path, tmp_path: Path
) -> None:
    """What the UI and /api/v2/importErrors read, as Airflow's own parser writes it."""
    db = tmp_path / "airflow.db"
    shutil.copy(airflow_db, db)  # an already migrated DB, private to this test
    out = subprocess.run([AIRFLOW, "dags", "reserialize"], capture_output=True, text=True, timeout=300,
                         env={**env, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db}"}, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    with sqlite3.connect(db) as conn:
        errors = conn.execute("SELECT filename, stacktrace FROM import_error").fetchall()
        dags = dict(conn.execute("SELECT dag_id, is_stale FROM dag").fetchall())
    assert errors and all(_names_the_bad_spec(text, usecases_root) for _, text in errors), errors
    active = sorted(d for d, stale in dags.items() if d.startswith(f"{GOOD}__") and not stale)
    assert active == sorted(f"{GOOD}__{p.stem}" for p in STAGE_FILES), (
        f"active {GOOD} DAGs in the metadata DB: {active}; import errors: {[f for f, _ in errors]}"
    )
