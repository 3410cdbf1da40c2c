"""The one write path for traces: price, insert once, update rollups, move the watermark.

Everything for a batch happens in one transaction, so a crash leaves either all of it or
none of it: rollups never count a trace twice or miss one, and an incremental pull resumes
exactly where its last committed batch ended.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Table, select, text
from sqlalchemy.dialects import postgresql, sqlite

from llmops import pricing, settings
from llmops.records import TraceRecord
from llmops.store import rollups
from llmops.store.models import IngestWatermark, StoreSetting, Trace, usd_to_pico

TRACES: Table = Trace.__table__  # type: ignore[assignment]
WATERMARKS: Table = IngestWatermark.__table__  # type: ignore[assignment]
SETTINGS: Table = StoreSetting.__table__  # type: ignore[assignment]
ROLLUP_TIMEZONE_KEY = "rollup_timezone"
INGEST_LOCK_ID = 74_115_002
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
)


@dataclass
class WriteResult:
    """What a write did: new rows, rows already stored, and how the new ones were priced."""

    inserted: int = 0
    duplicates: int = 0
    unpriced: int = 0
    cost_usd: Decimal = field(default_factory=lambda: Decimal(0))

    def __iadd__(self, other: WriteResult) -> WriteResult:
        self.inserted += other.inserted
        self.duplicates += other.duplicates
        self.unpriced += other.unpriced
        self.cost_usd += other.cost_usd
        return self


class RollupTimezoneMismatch(RuntimeError):
    """The store's rollup days were cut in another timezone than the one configured now."""


def dialect_insert(connection: Connection, table: Table) -> Any:
    """INSERT with ``on_conflict_*`` for the connection's backend."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    if connection.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"the store supports SQLite and PostgreSQL, not {connection.dialect.name}")


def hash_user_id(user_id: str, salt: bytes) -> str:
    """A stable pseudonym: traces never store the raw user id."""
    return hashlib.blake2b(user_id.encode(), key=salt[:64], digest_size=16).hexdigest()


def price_record(record: TraceRecord) -> tuple[Decimal | None, str]:
    if record.cost_usd is not None:
        return record.cost_usd, pricing.COST_PROVIDED
    usage = pricing.TokenUsage(
        record.input_tokens, record.output_tokens, record.cache_read_input_tokens, record.cache_creation_input_tokens
    )
    cost = pricing.price_call(record.model, usage, record.timestamp, record.is_batch)
    if cost is None:
        return None, pricing.COST_UNKNOWN_MODEL
    return cost, pricing.COST_COMPUTED


@dataclass(frozen=True, slots=True)
class StoredTrace:
    """A record as inserted: what rollups need besides the record itself."""

    record: TraceRecord
    cost_usd: Decimal | None
    naive_utc: datetime


def _unique_by_trace_id(records: Sequence[TraceRecord]) -> tuple[list[TraceRecord], int]:
    """First occurrence of each trace_id, and how many repeats were dropped."""
    first: dict[str, TraceRecord] = {}
    for record in records:
        first.setdefault(record.trace_id, record)
    return list(first.values()), len(records) - len(first)


def check_rollup_timezone(connection: Connection) -> str:
    """Record the rollup timezone on first write; refuse to mix days cut in two timezones."""
    configured = settings.timezone().key
    stored = connection.execute(
        select(SETTINGS.c.value).where(SETTINGS.c.key == ROLLUP_TIMEZONE_KEY)
    ).scalar_one_or_none()
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
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": INGEST_LOCK_ID})


def _stored_ids(connection: Connection, trace_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(trace_ids), 5000):
        chunk = trace_ids[start : start + 5000]
        found.update(connection.execute(select(TRACES.c.trace_id).where(TRACES.c.trace_id.in_(chunk))).scalars())
    return found


def insert_sql(connection: Connection) -> str:
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    return f"INSERT INTO traces ({', '.join(INSERT_COLUMNS)}) VALUES ({', '.join([mark] * len(INSERT_COLUMNS))})"


def insert_params(trace: StoredTrace, cost_source: str, salt: bytes, sqlite_times: bool) -> tuple[Any, ...]:
    """The DBAPI parameters of one row, in ``INSERT_COLUMNS`` order."""
    record = trace.record
    return (
        record.trace_id,
        trace.naive_utc.isoformat(sep=" ", timespec="microseconds") if sqlite_times else trace.naive_utc,
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
        None if trace.cost_usd is None else usd_to_pico(trace.cost_usd),
        cost_source,
        hash_user_id(record.user_id, salt) if record.user_id else None,
        record.session_id,
        record.user_message_length,
        record.system_prompt_hash,
        record.user_feedback,
        record.automated_eval_score,
        record.is_batch,
        orjson.dumps(record.tags).decode() if record.tags else None,
        orjson.dumps(record.metadata).decode() if record.metadata else None,
    )


def insert_new_traces(connection: Connection, records: Sequence[TraceRecord]) -> tuple[list[StoredTrace], int]:
    """Insert records whose trace_id is not stored yet; return them and the duplicate count.

    The insert is one DBAPI ``executemany`` of ready-made tuples: SQLAlchemy's per-value
    processing would cost more than the database's own work on large imports.
    """
    unique, in_batch_duplicates = _unique_by_trace_id(records)
    if not unique:
        return [], in_batch_duplicates
    lock_for_ingest(connection)
    already = _stored_ids(connection, [record.trace_id for record in unique])
    new = [record for record in unique if record.trace_id not in already]
    salt = settings.user_id_salt()
    sqlite_times = connection.dialect.name == "sqlite"
    stored: list[StoredTrace] = []
    params: list[tuple[Any, ...]] = []
    for record in new:
        cost, cost_source = price_record(record)
        trace = StoredTrace(record, cost, record.timestamp.astimezone(UTC).replace(tzinfo=None))
        stored.append(trace)
        params.append(insert_params(trace, cost_source, salt, sqlite_times))
    if params:
        connection.exec_driver_sql(insert_sql(connection), params)
    return stored, in_batch_duplicates + len(unique) - len(new)


def save_watermark(connection: Connection, source: str, watermark: dict[str, Any], rows: int) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    stmt = dialect_insert(connection, WATERMARKS).values(
        source=source, watermark=watermark, rows_total=rows, updated_at=now
    )
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
    with engine.connect() as connection:
        return connection.execute(
            select(WATERMARKS.c.watermark).where(WATERMARKS.c.source == source)
        ).scalar_one_or_none()


def write_traces(
    engine: Engine,
    records: Sequence[TraceRecord],
    *,
    watermark: tuple[str, dict[str, Any]] | None = None,
) -> WriteResult:
    """Store ``records`` once each, priced, with rollups (and a source watermark) in step."""
    with engine.begin() as connection:
        timezone = check_rollup_timezone(connection)
        inserted, duplicates = insert_new_traces(connection, records)
        rollups.add_traces(connection, inserted, timezone)
        if watermark is not None:
            save_watermark(connection, watermark[0], watermark[1], len(inserted))
    result = WriteResult(inserted=len(inserted), duplicates=duplicates)
    for trace in inserted:
        if trace.cost_usd is None:
            result.unpriced += 1
        else:
            result.cost_usd += trace.cost_usd
    return result
