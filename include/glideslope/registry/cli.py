"""``glideslope rollback``: move a use case's ``champion`` back to the previous champion."""

from __future__ import annotations

import argparse
import json
import logging
import sys


def rollback(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="glideslope rollback", description=(
        "Move a use case's 'champion' alias back to the previous champion (or --to-version)."))
    ap.add_argument("--usecase", required=True)
    ap.add_argument("--reason", required=True, help="why (recorded on both model versions)")
    ap.add_argument("--to-version", default=None, help="a specific version instead of the previous champion")
    ap.add_argument("--ds", default=None, help="logical day this rollback belongs to (for the record)")
    ap.add_argument("--from-version", default=None,
                    help="the champion you mean to roll back; refused if the champion is another version")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from glideslope.config import SpecError, load_usecase
    from glideslope.locks import LockTimeout, LockUnavailable
    from glideslope.registry.promotion import NoPreviousChampion, PromotionConflict
    from glideslope.registry.promotion import rollback as do_rollback

    try:
        record = do_rollback(load_usecase(args.usecase), args.reason, args.to_version, args.ds,
                             from_version=args.from_version)
    except (SpecError, NoPreviousChampion, PromotionConflict, LockTimeout, LockUnavailable, ValueError) as e:
        print(f"glideslope rollback: {e}", file=sys.stderr)
        return 1
    print(json.dumps(record, indent=2, sort_keys=True))
    return 0
