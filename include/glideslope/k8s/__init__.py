"""The GPU training pod, as plain data: command, resources, scheduling rules, environment.

Nothing here imports Airflow or the Kubernetes client. :mod:`glideslope.airflow.gpu` turns these
values into a ``KubernetesPodOperator``; the unit tests and ``docs/production.md`` read them
directly. The pod runs the project image with the same ``glideslope train`` entry point that the
embedded profile runs in-process, so a GPU run and a CPU run differ only in where they execute
(xgboost picks ``device="cuda"`` itself when the pod sees a GPU).
"""

from __future__ import annotations

import re
from typing import Any

from glideslope.config import GpuSpec, Settings, UseCase
from glideslope.runtime import glideslope_env

# KubernetesPodOperator's XCom sidecar reads the pod's result from this file.
XCOM_RESULT_FILE = "/airflow/xcom/return.json"
ENTRYPOINT = ["glideslope", "train"]
# A writable scratch home inside the container; nothing there outlives the pod.
POD_HOME = "/tmp/glideslope"
GPU_RESOURCE = "nvidia.com/gpu"


def train_arguments(arguments: list[str]) -> list[str]:
    """``glideslope train`` arguments with the result written where the XCom sidecar reads it."""
    args = list(arguments)
    if args and args[0] == "train":
        raise ValueError("pass the arguments of 'glideslope train', without the sub-command itself")
    if "--result-file" in args:
        i = args.index("--result-file")
        if i + 1 >= len(args) or args[i + 1] != XCOM_RESULT_FILE:
            raise ValueError(f"--result-file must be {XCOM_RESULT_FILE} in a pod (its XCom is read from there)")
        return args
    return [*args, "--result-file", XCOM_RESULT_FILE]


def resources(gpu: GpuSpec) -> dict[str, dict[str, str]]:
    """Requests and limits of the training container.

    GPUs are an extended resource: Kubernetes only accepts them with request == limit. Memory is
    limited at the request so the pod is never OOM-killed for memory the scheduler did not
    reserve; CPU has no limit, because a throttled training loop only gets slower.
    """
    requests = {"cpu": gpu.cpu, "memory": gpu.memory}
    limits = {"memory": gpu.memory}
    if gpu.gpus > 0:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(gpu.gpus)
    return {"requests": requests, "limits": limits}


def tolerations(gpu: GpuSpec) -> list[dict[str, str]]:
    return [dict(t) for t in gpu.tolerations]


def node_selector(gpu: GpuSpec) -> dict[str, str]:
    return dict(gpu.node_selector)


def image(uc: UseCase, cfg: Settings) -> str:
    """``GLIDESLOPE_IMAGE`` (the deployed image tag) wins over the use case's ``gpu.image``."""
    return cfg.image or uc.gpu.image


def pod_name(uc: UseCase) -> str:
    """A DNS-1123 name stem; the operator adds a random suffix per run."""
    return re.sub(r"[^a-z0-9-]", "-", f"{uc.name}-train").strip("-")[:50]


def labels(uc: UseCase) -> dict[str, str]:
    return {"app.kubernetes.io/name": "glideslope", "app.kubernetes.io/component": "training",
            "glideslope/usecase": uc.name}


def pod_env(cfg: Settings) -> dict[str, str]:
    """Where the pod finds MLflow, the lake, Feast and S3: the deployment's settings, verbatim.

    Credentials are not here: they come from a Kubernetes Secret (``envFrom``), so they never
    appear in the pod spec, the task's rendered fields or its logs.
    """
    env: dict[str, Any] = glideslope_env(cfg)
    env.update({
        "GLIDESLOPE_HOME": POD_HOME,
        # The pod *is* the training backend: the command trains in-process.
        "GLIDESLOPE_TRAINING_BACKEND": "local",
        "PYTHONUNBUFFERED": "1",
    })
    return {k: str(v) for k, v in env.items()}
