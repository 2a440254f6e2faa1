"""#18: the ETL of a date range in one ``run_days`` call against the same days one call each.

* **ours** -- ``run_days(uc, days)``: the range in one call (one Spark pass once the range ETL is
  set-wise; before that, one spark-submit transforming the days one after another);
* **baseline** -- ``run_days(uc, [d])`` for every day of the range, in order: N calls, N
  spark-submits, each re-reading its trailing window.

Each side runs in its own process and its own scratch home (same real days, same use case), so
neither finds the other's outputs; the peak RSS column is ours. Both publish the same partitions;
whether their files are the same bytes is reported in the notes (the range ETL's own tests assert
it). Built against ``run_days``'s public signature only.

    python benchmarks/range_etl.py [--quick] [--days N] [--scale S] [--json PATH]

Days: 7 (``--quick`` 3) from 2013-07-01. ``--scale`` runs it on the scaled feed
(``GLIDESLOPE_FEED_SCALE``: the real days repeated under new keys, include/usecases/flight_delay/feed.py).
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchkit  # noqa: E402

FIRST = "2013-07-01"
GOAL = 0.5


def etl(mode: str, days: list[str]) -> dict[str, Any]:
    """In this process: the range in one call (``range``) or one call per day (``daily``)."""
    from glideslope.config import load_usecase
    from glideslope.etl.pipeline import run_days
    from glideslope.lake import Lake

    uc = load_usecase("flight_delay")
    lake = Lake.for_usecase(uc.name)
    if mode == "range":
        published = run_days(uc, days)
    else:
        published = {}
        for ds in days:
            published.update(run_days(uc, [ds]))
    digests = {}
    for ds, day in sorted(published.items()):
        for out, info in sorted(day["outputs"].items()):
            with lake.fs.open(info["path"], "rb") as f:
                digests[f"{ds} {out}"] = hashlib.sha256(f.read()).hexdigest()
    rows = sum(info["rows"] for day in published.values() for out, info in day["outputs"].items()
               if out == f"curated/{uc.label.table}")
    return {"rows": rows, "days": sorted(published), "digests": digests}


def side(mode: str, days: list[str], scale: int, timeout: float) -> dict[str, Any]:
    home = benchkit.scratch_home(f"range-{mode}")
    if scale > 1:
        benchkit.scaled_usecase(home / "usecases", scale)
    out = home / f"{mode}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--mode", mode, "--day-list", ",".join(days),
           "--out", str(out)]
    rc, wall, peak_mb, log = benchkit.run_process(cmd, timeout, home / f"{mode}.log")
    result: dict[str, Any] = {"mode": mode, "home": str(home), "rc": rc, "wall_s": round(wall, 2),
                              "peak_rss_mb": round(peak_mb, 1)}
    if out.exists():
        result.update(json.loads(out.read_text()))
    if rc != 0:
        result["error"] = f"exit {rc}; last lines of {log}:\n    " + "\n    ".join(
            log.read_text(errors="replace").splitlines()[-5:])
    print(f"{mode:<6} {len(days)} days: {wall:7.1f} s, peak {peak_mb:6.0f} MB" + ("" if rc == 0 else f" FAILED rc {rc}"),
          flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = benchkit.arguments(__doc__, "range_etl")
    ap.add_argument("--days", type=int, default=None, help="N days (default 7, --quick 3)")
    ap.add_argument("--scale", type=int, default=1, help="feed scale (GLIDESLOPE_FEED_SCALE); 1 = the real days")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per side")
    ap.add_argument("--mode", choices=["range", "daily"], help=_hidden())
    ap.add_argument("--day-list", help=_hidden())
    ap.add_argument("--out", type=Path, help=_hidden())
    args = ap.parse_args(argv)
    if args.mode:
        args.out.write_text(json.dumps(etl(args.mode, args.day_list.split(","))) + "\n")
        return 0
    n = args.days or (3 if args.quick else 7)
    first = date.fromisoformat(FIRST)
    days = [(first + timedelta(days=i)).isoformat() for i in range(n)]
    ours = side("range", days, args.scale, args.timeout)
    base = side("daily", days, args.scale, args.timeout)
    same = bool(ours.get("digests")) and ours.get("digests") == base.get("digests")
    notes = (f"{n} real days from {FIRST}" + (f", feed ×{args.scale}" if args.scale > 1 else "")
             + f"; baseline = {n} calls of run_days([d]); published files identical: {'yes' if same else 'no'}")
    for s in (ours, base):
        if s.get("error"):
            notes += f"; {s['mode']}: {s['error']}"
    row = benchkit.result(f"#18 range ETL: {n} days in one run_days vs day by day", ours.get("rows"),
                          ours["wall_s"], base["wall_s"], f"≤ {GOAL}×", GOAL, peak_rss_mb=ours["peak_rss_mb"],
                          notes=notes, baseline_peak_rss_mb=base["peak_rss_mb"], identical=same)
    if ours["rc"] or base["rc"]:
        row["met"] = None
    benchkit.write_results(args.json, "range_etl", [row], days=days, scale=args.scale,
                           sides=[{k: v for k, v in s.items() if k != "digests"} for s in (ours, base)])
    return 0 if not (ours["rc"] or base["rc"]) else 1


def _hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
