"""``glideslope new NAME``: a new use-case folder that loads and builds its six DAGs as it is.

The skeleton (``glideslope/templates/usecase``) has every spec field with a comment, a feed and a
transform to fill in, one quality suite per raw source and per output, and a Feast repository. Its
spec, suites and feature repository are valid from the start, so the DAGs appear in Airflow at
once; the first ETL run fails, clearly, in ``feed.deliveries`` until it is written.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from string import Template

from glideslope.config import SpecError, list_usecases, parse_usecase, usecases_dir
from glideslope.metrics import TASKS, default_metric, direction, task_metrics

TEMPLATES = Path(__file__).resolve().parent / "templates" / "usecase"
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
COMMENT_COLUMN = 30  # where the skeleton's comments start, so the spec reads as a table

# What a new use case starts from, per task. The sizes follow the metric: ROC-AUC needs both classes
# in a slice and a window, so its minimums are larger; RMSE is in the label's units, which only the
# person writing the use case knows, so its floor and tolerance are placeholders marked TODO.
TASK_DEFAULTS: dict[str, dict[str, str]] = {
    "binary_classification": {
        "label_type": "int",
        "floor": "0.6",
        "floor_note": "the ROC-AUC a challenger must reach (0.5 = chance, 1.0 = perfect)",
        "slice_tolerance": "0.02",
        "slice_note": "ROC-AUC a slice may lose against the champion (0.02 = two points)",
        "min_slice_rows": "200",
        "min_slice_note": "holdout rows a slice needs to be judged (ROC-AUC needs both classes in it)",
        "drift_min_rows": "500",
        "drift_min_note": "scored rows the current window needs for a verdict (labelled rows for the live metric)",
        "perf_note": "e.g. 0.55, a little under floor",
    },
    "regression": {
        "label_type": "float",
        "floor": "1000.0",
        "floor_note": "the RMSE a challenger must stay at or below, in the label's units",
        "slice_tolerance": "100.0",
        "slice_note": "TODO: RMSE a slice may lose, in the label's units (start near a tenth of floor)",
        "min_slice_rows": "50",
        "min_slice_note": "holdout rows a slice needs to be judged",
        "drift_min_rows": "200",
        "drift_min_note": "scored rows the current window needs for a verdict (labelled rows for the live metric)",
        "perf_note": "TODO: in the label's units, e.g. 1.5 x floor",
    },
}


def _pad(key: str, value: str, indent: int = 2) -> str:
    """Spaces after ``key: value`` so that the comment after it starts at COMMENT_COLUMN."""
    return " " * max(1, COMMENT_COLUMN - indent - len(f"{key}: {value}"))


def template_values(name: str, task: str) -> dict[str, str]:
    """The values the skeleton's templates are filled with, for use case ``name`` of ``task``."""
    metric = default_metric(task)
    values = {"name": name, "task": task, "metric": metric, "metrics": ", ".join(task_metrics(task)),
              "direction": direction(metric), **TASK_DEFAULTS[task]}
    for pad, key, value in (("metric_pad", "primary_metric", metric), ("promotion_metric_pad", "metric", metric),
                            ("floor_pad", "floor", values["floor"]),
                            ("slice_pad", "slice_tolerance", values["slice_tolerance"]),
                            ("min_slice_pad", "min_slice_rows", values["min_slice_rows"]),
                            ("drift_min_pad", "min_rows", values["drift_min_rows"])):
        values[pad] = _pad(key, value)
    values["task_pad"] = _pad("task", task)
    return values


def create(name: str, task: str = "binary_classification", root: Path | None = None) -> Path:
    """Write the skeleton of use case ``name`` under ``root`` (the use-cases root) and return its folder."""
    root = root or usecases_dir()
    if not NAME.match(name):
        raise SpecError(f"use-case name {name!r}: lower-case letters, digits and _, starting with a letter")
    if task not in TASKS:
        raise SpecError(f"task {task!r}: one of {', '.join(TASKS)}")
    folder = root / name
    if folder.exists():
        raise SpecError(f"{folder} exists: a use case is never overwritten")
    values = template_values(name, task)
    written = []
    for src in sorted(TEMPLATES.rglob("*.tmpl")):
        dest = folder / src.relative_to(TEMPLATES).with_suffix("")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(Template(src.read_text()).substitute(values))
        written.append(dest)
    parse_usecase(folder / "usecase.yaml")  # the skeleton must load as it is
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="glideslope new", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", help="the use case's name: the folder and the prefix of its DAG ids")
    ap.add_argument("--task", default="binary_classification", choices=sorted(TASKS))
    ap.add_argument("--root", type=Path, default=None,
                    help="use-cases root (default: GLIDESLOPE_USECASES_DIR, else include/usecases)")
    args = ap.parse_args(argv)
    try:
        folder = create(args.name, args.task, args.root)
    except SpecError as e:
        print(f"glideslope new: {e}", file=sys.stderr)
        return 2
    others = [u for u in list_usecases(folder.parent) if u != args.name]
    print(f"wrote {folder}/ (usecase.yaml, feed.py, transform.py, quality/, feature_repo/)")
    print("next: fill in feed.deliveries() and transform.build(), the suites and the views "
          "(docs/usecase-guide.md); then")
    print(f"  glideslope check --usecase {args.name}")
    if others:
        print(f"(beside {', '.join(others)} under {folder.parent})")
    return 0
