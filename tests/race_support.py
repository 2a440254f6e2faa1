"""Two real processes that race: contenders for the champion alias and the drift state.

Each :class:`Contender` is a spawned process (its own interpreter, its own MLflow client and
SQLAlchemy engine) that runs jobs sent to it. :func:`race` hands one job to each and releases
both at the same instant from a start barrier. Inside the job, right before the first write of
the move that matters (the champion's generation tag, which a move writes before the alias, or the
alias itself; the drift state's write), the contender waits at a second barrier for the other one,
at most :data:`MEET_WAIT` seconds. Without a lock both have read and neither has written, so both
act on what they read -- the lost update happens every time, not by luck.
With a lock the second is still waiting for it, the first goes on after the bounded wait, and the
second then sees the first one's change.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing as mp
import os
import traceback
import uuid
from typing import Any

MEET_WAIT = 2.0
_CTX = mp.get_context("spawn")
_MEET: dict[str, Any] = {}


def _meet() -> None:
    barrier = _MEET.pop("barrier", None)
    if barrier is not None:
        with contextlib.suppress(Exception):  # broken or timed out: the other one is held elsewhere
            barrier.wait(MEET_WAIT)


def _install_hooks() -> None:
    from mlflow import MlflowClient

    from glideslope.lake import Lake

    set_alias = MlflowClient.set_registered_model_alias

    def set_alias_after_meeting(self: Any, name: str, alias: str, version: Any) -> Any:
        if alias == "champion":
            _meet()
        return set_alias(self, name, alias, version)

    MlflowClient.set_registered_model_alias = set_alias_after_meeting  # type: ignore[method-assign]

    set_tag = MlflowClient.set_registered_model_tag

    def set_tag_after_meeting(self: Any, name: str, key: str, value: Any) -> Any:
        # A move writes the champion's generation before the alias: its first write. Meeting
        # there, both contenders have read the registry and neither has changed it yet.
        if key == GENERATION:
            _meet()
        return set_tag(self, name, key, value)

    MlflowClient.set_registered_model_tag = set_tag_after_meeting  # type: ignore[method-assign]

    write_json = Lake.write_json
    fs_prop = Lake.fs

    def write_json_after_meeting(self: Any, path: str, obj: Any) -> None:
        if path.endswith("/state/drift.json"):
            _meet()
        write_json(self, path, obj)

    Lake.write_json = write_json_after_meeting  # type: ignore[method-assign]

    class _MeetingFs:
        """The lake's filesystem, meeting the other contender before the state document's PUT."""

        def __init__(self, fs: Any) -> None:
            self._fs = fs

        def pipe_file(self, path: str, *args: Any, **kwargs: Any) -> Any:
            if path.endswith("/state/drift.json"):
                _meet()
            return self._fs.pipe_file(path, *args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._fs, name)

    Lake.fs = property(lambda self: _MeetingFs(fs_prop.fget(self)))  # type: ignore[method-assign,assignment]


def _serve(inbox: Any, outbox: Any) -> None:
    _install_hooks()
    outbox.put("ready")
    while True:
        job = inbox.get()
        if job is None:
            return
        fn, args, start, meet = job
        _MEET["barrier"] = meet
        try:
            start.wait(60)
            outbox.put(("ok", fn(*args)))
        except BaseException as e:  # noqa: BLE001 - reported to the test
            outbox.put(("error", type(e).__name__, str(e), traceback.format_exc(limit=3)))
        finally:
            _MEET.pop("barrier", None)


class Contender:
    def __init__(self) -> None:
        self.inbox, self.outbox = _CTX.Queue(), _CTX.Queue()
        self.proc = _CTX.Process(target=_serve, args=(self.inbox, self.outbox), daemon=True)
        self.proc.start()

    def ready(self) -> None:
        assert self.outbox.get(timeout=180) == "ready"

    def stop(self) -> None:
        self.inbox.put(None)
        self.proc.join(30)
        if self.proc.is_alive():
            self.proc.kill()


class Arena:
    """Two contenders and the barriers that release them together."""

    def __init__(self) -> None:
        self.manager = _CTX.Manager()
        self.contenders = [Contender(), Contender()]
        for c in self.contenders:
            c.ready()

    def race(self, first: tuple, second: tuple) -> list[tuple]:
        """Run ``(fn, args)`` pairs, one per contender, released at once; their outcomes in order."""
        start, meet = self.manager.Barrier(2), self.manager.Barrier(2)
        for c, (fn, args) in zip(self.contenders, (first, second), strict=True):
            c.inbox.put((fn, args, start, meet))
        return [c.outbox.get(timeout=300) for c in self.contenders]

    def close(self) -> None:
        for c in self.contenders:
            c.stop()
        self.manager.shutdown()


# -- the registry as the test process sets it up and reads it back ---------------------------------
DS = "2013-01-08"
HISTORY = "glideslope.champion_history"
GENERATION = "glideslope.champion_generation"


def tracking_client():
    from glideslope.training import tracking

    return tracking.client()


def new_model(versions: int, name: str | None = None) -> tuple[str, dict[str, str]]:
    """A registered model with ``versions`` versions, each from its own run; {version: run_id}."""
    client = tracking_client()
    name = name or f"race_{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    runs = {}
    for _ in range(versions):
        run = client.create_run("0")
        mv = client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
        runs[str(mv.version)] = run.info.run_id
    return name, runs


def champion_state(name: str) -> tuple[str | None, list[str], int]:
    model = tracking_client().get_registered_model(name)
    champion = model.aliases.get("champion")
    return (None if champion is None else str(champion), json.loads(model.tags.get(HISTORY, "[]")),
            int(model.tags.get(GENERATION) or 0))


def passing_evaluation(name: str, runs: dict[str, str], challenger: str) -> dict:
    """A passing evaluation of ``challenger`` against the champion of now (the policy has its own tests)."""
    champion, _, generation = champion_state(name)
    return {
        "usecase": name, "ds": DS, "registered_model": name, "challenger_version": challenger,
        "champion_version": champion, "champion_generation": generation,
        "challenger_run_id": runs[challenger], "holdout": f"{DS}..{DS}", "holdout_rows": 100,
        "training_set": "", "evaluated_at": "", "outcome": "promote", "reason": "better",
        "message": f"v{challenger} is better", "run_url": "", "model_version_url": "",
        "decision": {"promote": True, "evidence": {"metric": "roc_auc", "challenger": 0.7, "champion": 0.6,
                                                   "delta": 0.1, "ci_low": 0.05, "ci_high": 0.15}},
    }


def promote_chain(name: str, runs: dict[str, str], *versions: str) -> None:
    """Promote ``versions`` one after the other (one process, no race)."""
    from glideslope.config import load_usecase
    from glideslope.registry.promotion import promote

    uc = load_usecase("flight_delay")
    uc = uc if name == uc.name else uc.model_copy(update={"name": name})
    for v in versions:
        promote(uc, passing_evaluation(name, runs, v))


# -- jobs (run inside a contender) -----------------------------------------------------------------
def _usecase(name: str) -> Any:
    from glideslope.config import load_usecase

    uc = load_usecase("flight_delay")
    return uc if name == uc.name else uc.model_copy(update={"name": name})


def promote_job(name: str, evaluation: dict) -> dict:
    from glideslope.registry.promotion import promote

    return promote(_usecase(name), evaluation)


def rollback_job(name: str, reason: str, to_version: str | None = None) -> dict:
    from glideslope.registry.promotion import rollback

    return rollback(_usecase(name), reason, to_version)


def cli_job(argv: list[str]) -> dict:
    from glideslope.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return {"exit": code, "stderr": err.getvalue()}


def record_retrain_job(usecase: str, ds: str, version: str, env: dict[str, str]) -> dict:
    os.environ.update(env)
    from glideslope.drift.state import record_retrain

    return record_retrain(usecase, ds, "promoted", model_version=version)
