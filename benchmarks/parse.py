"""P2 DAG parse per file: each file in dags/ against a minimal ``airflow.sdk`` DAG file.

Parsed the way Airflow 3's DAG processor parses: one long-lived process imports Airflow's
``airflow.dag_processing.processor`` once (the manager), pre-imports the ``airflow`` modules a file
names (``parsing_pre_import_modules``), then **forks a child per file**, which fills a
``BundleDagBag`` with that one file and serializes its DAGs. The figure is the child's time for
those two steps: what a parse of the file costs every time the processor re-reads it (and what
a task worker pays again in "Worker startup parse"). Files and the baseline alternate, A B A B,
``--repeat`` rounds; the median is reported.

The environment is the embedded stack's (``glideslope_local.env``, with the Spark Connect
connection ``make up`` sets); ``etl.py`` is also parsed without it (the spark-submit form).

    python benchmarks/parse.py [--quick] [--json benchmarks/results/parse.json]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchkit  # noqa: E402

MINIMAL = '''"""A minimal DAG: one task, airflow.sdk only."""
import pendulum

from airflow.sdk import DAG, task

with DAG(dag_id="minimal", schedule=None, start_date=pendulum.datetime(2013, 1, 1, tz="UTC"), catchup=False,
         doc_md=__doc__, tags=["bench"]):
    @task
    def say_hello() -> str:
        return "hello"

    say_hello()
'''

# Context, not the goal's baseline: the same DAG with one Asset outlet. An Asset makes Airflow's
# ProvidersManager load every provider's asset URI handlers (the Amazon one imports boto3), which
# every DAG file of ours pays, since the stages are chained by Assets.
MINIMAL_ASSET = MINIMAL.replace("from airflow.sdk import DAG, task", "from airflow.sdk import DAG, Asset, task").replace(
    'dag_id="minimal"', 'dag_id="minimal_asset"').replace("    @task\n", '    @task(outlets=[Asset(name="bench.out", uri="bench://out")])\n')

HEAVY = ("pandas", "pyarrow", "numpy", "feast", "mlflow", "sklearn", "xgboost", "evidently", "great_expectations",
         "pyspark", "kubernetes", "kubernetes_asyncio", "boto3", "duckdb")
GOAL = 1.5


def _parse_in_child(path: str, bundle: str, env: dict[str, str | None]) -> dict[str, Any]:
    """Fork; the child parses ``path`` like the DAG processor's child and reports through a pipe."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_fd)
        code = 0
        try:
            for k, v in env.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
            import structlog
            from airflow.dag_processing import processor
            from airflow.dag_processing.dagbag import BundleDagBag

            before = set(sys.modules)
            t0 = time.perf_counter()
            bag = BundleDagBag(dag_folder=path, bundle_path=bundle, bundle_name="bench", load_op_links=False)
            t1 = time.perf_counter()
            serialized, errors = processor._serialize_dags(bag, structlog.get_logger())
            t2 = time.perf_counter()
            new = set(sys.modules) - before
            out = {"parse_s": t1 - t0, "serialize_s": t2 - t1, "dags": len(serialized),
                   "tasks": sum(len(d.task_dict) for d in bag.dags.values()),
                   "import_errors": sorted({**bag.import_errors, **errors}),
                   "modules_imported": len(new),
                   "heavy_imported": sorted(m for m in HEAVY if m in new)}
        except BaseException as e:  # noqa: BLE001 - report whatever broke the child
            out, code = {"error": f"{type(e).__name__}: {e}"}, 1
        os.write(write_fd, json.dumps(out).encode())
        os.close(write_fd)
        os._exit(code)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks) or b'{"error": "child wrote nothing"}')


