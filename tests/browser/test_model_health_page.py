"""The model-health page after the short replay (tests/loop_fixture.py), as a person opens it.

Screenshots go to test-results/ (kept by CI): the page from the navigation, the tab on a DAG page,
and the MLflow run a promotion marker leads to.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from stack_fixture import AirflowStack

pytestmark = pytest.mark.browser

RESULTS = Path(__file__).resolve().parents[2] / "test-results"


@pytest.fixture(scope="module")
def story(airflow_ui: AirflowStack) -> dict:
    """The replay, and what its stages recorded: checked nights (drift state), promotions (MLflow)."""
    from glideslope.config import settings
    from glideslope.drift.state import load_state
    from glideslope.training import tracking
    from glideslope_local.api import Airflow
    from loop_fixture import USECASE, replayed

    loop = replayed(Airflow(airflow_ui.url, airflow_ui.user, airflow_ui.password), airflow_ui.home, airflow_ui.env)
    assert loop.demo.returncode == 0, loop.demo.stdout[-3000:]
    checks = load_state(USECASE, loop.lake())["checks"]
    client = tracking.client(settings(loop.env_settings()))
    promoted = {str(mv.version): mv.tags["glideslope.decision_ds"]
                for mv in client.search_model_versions(f"name='{USECASE}'")
                if "glideslope.decision_ds" in mv.tags and mv.tags.get("glideslope.decision") != "rejected"}
    RESULTS.mkdir(exist_ok=True)
    return {"loop": loop, "usecase": USECASE, "checks": checks, "promoted": promoted}


def _open(page: Page, path: str, usecase: str | None = None) -> None:
    page.goto(path)
    if usecase:  # the navigation page starts on the first readable use case
        page.get_by_test_id("usecase-select").select_option(usecase)
    expect(page.get_by_test_id("model-health")).to_have_attribute("data-load-ms", re.compile(r"\d+"))


def test_the_page_shows_every_checked_night_and_the_promotions(story: dict, logged_in: Page) -> None:
    page, uc = logged_in, story["usecase"]
    _open(page, "/plugin/model-health", uc)
    health = page.get_by_test_id("model-health")
    expect(health).to_have_attribute("data-usecase", uc)
    drift_chart = page.get_by_test_id("drift-chart")
    expect(drift_chart.get_by_test_id("drift-point")).to_have_count(len(story["checks"]))
    shown = {p.get_attribute("data-ds") for p in drift_chart.get_by_test_id("drift-point").all()}
    assert shown == set(story["checks"])
    with_metric = {ds for ds, c in story["checks"].items() if c.get(f"live_{c.get('live_metric')}") is not None}
    metric_points = page.get_by_test_id("metric-chart").get_by_test_id("metric-point")
    expect(metric_points).to_have_count(len(with_metric))
    # Two promotions in the replay (the first model, the drift-triggered retrain), at their nights.
    assert len(story["promoted"]) == 2, story["promoted"]
    # The markers are drawn on both charts; the drift chart has a point for every checked night,
    # the metric chart only once labels gave a live value (the replay's nights have none yet).
    markers = drift_chart.get_by_test_id("marker-promoted")
    expect(markers).to_have_count(2)
    assert {(m.get_attribute("data-version"), m.get_attribute("data-ds")) for m in markers.all()} == set(
        story["promoted"].items())
    expect(page.get_by_test_id("timeline-event").filter(has_text="promoted")).to_have_count(2)
    expect(page.get_by_test_id("guard-escalation")).to_be_visible()
    load_ms = int(health.get_attribute("data-load-ms") or 0)
    (RESULTS / "model-health-load-ms.txt").write_text(f"{load_ms}\n")
    page.screenshot(path=str(RESULTS / "model-health-nav.png"), full_page=True, animations="disabled")


def test_a_promotion_marker_leads_to_its_mlflow_run(story: dict, logged_in: Page, airflow_ui: AirflowStack) -> None:
    page, uc = logged_in, story["usecase"]
    _open(page, "/plugin/model-health", uc)
    newest = max(story["promoted"], key=int)
    marker = page.get_by_test_id("drift-chart").locator(f"[data-testid=marker-promoted][data-version='{newest}']")
    href = marker.get_attribute("href") or ""
    run_id = href.rsplit("/runs/", 1)[-1]
    assert href.startswith(airflow_ui.up.mlflow_url or "-") and run_id, href
    page.goto(href)
    expect(page.get_by_text(run_id).first).to_be_visible()
    page.screenshot(path=str(RESULTS / "model-health-marker-mlflow-run.png"), animations="disabled")


def test_each_dag_page_has_the_use_cases_health_tab(story: dict, logged_in: Page) -> None:
    page, uc = logged_in, story["usecase"]
    page.goto(f"/dags/{uc}__score")
    page.get_by_role("tab", name="Model health of the use case").or_(
        page.get_by_role("link", name="Model health of the use case")).first.click()
    expect(page.get_by_test_id("model-health")).to_have_attribute("data-usecase", uc)
    expect(page.get_by_test_id("drift-chart").get_by_test_id("drift-point")).to_have_count(len(story["checks"]))
    night = max(story["checks"])  # the newest night links to its Evidently report
    assert story["checks"][night].get("report"), story["checks"][night]
    expect(page.locator(f"[data-testid=night][data-ds='{night}'] [data-testid=report-link]")).to_have_attribute(
        "href", re.compile(f"/glideslope/reports/{uc}/drift/{night}$"))
    page.screenshot(path=str(RESULTS / "model-health-dag-tab.png"), full_page=True, animations="disabled")
