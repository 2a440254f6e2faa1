"""P6, reduced: a multi-day ETL backfill as one Spark job against one job per day.

The full P6 (ETL + features + train + score + monitor of all of 2013 as one backfill against
365 nights) does not fit the 20 minutes of ``make bench`` on 2 cores; this is the ETL part of it,
on fewer days, and says so in every row:

* **ours** -- ``run_days`` for ``N`` consecutive real days with **one** spark-submit: land and gate
  every day, one Spark job transforms them all, then each day is gated and published
  (``glideslope etl --start … --end …``).
* **baseline** -- the same work one day per job: ``run_days`` for a single day, each with its own
  spark-submit (JVM start and Spark session included), measured on ``K`` of the days and
  multiplied by ``N`` (the per-day cost does not depend on the day: the raw day is ~1,000
  flights and the trailing windows read at most 28 landed days).

The 365-day figures are extrapolations, labelled as such: ours as ``N``-day time × 365 / N (an
upper bound: the JVM start is paid once), the baseline as the per-day time × 365.

    python benchmarks/backfill.py [--quick] [--json benchmarks/results/backfill.json]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchkit  # noqa: E402

GOAL = 0.5
FIRST = "2013-07-01"


def main(argv: list[str] | None = None) -> int:
    ap = benchkit.arguments(__doc__, "backfill")
    ap.add_argument("--days", type=int, default=None, help="N (default 7, --quick 3)")
    args = ap.parse_args(argv)
    n = args.days or (3 if args.quick else 7)
    k = 1 if args.quick else 2
    benchkit.scratch_home("backfill")

    from datetime import date, timedelta

    from glideslope.config import load_usecase
    from glideslope.etl.pipeline import run_days
    from glideslope.lake import Lake

    uc = load_usecase("flight_delay")
    first = date.fromisoformat(FIRST)
    days = [(first + timedelta(days=i)).isoformat() for i in range(n)]
    # The one-day jobs take the days after the backfill's, in the same lake: like a night of a
    # backfill, each finds the earlier days landed (its trailing windows read them) and its own not.
    single = [(first + timedelta(days=n + i)).isoformat() for i in range(k)]

    lake = Lake.for_usecase(uc.name)
    t = time.perf_counter()
    published = run_days(uc, days, lake=lake)
    ours_s = time.perf_counter() - t
    rows = sum(out["rows"] for day in published.values() for name, out in day["outputs"].items()
               if name == "curated/flights")
    print(f"{n} days in one job: {ours_s:.1f} s", flush=True)

    per_day = []
    for ds in single:
        t = time.perf_counter()
        run_days(uc, [ds], lake=lake)
        per_day.append(time.perf_counter() - t)
        print(f"one day, own job ({ds}): {per_day[-1]:.1f} s", flush=True)
    day_s = benchkit.median(per_day)
    base_s = day_s * n
    label = f"reduced: ETL only, {n} days"
    results = [
        benchkit.result(f"P6 backfill ({label}) one job vs {n} jobs", rows, ours_s, base_s, f"≤ {GOAL}×", GOAL,
                        notes=f"baseline = {n} × the median of {k} measured one-day jobs ({day_s:.1f} s)",
                        days=n, per_day_job_s=round(day_s, 2)),
        benchkit.result("P6 2013 ETL backfill, extrapolated from the above", None, ours_s * 365 / n, day_s * 365,
                        f"≤ {GOAL}×", GOAL, notes=f"not measured: ours {n}-day time × 365/{n} (upper bound), "
                                                   f"baseline {day_s:.1f} s × 365", extrapolated=True),
    ]
    benchkit.write_results(args.json, "backfill", results, days=days, single_days=single, per_day_s=per_day)
    return 0


if __name__ == "__main__":
    sys.exit(main())
