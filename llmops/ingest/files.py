"""Trace files (JSONL, CSV, OpenTelemetry OTLP/JSON) streamed into validated ``TraceRecord``s.

Every reader streams: memory stays flat however long the file is (except a single
pretty-printed OTLP/JSON document, which is one JSON value and is parsed whole). A bad line
never stops the good ones: it comes out as a ``Rejection`` in its place. Problems that make
the whole file unreadable (unknown format, a CSV without the required columns) raise
``ValueError`` before the first record, naming the file.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, get_args

import orjson
from pydantic import ValidationError

from llmops import privacy
from llmops.ingest.otel import OtlpJsonParser
from llmops.ingest.rejections import Rejection, describe_validation_error, sort_out, truncate_raw
from llmops.records import TRACE_FIELDS, TraceRecord

TraceFormat = Literal["jsonl", "csv", "otel"]
FORMATS: tuple[TraceFormat, ...] = get_args(TraceFormat)
DEFAULT_BATCH_SIZE = 5_000
"""Records (and rejections) per batch: one write transaction each."""

_SUFFIX_FORMATS: tuple[tuple[str, TraceFormat], ...] = (
    (".jsonl", "jsonl"),
    (".ndjson", "jsonl"),
    (".csv", "csv"),
    (".json", "otel"),  # also covers .otlp.json, the Collector file exporter's habit
)
REQUIRED_CSV_COLUMNS: tuple[str, ...] = ("trace_id", "timestamp", "model")
"""A CSV header without these is refused before the first record."""
_KNOWN_FIELDS = frozenset(TRACE_FIELDS)


def detect_format(path: Path | str) -> TraceFormat:
    """The format a file's name announces (a trailing ``.gz`` is looked through).

    Args:
        path: The trace file.

    Returns:
        ``jsonl`` for ``.jsonl``/``.ndjson``, ``csv`` for ``.csv``, ``otel`` for ``.json`` (``.otlp.json``).

    Raises:
        ValueError: The name ends in none of these.

    Example:
        >>> detect_format("exports/calls.ndjson.gz"), detect_format("collector.otlp.json")
        ('jsonl', 'otel')
    """
    name = Path(path).name.lower().removesuffix(".gz")
    for suffix, fmt in _SUFFIX_FORMATS:
        if name.endswith(suffix):
            return fmt
    accepted = ", ".join(suffix for suffix, _ in _SUFFIX_FORMATS)
    raise ValueError(
        f"cannot tell the format of {path}: its name should end in {accepted} or .otlp.json "
        f"(optionally followed by .gz), or name the format explicitly (one of {', '.join(FORMATS)})"
    )


def open_binary(path: Path) -> io.BufferedReader | gzip.GzipFile:
    """The file's bytes, decompressed when its name ends in ``.gz``.

    Args:
        path: The file.

    Returns:
        A binary stream the caller closes.
    """
    if path.name.lower().endswith(".gz"):
        return gzip.GzipFile(path, "rb")
    return path.open("rb")


def parse_jsonl_lines(lines: Iterable[bytes], source: str, first_line: int = 1) -> Iterator[TraceRecord | Rejection]:
    """One JSON object per line; blank lines skipped; a UTF-8 byte-order mark tolerated.

    ``first_line`` numbers the lines when they are a chunk taken from further down the file.

    Args:
        lines: The lines as bytes (a binary file iterates so).
        source: The file's name, for rejections.
        first_line: The number of the first of ``lines``.

    Yields:
        A ``TraceRecord`` per valid line and a ``Rejection`` per invalid one, in order.

    Example:
        >>> lines = [b'{"trace_id": "t1", "timestamp": "2025-11-15T10:00:00Z", "model": "m"}', b"  ", b'{"trace_id": ""}']
        >>> [type(item).__name__ for item in parse_jsonl_lines(lines, "calls.jsonl")]
        ['TraceRecord', 'Rejection']
    """
    validate = TraceRecord.model_validate_json
    for number, line in enumerate(lines, start=first_line):
        if number == 1:
            line = line.removeprefix(codecs.BOM_UTF8)
        if not line.strip():
            continue
        try:
            yield validate(line)
        except ValidationError as exc:
            field, reason = describe_validation_error(exc)
            yield Rejection(source, number, field, reason, truncate_raw(line))


class _CsvParser:
    """A CSV trace file whose header has already been checked.

    Cells are strings and pydantic's lax mode converts them; an empty cell is an absent
    field; ``tags`` is ``a;b``; ``metadata`` is a JSON object; unknown columns are ignored.
    """

    def __init__(self, text: io.TextIOWrapper, source: str) -> None:
        self._source = source
        self._rows = csv.reader(text)
        try:
            header = next(self._rows, None)
        except csv.Error as exc:
            raise ValueError(f"{source}: the CSV header row is unreadable: {exc}") from None
        if not header:
            raise ValueError(f"{source}: the CSV file is empty; expected a header row naming the trace fields")
        names = [cell.strip().lower() for cell in header]
        missing = [column for column in REQUIRED_CSV_COLUMNS if column not in names]
        if missing:
            raise ValueError(
                f"{source}: the CSV header lacks the required column(s) {', '.join(missing)} (found: {', '.join(names)})"
            )
        self._width = len(names)
        self._columns = [(index, name) for index, name in enumerate(names) if name in _KNOWN_FIELDS]
        self._user_id_column = names.index("user_id") if "user_id" in names else None

    def parse(self) -> Iterator[TraceRecord | Rejection]:
        """Records and rejections, each numbered by the physical line its record starts on."""
        rows, source, width, columns = self._rows, self._source, self._width, self._columns
        end_of_previous = rows.line_num
        while True:
            line = end_of_previous + 1
            try:
                row = next(rows)
            except StopIteration:
                return
            except csv.Error as exc:  # a cell over csv.field_size_limit(); the reader goes on at the next line
                end_of_previous = rows.line_num
                yield Rejection(
                    source, line, None, f"unreadable CSV record: {exc}", f"<CSV record of lines {line}–{end_of_previous}>"
                )
                continue
            end_of_previous = rows.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != width:
                reason = f"has {len(row)} cells but the header has {width} (a stray comma or quote?)"
                yield Rejection(source, line, None, reason, _csv_raw(row, self._user_id_column))
                continue
            fields: dict[str, Any] = {name: row[index] for index, name in columns if row[index].strip()}
            if "metadata" in fields:
                try:
                    fields["metadata"] = orjson.loads(fields["metadata"])
                except orjson.JSONDecodeError as exc:
                    reason = f"expected a JSON object, invalid JSON: {exc}"
                    yield Rejection(source, line, "metadata", reason, _csv_raw(row, self._user_id_column))
                    continue
            try:
                yield TraceRecord.model_validate(fields)
            except ValidationError as exc:
                field, reason = describe_validation_error(exc)
                yield Rejection(source, line, field, reason, _csv_raw(row, self._user_id_column))


def _csv_raw(row: list[str], user_id_column: int | None = None) -> str:
    """A rejected record written back as one CSV record (quoted as needed), its user id as the store's pseudonym."""
    if user_id_column is not None and user_id_column < len(row) and row[user_id_column].strip():
        row = [*row]
        row[user_id_column] = privacy.user_id_pseudonym(row[user_id_column])
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(row)
    return truncate_raw(buffer.getvalue())


