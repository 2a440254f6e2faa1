"""Suite files: a compact, declarative description of a table, turned into GX expectations.

A suite file (``include/usecases/<uc>/quality/<name>.yaml``)::

    rows: {min: 100, max: 5000}          # row count range
    columns:
      carrier: {type: str, not_null: true, regex: "^[A-Z0-9]{2}$"}
      distance: {type: int, not_null: true, min: 1, max: 6000}
      tailnum: {type: str}               # declared, nullable
      temp: {type: float, max_null_share: 0.5}   # at most half of the rows may lack a value
      plane_age: {type: float, min_null_share: 0.02, max_null_share: 0.5}  # output: some unknown, not most
    unique: [[year, month, day, carrier, flight, origin, dest, sched_dep_time]]
    mean: {wx_temp_mean: {min: -20, max: 110}}
    day: [year, month, day]              # raw only: every row is dated on the delivery's day
    # or  day: pickup_date               # one column: YYYY-MM-DD, alone or starting a timestamp

Raw CSV is validated as text (``type`` is a regex on the text, so a wrong type is counted row by
row), typed data (Parquet) by value; ``regex`` applies to both. Every declared column must exist,
and a raw header must list exactly the declared columns, in the declared order: Spark reads CSV
columns by position, so an extra or moved column would shift every value after it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from glideslope.config import SpecError, UseCase

ColumnType = Literal["int", "float", "str", "timestamp", "bool"]

TYPE_PATTERNS: dict[str, str] = {
    "int": r"^-?[0-9]+$",
    "float": r"^-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$",
    "timestamp": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?$",
    "bool": r"^(?:true|false|True|False|0|1)$",
}


class ColumnRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: ColumnType = "str"
    not_null: bool = False
    min: float | None = None
    max: float | None = None
    regex: str | None = None
    values: list[Any] | None = Field(None, description="Allowed values (a closed set).")
    max_null_share: float | None = Field(None, ge=0, le=1, description="Most rows (a share) that may be null.")
    min_null_share: float | None = Field(None, ge=0, le=1, description="Fewest rows (a share) that must be null: "
                                         "a feature that is legitimately missing for some rows (an unknown "
                                         "plane) and has no nulls at all was invented by the transform.")


class Range(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min: float | None = None
    max: float | None = None


class RowRange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min: int | None = None
    max: int | None = None


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = ""
    path: Path = Path(".")
    rows: RowRange = RowRange()
    columns: dict[str, ColumnRule]
    unique: list[list[str]] = Field(default_factory=list)
    mean: dict[str, Range] = Field(default_factory=dict)
    day: list[str] | None = Field(None, description="Raw only: the column(s) that must date every row on the "
                                  "day the delivery is for: [year, month, day] (three numeric columns), or one "
                                  "column (a name or [name]) whose text starts with the ISO date YYYY-MM-DD.")

    @field_validator("day", mode="before")
    @classmethod
    def _day_columns(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]  # day: pickup_date, the single-date-column form
        if isinstance(v, list) and len(v) not in (1, 3):
            raise ValueError(f"day names {len(v)} columns {v}: expected [year, month, day] or one date column")
        return v


def load_suite(uc: UseCase, filename: str) -> Suite:
    path = uc.folder / "quality" / filename
    try:
        raw = yaml.safe_load(path.read_text())
        return Suite.model_validate({**raw, "name": path.stem, "path": path})
    except FileNotFoundError:
        raise SpecError(f"{path}: expectation suite not found") from None
    except ValidationError as e:
        fields = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        raise SpecError(f"{path}: invalid suite ({fields})") from None


def text_expectations(suite: Suite) -> list[Any]:
    """Expectations on the raw text of a CSV: schema, types (as regexes) and nulls."""
    import great_expectations.expectations as gxe

    out: list[Any] = [gxe.ExpectTableRowCountToBeBetween(min_value=suite.rows.min, max_value=suite.rows.max)]
    for col, rule in suite.columns.items():
        out.append(gxe.ExpectColumnToExist(column=col))
        if rule.not_null:
            out.append(gxe.ExpectColumnValuesToNotBeNull(column=col))
        elif rule.max_null_share is not None:
            out.append(gxe.ExpectColumnValuesToNotBeNull(column=col, mostly=1 - rule.max_null_share))
        pattern = rule.regex or TYPE_PATTERNS.get(rule.type)
        if pattern:
            out.append(gxe.ExpectColumnValuesToMatchRegex(column=col, regex=pattern))
    return out


def value_expectations(suite: Suite, typed: bool) -> list[Any]:
    """Expectations on typed values: ranges, closed sets, keys, means (and nulls/schema when typed)."""
    import great_expectations.expectations as gxe

    out: list[Any] = []
    if typed:
        out.append(gxe.ExpectTableRowCountToBeBetween(min_value=suite.rows.min, max_value=suite.rows.max))
    for col, rule in suite.columns.items():
        if typed:
            out.append(gxe.ExpectColumnToExist(column=col))
            if rule.not_null:
                out.append(gxe.ExpectColumnValuesToNotBeNull(column=col))
            elif rule.max_null_share is not None:
                out.append(gxe.ExpectColumnValuesToNotBeNull(column=col, mostly=1 - rule.max_null_share))
            if rule.min_null_share:
                out.append(gxe.ExpectColumnValuesToBeNull(column=col, mostly=rule.min_null_share))
            if rule.regex:  # a typed string column keeps its pattern (raw text is checked earlier)
                out.append(gxe.ExpectColumnValuesToMatchRegex(column=col, regex=rule.regex))
        if rule.min is not None or rule.max is not None:
            out.append(gxe.ExpectColumnValuesToBeBetween(column=col, min_value=rule.min, max_value=rule.max))
        if rule.values is not None:
            out.append(gxe.ExpectColumnValuesToBeInSet(column=col, value_set=rule.values))
    for cols in suite.unique:
        if len(cols) == 1:
            out.append(gxe.ExpectColumnValuesToBeUnique(column=cols[0]))
        else:
            out.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=cols))
    for col, rng in suite.mean.items():
        out.append(gxe.ExpectColumnMeanToBeBetween(column=col, min_value=rng.min, max_value=rng.max))
    return out
