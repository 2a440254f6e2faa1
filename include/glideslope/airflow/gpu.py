"""The GPU training task of the ``kubernetes`` training backend: one KubernetesPodOperator factory.

``<uc>__train`` calls :func:`training_pod_operator` when ``GLIDESLOPE_TRAINING_BACKEND=kubernetes``
(see ``glideslope.airflow.train``); otherwise the same ``glideslope train`` command runs
in-process. The pod:

* runs the project image (``GLIDESLOPE_IMAGE``, else the use case's ``gpu.image``) with
  ``glideslope train <arguments> --result-file /airflow/xcom/return.json``, and its JSON summary
  comes back as the task's XCom (``do_xcom_push``);
* asks for ``gpu.gpus`` ``nvidia.com/gpu`` plus CPU/memory requests, lands on GPU nodes through
  the spec's node selector and tolerations, and fails if it is not scheduled or started within
  ``gpu.schedule_timeout_seconds`` / ``gpu.startup_timeout_seconds``;
* gets MLflow, lake, Feast and S3 locations from the deployment's settings, and credentials only
  from the Kubernetes Secret ``env_secret`` (``envFrom``);
* reaches the cluster through the ``kubernetes_default`` connection (in-cluster or a kubeconfig
  path there), never an inline kubeconfig, and is deleted when it finishes, whatever the outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from glideslope import k8s
from glideslope.config import Settings, UseCase, settings

if TYPE_CHECKING:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

KUBERNETES_CONN_ID = "kubernetes_default"
ENV_SECRET = "glideslope-training-env"
# The image's non-root user (Dockerfile: useradd --uid 50000).
IMAGE_UID = 50000


def training_pod_operator(
    uc: UseCase,
    *,
    task_id: str = "train_candidates",
    arguments: list[str],
    cfg: Settings | None = None,
    env_secret: str | None = ENV_SECRET,
    **operator_kwargs: Any,
) -> KubernetesPodOperator:
    """The task that runs ``glideslope train <arguments>`` in a GPU pod.

    ``arguments`` are those of ``glideslope train`` (``--usecase``, ``--ds``, ``--candidates``,
    ...; Jinja templates allowed, they are rendered per run). ``operator_kwargs`` go to the
    operator unchanged (``retries``, ``pool``, ``trigger_rule``, ...).
    """
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.providers.cncf.kubernetes.secret import Secret
    from kubernetes.client import models as k8s_models

    cfg = cfg or settings()
    gpu = uc.gpu
    res = k8s.resources(gpu)
    return KubernetesPodOperator(
        task_id=task_id,
        name=k8s.pod_name(uc),
        namespace=gpu.namespace,
        image=k8s.image(uc, cfg),
        image_pull_policy="IfNotPresent",
        cmds=list(k8s.ENTRYPOINT),
        arguments=k8s.train_arguments(arguments),
        env_vars=k8s.pod_env(cfg),
        secrets=[Secret("env", None, env_secret)] if env_secret else [],
        container_resources=k8s_models.V1ResourceRequirements(requests=res["requests"], limits=res["limits"]),
        node_selector=k8s.node_selector(gpu),
        tolerations=[k8s_models.V1Toleration(**t) for t in k8s.tolerations(gpu)],
        labels=k8s.labels(uc),
        security_context=k8s_models.V1PodSecurityContext(run_as_non_root=True, run_as_user=IMAGE_UID,
                                                         fs_group=0),
        container_security_context=k8s_models.V1SecurityContext(allow_privilege_escalation=False),
        kubernetes_conn_id=KUBERNETES_CONN_ID,
        startup_timeout_seconds=gpu.startup_timeout_seconds,
        schedule_timeout_seconds=gpu.schedule_timeout_seconds,
        on_finish_action="delete_pod",
        on_kill_action="delete_pod",
        do_xcom_push=True,
        get_logs=True,
        log_events_on_failure=True,
        **operator_kwargs,
    )
