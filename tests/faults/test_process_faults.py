"""Killed writers, two writers of one day, a full disk, another filesystem, broken Spark outputs.

Child processes are real processes (``kill -9`` cannot be simulated in-process); the day they
work on is prepared without Spark where the case allows (the published outputs of a clean run
copied into the staging area are what the transform would stage: a rerun is byte-identical).
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from glideslope.config import load_usecase
from glideslope.data.landing import land_day
from glideslope.etl.pipeline import run_days, transform, validate_and_publish
from glideslope.lake import STAGING_PREFIX, Lake, LakeBusy
from glideslope.quality import DataQualityError

from .conftest import D0, UC, D, assert_nothing_doubled, case, of_day, published

OUTPUTS = list(load_usecase(UC).output_suites)


def _stage_from(reference_lake: Lake, lake: Lake) -> None:
    """Land D (the feed) and put a clean run's outputs of D into the staging area."""
    land_day(load_usecase(UC), D, lake)
    for out in OUTPUTS:
        dest = Path(lake.staging(D, out))
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(reference_lake.output(D, out), dest)


def _child(code: str, *, wait: bool = True, preexec: Any = None) -> subprocess.Popen[str] | subprocess.CompletedProcess[str]:
    script = textwrap.dedent(code)
    cmd = [sys.executable, "-c", script]
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, preexec_fn=preexec)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec)


def _strays(lake: Lake) -> list[Path]:
    return sorted(Path(lake.base).rglob(f"{STAGING_PREFIX}*"))


@case("kill -9 in the middle of the ETL publish",
      before="the staged file of the table being renamed was left as a `.staging-*` file",
      after="nothing of D is visible, D-1 is untouched; the rerun sweeps the dead writer's file and "
            "publishes byte-identical outputs")
def test_kill_during_publish(lake: Lake, reference_lake: Lake, reference: dict[str, str], spark: Any) -> None:
    _stage_from(reference_lake, lake)
    before = published(lake)
    proc = _child(f"""
        import os, signal
        import glideslope.lake as lk
        from glideslope.config import load_usecase
        from glideslope.etl.pipeline import validate_and_publish
        fsync = lk._fsync_file
        def die(path):  # the first table is beside its final, the rename not yet done
            if "/state/" not in path:  # (the publish journal is written first)
                os.kill(os.getpid(), signal.SIGKILL)
            fsync(path)
        lk._fsync_file = die
        validate_and_publish(load_usecase({UC!r}), {D!r}, lk.Lake(root={lake.root!r}, usecase={UC!r}))
    """)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert published(lake) == {**before, **{k: v for k, v in published(lake).items() if STAGING_PREFIX in k}}
    assert not of_day({k: v for k, v in published(lake).items() if STAGING_PREFIX not in k}, D)
    assert len(_strays(lake)) == 1, "the killed writer left exactly its one staging file"
    run_days(UC, [D], lake=lake, spark=spark)
    assert of_day(published(lake), D) == reference
    assert {k: published(lake)[k] for k in before} == before
    assert_nothing_doubled(lake)


@case("kill -9 between the renames of a day's publish",
      before="the day's tables were published one by one: a writer killed between two renames left D half "
             "published (the first tables new, the others missing) until someone reran the whole ETL of D",
      after="the publish journal (`state/publishing/ds=D.json`) lists every move before the first one; the "
            "next ETL step on D completes them first, so D is whole and byte-identical to a clean run")
def test_kill_between_the_renames_of_a_publish(lake: Lake, reference_lake: Lake, reference: dict[str, str]) -> None:
    _stage_from(reference_lake, lake)
    before = published(lake)
    proc = _child(f"""
        import os, signal
        import glideslope.lake as lk
        from glideslope.config import load_usecase
        from glideslope.etl.pipeline import validate_and_publish
        replace, finals = os.replace, []
        def die_after_the_first(src, dst):
            if "/state/" not in dst:
                if finals:
                    os.kill(os.getpid(), signal.SIGKILL)
                finals.append(dst)
            replace(src, dst)
        lk.os.replace = die_after_the_first
        validate_and_publish(load_usecase({UC!r}), {D!r}, lk.Lake(root={lake.root!r}, usecase={UC!r}))
    """)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    half = of_day({k: v for k, v in published(lake).items() if STAGING_PREFIX not in k}, D)
    assert 0 < len(half) < len(reference), f"the kill was not between two renames: {sorted(half)}"
    assert Path(lake.state(f"publishing/ds={D}")).exists(), "the journal outlives the dead writer"
    assert {k: published(lake)[k] for k in before} == before
    with lake.day_lock(D):  # the next ETL step on D (landing, transform, gate) starts here
        pass
    assert of_day(published(lake), D) == reference
    assert {k: published(lake)[k] for k in before} == before
    assert not Path(lake.state(f"publishing/ds={D}")).exists()
    assert_nothing_doubled(lake)


