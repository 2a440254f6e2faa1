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
        elif cfg.type == "expect_column_values_to_be_null":
            rule += (f" (observed {100 - res.get('unexpected_percent', 0):.0f}% null: a feature that is missing for "
                     "some rows has values for all of them, so the transform invented them)")
        report.failures.append(Failure(file, cfg.kwargs.get("column") or _cols(cfg), rule, count, examples))
    ctx.suites.delete(suite.name)
    ctx.data_sources.delete(f"src_{key}")
    return report


def _cols(cfg: Any) -> str | None:
    cols = cfg.kwargs.get("column_list")
    return "+".join(cols) if cols else None


BOM = b"\xef\xbb\xbf"


@dataclass
class ParsedDelivery:
    """A CSV delivery as the one reader read it: its header, its rows as an Arrow table of strings
    (a cell equal to one of the source's null markers is null), and what stopped it being read.

    ``table`` is None when the bytes are not a readable CSV (empty, not UTF-8, a quoted field never
    closed, ...): ``failures`` then says why, with line and column where there is one."""

    header: list[str]
    table: Any
    failures: list[Failure]


def _line_of(data: bytes, offset: int) -> int:
    """The 1-based line of byte ``offset``; LF, CRLF and a bare CR each end a line."""
    return data.count(b"\n", 0, offset) + data.count(b"\r", 0, offset) - data.count(b"\r\n", 0, offset) + 1


def _field_at(data: bytes, offset: int) -> int:
    """The 0-based field of the record that byte ``offset`` falls in, quotes respected.

    Scans from the start of the file (only to name a failure)."""
    field, quoted = 0, False
    for byte in data[:offset]:
        if byte == 0x22:  # "
            quoted = not quoted
        elif not quoted and byte == 0x2C:  # ,
            field += 1
        elif not quoted and byte in (0x0A, 0x0D):
            field = 0
    return field


def _utf8_failures(data: bytes, file: str, header: list[str], body_start: int = 0) -> list[Failure]:
    """Each line that is not UTF-8, with where the first bad byte sits (line, column, byte).

    Bytes that are not UTF-8 are never replaced (a U+FFFD in a published name is a silent loss)."""
    try:
        data.decode("utf-8")
        return []
    except UnicodeDecodeError as e:
        first = e.start
    bad: list[str] = []
    column = None
    count = 0
    offset = data.rfind(b"\n", 0, first) + 1  # the start of the first bad line
    while offset < len(data):
        end = data.find(b"\n", offset)
        end = len(data) if end < 0 else end + 1
        line = data[offset:end]
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as e:
            count += 1
            at = offset + e.start
            field = _field_at(data, at)
            if at < body_start:  # in the header itself: its names cannot be trusted
                name = f"header field {field + 1}"
            else:
                name = header[field] if field < len(header) else f"field {field + 1}"
            column = column or name
            if len(bad) < 3:
                bad.append(f"line {_line_of(data, at)}, column {name!r}, byte {e.start + 1}: {line[e.start:e.start + 4]!r}")
        offset = end
    return [Failure(file, column, "text is UTF-8", count, bad)]


def _header_record(data: bytes) -> tuple[list[str], int]:
    """The header record's names (as written; a quoted name may hold a comma or a line end) and
    the offset where the rows start."""
    quoted, end = False, len(data)
    for i, byte in enumerate(data):
        if byte == 0x22:
            quoted = not quoted
        elif not quoted and byte in (0x0A, 0x0D):
            end = i + (2 if data[i:i + 2] == b"\r\n" else 1)
            break
    first = data[:end].decode("utf-8", errors="replace")
    return next(csv.reader(io.StringIO(first, newline="")), []), end


def _header(data: bytes) -> list[str]:
    return _header_record(data)[0]


