"""``glideslope new``: the skeleton loads, checks and builds its six DAGs as it is."""

from __future__ import annotations

import os
import re
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


SECTIONS = {  # spec section -> the models whose every field the skeleton must write (or show commented)
    "label": ["LabelSpec"], "schedule": ["ScheduleSpec"], "sources": ["SourceSpec"], "features": ["FeaturesSpec"],
    "training": ["TrainingSpec", "CandidateSpec"], "scoring": ["ScoringSpec"], "promotion": ["PromotionSpec"],
    "drift": ["DriftSpec"], "alerts": ["AlertsSpec", "AlertRoute"], "gpu": ["GpuSpec"], "demo": ["DemoSpec"],
}


def _sections(text: str) -> dict[str, str]:
    """The skeleton's text per top-level key (a commented-out section such as ``# demo:`` included)."""
    out: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        m = re.match(r"^(?:# )?([a-z_]+):", line)
        if m:
            key = m.group(1)
        out[key] = out.get(key, "") + line + "\n"
    return out


@pytest.mark.parametrize("task", ["binary_classification", "regression"])
def test_the_skeleton_writes_every_field_of_every_section(tmp_path, task):
    """A person reads every knob in the skeleton, drift methods and thresholds included."""
    from glideslope import config

    sections = _sections((create("new_model", task, tmp_path) / "usecase.yaml").read_text())
    absent = [f"{section}.{field}" for section, models in SECTIONS.items() for model in models
              for field in getattr(config, model).model_fields
              if not re.search(rf"(?<![a-z_]){field}:", sections.get(section, ""))]
    assert not absent, f"the skeleton's spec leaves out {absent}"


def test_the_skeleton_sizes_its_defaults_for_the_task(tmp_path):
    """Regression is not classification: its tolerances are in the label's units and its minimums smaller,
    and each says its units in a comment. Both set explicit drift tests instead of Evidently's choice."""
    specs = {}
    for task in ("binary_classification", "regression"):
        folder = create(f"new_{task[:3]}", task, tmp_path)
        specs[task] = (load_all_usecases(tmp_path)[0], (folder / "usecase.yaml").read_text())
    binary = next(s for s in specs["binary_classification"][0] if s.name == "new_bin")
    regression = next(s for s in specs["regression"][0] if s.name == "new_reg")
    assert binary.promotion.metric == binary.training.primary_metric == "roc_auc"
    assert regression.promotion.metric == regression.training.primary_metric == "rmse"
    assert (binary.promotion.slice_tolerance, binary.promotion.min_slice_rows, binary.drift.min_rows) == (0.02, 200, 500)
    assert regression.promotion.slice_tolerance > 1 and regression.promotion.min_slice_rows < 200
    assert regression.drift.min_rows < binary.drift.min_rows
    for uc in (binary, regression):
        assert (uc.drift.num_method, uc.drift.num_threshold) == ("wasserstein", 1.0)
        assert (uc.drift.cat_method, uc.drift.cat_threshold) == ("jensenshannon", 0.1)
    reg_text = specs["regression"][1]
    for key in ("floor", "slice_tolerance"):
        line = next(x for x in reg_text.splitlines() if x.strip().startswith(f"{key}:"))
        assert "label's units" in line and "RMSE" in line, line
    assert "ROC-AUC" in next(x for x in specs["binary_classification"][1].splitlines()
                             if x.strip().startswith("slice_tolerance:"))


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
    assert "calendar" in ok.stdout and "deliveries() is not written yet" in ok.stdout  # said, not failed
    assert not (tmp_path / "h" / "airflow" / "airflow.db").exists()  # no database was needed
    (folder / "quality" / "raw_events.yaml").write_text("rows: {min: 1}\ncolumns: {x: {type: decimal}}\n")
    bad = subprocess.run([glideslope, "check"], env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "✗ quality suites" in bad.stderr and "raw_events.yaml" in bad.stderr
