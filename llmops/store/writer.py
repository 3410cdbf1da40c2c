"""The one write path for traces: price, insert once, update rollups, move the watermark.

Everything for a batch happens in one transaction, so a crash leaves either all of it or
none of it: rollups never count a trace twice or miss one, and an incremental pull resumes
exactly where its last committed batch ended.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, func, select, text

from llmops import pricing, privacy, settings
from llmops.money import pico_to_usd, usd_to_pico
from llmops.records import TraceRecord
from llmops.store import rollups
from llmops.store.engine import dialect_insert
from llmops.store.tables import SETTINGS, TRACES, WATERMARKS

ROLLUP_TIMEZONE_KEY = "rollup_timezone"
"""The ``store_settings`` key holding the timezone the rollups' days are cut in."""
INGEST_LOCK_ID = 74_115_002
"""PostgreSQL advisory lock id that serialises trace writers."""
INSERT_COLUMNS = (
    "trace_id",
    "timestamp",
    "environment",
    "feature",
    "prompt_name",
    "prompt_version",
    "model",
    "response_model",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "latency_ms",
    "ttft_ms",
    "finish_reason",
    "status",
    "error_type",
    "cost_usd",
    "cost_source",
    "user_id",
    "session_id",
    "user_message_length",
    "system_prompt_hash",
    "user_feedback",
    "automated_eval_score",
    "is_batch",
    "tags",
    "metadata",
    "input_text",
    "output_text",
)
SESSION_ID_LIMIT = 128
"""The ``session_id`` column's width: a redacted session id is cut to it."""


@dataclass
class WriteResult:
    """What a write did: new rows, rows already stored, and how the new ones were priced.

    Results add up with ``+=``, so an import sums its batches into one.
    """

    inserted: int = 0
    duplicates: int = 0
    unpriced: int = 0
    cost_usd: Decimal = field(default_factory=lambda: Decimal(0))

    def __iadd__(self, other: WriteResult) -> WriteResult:
        """Add another batch's counts and cost to these."""
        self.inserted += other.inserted
        self.duplicates += other.duplicates
        self.unpriced += other.unpriced
        self.cost_usd += other.cost_usd
        return self


class RollupTimezoneMismatch(RuntimeError):
    """The store's rollup days were cut in another timezone than the one configured now."""


def price_record(record: TraceRecord, day: date) -> tuple[int | None, str]:
    """Cost in picodollars and where it came from.

    Args:
        record: The call; a provided ``cost_usd`` is kept as is.
        day: The call's UTC date, whose prices apply.

    Returns:
        ``(picodollars, cost_source)``: ``provided``, ``computed``, or ``(None, "unknown_model")``.

    Example:
        >>> from datetime import datetime
        >>> record = TraceRecord(trace_id="t1", timestamp=datetime(2025, 11, 15), model="my-private-model")
        >>> price_record(record, date(2025, 11, 15))
        (None, 'unknown_model')
    """
    if record.cost_usd is not None:
        return usd_to_pico(record.cost_usd), pricing.COST_PROVIDED
    cost = pricing.price_picodollars(
        record.model,
        record.input_tokens,
        record.output_tokens,
        record.cache_read_input_tokens,
        record.cache_creation_input_tokens,
        day,
        record.is_batch,
    )
    return (None, pricing.COST_UNKNOWN_MODEL) if cost is None else (cost, pricing.COST_COMPUTED)


@dataclass(slots=True)
class PreparedBatch:
    """Traces ready to insert: DBAPI rows and their rollup rows, in the same order.

    Preparing (validate, price, hash, format) is pure Python and needs no database, so large
    imports prepare batches in worker processes while the main process writes.
    """

    params: list[tuple[Any, ...]]
    """One ``insert_params`` tuple per unique trace."""
    rollup_rows: list[rollups.RollupRow]
    timezone: str
    """The zone the rollup days were cut in; the store must use the same."""
    sqlite_times: bool
    in_batch_duplicates: int = 0
    """Records dropped because an earlier record of the batch had the same ``trace_id``."""


