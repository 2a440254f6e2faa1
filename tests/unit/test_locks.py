"""The lock under the champion moves and the drift state: it excludes, it waits boundedly, it refuses to fake."""

from __future__ import annotations

import json
import os

import pytest

from glideslope.lake import Lake
from glideslope.locks import LockTimeout, LockUnavailable, exclusive, lock_path

pytestmark = pytest.mark.unit


def test_a_remote_lake_without_a_lock_server_is_refused_not_left_unlocked() -> None:
    from glideslope.drift.state import update_state

    lake = Lake("s3://glideslope/lake", "flight_delay")
    with pytest.raises(LockUnavailable, match="GLIDESLOPE_LOCK_URL is not set"), update_state("flight_delay", lake):
        pytest.fail("the state must not be read without a lock")


def test_a_held_file_lock_times_out_naming_its_holder(tmp_path) -> None:
    lake = Lake(str(tmp_path / "lake"), "flight_delay")
    with exclusive(lake, "champion-flight_delay") as holder:
        assert json.loads(open(lock_path(lake, "champion-flight_delay")).read())["pid"] == os.getpid()
        # A second open file description conflicts like another process would.
        with pytest.raises(LockTimeout, match=rf"'champion-flight_delay' .* not free after 0s; held by .*"
                                              rf"\"token\": \"{holder['token']}\""), \
                exclusive(lake, "champion-flight_delay", wait=0.2):
            pytest.fail("two holders at once")
    with exclusive(lake, "champion-flight_delay", wait=0.2):
        pass  # released on exit
