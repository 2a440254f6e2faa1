"""``glideslope new``: the skeleton loads, checks and builds its six DAGs as it is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from glideslope.config import SpecError, load_all_usecases
from glideslope.scaffold import create

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("task", ["binary_classification", "regression"])
def test_the_skeleton_loads_with_the_task_metric(tmp_path, task):
    folder = create("new_model", task, tmp_path)
    specs, errors = load_all_usecases(tmp_path)
    assert not errors and [s.name for s in specs] == ["new_model"]
    uc = specs[0]
    assert uc.label.task == task and uc.features.service == "new_model_v1"
    assert uc.promotion.metric == ("roc_auc" if task == "binary_classification" else "rmse")
    text = (folder / "usecase.yaml").read_text()
    from glideslope.config import UseCase

    fields = [f for f in UseCase.model_fields if f != "folder"]
    absent = [f for f in fields if f"\n{f}:" not in text and f"\n# {f}:" not in text]
    assert not absent, f"the skeleton's spec leaves out {absent}"
    assert "$" not in text.replace("${GLIDESLOPE", "")


def test_an_existing_folder_is_never_overwritten(tmp_path):
    create("new_model", root=tmp_path)
    with pytest.raises(SpecError, match="exists"):
        create("new_model", root=tmp_path)
    with pytest.raises(SpecError, match="lower-case"):
        create("New-Model", root=tmp_path)


def test_the_skeleton_passes_the_dag_tests_unchanged(tmp_path):
    """tests/dags, run as they are against a use-case root with the skeleton beside the bundled use cases."""
    from glideslope.config import DEFAULT_USECASES_DIR, list_usecases

    create("fresh_start", "regression", tmp_path / "usecases")
    for bundled in list_usecases(DEFAULT_USECASES_DIR):
        (tmp_path / "usecases" / bundled).symlink_to(DEFAULT_USECASES_DIR / bundled, target_is_directory=True)
    env = {**os.environ, "GLIDESLOPE_USECASES_DIR": str(tmp_path / "usecases"),
           "GLIDESLOPE_HOME": str(tmp_path / "home")}
    env.pop("AIRFLOW__CORE__DAGS_FOLDER", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/dags"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and " skipped" not in proc.stdout
    assert "fresh_start__monitor" not in proc.stdout  # not named by any failure

def test_glideslope_check_accepts_the_skeleton_and_names_a_broken_suite(tmp_path):
    folder = create("fresh_start", root=tmp_path / "usecases")
    env = {**os.environ, "GLIDESLOPE_USECASES_DIR": str(tmp_path / "usecases"), "GLIDESLOPE_HOME": str(tmp_path / "h")}
    for k in [k for k in env if k.startswith("AIRFLOW")]:
        env.pop(k)
    glideslope = str(Path(sys.executable).with_name("glideslope"))
    ok = subprocess.run([glideslope, "check"], env=env, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "✓ DAGs" in ok.stdout and "fresh_start__monitor" in ok.stdout
    assert not (tmp_path / "h" / "airflow" / "airflow.db").exists()  # no database was needed
    (folder / "quality" / "raw_events.yaml").write_text("rows: {min: 1}\ncolumns: {x: {type: decimal}}\n")
    bad = subprocess.run([glideslope, "check"], env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "✗ quality suites" in bad.stderr and "raw_events.yaml" in bad.stderr
