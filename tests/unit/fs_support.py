"""Two real filesystems for publication tests: a tmpfs for temp files, the checkout's disk for the lake."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHM = Path("/dev/shm")


def cannot_run(reason: str) -> None:
    """This host lacks the second filesystem: skip on a workstation, fail in CI (CI never passes by skipping)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the cross-filesystem tests must run, not skip)", pytrace=False)
    pytest.skip(reason)


@contextmanager
def disk_folder(prefix: str = "test-lake-") -> Iterator[Path]:
    """A fresh folder on the checkout's filesystem (under the git-ignored ``.glideslope/``)."""
    base = ROOT / ".glideslope"
    base.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def tmpfs_folder(other_than: Path, prefix: str = "glideslope-test-tmp-") -> Iterator[Path]:
    """A fresh folder on the ``/dev/shm`` tmpfs, which must be another filesystem than ``other_than``."""
    if not SHM.is_dir() or not os.access(SHM, os.W_OK):
        cannot_run("no writable /dev/shm tmpfs on this host")
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=SHM))
    try:
        if os.stat(tmp).st_dev == os.stat(other_than).st_dev:
            cannot_run("/dev/shm and the checkout are on the same filesystem here")
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
