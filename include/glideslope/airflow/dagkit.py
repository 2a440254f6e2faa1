"""What every Glideslope DAG shares: ids, owner, tags, retries, failure alerts, docs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum

from glideslope.config import UseCase


def default_args(uc: UseCase) -> dict[str, Any]:
    from glideslope.airflow.notifications import task_failure_notifiers

    return {
        "owner": uc.owner,
        "retries": 1,
        "retry_delay": timedelta(minutes=2),
        "on_failure_callback": task_failure_notifiers(uc),
    }


def dag_kwargs(uc: UseCase, stage: str, doc: str, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``DAG(...)`` shared by every stage of a use case."""
    kwargs: dict[str, Any] = {
        "dag_id": uc.dag_id(stage),
        "description": f"{stage} stage of {uc.name}: {uc.description.split('.')[0]}",
        "doc_md": doc.format(uc=uc, usecase=uc.name) if "{uc" in doc or "{usecase" in doc else doc,
        "start_date": pendulum.datetime(uc.start_date.year, uc.start_date.month, uc.start_date.day, tz="UTC"),
        "catchup": False,
        "max_active_runs": 1,
        "tags": ["glideslope", uc.name, stage],
        "default_args": default_args(uc),
    }
    kwargs.update(overrides)
    return kwargs


def day_param(description: str) -> Any:
    from airflow.sdk import Param

    return Param(None, type=["null", "string"], format="date", description=description)


def ds_param() -> Any:
    from airflow.sdk import Param

    return Param(None, type=["null", "string"], format="date",
                 description="Logical day YYYY-MM-DD to process (default: the run's logical date).")


def fail_fast(fn: Any) -> Any:
    """``fn`` with every :class:`~glideslope.errors.PermanentError` turned into ``AirflowFailException``.

    A spec error, a failed quality gate or a contradictory run request cannot succeed on retry:
    the task fails at once with the error's message instead of retrying it after two minutes.
    Other errors (a service down, a timeout) keep the task's retries. Generator tasks (those
    that yield Asset metadata) stay generators.
    """
    import functools
    import inspect

    from glideslope.errors import PermanentError

    def permanent(e: PermanentError) -> Exception:
        from airflow.sdk.exceptions import AirflowFailException

        return AirflowFailException(f"{type(e).__name__} (not retried: a retry cannot fix it): {e}")

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(*args: Any, **kwargs: Any) -> Any:
            try:
                return (yield from fn(*args, **kwargs))
            except PermanentError as e:
                raise permanent(e) from e
        return gen

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PermanentError as e:
            raise permanent(e) from e
    return call


class _Task:
    """``airflow.sdk.task`` for Glideslope's stages: the same decorator, with :func:`fail_fast` applied."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from airflow.sdk import task as sdk_task

        return self._wrap(sdk_task, *args, **kwargs)

    def branch(self, *args: Any, **kwargs: Any) -> Any:
        from airflow.sdk import task as sdk_task

        return self._wrap(sdk_task.branch, *args, **kwargs)

    @staticmethod
    def _wrap(decorator: Any, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and callable(args[0]) and not kwargs:  # bare @task
            return decorator(fail_fast(args[0]))
        inner = decorator(*args, **kwargs)
        return lambda fn: inner(fail_fast(fn))


task = _Task()
