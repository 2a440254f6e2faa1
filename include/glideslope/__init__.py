"""Glideslope: an Apache Airflow 3 distribution for the whole life of a batch ML model.

The library is plain Python and testable without a scheduler; only ``glideslope.airflow``
imports Airflow.
"""

__version__ = "0.1.0"
