"""``glideslope train``: train a use case's candidates and register the best as ``challenger``.

The same command runs by hand and as the container command of the GPU training pod (kubernetes
backend); the in-process training task of the embedded profile calls the same library function
(:func:`glideslope.training.train_for_plan`) directly. The arguments are the run request's fields
(:mod:`glideslope.runrequest`) and the training options; it prints the JSON summary and, with
``--result-file``, also writes it there (``/airflow/xcom/return.json`` hands it to Airflow from a
pod).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from glideslope.config import SpecError, load_usecase
from glideslope.runrequest import RequestError, add_arguments, from_arguments


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="glideslope train", description=(
        "Train a use case's candidates, log each to MLflow and register the best as 'challenger'."))
    add_arguments(ap, ds_required=True)
    ap.add_argument("--candidates", default="",
                    help="comma-separated candidate names or families (default: every candidate in the spec)")
    ap.add_argument("--candidate-params", default="{}",
                    help='JSON object: candidate name -> parameters replacing the spec\'s for this run, '
                         'e.g. \'{"xgboost": {"n_estimators": 50}}\'')
    ap.add_argument("--window-days", type=int, default=None, help="days of labels (default: training.window_days)")
    ap.add_argument("--holdout-days", type=int, default=None,
                    help="most recent days held out (default: training.holdout_days)")
    ap.add_argument("--training-set", default=None, help="URI of a training set built by the build step")
    ap.add_argument("--result-file", default=None, help="also write the JSON summary to this path")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from glideslope.runrequest import RunRequest
    from glideslope.training import train_for_plan
    from glideslope.training.plan import plan_training

    try:
        uc = load_usecase(args.usecase)
        overrides = json.loads(args.candidate_params or "{}")
        req = from_arguments(args)
    except (SpecError, RequestError) as e:
        print(str(e), file=sys.stderr)
        return 2
    except json.JSONDecodeError as e:
        print(f"--candidate-params is not valid JSON: {e}", file=sys.stderr)
        return 2
    if not isinstance(overrides, dict) or not all(isinstance(v, dict) for v in overrides.values()):
        print("--candidate-params must be a JSON object of objects: {\"<candidate>\": {\"<param>\": value}}",
              file=sys.stderr)
        return 2
    # The command-line training options are the run's Params (as a manual run's would be).
    params = {**req.params, "ds": req.ds,
              "candidates": [c.strip() for c in args.candidates.split(",") if c.strip()],
              "candidate_params": overrides, "window_days": args.window_days, "holdout_days": args.holdout_days}
    req = RunRequest(req.usecase, req.trigger, req.days, req.reason, req.run_id, req.events,
                     {k: v for k, v in params.items() if v not in (None, [], {})})
    plan = plan_training(uc, req, latest_label_day=req.ds)
    summary = train_for_plan(uc, plan, training_set=args.training_set)
    text = json.dumps(summary, indent=2, sort_keys=True, default=str)
    if args.result_file:
        path = Path(args.result_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(text)
    return 0
