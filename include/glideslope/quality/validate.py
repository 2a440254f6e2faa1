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
from glideslope.quality.suites import TYPE_PATTERNS, Suite, text_expectations, value_expectations

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
        rule = _rule_name(cfg)
        examples = [x for x in (res.get("partial_unexpected_list") or [])][:5]
        if cfg.type == "expect_table_row_count_to_be_between":
            count, examples = None, []
            rule += f" (observed {len(df)} rows)"
        elif cfg.type == "expect_column_mean_to_be_between":
            examples = [res.get("observed_value")]
        elif cfg.type == "expect_column_values_to_not_be_null" and cfg.kwargs.get("mostly") is not None:
            rule += f" (observed {res.get('unexpected_percent', 0):.0f}% null)"
        report.failures.append(Failure(file, cfg.kwargs.get("column") or _cols(cfg), rule, count, examples))
    ctx.suites.delete(suite.name)
    ctx.data_sources.delete(f"src_{key}")
    return report


def _cols(cfg: Any) -> str | None:
    cols = cfg.kwargs.get("column_list")
    return "+".join(cols) if cols else None


def _utf8_failures(data: bytes, file: str) -> list[Failure]:
    """Each line that is not UTF-8, with where the first bad byte sits (line, column, offset)."""
    try:
        data.decode("utf-8")
        return []
    except UnicodeDecodeError:
        pass
    header = next(csv.reader(io.StringIO(data.split(b"\n", 1)[0].decode("utf-8", errors="replace"))), [])
    bad: list[str] = []
    column = None
    count = 0
    for n, line in enumerate(data.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as e:
            count += 1
            field = line[:e.start].count(b",")  # quoting aside, the field the byte falls in
            name = header[field] if field < len(header) else f"field {field + 1}"
            column = column or name
            if len(bad) < 3:
                bad.append(f"line {n}, column {name!r}, byte {e.start + 1}: {line[e.start:e.start + 4]!r}")
    return [Failure(file, column, "text is UTF-8", count, bad)]


def structural_failures(data: bytes, file: str) -> list[Failure]:
    """What pandas would silently paper over: an empty file, bytes that are not UTF-8, a cut-off
    last line, ragged rows."""
    if not data.strip():
        return [Failure(file, None, "file is not empty", None)]
    out = _utf8_failures(data, file)
    if not data.endswith(b"\n"):
        out.append(Failure(file, None, "ends with a complete line (file looks truncated)", 1))
    rows = list(csv.reader(io.StringIO(data.decode("utf-8", errors="replace"))))
    width = len(rows[0])
    ragged = [i + 1 for i, r in enumerate(rows[1:], start=1) if len(r) != width]
    if ragged:
        out.append(Failure(file, None, f"every row has {width} fields like the header", len(ragged),
                           [f"line {n}" for n in ragged[:3]]))
    return out


def header_failures(data: bytes, suite: Suite, file: str) -> list[Failure]:
    """The header must list the declared columns in the declared order.

    Spark maps CSV columns by position (the header of the first file of a read names them all), so
    a column added in the middle, or two columns swapped, would silently shift values into the
    wrong columns. A missing column is reported by the column-exists expectation.
    """
    first = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").lstrip("\ufeff")
    header = [h.strip() for h in next(csv.reader(io.StringIO(first)), [])]
    declared = list(suite.columns)
    out = [Failure(file, col, f"is declared in suite {suite.name} (an unexpected column at position {i + 1}; "
                   "Spark reads CSV columns by position)", None)
           for i, col in enumerate(header) if col not in suite.columns]
    if not out:
        present = [c for c in declared if c in header]
        for i, (want, got) in enumerate(zip(present, header, strict=False)):
            if want != got:
                out.append(Failure(file, got, f"is at position {declared.index(got) + 1} as declared "
                                   f"(found at position {i + 1})", None))
                break
    return out


def day_failures(text: Any, suite: Suite, file: str, day: str | None) -> list[Failure]:
    """Rows dated on another day than the delivery's (they would leak into other days' windows)."""
    mask = rows_off_day(text, suite, day)
    if mask is None or not mask.any():
        return []
    assert suite.day is not None
    y, m, d = suite.day
    seen = sorted({f"{a}-{int(b):02d}-{int(c):02d}" if str(b).isdigit() and str(c).isdigit() else f"{a}-{b}-{c}"
                   for a, b, c in text.loc[mask, [y, m, d]].itertuples(index=False)})
    return [Failure(file, "+".join(suite.day), f"dates every row on {day}", int(mask.sum()), seen[:5])]


def rows_off_day(text: Any, suite: Suite, day: str | None) -> Any:
    """A boolean mask of the rows not dated on ``day`` (None when the suite has no day rule)."""
    if not suite.day or day is None or any(c not in text.columns for c in suite.day):
        return None
    import pandas as pd

    y, m, d = (pd.to_numeric(text[c], errors="coerce") for c in suite.day)
    want = [int(x) for x in day.split("-")]
    return ~((y == want[0]) & (m == want[1]) & (d == want[2]))


def bad_row_reasons(text: Any, suite: Suite, day: str | None = None) -> Any:
    """Per row of the raw text, why it breaks a row-level rule ('' for a good row).

    Row-level rules are the ones a single row can break: nulls, types, patterns, ranges, closed
    sets and the day rule. Table-level ones (row count, header, keys, null shares, means) cannot be
    cured by dropping rows.
    """
    import re

    import pandas as pd

    reasons = pd.Series("", index=text.index, dtype=object)

    def add(mask: Any, why: str) -> None:
        mask = mask.fillna(False).astype(bool)
        reasons[mask] = reasons[mask] + why + "; "

    for col, rule in suite.columns.items():
        if col not in text.columns:
            continue
        value = text[col]
        if rule.not_null:
            add(value.isna(), f"{col} is null")
        pattern = rule.regex or TYPE_PATTERNS.get(rule.type)
        if pattern:
            rx = re.compile(pattern)
            add(value.notna() & ~value.fillna("").map(lambda v, rx=rx: bool(rx.match(v))),
                f"{col} does not match {pattern}")
        if rule.type in ("int", "float") and (rule.min is not None or rule.max is not None):
            num = pd.to_numeric(value, errors="coerce")
            if rule.min is not None:
                add(num < rule.min, f"{col} below {rule.min:g}")
            if rule.max is not None:
                add(num > rule.max, f"{col} above {rule.max:g}")
        if rule.values is not None:
            allowed = {str(v) for v in rule.values}
            add(value.notna() & ~value.astype(str).isin(allowed), f"{col} not in {rule.values}")
    off = rows_off_day(text, suite, day)
    if off is not None:
        add(off, f"dated on another day than {day}")
    return reasons.str.rstrip("; ")


def read_text(data: bytes, null_markers: list[str] | None = None) -> Any:
    """The raw CSV as text columns, as the gate reads it: a cell that is one of ``null_markers``
    (the source's; default ``NA`` and empty) is no value."""
    import pandas as pd

    return pd.read_csv(io.BytesIO(data), dtype=str, na_values=NA_VALUES if null_markers is None else null_markers,
                       keep_default_na=False,
                       on_bad_lines="skip", engine="python")


def validate_csv_bytes(data: bytes, suite: Suite, file: str, day: str | None = None,
                       null_markers: list[str] | None = None) -> ValidationReport:
    """Validate raw CSV: structure and header, then text-level schema/types/nulls, then typed values
    and, with ``day``, that every row is dated on that day."""
    report = ValidationReport(file=file, suite=suite.name, rows=0)
    report.failures += structural_failures(data, file)
    if any(f.rule in ("file is not empty", "text is UTF-8") for f in report.failures):
        return report  # nothing more can be read reliably
    report.failures += header_failures(data, suite, file)
    text = read_text(data, null_markers)
    first = run_expectations(text, text_expectations(suite), file, suite.name)
    report.rows, report.evaluated = first.rows, first.evaluated
    report.failures += first.failures
    if report.failures:  # typed checks on mistyped columns would only repeat the same failures
        return report
    typed = cast_columns(text, suite)
    second = run_expectations(typed, value_expectations(suite, typed=False), file, suite.name)
    report.evaluated += second.evaluated
    report.failures += second.failures
    report.failures += day_failures(text, suite, file, day)
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
