"""The installed pyspark is one version: its Python side matches the JVM it starts, and Python UDFs run.

``pyspark-client`` (pulled by the Spark provider) writes into the same ``pyspark/`` folder as
``pyspark``; with two versions the Python side of one meets the jars of the other, and every
Python UDF fails with ``Py4JError: Constructor ...UserDefinedPythonFunction... does not exist``.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata

import pytest

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    # The Python workers run this interpreter, as glideslope.etl.pipeline.spark_env() arranges.
    before = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    s = (SparkSession.builder.master("local[1]").appName("glideslope-install-check")
         .config("spark.driver.host", "127.0.0.1")
         .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
         .getOrCreate())
    try:
        yield s
    finally:
        s.stop()
        if before is None:
            os.environ.pop("PYSPARK_PYTHON", None)
        else:
            os.environ["PYSPARK_PYTHON"] = before


def test_one_distribution_owns_the_pyspark_package():
    import pyspark

    with pytest.raises(metadata.PackageNotFoundError):
        metadata.distribution("pyspark-client")
    assert pyspark.__version__ == metadata.version("pyspark")


def test_python_side_equals_the_jvm_side(spark):
    import pyspark

    assert spark.version == pyspark.__version__ == metadata.version("pyspark")


def test_a_python_udf_runs(spark):
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType

    square = F.udf(lambda n: n * n, LongType())
    rows = spark.range(5).select(square("id").alias("sq")).collect()
    assert [r.sq for r in rows] == [0, 1, 4, 9, 16]


def test_the_spark_connect_client_imports():
    """The Connect client ships in pyspark itself (importing it checks grpc, pandas, pyarrow, zstandard:
    pyspark's ``connect`` extra); ``SparkSession.builder.remote("sc://...")`` uses it."""
    from pyspark.sql import SparkSession
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    assert callable(SparkSession.builder.remote)
    assert callable(ConnectSession.builder.remote)
