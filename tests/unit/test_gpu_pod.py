"""The GPU training pod, rendered by the provider's own code and checked against Kubernetes' models.

No cluster is needed: ``build_pod_request_obj(dry_run=True)`` is what KubernetesPodOperator
submits, minus the in-cluster label that needs a live client.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from glideslope import k8s
from glideslope.config import GpuSpec, load_usecase, settings

pytestmark = pytest.mark.unit

PRODUCTION = {
    "GLIDESLOPE_PROFILE": "production",
    "GLIDESLOPE_S3_ENDPOINT_URL": "http://minio:9000",
    "GLIDESLOPE_MLFLOW_TRACKING_URI": "http://mlflow:5000",
    "GLIDESLOPE_LAKE_ROOT": "s3://glideslope/lake",
    "GLIDESLOPE_IMAGE": "registry.example.com/glideslope:1.2.3",
}
ARGS = ["--usecase", "flight_delay", "--ds", "{{ ds }}", "--candidates", "xgboost", "--reason", "weekly"]


class _Response:
    """What ``ApiClient.deserialize`` reads: a body, as the API server would return it."""

    def __init__(self, body: dict):
        self.data = json.dumps(body)


@pytest.fixture(scope="module")
def rendered() -> tuple[object, dict]:
    from kubernetes.client import ApiClient

    from glideslope.airflow.gpu import training_pod_operator

    op = training_pod_operator(load_usecase("flight_delay"), arguments=ARGS, cfg=settings(PRODUCTION))
    op.render_template_fields({"ds": "2013-03-05", "params": {}})
    pod = op.build_pod_request_obj(dry_run=True)
    return op, ApiClient().sanitize_for_serialization(pod)


def _container(manifest: dict, name: str = "base") -> dict:
    return next(c for c in manifest["spec"]["containers"] if c["name"] == name)


def test_manifest_round_trips_through_the_kubernetes_models(rendered):
    from kubernetes.client import ApiClient

    _, manifest = rendered
    api = ApiClient()
    # The client's models validate required fields and enums on construction: a malformed spec raises.
    pod = api.deserialize(_Response(manifest), "V1Pod")
    assert api.sanitize_for_serialization(pod) == manifest
    assert manifest["apiVersion"] == "v1" and manifest["kind"] == "Pod"
    assert manifest["spec"]["restartPolicy"] == "Never"
    broken = json.loads(json.dumps(manifest))
    del broken["spec"]["containers"][0]["name"]
    with pytest.raises(ValueError, match="name"):
        api.deserialize(_Response(broken), "V1Pod")


def test_runs_the_training_entry_point_with_its_result_as_xcom(rendered):
    op, manifest = rendered
    base = _container(manifest)
    assert base["command"] == ["glideslope", "train"]
    assert base["args"] == ["--usecase", "flight_delay", "--ds", "2013-03-05", "--candidates", "xgboost",
                            "--reason", "weekly", "--result-file", "/airflow/xcom/return.json"]
    assert op.do_xcom_push
    # The provider's sidecar reads /airflow/xcom/return.json from a volume shared with the trainer.
    assert {"mountPath": "/airflow/xcom", "name": "xcom"} in base["volumeMounts"]
    assert _container(manifest, "airflow-xcom-sidecar")
    assert base["image"] == "registry.example.com/glideslope:1.2.3"


def test_gpu_resources_and_placement_come_from_the_spec(rendered):
    _, manifest = rendered
    gpu = load_usecase("flight_delay").gpu
    resources = _container(manifest)["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == resources["requests"]["nvidia.com/gpu"] == str(gpu.gpus)
    assert resources["requests"]["cpu"] == gpu.cpu
    assert resources["requests"]["memory"] == resources["limits"]["memory"] == gpu.memory
    assert manifest["spec"]["nodeSelector"] == gpu.node_selector
    assert manifest["spec"]["tolerations"] == gpu.tolerations
    assert manifest["metadata"]["namespace"] == gpu.namespace
    assert manifest["metadata"]["labels"]["glideslope/usecase"] == "flight_delay"


def test_environment_from_settings_and_credentials_only_from_a_secret(rendered):
    _, manifest = rendered
    base = _container(manifest)
    env = {e["name"]: e["value"] for e in base["env"]}
    assert env["GLIDESLOPE_PROFILE"] == "production"
    assert env["MLFLOW_TRACKING_URI"] == env["GLIDESLOPE_MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["GLIDESLOPE_LAKE_ROOT"] == "s3://glideslope/lake"
    assert env["MLFLOW_S3_ENDPOINT_URL"] == env["GLIDESLOPE_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert env["GLIDESLOPE_TRAINING_BACKEND"] == "local"  # the pod trains; it does not dispatch again
    assert not [k for k in env if "SECRET" in k or "PASSWORD" in k or k == "AWS_ACCESS_KEY_ID"]
    assert base["envFrom"] == [{"secretRef": {"name": "glideslope-training-env"}}]
    assert manifest["spec"]["securityContext"]["runAsNonRoot"] is True


def test_cluster_access_lifecycle_and_timeouts(rendered):
    op, _ = rendered
    gpu = load_usecase("flight_delay").gpu
    assert op.kubernetes_conn_id == "kubernetes_default"
    assert op.config_file is None and op.in_cluster is None  # no kubeconfig in the DAG: the connection has it
    assert op.on_finish_action.value == "delete_pod"
    assert op.startup_timeout_seconds == gpu.startup_timeout_seconds
    assert op.schedule_timeout_seconds == gpu.schedule_timeout_seconds


def test_the_train_dag_can_build_the_task_from_its_templated_arguments():
    """The exact call ``glideslope.airflow.train`` makes, with its Jinja arguments."""
    from glideslope.airflow.gpu import training_pod_operator
    from glideslope.airflow.train import (
        POD_RESULT_FILE,
        TRAINING_POD_FACTORY,
        _templated_plan,
        training_arguments,
    )

    assert TRAINING_POD_FACTORY == "glideslope.airflow.gpu:training_pod_operator"
    args = training_arguments("flight_delay", _templated_plan(),
                              "{{ ti.xcom_pull(task_ids='build_training_set')['uri'] }}", POD_RESULT_FILE)
    op = training_pod_operator(load_usecase("flight_delay"), task_id="train_candidates", arguments=args[1:])
    assert op.arguments[-2:] == ["--result-file", "/airflow/xcom/return.json"]
    assert op.task_id == "train_candidates"


def test_pod_arguments_are_accepted_by_the_entry_point():
    """Every option the pod passes parses in ``glideslope train``, the command the image runs."""
    from glideslope.training.cli import parser

    args = parser().parse_args(k8s.train_arguments([a.replace("{{ ds }}", "2013-03-05") for a in ARGS]))
    # --ds is repeatable (a run request may name several days).
    assert (args.usecase, args.ds, args.result_file) == ("flight_delay", ["2013-03-05"], k8s.XCOM_RESULT_FILE)
    out = subprocess.run([str(Path(sys.executable).with_name("glideslope")), *k8s.ENTRYPOINT[1:], "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--result-file" in out.stdout


def test_resources_without_gpus_and_argument_errors():
    cpu_only = GpuSpec(gpus=0, cpu="2", memory="4Gi")
    assert k8s.resources(cpu_only) == {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"memory": "4Gi"}}
    with pytest.raises(ValueError, match="result-file"):
        k8s.train_arguments(["--usecase", "x", "--result-file", "/tmp/out.json"])
    with pytest.raises(ValueError, match="sub-command"):
        k8s.train_arguments(["train", "--usecase", "x"])
    assert k8s.pod_name(load_usecase("flight_delay")) == "flight-delay-train"
