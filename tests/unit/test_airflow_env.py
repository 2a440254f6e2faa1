"""``eval "$(glideslope airflow-env)"`` then ``airflow ...`` works from a shell whose venv is not activated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit


def test_airflow_after_the_eval_is_the_venvs_airflow_on_the_embedded_home(tmp_path):
    venv_bin = Path(sys.executable).parent
    glideslope = venv_bin / "glideslope"
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "GLIDESLOPE_HOME": str(tmp_path / "home")}
    script = f'eval "$({glideslope} airflow-env)" && command -v airflow && echo "home=$AIRFLOW_HOME"'
    out = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    found, home = out.stdout.split()[-2:]
    assert Path(found) == venv_bin / "airflow"
    assert home == f"home={tmp_path / 'home' / 'airflow'}"
