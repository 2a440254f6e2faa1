"""spark-submit entry point: run a use case's transform for the given days into the staging area.

    spark-submit spark_jobs/transform.py --usecase flight_delay --ds 2013-06-01 [--ds ...]

Thin on purpose: argument parsing and the transform live in ``glideslope.etl.spark_job``.
"""

import sys

from glideslope.etl.spark_job import main

if __name__ == "__main__":
    sys.exit(main())
