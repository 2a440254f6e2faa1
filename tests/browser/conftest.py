"""The stack started exactly as ``make up`` starts it, and the Debian chromium driven by Playwright.

Once per session, ``glideslope up`` runs in a temporary home on free ports (Airflow on the
project's dags/ and plugins/, the MLflow UI, the alert sinks); ``glideslope down`` stops it.
The stack is the one tests/stack_fixture.py holds for the whole session, so the scheduler tests
in tests/integration drive the same running Airflow.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from stack_fixture import AirflowStack, shared_stack

CHROMIUM = Path("/usr/bin/chromium")  # Debian package (make chromium); no `playwright install`
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]

expect.set_options(timeout=30_000)  # 5 s is tight on 2 cores while Airflow parses and schedules


@pytest.fixture(scope="session", autouse=True)
def _chromium_installed() -> None:
    if not CHROMIUM.exists():
        msg = f"{CHROMIUM} is missing: run `make chromium` (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="session")
def airflow_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    """``glideslope up`` (what ``make up`` runs) in a home of its own, shared with the scheduler tests."""
    with shared_stack(tmp_path_factory) as running:
        yield running


# pytest-playwright: launch the system chromium instead of a downloaded build.
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    return {**browser_context_args, "viewport": {"width": 1400, "height": 900}}


@pytest.fixture(scope="session")
def base_url(airflow_ui: AirflowStack) -> str:
    return airflow_ui.url


@pytest.fixture
def logged_in(page: Page, airflow_ui: AirflowStack) -> Page:
    page.goto("/dags")
    expect(page).to_have_url(f"{airflow_ui.url}/auth/login?next=%2Fdags")
    page.locator("input[name=username]").fill(airflow_ui.user)
    page.locator("input[name=password]").fill(airflow_ui.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{airflow_ui.url}/dags")
    return page
