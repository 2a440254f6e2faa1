"""The UIs ``make up`` serves, in headless chromium: find the ETL DAG, read its docs, trigger a run
for a chosen day and see it listed; open the MLflow UI."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from stack_fixture import AirflowStack

pytestmark = pytest.mark.browser

DAG_ID = "flight_delay__etl"


@pytest.fixture(scope="session")
def etl_details(airflow_ui: AirflowStack) -> dict:
    return airflow_ui.wait_for_dag(DAG_ID)


def _plain(markdown: str) -> str:
    return re.sub(r"\s+", " ", markdown.replace("`", "").replace("*", "")).strip()


def test_dag_list_shows_the_etl_and_its_docs(etl_details: dict, logged_in: Page, airflow_ui: AirflowStack) -> None:
    page = logged_in
    doc = etl_details["doc_md"]
    headings = [_plain(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*$", doc, flags=re.M)]
    emphasised = [_plain(s) for s in re.findall(r"\*\*(.+?)\*\*", doc, flags=re.S)]
    assert headings, f"{DAG_ID}: doc_md has no Markdown heading"

    link = page.get_by_test_id("dag-id").filter(has_text=DAG_ID)
    expect(link).to_have_attribute("href", f"/dags/{DAG_ID}")
    link.click()
    expect(page).to_have_url(f"{airflow_ui.url}/dags/{DAG_ID}")

    page.get_by_test_id("markdown-button").click()  # the book icon, "Dag Docs"
    docs = page.get_by_role("dialog")
    expect(docs.get_by_role("heading", name="Dag Documentation")).to_be_visible()
    for heading in headings:
        expect(docs.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    if emphasised:  # rendered as HTML, not shown as raw Markdown
        expect(docs.locator("strong")).to_have_text(emphasised)
    expect(docs).not_to_contain_text("**")
    page.screenshot(path=str(airflow_ui.home / "etl_docs.png"), animations="disabled")


def test_trigger_for_a_day_from_the_ui_lists_the_run(etl_details: dict, logged_in: Page,
                                                     airflow_ui: AirflowStack) -> None:
    page = logged_in
    day = "2013-01-02"
    page.goto(f"/dags/{DAG_ID}")
    page.get_by_test_id("trigger-dag-button").click()
    dialog = page.get_by_role("dialog")
    # Leave the DAG paused: the run is created and listed, the ETL itself is tested elsewhere.
    unpause = dialog.get_by_role("checkbox")
    expect(unpause).to_be_checked()
    dialog.get_by_text(f"Unpause {DAG_ID} on trigger").click()
    expect(unpause).not_to_be_checked()
    dialog.locator("input[name=element_ds]").fill(day)  # the DAG's `ds` Param, as a form field

    with page.expect_response(lambda r: r.request.method == "POST"
                              and r.url.endswith(f"/api/v2/dags/{DAG_ID}/dagRuns")) as created:
        page.get_by_test_id("trigger-dag-submit").click()
    assert created.value.ok, created.value.text()
    run = created.value.json()
    # The range Params (start, end) stay empty: a run for one day.
    assert {k: v for k, v in run["conf"].items() if v is not None} == {"ds": day}, run["conf"]

    page.goto(f"/dags/{DAG_ID}/runs")
    row = page.get_by_role("row").filter(has=page.get_by_test_id("table-cell-dag_run_id").filter(
        has_text=run["dag_run_id"]))
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("table-cell-state")).to_have_text("Queued")
    expect(row.get_by_test_id("table-cell-triggering_user_name")).to_have_text(airflow_ui.user)

    assert airflow_ui.api("GET", f"/api/v2/dags/{DAG_ID}")["is_paused"] is True


def test_up_serves_the_mlflow_ui_it_printed(airflow_ui: AirflowStack, page: Page) -> None:
    mlflow_url = airflow_ui.up.mlflow_url
    assert mlflow_url, f"`glideslope up` printed no MLflow UI URL:\n{airflow_ui.up.text}"
    page.goto(mlflow_url)
    expect(page).to_have_title(re.compile("MLflow"))
    expect(page.get_by_text("Experiments").first).to_be_visible()


def test_an_asset_triggered_training_shows_the_drift_event_that_started_it(logged_in: Page,
                                                                           airflow_ui: AirflowStack) -> None:
    """After the replay (tests/loop_fixture.py), the drift-triggered training as a person finds it."""
    from glideslope_local.api import Airflow
    from loop_fixture import SHIFT_FROM, replayed

    loop = replayed(Airflow(airflow_ui.url, airflow_ui.user, airflow_ui.password), airflow_ui.home, airflow_ui.env)
    assert loop.demo.returncode == 0, loop.demo.stdout[-3000:]
    run_id = loop.night(SHIFT_FROM)["runs"]["train"]["run_id"]
    page = logged_in
    page.goto(f"/dags/{loop.dag('train')}/runs/{run_id}/asset_events")  # the run's "Asset Events" tab
    expect(page.get_by_text("Asset Triggered").first).to_be_visible()
    expect(page.get_by_text("Source Asset Event").first).to_be_visible()
    expect(page.get_by_text(f"{loop.dag('train').split('__')[0]}.drift", exact=True).first).to_be_visible()
    expect(page.get_by_text(loop.dag("monitor"), exact=True).first).to_be_visible()
    page.screenshot(path=str(airflow_ui.home / "asset_triggered_train_run.png"), animations="disabled")
