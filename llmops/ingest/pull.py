"""Incremental pull from an application's own SQL table of LLM calls, by column mapping.

The source is read in keyset order ``(cursor, id)``: ``WHERE cursor > :c OR (cursor = :c
AND id > :i) ORDER BY cursor, id LIMIT n``. The id breaks ties, so rows sharing a cursor
value across a batch boundary are neither skipped nor read twice. Each batch is written
with ``write_traces(..., watermark=...)``: rows, rollups and the new position commit
together, so a crash between batches loses nothing and doubles nothing, and the next run
resumes from the last committed batch.

Rows whose cursor or id is NULL have no place in that order and are never pulled.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as time_of_day
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from sqlalchemy import Column, Engine, MetaData, RowMapping, Select, Table, and_, create_engine, inspect, or_, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, NoSuchModuleError, NoSuchTableError, OperationalError
from sqlalchemy.pool import NullPool

from llmops.ingest.rejections import describe_validation_error
from llmops.records import TRACE_FIELDS, TraceRecord
from llmops.store.writer import load_watermark, write_traces

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 5_000
REQUIRED_FIELDS: tuple[str, ...] = ("trace_id", "timestamp", "model")
JSON_FIELDS = frozenset({"tags", "metadata"})
KEPT_REJECTIONS = 20
"""Rejected rows kept in a report for people to read; all of them are logged and counted."""


class SourceConfigError(ValueError):
    """The source cannot be read as configured: unknown table, missing columns, bad URL."""


class SourceUnavailable(ConnectionError):
    """The source database did not answer, even after retrying with backoff."""


class SourceConfig(BaseModel):
    """Where an application keeps its LLM calls, and how its columns map to trace fields.

    Example:
        >>> source = SourceConfig(url="postgresql+psycopg://app:secret@db/app", table="public.llm_calls",
        ...                       column_map={"trace_id": "request_id", "timestamp": "created_at"})
        >>> source.watermark_name, source.safe_url()
        ('sql:public.llm_calls', 'postgresql+psycopg://app:***@db/app')
    """

    model_config = ConfigDict(frozen=True)

    url: SecretStr = Field(description="SQLAlchemy URL of the application's database (may hold a password).")
    table: str = Field(min_length=1, description="Table (or view) to read; `schema.table` is accepted.")
    column_map: dict[str, str] = Field(
        default_factory=dict,
        description="Trace field -> source column, for columns not named like the field.",
    )
    cursor_column: str | None = Field(
        default=None,
        description="Source column that only grows (any orderable type); default: the timestamp column.",
    )
    id_column: str | None = Field(
        default=None, description="Unique source column that breaks cursor ties; default: the trace_id column."
    )
    name: str | None = Field(
        default=None, max_length=255, description="Watermark key; default `sql:<table>`. Rename to start over."
    )
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1, le=100_000, description="Rows per transaction.")
    connect_timeout_seconds: int = Field(default=10, ge=1, description="Give up on one connection attempt after this.")
    connect_attempts: int = Field(default=3, ge=1, le=10, description="Attempts per read before giving up.")

    @field_validator("column_map")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(TRACE_FIELDS))
        if unknown:
            raise ValueError(
                f"column_map keys must be trace fields; unknown: {', '.join(unknown)} (trace fields: {', '.join(TRACE_FIELDS)})"
            )
        return value

    @property
    def watermark_name(self) -> str:
        """The key of this source's watermark: ``name``, or ``sql:<table>``."""
        return self.name or f"sql:{self.table}"

    def safe_url(self) -> str:
        """The URL with its password masked: the only form that may be logged or shown."""
        return _safe_url(self.url.get_secret_value())


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A source row that did not become a trace: its id, the offending column and why."""

    row_id: Any
    column: str | None
    reason: str


@dataclass
class PullReport:
    """What one pull did, and where the source's watermark stands now."""

    source: str
    pulled: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    unpriced: int = 0
    watermark: dict[str, Any] | None = None
    first_rejections: list[RejectedRow] = field(default_factory=list)

    def watermark_text(self) -> str:
        """The watermark as ``cursor_column=value, id_column=value``, for people."""
        if self.watermark is None:
            return "none (nothing pulled yet)"
        mark = self.watermark
        return f"{mark['cursor_column']}={mark['cursor']}, {mark['id_column']}={mark['id']}"

    def summary(self) -> str:
        """One line: pulled, imported, duplicates, rejected, and the watermark."""
        return (
            f"pulled {self.pulled}, imported {self.inserted}, duplicates {self.duplicates}, "
            f"rejected {self.rejected}, watermark {self.watermark_text()}"
        )

    def as_dict(self) -> dict[str, Any]:
        """Counts and watermark only: safe for logs, artifacts and JSON output."""
        return {
            "source": self.source,
            "pulled": self.pulled,
            "inserted": self.inserted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "unpriced": self.unpriced,
            "watermark": self.watermark,
        }


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _scrub(message: str, url: URL) -> str:
    """A driver message with the password cut out, should a driver ever echo it."""
    return message.replace(url.password, "***") if url.password else message


