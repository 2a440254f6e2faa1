"""Errors a retry cannot fix fail the task at once; others keep the task's retries."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from glideslope.airflow.dagkit import fail_fast
from glideslope.config import SpecError
from glideslope.quality.validate import DataQualityError, Failure, ValidationReport
from glideslope.runrequest import RequestError

pytestmark = pytest.mark.unit


def _quality_error() -> DataQualityError:
    report = ValidationReport(file="raw/rentals/ds=2012-06-01/rentals.csv", suite="raw_rentals", rows=24,
                              failures=[Failure("raw/rentals/ds=2012-06-01/rentals.csv", "cnt", "min 0", 2)])
    return DataQualityError([report])


@pytest.mark.parametrize("error", [SpecError("usecase.yaml: field 'label.task'"), RequestError("conf.ds: not a date"),
                                   _quality_error()], ids=["spec", "request", "quality"])
def test_permanent_errors_fail_at_once_with_their_message(error):
    def task():
        raise error

    with pytest.raises(AirflowFailException) as e:
        fail_fast(task)()
    assert str(error) in str(e.value) and "not retried" in str(e.value)
    assert e.value.__cause__ is error


def test_transient_errors_keep_their_retries():
    def task():
        raise ConnectionError("MLflow at http://127.0.0.1:5000 refused the connection")

    with pytest.raises(ConnectionError):
        fail_fast(task)()


def test_a_generator_task_stays_a_generator_and_fails_fast():
    def publishing(n):
        yield "event"
        if n:
            raise SpecError("bad spec")
        return "done"

    import inspect

    wrapped = fail_fast(publishing)
    assert inspect.isgeneratorfunction(wrapped)
    gen = wrapped(0)
    assert next(gen) == "event"
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == "done"
    gen = wrapped(1)
    next(gen)
    with pytest.raises(AirflowFailException):
        next(gen)


def test_the_stage_tasks_are_wrapped():
    from glideslope.airflow.etl import build_etl_dag
    from glideslope.config import load_usecase

    dag = build_etl_dag(load_usecase("bike_demand"))
    for task_id in ("land_raw_day", "validate_raw_day", "validate_and_publish"):
        fn = dag.get_task(task_id).python_callable
        assert getattr(fn, "__wrapped__", None) is not None, f"{task_id} is not wrapped by fail_fast"
