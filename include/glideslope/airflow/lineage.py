"""OpenLineage for Glideslope's tasks, through Airflow's OpenLineage provider.

A task body names what it read and wrote with :func:`report` (plain dicts from
:mod:`glideslope.lineage`, built from the stage's own result: a footer read at most, never a
scan). The provider's listener then asks its extractors for the task's lineage when the task
finishes or fails; :class:`GlideslopeExtractor` (registered with ``[openlineage] extractors``)
answers for the ``@task`` operators with what was reported in that task's process, turned into
OpenLineage datasets and facets: ``schema``, ``outputStatistics`` (row count),
``dataQualityAssertions`` (the gate's outcome per rule and column) and ``glideslope`` (kind, use
case, day or days, model version and metrics).

Nothing here runs at DAG parse time: task bodies import this module when they run, and the
OpenLineage facets are built only by the extractor, in the listener's emission.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from airflow.providers.openlineage.extractors.base import BaseExtractor, OperatorLineage

from glideslope.lineage import FACET

log = logging.getLogger(__name__)

# A URN, not a URL: the facet is described in docs/observability.md, not published as a JSON schema.
SCHEMA_URL = "urn:glideslope:openlineage:facet:GlideslopeDatasetFacet:1-0-0"

# (dag_id, task_id, run_id, map_index) -> {"inputs": [...], "outputs": [...]}: filled by the task
# body, read by the extractor in the same process (the listener runs after the task's callable).
_REPORTED: dict[tuple[str, str, str, int], dict[str, list[dict[str, Any]]]] = {}


def _key(ti: Any) -> tuple[str, str, str, int]:
    map_index = getattr(ti, "map_index", -1)
    return (ti.dag_id, ti.task_id, ti.run_id, -1 if map_index is None else int(map_index))


def report(context: Any, describe: Callable[..., tuple[list[dict[str, Any]], list[dict[str, Any]]]],
           *args: Any) -> None:
    """Record what ``describe(*args)`` says this task read and wrote (added to what it reported before).

    ``describe`` is one of :mod:`glideslope.lineage`'s stage functions; ``context`` is the task's
    context, or None for the running task's. Lineage never fails a task: a description that
    cannot be made is logged and the task goes on without it.
    """
    try:
        inputs, outputs = describe(*args)
        if context is None:
            from airflow.sdk import get_current_context

            context = get_current_context()
        entry = _REPORTED.setdefault(_key(context["ti"]), {"inputs": [], "outputs": []})
    except Exception:
        log.warning("lineage of this task left out: %s failed", getattr(describe, "__name__", describe),
                    exc_info=True)
        return
    entry["inputs"].extend(inputs)
    entry["outputs"].extend(outputs)


def reported(ti: Any) -> dict[str, list[dict[str, Any]]]:
    return _REPORTED.get(_key(ti), {"inputs": [], "outputs": []})


def _facet_class() -> Any:
    import attr
    from openlineage.client.facet_v2 import DatasetFacet

    global _FACET_CLASS
    if _FACET_CLASS is None:

        @attr.define
        class GlideslopeDatasetFacet(DatasetFacet):
            """What the dataset is to Glideslope: kind, use case, day(s), rows, model, details."""

            kind: str
            usecase: str
            ds: str | None = attr.field(default=None)
            days: list[str] | None = attr.field(default=None)
            rows: int | None = attr.field(default=None)
            model: dict[str, Any] | None = attr.field(default=None)
            details: dict[str, Any] | None = attr.field(default=None)

            @staticmethod
            def _get_schema() -> str:
                return SCHEMA_URL

        _FACET_CLASS = GlideslopeDatasetFacet
    return _FACET_CLASS


_FACET_CLASS: Any = None
_FIXED = {"namespace", "name", "kind", "usecase", "ds", "days", "rows", "model", "schema", "quality"}


def to_openlineage(d: dict[str, Any], output: bool) -> Any:
    """One dataset description as an OpenLineage Input/OutputDataset with its facets."""
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.facet_v2 import data_quality_assertions_dataset as dq
    from openlineage.client.facet_v2 import output_statistics_output_dataset as stats
    from openlineage.client.facet_v2 import schema_dataset

    details = {k: v for k, v in d.items() if k not in _FIXED}
    quality = d.get("quality")
    if quality is not None:
        details["quality"] = {"success": bool(quality.get("success")), "suite": quality.get("suite"),
                              "failures": len(quality.get("failures", []))}
    facets: dict[str, Any] = {FACET: _facet_class()(
        kind=d["kind"], usecase=d["usecase"], ds=d.get("ds"), days=d.get("days"), rows=d.get("rows"),
        model=d.get("model"), details=details or None)}
    if d.get("schema"):
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in d["schema"]])
    io_facets: dict[str, Any] = {}
    if quality is not None:
        assertions = [dq.Assertion(assertion=f["rule"], success=False, column=f.get("column"),
                                   actual=None if f.get("bad_rows") is None else f"{f['bad_rows']} bad rows")
                      for f in quality.get("failures", [])]
        if quality.get("success"):
            assertions.append(dq.Assertion(assertion=f"suite {quality.get('suite', '')}".strip(), success=True))
        io_facets["dataQualityAssertions"] = dq.DataQualityAssertionsDatasetFacet(assertions=assertions)
    if output:
        if d.get("rows") is not None:
            io_facets["outputStatistics"] = stats.OutputStatisticsOutputDatasetFacet(rowCount=int(d["rows"]))
        io_facets.pop("dataQualityAssertions", None)  # an input facet only; the gate runs on inputs
        return OutputDataset(namespace=d["namespace"], name=d["name"], facets=facets,
                             outputFacets=io_facets or None)
    return InputDataset(namespace=d["namespace"], name=d["name"], facets=facets, inputFacets=io_facets or None)


class GlideslopeExtractor(BaseExtractor):
    """The lineage a ``@task`` of Glideslope reported; nothing for a task that reported none."""

    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return ["_PythonDecoratedOperator", "_BranchPythonDecoratedOperator"]

    def _execute_extraction(self) -> OperatorLineage | None:
        return OperatorLineage()  # at start nothing is known yet

    def extract_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        got = reported(task_instance)
        return OperatorLineage(inputs=[to_openlineage(d, output=False) for d in got["inputs"]],
                               outputs=[to_openlineage(d, output=True) for d in got["outputs"]])

    def extract_on_failure(self, task_instance: Any) -> OperatorLineage | None:
        return self.extract_on_complete(task_instance)