def _unclosed_quote(data: bytes, file: str, header: list[str]) -> list[Failure]:
    """A quoted field never closed swallows every line after it into one value: find where it opens."""
    if data.count(b'"') % 2 == 0:
        return []
    # With an odd count of quotes the last one opens a field that runs to the end of the file.
    opened = data.rfind(b'"')
    field = _field_at(data, opened)
    name = header[field] if field < len(header) else f"field {field + 1}"
    return [Failure(file, name, "quoted fields are closed (RFC 4180)", 1,
                    [f"line {_line_of(data, opened)}, column {name!r}: a quote opens a field that never ends"])]


def _ragged_lines(data: bytes, width: int, most: int = 3) -> list[int]:
    """The physical lines where the first records with another field count than ``width`` start
    (read only to name a failure: the reader's own row numbers are not kept when it reads in parallel)."""
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    out, start = [], 1
    for row in reader:
        if len(row) != width and start > 1:
            out.append(start)
            if len(out) == most:
                break
        start = reader.line_num + 1
    return out


def parse_delivery(data: bytes, file: str, null_markers: list[str] | None = None) -> ParsedDelivery:
    """Read a CSV delivery once, the only way it is ever read (docs/adr/0015).

    RFC 4180 as pyarrow's reader implements it: quoted fields may hold commas, newlines and
    doubled quotes; LF, CRLF or CR line ends; a UTF-8 byte-order mark is dropped. Every column is a
    string; a cell (quoted or not) equal to one of ``null_markers`` (default ``NA`` and empty) is
    null. What cannot be read that way is a failure with line and column, never a guess: an empty
    file, bytes that are not UTF-8, a cut-off last line, a quoted field never closed, a row with
    another number of fields than the header, a header that names a column twice.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if not data.strip():
        return ParsedDelivery([], None, [Failure(file, None, "file is not empty", None)])
    if data.startswith(BOM):
        data = data[len(BOM):]
    names_as_written, body_start = _header_record(data)
    header = [h.strip() for h in names_as_written]
    failures = _utf8_failures(data, file, header, body_start)
    if failures:
        return ParsedDelivery(header, None, failures)
    if not data.endswith((b"\n", b"\r")):
        failures.append(Failure(file, None, "ends with a complete line (file looks truncated)", 1))
    failures += _unclosed_quote(data, file, header)
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        failures.append(Failure(file, dupes[0], "names each column once in the header", len(dupes), dupes))
    if any(f.rule != "ends with a complete line (file looks truncated)" for f in failures):
        return ParsedDelivery(header, None, failures)  # a cut-off file is still read, to name its ragged rows

    ragged: list[str] = []

    def on_ragged(row: Any) -> str:
        ragged.append(row.text)
        return "skip"

    names = [f"c{i}" for i in range(len(header))]
    if not data[body_start:].strip(b"\r\n"):  # a header and no rows: an empty table, not an error
        empty = pa.table({n: pa.array([], pa.string()) for n in names})
        return ParsedDelivery(header, empty.rename_columns(header), [])
    try:
        table = pacsv.read_csv(
            pa.py_buffer(memoryview(data)[body_start:]),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=True),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_ragged),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                null_values=NA_VALUES if null_markers is None else list(null_markers)),
        )
    except (pa.ArrowInvalid, pa.ArrowException) as e:  # the reader refused: say what it said
        return ParsedDelivery(header, None, [Failure(file, None, f"is readable CSV ({e})", None)])
    if ragged:
        failures.append(Failure(file, None, f"every row has {len(header)} fields like the header", len(ragged),
                                [f"line {n}" for n in _ragged_lines(data, len(header))]))
        return ParsedDelivery(header, None, failures)
    return ParsedDelivery(header, table.rename_columns(header), [])


def structural_failures(data: bytes, file: str) -> list[Failure]:
    """Why ``data`` cannot be read as a CSV table (empty, not UTF-8, truncated, ragged...)."""
    return parse_delivery(data, file).failures


def header_failures(header: list[str] | bytes, suite: Suite, file: str) -> list[Failure]:
    """The header must list the declared columns in the declared order.

    The parsed table keeps the delivery's column order, and the suite's order is the contract every
    reader relies on: an extra column or two swapped columns are rejected with the column named.
    A missing column is reported by the column-exists expectation.
    """
    if isinstance(header, bytes):
        header = [h.strip() for h in _header(header[len(BOM):] if header.startswith(BOM) else header)]
    declared = list(suite.columns)
    out = [Failure(file, col, f"is declared in suite {suite.name} (an unexpected column at position {i + 1}; "
                   "every column is read by its declared position)", None)
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
    if len(suite.day) == 1:  # one date column: show the cells as written
        seen = sorted({str(v) for v in text.loc[mask, suite.day[0]]})
    else:
        y, m, d = suite.day
        seen = sorted({f"{a}-{int(b):02d}-{int(c):02d}" if str(b).isdigit() and str(c).isdigit() else f"{a}-{b}-{c}"
                       for a, b, c in text.loc[mask, [y, m, d]].itertuples(index=False)})
    return [Failure(file, "+".join(suite.day), f"dates every row on {day}", int(mask.sum()), seen[:5])]


def rows_off_day(text: Any, suite: Suite, day: str | None) -> Any:
    """A boolean mask of the rows not dated on ``day`` (None when the suite has no day rule)."""
    if not suite.day or day is None or any(c not in text.columns for c in suite.day):
        return None
    import pandas as pd

    if len(suite.day) == 1:
        import re

        # The date as written (before any time zone): YYYY-MM-DD alone or starting a timestamp.
        on_day = text[suite.day[0]].str.match(rf"^{re.escape(day)}(?:$|[T ])")
        return ~on_day.fillna(False).astype(bool)
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


def text_frame(table: Any) -> Any:
    """A parsed delivery as the pandas frame the gate's expectations run on: every column text,
    a null cell None."""
    # deduplicate_objects (the default) keeps one Python string per distinct value of a column,
    # which is most of what a million-row delivery costs in memory.
    return table.to_pandas(deduplicate_objects=True)


def read_text(data: bytes, null_markers: list[str] | None = None) -> Any:
    """The raw CSV as text columns, as the one reader reads it (:func:`parse_delivery`)."""
    parsed = parse_delivery(data, "<bytes>", null_markers)
    if parsed.table is None:
        raise DataQualityError([ValidationReport("<bytes>", "", 0, failures=parsed.failures)])
    return text_frame(parsed.table)


def validate_parsed(parsed: ParsedDelivery, suite: Suite, file: str, day: str | None = None) -> ValidationReport:
    """Validate a parsed delivery: header, then text-level schema/types/nulls, then typed values
    and, with ``day``, that every row is dated on that day."""
    report = ValidationReport(file=file, suite=suite.name, rows=0, failures=list(parsed.failures))
    if parsed.table is None:
        return report  # nothing more can be read reliably
    report.rows = parsed.table.num_rows
    report.failures += header_failures(parsed.header, suite, file)
    text = text_frame(parsed.table)
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


def validate_delivery(data: bytes, suite: Suite | None, file: str, day: str | None = None,
                      null_markers: list[str] | None = None) -> tuple[ValidationReport, ParsedDelivery]:
    """Parse ``data`` once and validate that table; the table is what the transform will read.

    Without a suite only the structure is checked (a readable CSV whose header names each column once)."""
    parsed = parse_delivery(data, file, null_markers)
    if suite is None:
        report = ValidationReport(file=file, suite="structure", rows=0, failures=list(parsed.failures))
        report.rows = parsed.table.num_rows if parsed.table is not None else 0
        return report, parsed
    return validate_parsed(parsed, suite, file, day), parsed


def validate_csv_bytes(data: bytes, suite: Suite, file: str, day: str | None = None,
                       null_markers: list[str] | None = None) -> ValidationReport:
    """Validate raw CSV as :func:`validate_delivery` does; the report only."""
    return validate_delivery(data, suite, file, day, null_markers)[0]


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
