"""The Airflow layer: DAG builders, operators, notifiers and UI links.

This is the only package of the library that imports Airflow.
"""
