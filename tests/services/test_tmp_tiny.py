import time
import pytest
from pathlib import Path
from conftest import start_airflow, stop_airflow, dump_logs

pytestmark = pytest.mark.services

def test_tiny(services_dir, postgres, redis_url):
    t0 = time.monotonic()
    stack = start_airflow(services_dir, postgres, redis_url, {"GLIDESLOPE_PROFILE": "production"}, dags_folder=Path("/tmp/gs_tiny_dags"))
    print("up", time.monotonic() - t0)
    try:
        run = stack.run_dag("tiny", "2013-01-02T00:00:00Z")
        print("run", time.monotonic() - t0, run["state"], [(t["task_id"], t["state"], t["hostname"], t.get("queue")) for t in run["task_instances"]])
        assert run["state"] == "success", dump_logs(stack)
    finally:
        stop_airflow(stack)
    print("down", time.monotonic() - t0)
