"""Exclusive locks for the few read-modify-write steps that processes on different machines share.

Two things are changed by more than one writer: the ``champion`` alias with its history (the train
stage's promotion, ``glideslope rollback``, the train stage's rollback path) and a use case's
drift state (the monitor, the train stage, ``glideslope ack``). Neither store offers a
conditional update that covers the whole change, so each change runs under one lock per thing
changed (ADR 0011):

* **local lake** (the embedded profile): ``fcntl.flock`` on a file under
  ``<lake>/<usecase>/state/locks/``. The kernel releases it when the holder dies, even by
  ``kill -9``; every process of the machine sees it.
* **lock server** (``GLIDESLOPE_LOCK_URL=redis://...``, the production profile): a Redis lock
  (``SET NX PX`` with a random token, released only by its holder, see ``redis.lock.Lock``).
  A holder that dies leaves it until its lease runs out (:data:`LEASE_SECONDS`).

A remote lake without a lock server is refused with a clear error: an unlocked read-modify-write
loses updates. Waiting is bounded: after ``wait`` seconds :class:`LockTimeout` names the lock and
its holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from glideslope.errors import PermanentError
from glideslope.lake import Lake

log = logging.getLogger(__name__)

# A critical section is a handful of MLflow or S3 calls (seconds). The lease only matters when a
# holder dies without releasing; its waiters then take over after this long.
LEASE_SECONDS = 300.0
WAIT_SECONDS = 600.0


class LockTimeout(TimeoutError):
    """The lock was not free within the wait; the message names it and its holder.

    ``where`` is the lock file or server key, ``holder`` the holder's record as far as it is known
    (``host``, ``pid``, ``since``), or ``None``.
    """

    def __init__(self, message: str, where: str = "", holder: dict[str, Any] | None = None):
        super().__init__(message)
        self.where = where
        self.holder = holder


def _record(text: Any) -> dict[str, Any] | None:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    try:
        rec = json.loads(text) if text else None
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


def describe(holder: dict[str, Any] | None) -> str:
    """A holder record as a person reads it: ``pid 4242 on host-a since 2026-12-01T10:00:00Z``."""
    if not holder:
        return "an unknown process"
    return f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')}"


# Re-entrant locks this process holds, by file or key: [holder record, depth]. An ETL of several
# days holds each day's lock, and each day's steps take it again.
_HELD: dict[str, list[Any]] = {}
_HELD_GUARD = threading.Lock()


class LockUnavailable(PermanentError, RuntimeError):
    """This lake has no lock mechanism (a remote lake and no GLIDESLOPE_LOCK_URL): a setting is missing."""


def _holder() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "token": uuid.uuid4().hex,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def lock_path(lake: Lake, name: str) -> str:
    """Where the file lock ``name`` of this use case lives on a local lake."""
    return f"{lake.base}/state/locks/{name}.lock"


def lock_key(lake: Lake, name: str) -> str:
    """The lock server's key of the lock ``name`` of this use case."""
    return f"glideslope:lock:{lake.root}/{lake.usecase}:{name}"


@contextlib.contextmanager
def exclusive(lake: Lake, name: str, *, wait: float = WAIT_SECONDS, lease: float = LEASE_SECONDS,
              required: bool = True, reentrant: bool = False) -> Iterator[dict[str, Any] | None]:
    """Hold the lock ``name`` of ``lake``'s use case for the ``with`` block; yields the holder record.

    With ``reentrant`` a nested ``exclusive`` of the same lock in this process passes through
    (by default it waits like any other holder would). On a remote lake without a lock server it
    raises :class:`LockUnavailable`, or, with ``required=False``, runs the block unlocked
    (yielding ``None``) after a warning.
    """
    where = lock_key(lake, name) if lake.lock_url else lock_path(lake, name)
    with _HELD_GUARD:
        held = _HELD.get(where) if reentrant else None
        if held:
            held[1] += 1
    if held:
        try:
            yield held[0]
        finally:
            with _HELD_GUARD:
                held[1] -= 1
        return
    if not lake.lock_url and lake.is_remote:
        message = (f"{lake.base} is a remote lake and GLIDESLOPE_LOCK_URL is not set: the lock {name!r} "
                   "cannot be taken, and an unlocked update can lose a concurrent writer's change. Set "
                   "GLIDESLOPE_LOCK_URL=redis://<host>:<port>/<db> (docker-compose.yaml uses redis://redis:6379/2)")
        if required:
            raise LockUnavailable(message)
        log.warning("%s; running without it", message)
        yield None
        return
    acquire = (_redis_lock(lake, name, wait, lease) if lake.lock_url
               else _file_lock(Path(where), name, wait))
    with acquire as holder:
        if not reentrant:
            yield holder
            return
        with _HELD_GUARD:
            _HELD[where] = [holder, 1]
        try:
            yield holder
        finally:
            with _HELD_GUARD:
                _HELD.pop(where, None)


@contextlib.contextmanager
def _file_lock(path: Path, name: str, wait: float) -> Iterator[dict[str, Any]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = _holder()
    with open(path, "a+") as fh:
        deadline = time.monotonic() + wait
        pause = 0.01
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.seek(0)
                    text = fh.read().strip()
                    raise LockTimeout(f"lock {name!r} ({path}) not free after {wait:.0f}s; "
                                      f"held by {text or 'an unknown process'}", str(path), _record(text)) from None
                time.sleep(pause)  # polling the kernel lock; the lock itself does the exclusion
                pause = min(pause * 2, 0.2)
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps(holder))
            fh.flush()
            yield holder
        finally:
            fh.seek(0)
            fh.truncate()
            fh.flush()
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _redis_lock(lake: Lake, name: str, wait: float, lease: float) -> Iterator[dict[str, Any]]:
    import redis

    assert lake.lock_url
    client = redis.Redis.from_url(lake.lock_url)
    key = lock_key(lake, name)
    holder = _holder()
    lock = client.lock(key, timeout=lease, blocking=True, blocking_timeout=wait, thread_local=False)
    token = json.dumps(holder)
    if not lock.acquire(token=token):
        current: Any = client.get(key)
        if isinstance(current, bytes):
            current = current.decode()
        raise LockTimeout(f"lock {name!r} ({key} on the lock server) not free after {wait:.0f}s; held by "
                          f"{current or 'nobody now (released just after the wait)'}", key, _record(current))
    try:
        yield holder
    except BaseException:
        _release(lock, key, token, quiet=True)
        raise
    else:
        _release(lock, key, token, quiet=False)
    finally:
        client.close()


def _release(lock: Any, key: str, token: str, quiet: bool) -> None:
    import redis

    try:
        lock.release()
    except redis.exceptions.LockNotOwnedError:
        # The lease ran out while this holder worked: another writer may have changed the guarded
        # thing meanwhile. The guarded writes carry their own checks (generation, ETag).
        if not quiet:
            raise LockTimeout(f"lock {key} expired while held by {token}: its lease was too short "
                              "for this step") from None