def _connect_args(url: URL, timeout_seconds: int) -> dict[str, Any]:
    """Connection timeouts in each driver's own spelling."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        return {"timeout": timeout_seconds}
    if backend in {"postgresql", "mysql", "mariadb"}:
        return {"connect_timeout": timeout_seconds}
    return {}


def create_source_engine(source: SourceConfig) -> Engine:
    """An engine for the source with connection timeouts; errors name the URL without its password.

    Args:
        source: The source; its URL may hold a password.

    Returns:
        An engine without a pool (each read connects anew, so a restarted database is no problem).

    Raises:
        SourceConfigError: The URL is not a SQLAlchemy URL, a SQLite file does not exist, or the
            driver is not installed.
    """
    try:
        url = make_url(source.url.get_secret_value())
    except ArgumentError:
        raise SourceConfigError(
            "the source URL is not a SQLAlchemy URL (expected e.g. postgresql+psycopg://user@host/db)"
        ) from None
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(url.database).is_file():
            raise SourceConfigError(f"source database {source.safe_url()}: no such file")
    try:
        return create_engine(url, connect_args=_connect_args(url, source.connect_timeout_seconds), poolclass=NullPool)
    except (NoSuchModuleError, ImportError) as exc:
        raise SourceConfigError(
            f"cannot open {source.safe_url()}: the database driver is not installed ({exc.__class__.__name__}: "
            f"{_scrub(str(exc), url)})"
        ) from None


def with_reconnects(
    action: Callable[[], Any], source: SourceConfig, engine: Engine, *, sleep: Callable[[float], None] = time.sleep
) -> Any:
    """Run ``action``, retrying connection-level failures with exponential backoff and jitter.

    Reads are idempotent, so a retry is always safe; anything not connection-shaped is raised.

    Args:
        action: The read, which opens its own connection.
        source: Gives the attempt count (``connect_attempts``) and the URL to name.
        engine: The source engine, whose password is scrubbed from messages.
        sleep: How to wait between attempts (tests pass a fake).

    Returns:
        What ``action`` returns.

    Raises:
        SourceUnavailable: Every attempt failed to connect or lost the connection.
    """
    attempt = 1
    while True:
        try:
            return action()
        except (OperationalError, InterfaceError) as exc:
            message = str(exc.orig or exc).strip()
            reason = _scrub(message.splitlines()[0] if message else type(exc.orig or exc).__name__, engine.url)
            if attempt >= source.connect_attempts:
                raise SourceUnavailable(f"cannot read {source.safe_url()} (attempts: {attempt}): {reason}") from None
            delay = min(2.0 ** (attempt - 1), 30.0) * random.uniform(0.5, 1.5)
            logger.warning("reading %s failed (%s); retry %d in %.1f s", source.safe_url(), reason, attempt, delay)
            sleep(delay)
            attempt += 1


def _reflect(engine: Engine, source: SourceConfig) -> Table:
    schema, _, name = source.table.rpartition(".")
    try:
        return Table(name, MetaData(), schema=schema or None, autoload_with=engine)
    except NoSuchTableError:
        tables = inspect(engine).get_table_names(schema=schema or None)
        listing = ", ".join(sorted(tables)) or "none"
        raise SourceConfigError(f"table {source.table!r} not found in {source.safe_url()} (tables there: {listing})") from None


@dataclass(frozen=True)
class ColumnPlan:
    """Which source column feeds each trace field, and the keyset order's two columns."""

    fields: dict[str, str]
    cursor: str
    id: str


