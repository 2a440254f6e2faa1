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
from glideslope.metrics import TASKS

TEMPLATES = Path(__file__).resolve().parent / "templates" / "usecase"
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
FLOORS = {"binary_classification": "0.6", "regression": "1000.0"}  # placeholders a person replaces
LABEL_TYPES = {"binary_classification": "int", "regression": "float"}


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
    values = {"name": name, "task": task, "floor": FLOORS[task], "label_type": LABEL_TYPES[task]}
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
