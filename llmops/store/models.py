"""The store's tables (SQLAlchemy 2). Alembic migrations in ``migrations/`` create them.

Money is stored as integer picodollars (1e-12 USD): exact on SQLite and PostgreSQL alike,
exact for every per-token price with up to six decimals per million tokens, and fast to sum.
Timestamps are stored as naive UTC and come back timezone-aware.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from llmops.store.columns import METADATA, BigId, Money, UTCDateTime  # re-exported beside the models
from llmops.store.rollup_tables import ROLLUPS


class Base(DeclarativeBase):
    """The declarative base of every store table; ``Base.metadata`` (``METADATA``) is what Alembic compares against."""

    metadata = METADATA


def table_of(model: type[Base]) -> Table:
    """A model's ``Table``, the Core handle ``llmops.store.tables`` exports.

    SQLAlchemy types a model's ``__table__`` as the wider ``FromClause``; this narrows it once,
    so no module needs an ignore or a cast to use ``TRACES.c.timestamp``.

    Args:
        model: A mapped class of the store.

    Returns:
        Its table, for Core queries.

    Example:
        >>> table_of(Trace).name
        'traces'
    """
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


class Trace(Base):
    """One immutable, denormalised row per LLM call, as ``llmops.records.TraceRecord`` describes it.

    Written only by ``llmops.store.writer`` (once per ``trace_id``); ``user_id`` is the salted
    hash, never the raw id, and ``cost_usd`` is NULL when the model could not be priced
    (``cost_source`` says which: ``provided``, ``computed`` or ``unknown_model``).
    """

    __tablename__ = "traces"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    trace_id: Mapped[str] = mapped_column(String(255))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    environment: Mapped[str] = mapped_column(String(64))
    feature: Mapped[str | None] = mapped_column(String(128))
    prompt_name: Mapped[str | None] = mapped_column(String(128))
    prompt_version: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))
    response_model: Mapped[str | None] = mapped_column(String(128))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_read_input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_creation_input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    ttft_ms: Mapped[float | None] = mapped_column(Float)
    finish_reason: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(8))
    error_type: Mapped[str | None] = mapped_column(String(64))
    cost_usd: Mapped[Decimal | None] = mapped_column(Money)
    cost_source: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str | None] = mapped_column(String(64))
    session_id: Mapped[str | None] = mapped_column(String(128))
    user_message_length: Mapped[int | None] = mapped_column(Integer)
    system_prompt_hash: Mapped[str | None] = mapped_column(String(128))
    user_feedback: Mapped[float | None] = mapped_column(Float)
    automated_eval_score: Mapped[float | None] = mapped_column(Float)
    is_batch: Mapped[bool] = mapped_column(Boolean, default=False)
    tags: Mapped[list[str] | None] = mapped_column(JSON)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    input_text: Mapped[str | None] = mapped_column(Text)
    output_text: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("trace_id", name="uq_traces_trace_id"),
        Index("ix_traces_prompt", "prompt_name", "prompt_version", "timestamp"),
    )


class TraceRollup(Base):
    """A row of the daily rollups (``llmops.store.rollup_tables.ROLLUPS``), for code that wants objects."""

    __table__ = ROLLUPS

    id: Mapped[int]
    day: Mapped[date]
    environment: Mapped[str]
    feature: Mapped[str]
    prompt_name: Mapped[str]
    prompt_version: Mapped[str]
    model: Mapped[str]
    requests: Mapped[int]
    errors: Mapped[int]
    input_tokens: Mapped[int]
    output_tokens: Mapped[int]
    cache_read_input_tokens: Mapped[int]
    cache_creation_input_tokens: Mapped[int]
    cost_picodollars: Mapped[int]
    unpriced: Mapped[int]
    feedback_sum: Mapped[float]
    feedback_count: Mapped[int]
    eval_score_sum: Mapped[float]
    eval_score_count: Mapped[int]
    input_tokens_sq_sum: Mapped[float | None]
    output_tokens_sq_sum: Mapped[float | None]
    cost_usd_sq_sum: Mapped[float | None]
    feedback_sq_sum: Mapped[float | None]
    eval_score_sq_sum: Mapped[float | None]
    latency_sketch: Mapped[bytes | None]
    ttft_sketch: Mapped[bytes | None]
    updated_at: Mapped[datetime]


class IngestWatermark(Base):
    """How far an incremental pull has read a source; written with the rows it covers."""

    __tablename__ = "ingest_watermarks"

    source: Mapped[str] = mapped_column(String(255), primary_key=True)
    watermark: Mapped[dict[str, Any]] = mapped_column(JSON)
    rows_total: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StoreSetting(Base):
    """Facts the store's contents depend on, e.g. the timezone the rollup days were cut in."""

    __tablename__ = "store_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


TRACES = table_of(Trace)
WATERMARKS = table_of(IngestWatermark)
SETTINGS = table_of(StoreSetting)
