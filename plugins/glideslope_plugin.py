"""Glideslope's Airflow plugin: registration only.

* Operator extra links — "MLflow run" / "MLflow model version" on the train tasks and
  "Drift report" on the monitor's ``check_drift`` (classes in ``glideslope.airflow.links``; the
  DAG builders attach them to their tasks, Airflow stores the URLs when the task finishes).
* The reports app at ``/glideslope`` (``glideslope.airflow.reports``), which serves the drift
  reports those buttons open, and a "Drift reports" entry in the UI's navigation.
* The metrics app at ``/glideslope/metrics`` (``glideslope.airflow.metrics_app``): Prometheus'
  text format, per use case, from what the stages recorded.
* A dag-run listener (``glideslope.airflow.notes``) that writes what a run's tasks said about its
  night (scored, caught up, skipped and why) as the run's note.
* The model-health page: a React app (built from ``include/ui/model-health``) that the UI shows
  under "Model health" in the navigation and as a tab on every DAG page, and the app at
  ``/glideslope-health`` (``glideslope.airflow.health``) that serves it and its JSON.
"""

from airflow.plugins_manager import AirflowPlugin

from glideslope.airflow import notes as run_notes
from glideslope.airflow.health import create_app as create_health_app
from glideslope.airflow.links import DriftReportLink, MlflowModelVersionLink, MlflowRunLink
from glideslope.airflow.metrics_app import ExactPrefixPath
from glideslope.airflow.metrics_app import create_app as create_metrics_app
from glideslope.airflow.reports import create_app

BUNDLE = "/glideslope-health/static/model-health.js"


class GlideslopePlugin(AirflowPlugin):
    name = "glideslope"
    listeners = [run_notes]  # a finished run's note says which night it was for (glideslope.airflow.notes)
    operator_extra_links = [MlflowRunLink(), MlflowModelVersionLink(), DriftReportLink()]
    fastapi_apps = [
        {"app": create_metrics_app(), "url_prefix": "/glideslope/metrics", "name": "Glideslope metrics"},
        {"app": create_app(), "url_prefix": "/glideslope", "name": "Glideslope reports"},
        {"app": create_health_app(), "url_prefix": "/glideslope-health", "name": "Glideslope model health"},
    ]
    fastapi_root_middlewares = [{"middleware": ExactPrefixPath, "name": "Glideslope metrics path"}]
    # Two URLs for one bundle: the UI imports each React app once and keeps its component by name.
    react_apps = [
        {"name": "Model health", "bundle_url": f"{BUNDLE}?view=nav", "destination": "nav",
         "category": "browse", "url_route": "model-health"},
        {"name": "Model health of the use case", "bundle_url": f"{BUNDLE}?view=dag", "destination": "dag",
         "url_route": "model-health-dag"},
    ]
    external_views = [{
        "name": "Drift reports",
        "href": "/glideslope/reports",
        "destination": "nav",
        "category": "browse",
        "url_route": "glideslope-drift-reports",
    }]
