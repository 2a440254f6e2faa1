"""``glideslope ack``: a person acknowledges a drift escalation and automatic retraining resumes.

    glideslope ack --usecase flight_delay --by alice --note "June weather; new model is fine"

The acknowledgement is recorded in the drift state (and on the champion's MLflow tags) first;
then the ``acknowledged`` alert is sent through the Airflow connections. If the alert cannot be
sent (no connections where the command runs) the acknowledgement still stands and the command
says so. ``--status`` prints the loop's state instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys


def acknowledge(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="glideslope ack", description=__doc__.split("\n\n")[0])
    ap.add_argument("--usecase", required=True)
    ap.add_argument("--by", help="who acknowledges (recorded and sent in the alert)")
    ap.add_argument("--note", default="", help="what was found / why retraining may resume")
    ap.add_argument("--ds", default=None, help="logical day the acknowledgement applies from (default: last check)")
    ap.add_argument("--no-alert", action="store_true", help="record only; do not send the 'acknowledged' alert")
    ap.add_argument("--status", action="store_true", help="print the drift loop's state and exit")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from glideslope.config import SpecError, load_usecase
    from glideslope.drift.loop import acknowledge as ack
    from glideslope.drift.loop import alert_from_dict, status

    try:
        spec = load_usecase(args.usecase)
    except SpecError as e:
        print(f"glideslope ack: {e}", file=sys.stderr)
        return 2
    if args.status:
        print(json.dumps(status(spec), indent=2, default=str))
        return 0
    if not args.by:
        print("glideslope ack: --by NAME is required (who acknowledges)", file=sys.stderr)
        return 2
    result = ack(spec, by=args.by, note=args.note, ds=args.ds)
    was = result["was_paused"]
    print(f"{spec.name}: " + (f"escalation of {was['ds']} acknowledged by {args.by}; automatic retraining resumed"
                              if was else f"nothing was paused; acknowledgement by {args.by} recorded"))
    if not args.no_alert:
        try:
            from glideslope.airflow.notifications import send_alert

            send_alert(spec, alert_from_dict(result["alert"]))
        except Exception as e:  # the record is what matters; say that the message did not go out
            print(f"warning: the 'acknowledged' alert was not sent ({type(e).__name__}: {e})", file=sys.stderr)
    return 0