def _unique_by_trace_id(records: Sequence[TraceRecord]) -> tuple[list[TraceRecord], int]:
    """First occurrence of each trace_id, and how many repeats were dropped."""
    first: dict[str, TraceRecord] = {}
    for record in records:
        first.setdefault(record.trace_id, record)
    return list(first.values()), len(records) - len(first)


def prepare(records: Sequence[TraceRecord], *, sqlite_times: bool, timezone: str | None = None) -> PreparedBatch:
    """Price and format ``records`` for insertion; no database needed, so workers can do it.

    Args:
        records: Validated trace records; a ``trace_id`` repeated in them is kept once (the first).
        sqlite_times: Format timestamps as SQLite's text (the batch then only fits a SQLite store).
        timezone: The zone to cut rollup days in; None reads ``LLMOPS_TIMEZONE``.

    Returns:
        The batch for ``write_prepared``.
    """
    unique, duplicates = _unique_by_trace_id(records)
    timezone = timezone or settings.timezone().key
    salt = privacy.user_id_salt()
    redactor = privacy.redactor()
    text_limit = _text_limit()
    params: list[tuple[Any, ...]] = []
    rollup_rows: list[rollups.RollupRow] = []
    for record in unique:
        naive_utc = record.timestamp.replace(tzinfo=None)  # TraceRecord timestamps are UTC
        cost, cost_source = price_record(record, naive_utc.date())
        params.append(insert_params(record, naive_utc, cost, cost_source, salt, sqlite_times, redactor, text_limit))
        rollup_rows.append(rollups.rollup_row(record, naive_utc, cost, timezone))
    return PreparedBatch(params, rollup_rows, timezone, sqlite_times, duplicates)


