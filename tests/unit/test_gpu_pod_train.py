"""The kubernetes training backend end to end, without a cluster.

``<uc>__train`` built with ``GLIDESLOPE_TRAINING_BACKEND=kubernetes`` has a pod where the local
backend has a task. Here its templates are rendered from the XComs a real run leaves (the plan of
``plan_training`` and the training set of ``build_training_set``, both computed on a lake of
synthetic days), the pod request is built by the provider's own code, and the base container's
command and arguments are run on this machine as the pod runs them, with the result file the
sidecar would hand back as the task's XCom. That result is then what ``evaluate_challenger``
gets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ml_data import isolated_home, write_lake

from glideslope.config import load_usecase
from glideslope.lake import Lake

pytestmark = pytest.mark.unit

DS = "2013-01-08"


@pytest.fixture(scope="module")
def xcoms(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A home with eight labelled days, Feast applied, and the XComs of plan_training and build_training_set."""
    from glideslope.features.repo import apply_definitions
    from glideslope.runrequest import build
    from glideslope.training import build_training_set
    from glideslope.training.dataset import latest_label_day
    from glideslope.training.plan import plan_training

    with isolated_home(tmp_path_factory.mktemp("k8s_train_home")) as home:
        uc = load_usecase("flight_delay")
        write_lake(Lake.for_usecase(uc.name), "2013-01-01", 8, flights_per_day=150)
        apply_definitions(uc)
        req = build(uc.name, run_type="manual", run_id="manual__k8s-pod",
                    params={"ds": DS, "candidates": ["logistic_regression"], "window_days": 8, "holdout_days": 2,
                            "reason": "a GPU pod's training"})
        plan = plan_training(uc, req, latest_label_day=latest_label_day(uc)).summary()
        training_set = build_training_set(uc, plan["ds"], plan["window_days"], plan["holdout_days"])
        yield {"home": home, "uc": uc, "plan_training": plan, "build_training_set": training_set}


class _TaskInstance:
    """What the pod's Jinja templates call: ``ti.xcom_pull(task_ids=...)``."""

    def __init__(self, xcoms: dict[str, Any]):
        self.xcoms = xcoms

    def xcom_pull(self, task_ids: str, key: str = "return_value", **_: Any) -> Any:
        assert key == "return_value"
        return self.xcoms[task_ids]


def test_the_pod_runs_glideslope_train_on_the_plan_and_its_result_is_what_evaluation_gets(
        xcoms: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from kubernetes.client import ApiClient

    from glideslope.airflow.train import POD_RESULT_FILE, build_train_dag
    from glideslope.registry.promotion import evaluate_challenger

    uc, plan = xcoms["uc"], xcoms["plan_training"]
    monkeypatch.setenv("GLIDESLOPE_TRAINING_BACKEND", "kubernetes")
    pod = build_train_dag(uc).get_task("train_candidates")
    assert isinstance(pod, KubernetesPodOperator) and pod.do_xcom_push
    pod.render_template_fields({"ti": _TaskInstance(xcoms), "ds": DS, "params": {}})
    manifest = ApiClient().sanitize_for_serialization(pod.build_pod_request_obj(dry_run=True))
    base = next(c for c in manifest["spec"]["containers"] if c["name"] == "base")
    command, args = base["command"], base["args"]
    assert command == ["glideslope", "train"] and args[-2:] == ["--result-file", POD_RESULT_FILE]
    rendered = dict(zip(args[0::2], args[1::2], strict=True))
    assert rendered["--ds"] == plan["ds"] == DS and rendered["--run-id"] == "manual__k8s-pod"
    assert rendered["--candidates"] == "logistic_regression" and rendered["--window-days"] == "8"
    assert rendered["--training-set"] == xcoms["build_training_set"]["uri"]
    assert json.loads(rendered["--params"])["reason"] == "a GPU pod's training"

    # The pod's command, here: the same executable and arguments, the result file in a local folder
    # instead of the sidecar's volume; the pod's environment says the backend is local (it trains).
    pod_env = {e["name"]: e["value"] for e in base["env"] if "value" in e}
    assert pod_env["GLIDESLOPE_TRAINING_BACKEND"] == "local"
    result = tmp_path / "xcom" / "return.json"
    result.parent.mkdir()
    cli = str(Path(sys.executable).with_name(command[0]))
    env = {**os.environ, "GLIDESLOPE_TRAINING_BACKEND": pod_env["GLIDESLOPE_TRAINING_BACKEND"]}
    proc = subprocess.run([cli, *command[1:], *args[:-1], str(result)], env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    trained = json.loads(result.read_text())
    assert trained["ds"] == DS and [c["name"] for c in trained["candidates"]] == ["logistic_regression"]
    assert trained["training_set"] == xcoms["build_training_set"]["uri"]

    evaluation = evaluate_challenger(uc, plan["ds"], challenger_version=trained["challenger_version"])
    assert evaluation["challenger_version"] == trained["challenger_version"]
    assert evaluation["champion_version"] is None and evaluation["decision"]["promote"] in (True, False)
