"""The contract between a use case's files and the library, checked where it can first be seen.

When the spec loads (:mod:`glideslope.config`): names and references — the metric belongs to the
task, the feature service is versioned (``<name>_v<N>``), the label, scoring and feature tables
are transform outputs with a suite (only those are published).

On every ETL run, before the output gate (:func:`check_outputs`): the columns each stage will read
from the transform's outputs. A table without them would pass its own suite and break a later
stage far from its cause, so the day fails here, naming the use case's files, the table and the
columns:

============================== ============================================================
output                         columns it must carry
============================== ============================================================
``curated/<label.table>``      ``entity_key``, ``event_timestamp``, ``label.column`` (numeric),
                               every ``features.request_columns`` and ``promotion.slices``
``curated/<scoring.table>``    ``entity_key``, ``event_timestamp``, every ``request_columns``
``features/<table>``           ``event_timestamp`` and ``created`` (Feast's point-in-time join
                               and its tie-break), and at least one more column
============================== ============================================================

Feature tables also carry their Feast entities' join keys, and the label and scoring tables the
join keys of every feature view in the service; Feast checks those when the features stage applies
the repository, naming the view.
"""

from __future__ import annotations

from typing import Any

from glideslope.config import SpecError, UseCase

CREATED = "created"


class ContractError(SpecError):
    """A transform output lacks what a later stage reads; the message names the files, table and columns."""


def required_columns(uc: UseCase) -> dict[str, list[str]]:
    """Output (``zone/table``) -> the columns the stages read from it."""
    events = [uc.entity_key, uc.event_timestamp, *uc.features.request_columns]
    out: dict[str, list[str]] = {
        f"curated/{uc.scoring.table}": list(dict.fromkeys(events)),
        f"curated/{uc.label.table}": list(dict.fromkeys([*events, uc.label.column, *uc.promotion.slices])),
    }
    for t in uc.features.tables:
        out[f"features/{t}"] = [uc.event_timestamp, CREATED]
    return out


def check_outputs(uc: UseCase, frames: dict[str, Any], transform_file: str | None = None) -> None:
    """Raise :class:`ContractError` for every output in ``frames`` (output -> DataFrame) that breaks the contract."""
    import pandas as pd

    where = transform_file or str(uc.folder / f"{uc.transform}.py")
    problems = []
    for output, cols in required_columns(uc).items():
        df = frames.get(output)
        if df is None:
            continue
        missing = [c for c in cols if c not in df.columns]
        if missing:
            problems.append(f"{output}: missing column(s) {missing} (has {list(df.columns)})")
        if output.startswith("features/") and len(df.columns) <= len(cols):
            problems.append(f"{output}: no feature column beside {cols}")
    label_df = frames.get(f"curated/{uc.label.table}")
    label = uc.label.column
    if label_df is not None and label in label_df.columns and not pd.api.types.is_numeric_dtype(label_df[label]):
        problems.append(f"curated/{uc.label.table}: label column {label!r} is {label_df[label].dtype}, "
                        f"not numeric (label.task {uc.label.task})")
    if problems:
        raise ContractError(
            f"{uc.name}: the outputs of {where} break the contract of {uc.folder / 'usecase.yaml'} "
            "(docs/usecase-guide.md#the-contract):\n  " + "\n  ".join(problems))
