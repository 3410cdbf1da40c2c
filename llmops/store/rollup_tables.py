"""The daily rollups' table in SQLAlchemy Core: what digests, costs and drift read.

One row per local day × environment × feature × prompt × model, kept current on ingest in the
same transaction as the traces it counts. Key columns use '' for "none" because NULLs never
collide in a unique constraint. Defined without the ORM, so ``llmops costs`` starts without it
(``llmops.store.columns``); ``llmops.store.models.TraceRollup`` maps onto it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, Float, LargeBinary, String, Table, UniqueConstraint

from llmops.store.columns import METADATA, BigId, UTCDateTime


def _count(name: str) -> Column[int]:
    return Column(name, BigInteger, nullable=False, default=0)


def _sum(name: str) -> Column[float]:
    return Column(name, Float, nullable=False, default=0.0)


ROLLUPS = Table(
    "trace_rollups",
    METADATA,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("day", Date, nullable=False),
    Column("environment", String(64), nullable=False),
    Column("feature", String(128), nullable=False),
    Column("prompt_name", String(128), nullable=False),
    Column("prompt_version", String(64), nullable=False),
    Column("model", String(128), nullable=False),
    _count("requests"),
    _count("errors"),
    _count("input_tokens"),
    _count("output_tokens"),
    _count("cache_read_input_tokens"),
    _count("cache_creation_input_tokens"),
    _count("cost_picodollars"),  # summed exactly as integers
    _count("unpriced"),
    _sum("feedback_sum"),
    _count("feedback_count"),
    _sum("eval_score_sum"),
    _count("eval_score_count"),
    # Sums of squares (input tokens with cache tokens, output tokens, cost in USD, feedback, eval
    # score): the day's own sampling variance, which sharpens drift tests. NULL on rows from
    # before migration 0008 until ``llmops db rebuild-rollups``.
    Column("input_tokens_sq_sum", Float),
    Column("output_tokens_sq_sum", Float),
    Column("cost_usd_sq_sum", Float),
    Column("feedback_sq_sum", Float),
    Column("eval_score_sq_sum", Float),
    Column("latency_sketch", LargeBinary),
    Column("ttft_sketch", LargeBinary),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("day", "environment", "feature", "prompt_name", "prompt_version", "model", name="uq_trace_rollups_key"),
)
"""Per local day × environment × feature × prompt × model: counts, sums, sums of squares and sketches."""