def plan_columns(source: SourceConfig, columns: Sequence[str]) -> ColumnPlan:
    """Resolve the mapping against the table's columns; name every missing one at once.

    Args:
        source: The column mapping and the cursor and id columns.
        columns: The source table's column names.

    Returns:
        Which column feeds each trace field, and the keyset order's columns.

    Raises:
        SourceConfigError: A mapped column, a required field, or the cursor or id column is missing.

    Example:
        >>> source = SourceConfig(url="sqlite://", table="calls", column_map={"trace_id": "request_id"})
        >>> plan = plan_columns(source, ["request_id", "timestamp", "model", "latency_ms"])
        >>> plan.cursor, plan.id, plan.fields["latency_ms"]
        ('timestamp', 'request_id', 'latency_ms')
    """
    available = set(columns)
    fields = {name: source.column_map.get(name, name) for name in TRACE_FIELDS}
    fields = {name: column for name, column in fields.items() if column in available or name in source.column_map}
    cursor = source.cursor_column or fields.get("timestamp", "timestamp")
    row_id = source.id_column or fields.get("trace_id", "trace_id")
    problems = [f"{name} -> {column!r}" for name, column in source.column_map.items() if column not in available]
    problems += [f"{name} (no column {name!r} and no mapping)" for name in REQUIRED_FIELDS if name not in fields]
    problems += [
        f"{role} {column!r}" for role, column in (("cursor_column", cursor), ("id_column", row_id)) if column not in available
    ]
    if problems:
        raise SourceConfigError(
            f"table {source.table!r} lacks columns for: {'; '.join(dict.fromkeys(problems))}. Its columns: {', '.join(columns)}"
        )
    return ColumnPlan(fields=fields, cursor=cursor, id=row_id)


def encode_position(value: Any) -> Any:
    """A cursor or id value as JSON for the watermark table.

    Example:
        >>> encode_position(datetime(2025, 11, 15, 10, 0)), encode_position(42)
        ('2025-11-15T10:00:00', 42)
    """
    if isinstance(value, datetime | date | time_of_day):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)  # Decimal, UUID: their str() is what their constructor reads back


def decode_position(value: Any, column: Column[Any]) -> Any:
    """A watermark value back in the column's own Python type, so the comparison is typed.

    Args:
        value: The stored JSON value (``encode_position``).
        column: The source column it is compared with.

    Returns:
        The value as the column's Python type; as stored when the column type is unknown.

    Example:
        >>> from sqlalchemy import DateTime
        >>> decode_position("2025-11-15T10:00:00", Column("created_at", DateTime()))
        datetime.datetime(2025, 11, 15, 10, 0)
    """
    try:
        kind = column.type.python_type
    except NotImplementedError:  # untyped SQLite columns: compare the value as stored
        return value
    if value is None or isinstance(value, kind):
        return value
    if kind in (datetime, date, time_of_day):
        return kind.fromisoformat(value)
    return kind(value)


def _json_value(field_name: str, value: Any) -> Any:
    """Tags and metadata kept as JSON text in the source arrive parsed."""
    if field_name in JSON_FIELDS and isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value  # validation explains what is wrong with it
    return value


def _start_position(engine: Engine, source: SourceConfig, plan: ColumnPlan) -> dict[str, Any] | None:
    stored = load_watermark(engine, source.watermark_name)
    if stored is None:
        return None
    if (stored.get("cursor_column"), stored.get("id_column")) != (plan.cursor, plan.id):
        raise SourceConfigError(
            f"the watermark {source.watermark_name!r} was kept on columns "
            f"({stored.get('cursor_column')}, {stored.get('id_column')}), but the source now orders by "
            f"({plan.cursor}, {plan.id}); set a new source name to pull from the start"
        )
    return stored


