"""The lock server's two hard paths, on a real redis-server: a lease that runs out while its holder
works, and a holder killed with the lock in hand.

A remote lake's locks live on the lock server (``GLIDESLOPE_LOCK_URL``, :mod:`glideslope.locks`):
``SET NX PX`` with the holder's record as the token and a lease. The kernel cannot release a dead
holder's lock there, so the lease does: its waiters take over once it runs out, and a holder whose
lease ran out meanwhile is told so instead of believing it held the lock throughout.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from glideslope.lake import Lake
from glideslope.locks import LockTimeout, exclusive, lock_key

pytestmark = pytest.mark.services


@pytest.fixture
def lake(redis_url: str, tmp_path: Path) -> Lake:
    """A lake whose locks are on the test's redis-server (db 3, its own key per test)."""
    return Lake(root=str(tmp_path / f"lake-{uuid.uuid4().hex[:6]}"), usecase="flight_delay",
                lock_url=f"{redis_url}/3")


def _redis(lake: Lake):  # type: ignore[no-untyped-def]
    import redis

    assert lake.lock_url
    return redis.Redis.from_url(lake.lock_url)


def test_a_holder_whose_lease_ran_out_is_told_and_does_not_release_the_next_holders_lock(lake: Lake) -> None:
    client = _redis(lake)
    key = lock_key(lake, "drift-state")
    with pytest.raises(LockTimeout, match=rf"lock {key} expired while held by .*lease was too short"):
        with exclusive(lake, "drift-state", lease=300) as first:
            # The lease runs out now (what a holder stalled past LEASE_SECONDS sees), and another
            # writer takes the lock, as a waiter would.
            client.pexpire(key, 1)
            with exclusive(lake, "drift-state", wait=30, lease=300) as second:
                assert second["token"] != first["token"]
                held_by_second = client.get(key)
            assert json.loads(held_by_second)["token"] == second["token"]
            # The second released its own; take it once more to see the first's exit leave it alone.
            third = exclusive(lake, "drift-state", wait=30, lease=300)
            third_holder = third.__enter__()
    try:
        assert json.loads(client.get(key))["token"] == third_holder["token"], "the expired holder released another's lock"
    finally:
        third.__exit__(None, None, None)
    assert client.get(key) is None


def test_a_holder_killed_with_the_lock_blocks_until_its_lease_runs_out(lake: Lake, tmp_path: Path) -> None:
    client = _redis(lake)
    key = lock_key(lake, "champion-flight_delay")
    held = tmp_path / "held"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from glideslope.lake import Lake
        from glideslope.locks import exclusive
        lake = Lake(root={lake.root!r}, usecase={lake.usecase!r}, lock_url={lake.lock_url!r})
        with exclusive(lake, "champion-flight_delay", lease=3):
            Path({str(held)!r}).write_text("held")
            os.kill(os.getpid(), signal.SIGKILL)  # dies with the lock in hand: nothing releases it
    """)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL and held.exists(), err
    # The dead holder's lock is still there, naming it, until the lease runs out.
    dead = json.loads(client.get(key))
    assert dead["pid"] == child.pid
    with pytest.raises(LockTimeout, match=rf"not free after 0s; held by .*\"pid\": {child.pid}") as e:
        with exclusive(lake, "champion-flight_delay", wait=0.2):
            pass
    assert e.value.holder and e.value.holder["pid"] == child.pid
    # A waiter that waits longer than the lease left gets it, once the lease has run out.
    with exclusive(lake, "champion-flight_delay", wait=60) as next_holder:
        assert json.loads(client.get(key))["token"] == next_holder["token"]
    assert client.get(key) is None
