"""Evaluation tables: one ``eval_runs`` row per run, one ``eval_results`` row per case and
repeat, and ``eval_cache``, the outputs already paid for.

A run records everything its numbers depend on (prompt version and content hash, pinned model,
dataset name and content hash, mode, repeats), so two runs are comparable exactly when those
match. Per-metric scores are JSON (``{"metric": value}``): scorers are configured per prompt
and a run's metrics are not known to the schema.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from llmops.store.models import Base, BigId, Money, UTCDateTime, table_of

RUN_STATUSES = ("running", "complete", "incomplete", "failed")
"""``incomplete``: stopped early (circuit breaker) or some cases never got an answer; such a run
is never compared as a regression. ``failed``: the run itself broke (bad key, store error)."""
RUN_MODES = ("live", "batch")


class EvalRun(Base):
    """One evaluation run: what was evaluated on what, how, and its summary scores and costs."""

    __tablename__ = "eval_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    prompt_name: Mapped[str] = mapped_column(String(128))
    prompt_version: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))
    dataset_name: Mapped[str] = mapped_column(String(255))
    dataset_hash: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(8))
    repeats: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cost_usd: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    unpriced_calls: Mapped[int] = mapped_column(Integer, default=0)
    cases_total: Mapped[int] = mapped_column(Integer)  # examples × repeats
    cases_done: Mapped[int] = mapped_column(Integer, default=0)
    cases_failed: Mapped[int] = mapped_column(Integer, default=0)
    cases_cached: Mapped[int] = mapped_column(Integer, default=0)
    calls: Mapped[int] = mapped_column(Integer, default=0)  # API attempts, retries included
    retries: Mapped[int] = mapped_column(Integer, default=0)
    scores: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # {"metric": {"mean": .., "n": ..}}
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # settings, batch ids, judge, flow run
    created_by: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (Index("ix_eval_runs_lookup", "prompt_name", "prompt_version", "dataset_hash", "status", "id"),)


class EvalResult(Base):
    """One case of a run: one example answered once (``repeat``), its output, scores and cost."""

    __tablename__ = "eval_results"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(BigId, ForeignKey("eval_runs.id", ondelete="CASCADE"))
    example_id: Mapped[str] = mapped_column(String(255))
    repeat: Mapped[int] = mapped_column(Integer)
    output: Mapped[str | None] = mapped_column(Text)
    scores: Mapped[dict[str, float] | None] = mapped_column(JSON)
    reasons: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # {"metric": {"reason": .., "details": ..}}
    cost_usd: Mapped[Decimal | None] = mapped_column(Money)  # 0 when cached; None when unpriced
    latency_ms: Mapped[float | None] = mapped_column(Float)
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (UniqueConstraint("run_id", "example_id", "repeat", name="uq_eval_results_case"),)


class EvalCacheEntry(Base):
    """An output already paid for, keyed by sha256 of (model, parameters, system prompt, input, repeat)."""

    __tablename__ = "eval_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(128))
    output: Mapped[str] = mapped_column(Text)
    input_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer)
    cost_usd: Mapped[Decimal | None] = mapped_column(Money)  # what it cost when it was paid for
    latency_ms: Mapped[float | None] = mapped_column(Float)
    is_batch: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


EVAL_RUNS = table_of(EvalRun)
EVAL_RESULTS = table_of(EvalResult)
EVAL_CACHE = table_of(EvalCacheEntry)
