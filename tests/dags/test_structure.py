"""What a person sees in the UI for every DAG: a true name, docs, an owner, tags, retries.

One DAG file per stage builds ``<usecase>__<stage>`` for every use case under include/usecases
(``usecase_specs.py`` builds none: it reports invalid specs, see test_usecase_isolation.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from dagfolder import STAGE_FILES

from glideslope.config import list_usecases, load_usecase

pytestmark = pytest.mark.dags

USECASES = list_usecases()
STAGES = [p.stem for p in STAGE_FILES]


def _dags(dagbag):
    assert dagbag.dags, "the DAG folder produced no DAG"
    return sorted(dagbag.dags.values(), key=lambda d: d.dag_id)


def _usecase_of(dag):
    uc, _, stage = dag.dag_id.partition("__")
    return load_usecase(uc), stage


def test_every_stage_file_builds_one_dag_per_usecase(dagbag) -> None:
    expected = {f"{uc}__{stage}" for uc in USECASES for stage in STAGES}
    missing = sorted(expected - set(dagbag.dags))
    assert not missing, f"DAGs not built: {missing} (use cases {USECASES}, stage files {STAGES})"


def test_dag_ids_name_usecase_and_the_file_of_their_stage(dagbag) -> None:
    for dag in _dags(dagbag):
        match = re.fullmatch(r"([a-z][a-z0-9_]*)__([a-z][a-z0-9_]*)", dag.dag_id)
        assert match, f"{dag.dag_id} ({dag.fileloc}): dag_id must be <usecase>__<stage>"
        uc, stage = match.groups()
        assert uc in USECASES, f"{dag.dag_id} ({dag.fileloc}): {uc!r} is not a use case ({USECASES})"
        assert stage == Path(dag.fileloc).stem, (
            f"{dag.dag_id}: built by {Path(dag.fileloc).name}; the stage file must be {stage}.py"
        )


def test_every_dag_has_docs_about_its_usecase(dagbag) -> None:
    for dag in _dags(dagbag):
        uc, stage = _usecase_of(dag)
        doc = (dag.doc_md or "").strip()
        assert len(doc) >= 200, f"{dag.dag_id} ({dag.fileloc}): doc_md is missing or too short ({len(doc)} chars)"
        assert doc.startswith("#"), f"{dag.dag_id}: doc_md should open with a Markdown heading (the UI title)"
        assert uc.name in doc, f"{dag.dag_id}: doc_md never names its use case {uc.name!r}"


def test_docs_are_not_copies_across_stages(dagbag) -> None:
    docs: dict[str, str] = {}
    for dag in _dags(dagbag):
        doc = (dag.doc_md or "").strip()
        assert doc not in docs, f"{dag.dag_id} has the same doc_md as {docs.get(doc)}"
        docs[doc] = dag.dag_id


def test_owner_tags_and_retries(dagbag) -> None:
    for dag in _dags(dagbag):
        uc, stage = _usecase_of(dag)
        owners = {t.owner for t in dag.tasks}
        assert owners == {uc.owner}, f"{dag.dag_id}: task owners {owners}, expected {uc.owner!r} from usecase.yaml"
        assert {uc.name, stage} <= set(dag.tags), f"{dag.dag_id}: tags {sorted(dag.tags)} lack {uc.name!r}/{stage!r}"
        retries = dag.default_args.get("retries", 0)
        assert retries >= 1, f"{dag.dag_id}: default_args retries={retries}; transient failures need >= 1"