def _batch_query(table: Table, plan: ColumnPlan, position: Mapping[str, Any] | None, limit: int) -> Select[Any]:
    cursor, row_id = table.c[plan.cursor], table.c[plan.id]
    wanted = dict.fromkeys([*plan.fields.values(), plan.cursor, plan.id])
    query = (
        select(*(table.c[name] for name in wanted))
        .where(cursor.is_not(None), row_id.is_not(None))
        .order_by(cursor, row_id)
        .limit(limit)
    )
    if position is not None:
        last_cursor = decode_position(position["cursor"], cursor)
        last_id = decode_position(position["id"], row_id)
        query = query.where(or_(cursor > last_cursor, and_(cursor == last_cursor, row_id > last_id)))
    return query


def rows_to_records(rows: Sequence[Mapping[str, Any]], plan: ColumnPlan) -> tuple[list[TraceRecord], list[RejectedRow]]:
    """Validate mapped rows; a bad row becomes a rejection naming its id and column.

    Args:
        rows: Source rows by column name.
        plan: Which column feeds each field.

    Returns:
        ``(records, rejections)``; JSON text in ``tags``/``metadata`` columns arrives parsed.
    """
    records: list[TraceRecord] = []
    rejections: list[RejectedRow] = []
    columns_by_field = plan.fields
    for row in rows:
        values = {name: _json_value(name, row[column]) for name, column in columns_by_field.items()}
        values = {name: value for name, value in values.items() if value is not None}
        try:
            records.append(TraceRecord(**values))
        except ValidationError as exc:
            column, reason = describe_validation_error(exc, columns_by_field)
            rejections.append(RejectedRow(row_id=row[plan.id], column=column, reason=reason))
    return records, rejections


def pull_traces(
    engine: Engine,
    source: SourceConfig,
    *,
    max_rows: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PullReport:
    """Pull rows past the stored watermark into the store, one committed batch at a time.

    Args:
        engine: The store.
        source: The application's table and its column mapping.
        max_rows: Stop after about this many rows (at least 1); None pulls everything new.
        sleep: How to wait between reconnect attempts (tests pass a fake).

    Returns:
        The counts and the new watermark; rejected rows are logged and counted, never fatal.

    Raises:
        SourceConfigError: The table or a mapped column is missing, or the watermark was kept
            on other columns than the source orders by now.
        SourceUnavailable: The source did not answer after retries (committed batches stay).
        ValueError: ``max_rows`` is below 1.

    Example:
        ```python
        source = SourceConfig(url="postgresql+psycopg://app@db/app", table="llm_calls",
                              column_map={"trace_id": "request_id", "timestamp": "created_at"})
        report = pull_traces(get_engine(), source)
        print(report.summary())
        ```
    """
    if max_rows is not None and max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}")
    source_engine = create_source_engine(source)
    report = PullReport(source=source.watermark_name)
    try:
        table = with_reconnects(lambda: _reflect(source_engine, source), source, source_engine, sleep=sleep)
        plan = plan_columns(source, [column.name for column in table.columns])
        position = _start_position(engine, source, plan)
        report.watermark = position
        while max_rows is None or report.pulled < max_rows:
            limit = source.batch_size if max_rows is None else min(source.batch_size, max_rows - report.pulled)
            query = _batch_query(table, plan, position, limit)

            def read(query: Select[Any] = query) -> list[RowMapping]:
                with source_engine.connect() as connection:
                    return list(connection.execute(query).mappings())

            rows = with_reconnects(read, source, source_engine, sleep=sleep)
            if not rows:
                break
            records, rejections = rows_to_records(rows, plan)
            last = rows[-1]
            position = {
                "cursor_column": plan.cursor,
                "id_column": plan.id,
                "cursor": encode_position(last[plan.cursor]),
                "id": encode_position(last[plan.id]),
            }
            written = write_traces(engine, records, watermark=(source.watermark_name, position))
            for rejection in rejections:
                logger.warning(
                    "%s: row %s=%r rejected: %s%s",
                    source.watermark_name,
                    plan.id,
                    rejection.row_id,
                    f"{rejection.column}: " if rejection.column else "",
                    rejection.reason,
                )
            report.pulled += len(rows)
            report.inserted += written.inserted
            report.duplicates += written.duplicates
            report.unpriced += written.unpriced
            report.rejected += len(rejections)
            report.first_rejections.extend(rejections[: max(KEPT_REJECTIONS - len(report.first_rejections), 0)])
            report.watermark = position
            if len(rows) < limit:
                break
    finally:
        source_engine.dispose()
    return report