def check_rollup_timezone(connection: Connection) -> str:
    """Record the rollup timezone on first write; refuse to mix days cut in two timezones.

    Args:
        connection: A connection inside the writing transaction.

    Returns:
        The timezone the store's rollups are cut in.

    Raises:
        RollupTimezoneMismatch: ``LLMOPS_TIMEZONE`` differs from the stored one.
    """
    configured = settings.timezone().key
    stored = connection.execute(select(SETTINGS.c.value).where(SETTINGS.c.key == ROLLUP_TIMEZONE_KEY)).scalar_one_or_none()
    if stored is None:
        connection.execute(
            dialect_insert(connection, SETTINGS)
            .values(key=ROLLUP_TIMEZONE_KEY, value=configured)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        return configured
    if stored != configured:
        raise RollupTimezoneMismatch(
            f"the store's daily rollups are cut at midnight {stored}, but {settings.LLMOPS_TIMEZONE} is "
            f"{configured}; set it back to {stored}, or run `llmops db rebuild-rollups` to recut them"
        )
    return stored


def lock_for_ingest(connection: Connection) -> None:
    """Serialise trace writers for this transaction, so "already stored?" stays true until commit.

    SQLite transactions here start with BEGIN IMMEDIATE and hold the write lock already.

    Args:
        connection: A connection inside the writing transaction; the lock ends with it.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": INGEST_LOCK_ID})


def _trace_ids_after(connection: Connection, last_id: int) -> set[str]:
    return set(connection.execute(select(TRACES.c.trace_id).where(TRACES.c.id > last_id)).scalars())


def insert_sql(connection: Connection) -> str:
    """The raw ``INSERT … ON CONFLICT (trace_id) DO NOTHING`` of ``INSERT_COLUMNS``, in the driver's paramstyle."""
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    columns, marks = ", ".join(INSERT_COLUMNS), ", ".join([mark] * len(INSERT_COLUMNS))
    return f"INSERT INTO traces ({columns}) VALUES ({marks}) ON CONFLICT (trace_id) DO NOTHING"


def _text_limit() -> int:
    """Characters of captured prompt and answer text to keep; 0 while text capture is off."""
    return settings.capture_text_max_chars() if settings.capture_text() else 0


def insert_params(
    record: TraceRecord,
    naive_utc: datetime,
    cost: int | None,
    cost_source: str,
    salt: bytes,
    sqlite_times: bool,
    redactor: privacy.Redactor | None = None,
    text_limit: int | None = None,
) -> tuple[Any, ...]:
    """The DBAPI parameters of one row, in ``INSERT_COLUMNS`` order, with personal data redacted.

    The session id, tags, every string in metadata and (captured) texts pass ``redactor``; the
    session id's placeholders carry a keyed hash, so distinct sessions stay distinct.

    Args:
        record: The call.
        naive_utc: Its timestamp as naive UTC.
        cost: Its cost in picodollars, or None.
        cost_source: Where the cost came from (``price_record``).
        salt: The user-id salt (the raw id is never stored).
        sqlite_times: Write the timestamp as SQLite's text.
        redactor: What to redact; None: the configured one (``privacy.redactor``).
        text_limit: Characters of input and output text to keep, 0 to keep none; None: the settings.

    Returns:
        One tuple for ``executemany``.
    """
    redact = redactor if redactor is not None else privacy.redactor()
    limit = _text_limit() if text_limit is None else text_limit
    session_id = record.session_id
    if session_id:
        session_id = redact.keyed(salt).text(session_id)[:SESSION_ID_LIMIT]
    return (
        record.trace_id,
        naive_utc.isoformat(sep=" ", timespec="microseconds") if sqlite_times else naive_utc,
        record.environment,
        record.feature,
        record.prompt_name,
        record.prompt_version,
        record.model,
        record.response_model,
        record.input_tokens,
        record.output_tokens,
        record.cache_read_input_tokens,
        record.cache_creation_input_tokens,
        record.latency_ms,
        record.ttft_ms,
        record.finish_reason,
        record.status,
        record.error_type,
        cost,
        cost_source,
        privacy.stored_user_id(record.user_id, salt) if record.user_id else None,
        session_id,
        record.user_message_length,
        record.system_prompt_hash,
        record.user_feedback,
        record.automated_eval_score,
        record.is_batch,
        orjson.dumps([redact.text(tag) for tag in record.tags]).decode() if record.tags else None,
        orjson.dumps(redact.json(record.metadata)).decode() if record.metadata else None,
        privacy.captured_text(redact, record.input_text, limit) if limit else None,
        privacy.captured_text(redact, record.output_text, limit) if limit else None,
    )


def insert_new_rows(connection: Connection, batch: PreparedBatch) -> list[rollups.RollupRow]:
    """Insert the rows whose trace_id is not stored yet; return the rollup rows of those.

    One DBAPI ``executemany`` of ready-made tuples with ``ON CONFLICT DO NOTHING``: SQLAlchemy's
    per-value processing, or a lookup of every id beforehand, would cost more than the
    database's own work. Only when the row count shows duplicates are the new rows read back
    (by id, which only grows while this transaction holds the ingest lock).

    Args:
        connection: A connection inside the writing transaction.
        batch: From ``prepare``, for this connection's backend.

    Returns:
        The rollup rows of the traces inserted now, for ``rollups.add_rows``.

    Raises:
        ValueError: The batch was prepared for the other backend.
    """
    if not batch.params:
        return []
    if batch.sqlite_times != (connection.dialect.name == "sqlite"):
        raise ValueError("this batch was prepared for another database backend")
    lock_for_ingest(connection)
    last_id = connection.execute(select(func.coalesce(func.max(TRACES.c.id), 0))).scalar_one()
    inserted_count = connection.exec_driver_sql(insert_sql(connection), batch.params).rowcount
    if inserted_count == len(batch.params):
        return batch.rollup_rows
    new_ids = _trace_ids_after(connection, last_id)
    return [row for row, params in zip(batch.rollup_rows, batch.params, strict=True) if params[0] in new_ids]


def save_watermark(connection: Connection, source: str, watermark: dict[str, Any], rows: int) -> None:
    """Move a source's watermark and add ``rows`` to its total, in the caller's transaction."""
    now = datetime.now(UTC).replace(tzinfo=None)
    stmt = dialect_insert(connection, WATERMARKS).values(source=source, watermark=watermark, rows_total=rows, updated_at=now)
    connection.execute(
        stmt.on_conflict_do_update(
            index_elements=["source"],
            set_={
                "watermark": stmt.excluded.watermark,
                "rows_total": WATERMARKS.c.rows_total + stmt.excluded.rows_total,
                "updated_at": stmt.excluded.updated_at,
            },
        )
    )


def load_watermark(engine: Engine, source: str) -> dict[str, Any] | None:
    """Where an incremental pull of ``source`` last committed, or None before its first batch.

    Args:
        engine: The store.
        source: The watermark's name (``SourceConfig.watermark_name``).

    Returns:
        The JSON position ``pull_traces`` saved with its last batch.
    """
    with engine.connect() as connection:
        return connection.execute(select(WATERMARKS.c.watermark).where(WATERMARKS.c.source == source)).scalar_one_or_none()


def write_prepared(engine: Engine, batch: PreparedBatch, *, watermark: tuple[str, dict[str, Any]] | None = None) -> WriteResult:
    """Store a prepared batch once per trace, with rollups (and a source watermark) in step.

    Args:
        engine: The store; it must be the backend the batch was prepared for.
        batch: From ``prepare``.
        watermark: ``(source, position)`` to save in the same transaction (incremental pulls).

    Returns:
        Inserted, duplicate and unpriced counts and the inserted rows' cost.

    Raises:
        RollupTimezoneMismatch: The store's rollups are cut in another timezone than the batch's.
        ValueError: The batch was prepared for the other backend.
    """
    with engine.begin() as connection:
        timezone = check_rollup_timezone(connection)
        if timezone != batch.timezone:
            raise RollupTimezoneMismatch(f"the batch was prepared for days in {batch.timezone}, the store uses {timezone}")
        inserted = insert_new_rows(connection, batch)
        rollups.add_rows(connection, inserted)
        if watermark is not None:
            save_watermark(connection, watermark[0], watermark[1], len(inserted))
    priced = [row.cost_picodollars for row in inserted if row.cost_picodollars is not None]
    return WriteResult(
        inserted=len(inserted),
        duplicates=batch.in_batch_duplicates + len(batch.params) - len(inserted),
        unpriced=len(inserted) - len(priced),
        cost_usd=pico_to_usd(sum(priced)),
    )


def write_traces(
    engine: Engine,
    records: Sequence[TraceRecord],
    *,
    watermark: tuple[str, dict[str, Any]] | None = None,
) -> WriteResult:
    """Store ``records`` once each, priced, with rollups (and a source watermark) in step.

    The one write path for traces: a trace already stored (same ``trace_id``) counts as a
    duplicate and changes nothing, so re-importing a file is safe.

    Args:
        engine: The store (``get_engine``).
        records: Validated trace records.
        watermark: ``(source, position)`` to save in the same transaction (incremental pulls).

    Returns:
        Inserted, duplicate and unpriced counts and the inserted rows' cost.

    Raises:
        RollupTimezoneMismatch: ``LLMOPS_TIMEZONE`` differs from the timezone of the stored rollups.

    Example:
        ```python
        record = TraceRecord(trace_id="msg_1", timestamp="2025-11-15T10:00:00Z",
                             model="claude-3-5-sonnet-20241022", input_tokens=1200, output_tokens=300)
        result = write_traces(get_engine(), [record])
        result.inserted, result.cost_usd  # (1, Decimal('0.0081'))
        ```
    """
    batch = prepare(records, sqlite_times=engine.dialect.name == "sqlite")
    return write_prepared(engine, batch, watermark=watermark)
