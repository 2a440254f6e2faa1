"""The one distinction every stage's errors make: can a retry fix it?

A :class:`PermanentError` says no: an invalid spec, data that failed a gate, a run request that
contradicts itself, a broken contract between the use case's files and the library. Retrying it
after two minutes only delays the alert, so the DAGs fail such a task at once
(``glideslope.airflow.dagkit.task``), with the message the error carries. Everything else (a
service down, a timeout, a lock held) stays retryable.
"""

from __future__ import annotations


class PermanentError(Exception):
    """An error that a retry of the same task with the same inputs cannot fix."""
