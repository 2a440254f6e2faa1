"""``glideslope train``: train a use case's candidates and register the best as ``challenger``.

The same command runs in-process in the embedded profile and as the container command of the
GPU training pod (kubernetes backend). It prints the JSON summary and, with ``--result-file``,
also writes it there (``/airflow/xcom/return.json`` hands it to Airflow from a pod).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from glideslope.config import SpecError, load_usecase


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="glideslope train", description=(
        "Train a use case's candidates, log each to MLflow and register the best as 'challenger'."))
    ap.add_argument("--usecase", required=True, help="use case name (folder under include/usecases)")
    ap.add_argument("--ds", required=True, help="logical day YYYY-MM-DD: the window ends with this day's labels")
    ap.add_argument("--candidates", default="",
                    help="comma-separated candidate names or families (default: every candidate in the spec)")
    ap.add_argument("--candidate-params", default="{}",
                    help='JSON object: candidate name -> parameters replacing the spec\'s for this run, '
                         'e.g. \'{"xgboost": {"n_estimators": 50}}\'')
    ap.add_argument("--reason", default="", help="why this training runs (recorded on every MLflow run)")
    ap.add_argument("--trigger", default="manual", help="schedule | drift | manual")
    ap.add_argument("--window-days", type=int, default=None, help="days of labels (default: training.window_days)")
    ap.add_argument("--holdout-days", type=int, default=None,
                    help="most recent days held out (default: training.holdout_days)")
    ap.add_argument("--training-set", default=None, help="URI of a training set built by the build step")
    ap.add_argument("--result-file", default=None, help="also write the JSON summary to this path")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from glideslope.training import train_candidates

    try:
        uc = load_usecase(args.usecase)
        overrides = json.loads(args.candidate_params or "{}")
    except SpecError as e:
        print(str(e), file=sys.stderr)
        return 2
    except json.JSONDecodeError as e:
        print(f"--candidate-params is not valid JSON: {e}", file=sys.stderr)
        return 2
    if not isinstance(overrides, dict) or not all(isinstance(v, dict) for v in overrides.values()):
        print("--candidate-params must be a JSON object of objects: {\"<candidate>\": {\"<param>\": value}}",
              file=sys.stderr)
        return 2
    summary = train_candidates(
        uc, args.ds,
        candidates=[c.strip() for c in args.candidates.split(",") if c.strip()] or None,
        candidate_params=overrides or None,
        reason=args.reason, trigger=args.trigger, window_days=args.window_days,
        holdout_days=args.holdout_days, training_set=args.training_set,
    )
    text = json.dumps(summary, indent=2, sort_keys=True, default=str)
    if args.result_file:
        path = Path(args.result_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(text)
    return 0