class TraceReader:
    """An open trace file. Iterate it for ``TraceRecord``s and ``Rejection``s in file order.

    ``skipped`` counts input that is valid but not an LLM call (OTel spans without GenAI
    attributes). The file closes when the iteration ends or on ``close()``/``with``.

    Args:
        path: The trace file, optionally gzipped.
        fmt: ``jsonl``, ``csv`` or ``otel``; None decides by the file's name (``detect_format``).

    Raises:
        ValueError: An unknown format, or a file unreadable as a whole (an empty CSV, missing
            required CSV columns); raised on construction, before the first record.

    Example:
        ```python
        with TraceReader("calls.csv") as reader:
            for records, rejections in reader.batches(1000):
                write_traces(engine, records)
        ```
    """

    def __init__(self, path: Path | str, fmt: str | None = None) -> None:
        self.path = Path(path)
        if fmt is not None and fmt not in FORMATS:
            raise ValueError(f"{path}: unknown trace format {fmt!r}; expected one of {', '.join(FORMATS)}")
        self.format: TraceFormat = fmt or detect_format(self.path)
        source = str(self.path)
        self._otel: OtlpJsonParser | None = None
        binary = open_binary(self.path)
        self._stream: io.BufferedReader | gzip.GzipFile | io.TextIOWrapper = binary
        try:
            if self.format == "jsonl":
                self._items = parse_jsonl_lines(binary, source)
            elif self.format == "csv":
                # Undecodable bytes become U+FFFD rather than ending the whole import.
                self._stream = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline="")
                self._items = _CsvParser(self._stream, source).parse()
            else:
                self._otel = OtlpJsonParser(source)
                self._items = self._otel.parse(binary)
        except BaseException:
            self._stream.close()
            raise

    @property
    def skipped(self) -> int:
        """Spans read so far that carried no GenAI attributes (HTTP, DB, …)."""
        return self._otel.skipped if self._otel else 0

    def __iter__(self) -> TraceReader:
        return self

    def __next__(self) -> TraceRecord | Rejection:
        try:
            return next(self._items)
        except StopIteration:
            self.close()
            raise

    def batches(self, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[tuple[list[TraceRecord], list[Rejection]]]:
        """Records and rejections in groups of at most ``batch_size`` items, for bulk inserts.

        Args:
            batch_size: Records plus rejections per group, at least 1.

        Yields:
            ``(records, rejections)``, in file order; the last group may be smaller.

        Raises:
            ValueError: ``batch_size`` is below 1.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        records: list[TraceRecord] = []
        rejections: list[Rejection] = []
        for item in self:
            sort_out(item, records, rejections)
            if len(records) + len(rejections) >= batch_size:
                yield records, rejections
                records, rejections = [], []
        if records or rejections:
            yield records, rejections

    def close(self) -> None:
        """Close the file (also done when the iteration ends)."""
        self._stream.close()

    def __enter__(self) -> TraceReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def read_traces(path: Path | str, fmt: str | None = None) -> TraceReader:
    """Stream a trace file; ``fmt`` None means by extension (see ``detect_format``).

    Args:
        path: The trace file, optionally gzipped.
        fmt: ``jsonl``, ``csv`` or ``otel``; None decides by the file's name.

    Returns:
        An open ``TraceReader``; iterate it or use it in a ``with``.

    Raises:
        ValueError: An unknown format, or a file unreadable as a whole.

    Example:
        ```python
        with read_traces("calls.jsonl.gz") as reader:
            records = [item for item in reader if isinstance(item, TraceRecord)]
        ```
    """
    return TraceReader(path, fmt)


def batched_traces(
    path: Path | str, fmt: TraceFormat | None = None, batch_size: int = DEFAULT_BATCH_SIZE
) -> Iterator[tuple[list[TraceRecord], list[Rejection]]]:
    """``read_traces(path, fmt).batches(batch_size)``, closing the file at the end.

    Args:
        path: The trace file, optionally gzipped.
        fmt: ``jsonl``, ``csv`` or ``otel``; None decides by the file's name.
        batch_size: Records plus rejections per group.

    Yields:
        ``(records, rejections)`` groups, in file order.

    Example:
        ```python
        for records, rejections in batched_traces("calls.csv", batch_size=1000):
            write_traces(engine, records)
        ```
    """
    with read_traces(path, fmt) as reader:
        yield from reader.batches(batch_size)
