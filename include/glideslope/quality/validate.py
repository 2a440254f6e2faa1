"""Run suites with Great Expectations and turn the outcome into errors a person can act on.

A failure names the file, the column, the rule and how many rows broke it, e.g.::

    raw/flights/ds=2013-06-01/flights.csv: column 'distance' rule type int (^-?\\d+$): 3 bad rows, e.g. ['abc']
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from glideslope.errors import PermanentError
from glideslope.quality.suites import Suite, text_expectations, value_expectations

log = logging.getLogger(__name__)

NA_VALUES = ["NA", ""]  # a source's default null markers (SourceSpec.null_markers)


@dataclass(frozen=True)
class Failure:
    file: str
    column: str | None
    rule: str
    bad_rows: int | None
    examples: list[Any] = field(default_factory=list)

    def __str__(self) -> str:
        where = f"column {self.column!r}" if self.column else "table"
        count = f": {self.bad_rows} bad rows" if self.bad_rows is not None else ""
        eg = f", e.g. {self.examples[:3]}" if self.examples else ""
        return f"{self.file}: {where} rule {self.rule}{count}{eg}"


@dataclass
class ValidationReport:
    file: str
    suite: str
    rows: int
    evaluated: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return not self.failures

    def summary(self) -> dict[str, Any]:
        return {
            "file": self.file, "suite": self.suite, "rows": self.rows, "evaluated": self.evaluated,
            "success": self.success, "failures": [asdict(f) for f in self.failures],
        }


class DataQualityError(PermanentError, ValueError):
    """Data failed a quality gate. ``reports`` holds every failing report."""

    def __init__(self, reports: list[ValidationReport], quarantined: list[str] | None = None):
        self.reports = reports
        self.quarantined = quarantined or []
        lines = [str(f) for r in reports for f in r.failures]
        msg = "data-quality gate failed:\n  " + "\n  ".join(lines)
        if self.quarantined:
            msg += "\nmoved to quarantine (nothing deleted): " + ", ".join(self.quarantined)
        super().__init__(msg)


@lru_cache(maxsize=1)
def _context() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


def _rule_name(cfg: Any) -> str:
    kw = {k: v for k, v in cfg.kwargs.items() if k not in ("column", "batch_id", "column_list") and v is not None}
    short = cfg.type.removeprefix("expect_").removeprefix("column_values_to_").removeprefix("column_")
    if short == "match_regex":
        return f"matches regex {kw.get('regex')}"
    args = ", ".join(f"{k}={v}" for k, v in kw.items())
    return f"{short}({args})" if args else short


def run_expectations(df: Any, expectations: list[Any], file: str, suite_name: str) -> ValidationReport:
    """Validate a pandas DataFrame against a list of GX expectations."""
    import uuid

    import great_expectations as gx

    ctx = _context()
    key = uuid.uuid4().hex[:8]
    batch = (ctx.data_sources.add_pandas(name=f"src_{key}")
             .add_dataframe_asset(name="frame")
             .add_batch_definition_whole_dataframe(name="whole"))
    suite = ctx.suites.add(gx.ExpectationSuite(name=f"{suite_name}_{key}", expectations=expectations))
    vd = gx.ValidationDefinition(name=f"vd_{key}", data=batch, suite=suite)
    result = vd.run(batch_parameters={"dataframe": df}, result_format="SUMMARY")
    report = ValidationReport(file=file, suite=suite_name, rows=len(df),
                              evaluated=result.statistics["evaluated_expectations"])
    for r in result.results:
        if r.success:
            continue
        cfg = r.expectation_config
        assert cfg is not None  # GX always echoes the expectation it ran
        res = r.result or {}
        if r.exception_info and r.exception_info.get("raised_exception"):
            log.debug("expectation %s raised: %s", cfg.type, r.exception_info.get("exception_message"))
        count = res.get("unexpected_count")
        if cfg.type == "expect_table_row_count_to_be_between":
            count = None
        examples = [x for x in (res.get("partial_unexpected_list") or [])][:5]
        if cfg.type == "expect_column_mean_to_be_between":
            examples = [res.get("observed_value")]
        report.failures.append(Failure(file, cfg.kwargs.get("column") or _cols(cfg), _rule_name(cfg), count,
                                       examples))
    ctx.suites.delete(suite.name)
    ctx.data_sources.delete(f"src_{key}")
    return report


def _cols(cfg: Any) -> str | None:
    cols = cfg.kwargs.get("column_list")
    return "+".join(cols) if cols else None


def structural_failures(data: bytes, file: str) -> list[Failure]:
    """What pandas would silently paper over: an empty file, a cut-off last line, ragged rows."""
    if not data.strip():
        return [Failure(file, None, "file is not empty", None)]
    out = []
    if not data.endswith(b"\n"):
        out.append(Failure(file, None, "ends with a complete line (file looks truncated)", 1))
    rows = list(csv.reader(io.StringIO(data.decode("utf-8", errors="replace"))))
    width = len(rows[0])
    ragged = [i + 1 for i, r in enumerate(rows[1:], start=1) if len(r) != width]
    if ragged:
        out.append(Failure(file, None, f"every row has {width} fields like the header", len(ragged),
                           [f"line {n}" for n in ragged[:3]]))
    return out


def validate_csv_bytes(data: bytes, suite: Suite, file: str,
                       null_markers: list[str] | None = None) -> ValidationReport:
    """Validate raw CSV: structure, then text-level schema/types/nulls, then typed values.

    A cell whose text is one of ``null_markers`` (the source's, default ``NA`` and empty) is no value.
    """
    import pandas as pd

    report = ValidationReport(file=file, suite=suite.name, rows=0)
    report.failures += structural_failures(data, file)
    if any(f.rule == "file is not empty" for f in report.failures):
        return report
    text = pd.read_csv(io.BytesIO(data), dtype=str, na_values=NA_VALUES if null_markers is None else null_markers,
                       keep_default_na=False,
                       on_bad_lines="skip", engine="python")
    first = run_expectations(text, text_expectations(suite), file, suite.name)
    report.rows, report.evaluated = first.rows, first.evaluated
    report.failures += first.failures
    if report.failures:  # typed checks on mistyped columns would only repeat the same failures
        return report
    typed = cast_columns(text, suite)
    second = run_expectations(typed, value_expectations(suite, typed=False), file, suite.name)
    report.evaluated += second.evaluated
    report.failures += second.failures
    return report


def cast_columns(text: Any, suite: Suite) -> Any:
    import pandas as pd

    df = text.copy()
    for col, rule in suite.columns.items():
        if rule.type in ("int", "float"):
            df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def validate_frame(df: Any, suite: Suite, file: str) -> ValidationReport:
    """Validate typed data (a feature or prediction table)."""
    return run_expectations(df, value_expectations(suite, typed=True), file, suite.name)