def _descendants_with(marker: str) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and "java" in cmdline:
            out.append(int(entry.name))
    return out


def _wait_for(predicate: Any, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return predicate()


@case("kill -9 of the ETL while spark-submit runs",
      before="the spark-submit JVM kept running and wrote every staged output 25 s later",
      after="the JVM dies with the ETL process (parent-death signal); nothing is staged or published "
            "afterwards; the rerun publishes")
def test_kill_of_the_etl_leaves_no_spark_behind(lake: Lake, reference: dict[str, str], spark: Any) -> None:
    land_day(load_usecase(UC), D, lake)
    before = published(lake)
    parent = _child(f"""
        from glideslope.config import load_usecase
        from glideslope.etl.pipeline import transform
        from glideslope.lake import Lake
        transform(load_usecase({UC!r}), [{D!r}], lake=Lake(root={lake.root!r}, usecase={UC!r}))
    """, wait=False)
    assert isinstance(parent, subprocess.Popen)
    try:
        jvms = _wait_for(lambda: _descendants_with(lake.root), 120)
        assert jvms, "spark-submit did not start"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(30)
        left = _wait_for(lambda: not _descendants_with(lake.root), 60)
        assert left, f"spark-submit outlived the killed ETL: pids {_descendants_with(lake.root)}"
    finally:
        for pid in _descendants_with(lake.root):
            os.kill(pid, signal.SIGKILL)
    assert not Path(lake.staging(D, OUTPUTS[-1])).exists(), "an orphan staged outputs after the kill"
    assert published(lake) == before
    run_days(UC, [D], lake=lake, spark=spark)
    assert of_day(published(lake), D) == reference
    assert_nothing_doubled(lake)


@case("a Spark failure",
      before="40 lines of the JVM's shutdown log; the cause scrolled away",
      after="the Python traceback of the driver, ending in the cause (here: a delivery landed but never "
            "gated, so there is no reading of it to transform), in a dozen lines")
def test_a_spark_failure_shows_its_cause(lake: Lake) -> None:
    land_day(load_usecase(UC), "2013-09-01", lake)  # landed, never gated: no reading for Spark
    before = published(lake)
    with pytest.raises(RuntimeError) as exc:
        transform(load_usecase(UC), ["2013-09-01"], lake=lake)
    message = str(exc.value)
    assert "RawFileMissing" in message and "raw/flights/ds=2013-09-01" in message, message
    assert len(message.splitlines()) <= 16, message
    assert published(lake) == before


MEET_WAIT = 10.0  # how long the holder waits for the second run inside the day's lock (it never comes)


@case("two ETL runs of the same day at once",
      before="the loser failed with a bare ENOENT (its staged files had been moved by the winner)",
      after="the second waits for the first's day lock, then runs on what it left; both succeed, outputs "
            "byte-identical, nothing doubled")
def test_two_etls_of_one_day(lake: Lake, reference_lake: Lake, reference: dict[str, str], spark: Any,
                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first run holds the day with its outputs staged and publishes only once the second run is
    inside the day too (or, with the lock, once it has waited :data:`MEET_WAIT` for it in vain).

    Without the lock both are inside at once: the first publishes what the second has just staged
    and the second's publish finds nothing staged. The meeting is forced with signal files, so the
    overlap happens on every run, not by timing luck.
    """
    signals = tmp_path / "signals"
    signals.mkdir()
    arrived, inside, staged, done = (signals / n for n in ("arrived", "inside", "staged", "done"))
    holder = _child(f"""
        import shutil, time
        from pathlib import Path
        from glideslope.config import load_usecase
        from glideslope.data.landing import land_day
        from glideslope.etl.pipeline import validate_and_publish, validate_raw
        from glideslope.lake import Lake
        uc, lake, ref = load_usecase({UC!r}), Lake(root={lake.root!r}, usecase={UC!r}), Lake(root={reference_lake.root!r}, usecase={UC!r})
        signals = Path({str(signals)!r})
        def until(name, seconds):
            deadline = time.monotonic() + seconds
            while not (signals / name).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            return (signals / name).exists()
        with lake.day_lock({D!r}):
            land_day(uc, {D!r}, lake)
            validate_raw(uc, {D!r}, lake)
            for out in uc.output_suites:  # what this run's transform staged
                dest = Path(lake.staging({D!r}, out))
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(ref.output({D!r}, out), dest)
            (signals / "held").write_text("")
            assert until("arrived", 300), "the second run never asked for the day"
            if until("inside", {MEET_WAIT!r}):  # no lock kept it out: let it stage, then publish under it
                print("the second run was inside the day while the first held it")
                assert until("staged", 300)
            validate_and_publish(uc, {D!r}, lake)
            (signals / "done").write_text("")
    """, wait=False)
    assert isinstance(holder, subprocess.Popen)

    real_day_lock = Lake.day_lock

    @contextmanager
    def day_lock(self: Lake, ds: str, wait: float = 3600.0) -> Iterator[None]:
        arrived.touch()
        with real_day_lock(self, ds, wait):
            inside.touch()
            yield

    def publish_after_the_first(uc: Any, ds: str, lake: Lake | None = None, gated: Any = None) -> dict[str, Any]:
        staged.touch()  # the second run's outputs of D are staged; the first may publish now
        assert _wait_for(done.exists, 300), "the first run never published"
        return validate_and_publish(uc, ds, lake, gated)

    assert _wait_for((signals / "held").exists, 180), holder.stderr.read() if holder.stderr else ""
    monkeypatch.setattr(Lake, "day_lock", day_lock)
    monkeypatch.setattr("glideslope.etl.pipeline.validate_and_publish", publish_after_the_first)
    try:
        run_days(UC, [D], lake=lake, spark=spark)  # waits for the holder, then runs on what it left
    finally:
        out, err = holder.communicate(timeout=300)
    assert holder.returncode == 0, err[-3000:]
    assert "inside the day while the first held it" not in out, "two ETL runs of one day were inside it at once"
    assert of_day(published(lake), D) == reference
    assert_nothing_doubled(lake)


@case("an ETL of a day whose lock is held too long",
      before="no lock: both ran at once",
      after="`LakeBusy` naming the lock file and the holder's pid, host and start time")
def test_a_held_day_lock_names_its_holder(lake: Lake, tmp_path: Path) -> None:
    held = tmp_path / "held"
    holder = _child(f"""
        import time
        from pathlib import Path
        from glideslope.lake import Lake
        with Lake(root={lake.root!r}, usecase={UC!r}).day_lock({D!r}):
            Path({str(held)!r}).write_text("held")
            time.sleep(30)
    """, wait=False)
    assert isinstance(holder, subprocess.Popen)
    try:
        assert _wait_for(held.exists, 60)
        with pytest.raises(LakeBusy, match=rf"{D}: another ETL run of this day holds .*\.lock \(pid {holder.pid} "):
            with lake.day_lock(D, wait=0.5):
                pass
    finally:
        holder.kill()
        holder.wait(30)
    with lake.day_lock(D, wait=5):  # the kernel released the dead holder's lock
        pass


@case("two publishers of one staged day at once",
      before="the loser: a bare `FileNotFoundError` (ENOENT) from the rename",
      after="one publishes; the other waits for the lock and says the outputs of D were already "
            "published by another run and how to rebuild")
def test_two_publishers_of_one_day(lake: Lake, reference_lake: Lake, reference: dict[str, str]) -> None:
    _stage_from(reference_lake, lake)
    code = f"""
        from glideslope.config import load_usecase
        from glideslope.etl.pipeline import validate_and_publish
        from glideslope.lake import Lake
        validate_and_publish(load_usecase({UC!r}), {D!r}, Lake(root={lake.root!r}, usecase={UC!r}))
    """
    procs = [_child(code, wait=False) for _ in range(2)]
    results = []
    for p in procs:
        assert isinstance(p, subprocess.Popen)
        out, err = p.communicate(timeout=300)
        results.append((p.returncode, err))
    assert sorted(rc for rc, _ in results) == [0, 1], results
    loser = next(err for rc, err in results if rc)
    assert re.search(rf"FileNotFoundError: transform outputs of {UC} {D} are not staged: .*6 of 6 outputs of {D} "
                     r"are published, so another ETL run", loser), loser
    assert of_day(published(lake), D) == reference
    assert_nothing_doubled(lake)


def _small_file_limit(limit: int = 64 * 1024) -> None:
    # Runs between fork and exec: no import here (an import can wait forever on a lock that
    # another thread of the test process held at the fork).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@case("a full disk while landing a delivery",
      before="(not tried)",
      after="the write fails (`File too large`), no partial raw file and no staging file are left; "
            "landing again lands the whole delivery")
def test_full_disk_while_landing(lake: Lake, reference_lake: Lake) -> None:
    before = published(lake, ("raw", "curated", "features"))
    proc = _child(f"""
        from glideslope.config import load_usecase
        from glideslope.data.landing import land_day
        from glideslope.lake import Lake
        land_day(load_usecase({UC!r}), {D!r}, Lake(root={lake.root!r}, usecase={UC!r}))
    """, preexec=_small_file_limit)
    assert proc.returncode == 1 and "OSError: [Errno 27] File too large" in proc.stderr, proc.stderr
    assert published(lake, ("raw", "curated", "features")) == before, "nothing half-written is visible"
    assert not _strays(lake)
    land_day(load_usecase(UC), D, lake)
    delivered = {k: v for k, v in of_day(published(reference_lake, ("raw",)), D).items() if k.endswith(".csv")}
    assert {k: v for k, v in of_day(published(lake, ("raw",)), D).items() if k.endswith(".csv")} == delivered


@case("a full disk while staging Spark outputs",
      before="(not tried)",
      after="the copy into the lake fails (`File too large`); nothing is staged or published, no staging "
            "file is left; the rerun publishes")
def test_full_disk_while_staging(lake: Lake, reference_lake: Lake, reference: dict[str, str], spark: Any) -> None:
    land_day(load_usecase(UC), D, lake)
    before = published(lake)
    # A table goes through publish_file -- a copy from the tmpfs scratch folder -- under the limit.
    src = Path(reference_lake.output(D, "curated/flights"))
    scratch = Path(tempfile.mkdtemp(prefix="faults-tmp-", dir="/dev/shm")) / "part.parquet"
    shutil.copyfile(src, scratch)
    proc = _child(f"""
        from glideslope.lake import Lake
        lake = Lake(root={lake.root!r}, usecase={UC!r})
        lake.publish_file({str(scratch)!r}, lake.staging({D!r}, "curated/flights"))
    """, preexec=lambda: _small_file_limit(src.stat().st_size // 2))
    shutil.rmtree(scratch.parent)
    assert proc.returncode == 1 and "File too large" in proc.stderr, proc.stderr
    assert not Path(lake.staging(D, "curated/flights")).exists()
    assert not _strays(lake) and published(lake) == before
    run_days(UC, [D], lake=lake, spark=spark)
    assert of_day(published(lake), D) == reference
    assert_nothing_doubled(lake)


@case("a lake on another filesystem than the temp folder",
      before="`os.replace` from a tmpfs `/tmp` into the lake raised EXDEV (fixed before this battery)",
      after="outputs are copied into a staging file beside the partition, then renamed: published")
def test_lake_on_another_filesystem(base_lake: Lake, spark: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    shm = Path("/dev/shm")
    root = Path(__file__).resolve().parents[2] / ".glideslope"
    root.mkdir(exist_ok=True)
    lake_dir = Path(tempfile.mkdtemp(prefix="faults-lake-", dir=root))
    scratch = Path(tempfile.mkdtemp(prefix="faults-tmp-", dir=shm))
    try:
        assert os.stat(lake_dir).st_dev != os.stat(scratch).st_dev, "needs /dev/shm to be a tmpfs"
        lake = Lake(root=str(lake_dir / "lake"), usecase=UC)
        monkeypatch.setattr(tempfile, "tempdir", str(scratch))
        run_days(UC, [D0], lake=lake, spark=spark)
        assert of_day(published(lake), D0) == of_day(published(base_lake), D0)
        assert_nothing_doubled(lake)
        assert not list(scratch.iterdir()), "the scratch files were consumed"
    finally:
        shutil.rmtree(lake_dir, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


@case("a corrupted Parquet file in the staging area",
      before="a pyarrow error naming neither the output nor the day",
      after="the output gate names the output, the day, the raw deliveries and the file; the torn file "
            "is quarantined; the rerun publishes")
def test_corrupted_staged_parquet(lake: Lake, reference_lake: Lake, reference: dict[str, str], spark: Any) -> None:
    _stage_from(reference_lake, lake)
    torn = Path(lake.staging(D, "features/route_stats"))
    torn.write_bytes(torn.read_bytes()[: torn.stat().st_size // 2])
    before = published(lake)
    with pytest.raises(DataQualityError) as exc:
        validate_and_publish(load_usecase(UC), D, lake)
    assert re.search(rf"{UC} features/route_stats of {D} \(built from .*raw/flights/ds={D}/flights.csv.*\): table "
                     rf"rule staged file .*_staging/ds={D}/features/route_stats/data.parquet is readable Parquet",
                     str(exc.value)), str(exc.value)
    assert published(lake) == before
    run_days(UC, [D], lake=lake, spark=spark)
    assert of_day(published(lake), D) == reference
    assert_nothing_doubled(lake)


def _stage_frame(lake: Lake, out: str, fn: Any) -> None:
    import pandas as pd

    path = lake.staging(D, out)
    df = fn(pd.read_parquet(path))
    df.to_parquet(path, index=False, coerce_timestamps="us", allow_truncated_timestamps=True)


@case("garbage routes in a typed output",
      before="published: the output gate never applied the route regex to typed outputs (709 of 901 routes "
             "`N0EGMQ-EWR` after an extra column)",
      after="rejected: `route` does not match `^[A-Z]{3}-[A-Z]{3}$`, named with the raw deliveries of D; "
            "quarantined; the rerun publishes")
def test_output_regex_rule(lake: Lake, reference_lake: Lake, reference: dict[str, str], spark: Any) -> None:
    _stage_from(reference_lake, lake)
    _stage_frame(lake, "features/route_stats", lambda df: df.assign(route="N0EGMQ-" + df["route"].str[-3:]))
    before = published(lake)
    with pytest.raises(DataQualityError) as exc:
        validate_and_publish(load_usecase(UC), D, lake)
    msg = str(exc.value)
    assert re.search(rf"{UC} features/route_stats of {D} \(built from [^)]*raw/weather/ds={D}/weather.csv\): "
                     r"column 'route' rule matches regex \^\[A-Z\]\{3\}-\[A-Z\]\{3\}\$: \d+ bad rows", msg), msg
    assert "_staging" not in msg.split("moved to quarantine")[0], "the error names the delivery, not staging"
    assert published(lake) == before and lake.quarantined("features__route_stats", D)
    run_days(UC, [D], lake=lake, spark=spark)
    assert of_day(published(lake), D) == reference
    assert_nothing_doubled(lake)


@case("an empty typed output",
      before="`table_row_count_to_be_between(min_value=1, max_value=100)`, no observed count",
      after="the failure shows `observed 0 rows`; nothing of D is published; the rerun publishes")
def test_output_row_count_shows_the_count(lake: Lake, reference_lake: Lake) -> None:
    _stage_from(reference_lake, lake)
    _stage_frame(lake, "features/carrier_stats", lambda df: df.iloc[0:0])
    before = published(lake)
    with pytest.raises(DataQualityError, match=r"carrier_stats of .*table rule table_row_count_to_be_between\("
                       r"min_value=1, max_value=100\) \(observed 0 rows\)"):
        validate_and_publish(load_usecase(UC), D, lake)
    assert published(lake) == before
    _stage_from(reference_lake, lake)  # the rerun's transform stages the table again
    validate_and_publish(load_usecase(UC), D, lake)
    assert of_day(published(lake), D) == of_day(published(reference_lake), D)
    assert_nothing_doubled(lake)


def _killed_while_writing(lake: Lake, final: str, data: bytes) -> Any:
    """A child that starts publishing ``final``, writes ``data`` to its staging file and is killed."""
    return _child(f"""
        import os, signal
        from glideslope.lake import Lake
        lake = Lake(root={lake.root!r}, usecase={UC!r})
        with lake.publishing({final!r}) as staging, open(staging, "wb") as f:
            f.write({data!r})
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    """)


@case("kill -9 in the middle of a drift report write",
      before="the killed check's `.staging-*` file stayed in `reports/drift/ds=D/` unless night D was "
             "checked again",
      after="the published report is untouched; the next drift check of any night sweeps the dead "
            "writer's file (`run_check` sweeps every night's report folder)")
def test_kill_during_a_drift_report_write(lake: Lake) -> None:
    from glideslope.drift.monitor import report_paths, run_check

    html = report_paths(lake, D)["html"]
    lake.publish_bytes(html, b"<html>the report of night D</html>")
    good = Path(html).read_bytes()
    proc = _killed_while_writing(lake, html, b"<html>half a rep")
    assert proc.returncode == -signal.SIGKILL
    assert Path(html).read_bytes() == good
    assert len(_strays(lake)) == 1
    # The next check, of another night, sweeps it and leaves D's report alone.
    numbers = run_check(UC, D0, lake, log_to_mlflow=False)
    assert numbers["ds"] == D0 and Path(report_paths(lake, D0)["html"]).exists()
    assert Path(html).read_bytes() == good and not _strays(lake)