def main(argv: list[str] | None = None) -> int:
    ap = benchkit.arguments(__doc__, "parse")
    ap.add_argument("--repeat", type=int, default=None, help="rounds (default 7, --quick 2)")
    args = ap.parse_args(argv)
    repeat = args.repeat or (2 if args.quick else 7)

    home = benchkit.scratch_home("parse")
    # The stack's environment, computed in another interpreter: the DAG processor's manager has
    # not imported glideslope, so neither may this one (every child would inherit it).
    os.environ.update(json.loads(subprocess.run(
        [sys.executable, "-c", "import json; from glideslope_local.env import embedded_airflow_env as a, "
                               "spark_connect_env as c; print(json.dumps({**a(), **c(15002)}))"],
        check=True, capture_output=True, text=True).stdout))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["_AIRFLOW_PROCESS_CONTEXT"] = "client"
    dags_dir = benchkit.ROOT / "dags"
    base_dir = Path(tempfile.mkdtemp(prefix="minimal-dag-", dir=home))
    minimal = base_dir / "minimal_dag.py"
    minimal.write_text(MINIMAL)
    asset_dir = Path(tempfile.mkdtemp(prefix="minimal-asset-dag-", dir=home))
    minimal_asset = asset_dir / "minimal_asset_dag.py"
    minimal_asset.write_text(MINIMAL_ASSET)

    # The manager's side: Airflow's processor imported once, before any fork.
    import structlog
    from airflow.dag_processing import processor

    assert not any(m.startswith("glideslope") for m in sys.modules), "the manager side must not import glideslope"
    log = structlog.get_logger()
    no_connect: dict[str, str | None] = {"GLIDESLOPE_SPARK_CONNECT_CONN_ID": None}
    cases: list[tuple[str, Path, Path, dict[str, str | None]]] = [
        ("minimal airflow.sdk DAG", minimal, base_dir, {}),
        ("minimal DAG with one Asset outlet (context)", minimal_asset, asset_dir, {})]
    for f in sorted(dags_dir.glob("*.py")):
        cases.append((f"dags/{f.name}", f, dags_dir, {}))
        if f.name == "etl.py":
            cases.append(("dags/etl.py (spark-submit, no Spark Connect)", f, dags_dir, no_connect))

    samples: dict[str, list[dict[str, Any]]] = {name: [] for name, *_ in cases}
    for _ in range(repeat):
        for name, path, bundle, env in cases:
            processor._pre_import_airflow_modules(str(path), log)
            samples[name].append(_parse_in_child(str(path), str(bundle), env))

    def total(s: dict[str, Any]) -> float:
        return s["parse_s"] + s["serialize_s"]

    errors = {n: s[0]["error"] for n, s in samples.items() if "error" in s[0]}
    if errors:
        print(json.dumps(errors, indent=2), file=sys.stderr)
        return 1
    base_s = benchkit.median([total(s) for s in samples["minimal airflow.sdk DAG"]])
    results, files = [], {}
    for name, runs in samples.items():
        t = benchkit.median([total(s) for s in runs])
        last = runs[-1]
        files[name] = {"median_s": round(t, 4), "parse_s": round(benchkit.median([s["parse_s"] for s in runs]), 4),
                       "serialize_s": round(benchkit.median([s["serialize_s"] for s in runs]), 4),
                       "samples_s": [round(total(s), 4) for s in runs],
                       **{k: last[k] for k in ("dags", "tasks", "import_errors", "modules_imported", "heavy_imported")}}
        if name.startswith("minimal"):
            continue
        notes = f"{last['dags']} DAGs, {last['tasks']} tasks, {last['modules_imported']} modules imported"
        if last["heavy_imported"]:
            notes += "; heavy: " + ", ".join(last["heavy_imported"])
        if last["import_errors"]:
            notes += "; import errors: " + ", ".join(last["import_errors"])
        results.append(benchkit.result(f"P2 DAG parse {name}", None, t, base_s, f"≤ {GOAL}×", GOAL, notes=notes))
    benchkit.write_results(args.json, "parse", results, repeat=repeat, baseline_s=round(base_s, 4), files=files,
                           method="fork per file after importing airflow.dag_processing.processor; "
                                  "BundleDagBag + serialize, median of the rounds")
    for name, f in files.items():
        print(f"{name:48s} {f['median_s'] * 1000:7.0f} ms  {f['dags']} dags {f['tasks']:3d} tasks  "
              f"{f['modules_imported']:4d} modules {','.join(f['heavy_imported'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
