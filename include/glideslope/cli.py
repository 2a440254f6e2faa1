"""``glideslope`` command line: one entry point for people, ``make`` and the GPU training pod.

Each sub-command lives with the code it drives and is imported only when it runs, so
``glideslope --help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module:function taking argv and returning an exit code, one-line help)
    "demo": ("glideslope_local.demo:main", "Run the whole loop on replayed real days (embedded profile)."),
    "up": ("glideslope_local.stack:up", "Start Airflow (API server + UI, scheduler, DAG processor, triggerer)."),
    "down": ("glideslope_local.stack:down", "Stop the Airflow started by 'up'."),
    "status": ("glideslope_local.stack:status", "Show whether Airflow is running and where."),
    "airflow-env": ("glideslope_local.stack:print_env", "Print the Airflow environment as shell exports."),
    "mlflow-ui": ("glideslope_local.stack:mlflow_ui", "Serve the MLflow UI on the embedded tracking store."),
    "new": ("glideslope.scaffold:main", "Write a new use-case folder (spec, feed, transform, suites, Feast repo)."),
    "check": ("glideslope_local.check:main", "Check that a use case loads and builds its DAGs."),
    "etl": ("glideslope.etl.pipeline:cli", "Land, validate and transform days outside Airflow."),
    "redeliver": ("glideslope.data.landing:cli", "Replace a landed delivery (old file to quarantine), gate it, "
                  "list the days to rebuild."),
    "train": ("glideslope.training.cli:main", "Train candidates for a use case (also the GPU pod entry point)."),
    "rollback": ("glideslope.registry.cli:rollback", "Move 'champion' back to the previous champion."),
    "ack": ("glideslope.airflow.ack:acknowledge", "Acknowledge an escalation and resume automatic retraining."),
    "lineage": ("glideslope.lineage:main", "List everything downstream of a day's raw delivery, from the lineage events."),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: glideslope <command> [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"glideslope: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module, func = COMMANDS[name][0].split(":")
    return int(getattr(importlib.import_module(module), func)(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
