"""Atomic publication into the lake: across filesystems, and after a writer was killed.

The temp folder is a real tmpfs (``/dev/shm``) and the lake a folder on disk inside the checkout,
as on hosts whose ``/tmp`` is a tmpfs (current Debian, Fedora, Arch): a rename between the two
raises ``EXDEV``, so publication must copy into a staging file beside the target.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fs_support import disk_folder, tmpfs_folder

from glideslope.lake import Lake

pytestmark = pytest.mark.unit

DS = "2013-03-01"
STAGING_PREFIX = ".staging-"


@pytest.fixture
def disk_lake() -> Iterator[Lake]:
    with disk_folder() as root:
        yield Lake(root=str(root), usecase="flight_delay")


@pytest.fixture
def tmpfs_tempdir(monkeypatch, disk_lake) -> Iterator[Path]:
    """TMPDIR (and so every ``TemporaryDirectory()``) on a tmpfs, another filesystem than the lake."""
    with tmpfs_folder(Path(disk_lake.root)) as tmp:
        monkeypatch.setenv("TMPDIR", str(tmp))
        monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() caches: make it read TMPDIR again
        assert tempfile.gettempdir() == str(tmp)
        yield tmp


def _staging_files(folder: str) -> list[str]:
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith(STAGING_PREFIX))


def test_a_file_from_a_tmpfs_temp_dir_publishes_into_a_lake_on_disk(disk_lake, tmpfs_tempdir):
    final = disk_lake.features("carrier_stats", DS)
    payload = b"PAR1" + os.urandom(4096) + b"PAR1"
    with tempfile.TemporaryDirectory() as tmp:  # what the Spark job and the drift report do
        assert Path(tmp).parent == tmpfs_tempdir
        src = Path(tmp) / "data.parquet"
        src.write_bytes(payload)
        disk_lake.publish_file(src, final)
        assert not src.exists(), "publish_file consumes its input"
    assert Path(final).read_bytes() == payload
    assert _staging_files(str(Path(final).parent)) == []
    assert disk_lake.partitions(disk_lake.features("carrier_stats")) == [DS]


def test_republishing_over_a_partition_from_a_tmpfs_replaces_it_whole(disk_lake, tmpfs_tempdir):
    final = disk_lake.predictions(DS)
    disk_lake.publish_bytes(final, b"old")
    src = tmpfs_tempdir / "new.parquet"
    src.write_bytes(b"new" * 1000)
    disk_lake.publish_file(src, final)
    assert Path(final).read_bytes() == b"new" * 1000


_WRITER = textwrap.dedent("""
    import os, signal, sys
    from glideslope.lake import Lake

    lake = Lake(root=sys.argv[1], usecase="flight_delay")
    with lake.publishing(sys.argv[2]) as staging, open(staging, "wb") as f:
        f.write(b"half a partition")
        f.flush()
        print(staging, flush=True)
        if sys.argv[3] == "die":
            os.kill(os.getpid(), signal.SIGKILL)  # a writer killed in the middle of its write
        sys.stdin.readline()  # a live writer: waits until the test lets it finish
        f.write(b" and the rest")
""")


def _writer(lake: Lake, final: str, mode: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _WRITER, lake.root, final, mode], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ})


def test_the_next_writer_sweeps_the_staging_file_of_a_killed_one(disk_lake):
    final = disk_lake.predictions(DS)
    disk_lake.publish_bytes(final, b"last good")
    killed = _writer(disk_lake, final, "die")
    staged = killed.stdout.readline().strip()
    assert killed.wait(timeout=60) == -signal.SIGKILL
    assert Path(staged).exists(), "a killed writer leaves its staging file behind"
    assert Path(final).read_bytes() == b"last good", "the last good partition is untouched"

    disk_lake.publish_bytes(final, b"next run")
    assert Path(final).read_bytes() == b"next run"
    assert _staging_files(str(Path(final).parent)) == [], "the next writer of the partition sweeps it"


def test_a_live_writers_staging_file_is_left_alone(disk_lake):
    final = disk_lake.predictions(DS)
    live = _writer(disk_lake, final, "wait")
    try:
        staged = live.stdout.readline().strip()
        disk_lake.publish_bytes(final, b"other writer")
        assert Path(staged).exists(), "a writer that is still running keeps its staging file"
        live.stdin.write("go\n")
        live.stdin.flush()
        assert live.wait(timeout=60) == 0
    finally:
        live.kill()
    assert Path(final).read_bytes() == b"half a partition and the rest", "the last complete write wins"
    assert _staging_files(str(Path(final).parent)) == []


def test_staging_files_of_other_hosts_go_only_once_they_are_stale(disk_lake):
    folder = Path(disk_lake.predictions(DS)).parent
    folder.mkdir(parents=True)
    old = folder / f"{STAGING_PREFIX}worker_7-4242-{'a' * 32}-data.parquet"
    fresh = folder / f"{STAGING_PREFIX}worker_7-4243-{'b' * 32}-data.parquet"
    legacy = folder / f"{STAGING_PREFIX}{'c' * 32}-data.parquet"  # the name before writers were named
    for f in (old, fresh, legacy):
        f.write_bytes(b"x")
    week_ago = time.time() - 7 * 24 * 3600
    os.utime(old, (week_ago, week_ago))
    os.utime(legacy, (week_ago, week_ago))
    disk_lake.publish_bytes(disk_lake.predictions(DS), b"data")
    assert _staging_files(str(folder)) == [fresh.name]
