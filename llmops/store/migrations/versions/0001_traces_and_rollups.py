"""traces, trace_rollups, ingest_watermarks, store_settings

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "traces",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("trace_id", sa.String(255), nullable=False),
        sa.Column("timestamp", sa.DateTime(), nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("feature", sa.String(128)),
        sa.Column("prompt_name", sa.String(128)),
        sa.Column("prompt_version", sa.String(64)),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("response_model", sa.String(128)),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cache_read_input_tokens", sa.Integer(), nullable=False),
        sa.Column("cache_creation_input_tokens", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("ttft_ms", sa.Float()),
        sa.Column("finish_reason", sa.String(32)),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("error_type", sa.String(64)),
        sa.Column("cost_usd", sa.BigInteger()),
        sa.Column("cost_source", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(64)),
        sa.Column("session_id", sa.String(128)),
        sa.Column("user_message_length", sa.Integer()),
        sa.Column("system_prompt_hash", sa.String(128)),
        sa.Column("user_feedback", sa.Float()),
        sa.Column("automated_eval_score", sa.Float()),
        sa.Column("is_batch", sa.Boolean(), nullable=False),
        sa.Column("tags", sa.JSON()),
        sa.Column("metadata", sa.JSON()),
        sa.Column("input_text", sa.Text()),
        sa.Column("output_text", sa.Text()),
        sa.UniqueConstraint("trace_id", name="uq_traces_trace_id"),
    )
    op.create_index("ix_traces_timestamp", "traces", ["timestamp"])
    op.create_index("ix_traces_prompt", "traces", ["prompt_name", "prompt_version", "timestamp"])

    op.create_table(
        "trace_rollups",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("feature", sa.String(128), nullable=False),
        sa.Column("prompt_name", sa.String(128), nullable=False),
        sa.Column("prompt_version", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        *[
            sa.Column(name, sa.BigInteger(), nullable=False)
            for name in (
                "requests",
                "errors",
                "input_tokens",
                "output_tokens",
                "cache_read_input_tokens",
                "cache_creation_input_tokens",
                "cost_picodollars",
                "unpriced",
            )
        ],
        sa.Column("feedback_sum", sa.Float(), nullable=False),
        sa.Column("feedback_count", sa.BigInteger(), nullable=False),
        sa.Column("eval_score_sum", sa.Float(), nullable=False),
        sa.Column("eval_score_count", sa.BigInteger(), nullable=False),
        sa.Column("latency_sketch", sa.LargeBinary()),
        sa.Column("ttft_sketch", sa.LargeBinary()),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint(
            "day", "environment", "feature", "prompt_name", "prompt_version", "model", name="uq_trace_rollups_key"
        ),
    )

    op.create_table(
        "ingest_watermarks",
        sa.Column("source", sa.String(255), primary_key=True),
        sa.Column("watermark", sa.JSON(), nullable=False),
        sa.Column("rows_total", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )

    op.create_table(
        "store_settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(255), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("store_settings")
    op.drop_table("ingest_watermarks")
    op.drop_table("trace_rollups")
    op.drop_index("ix_traces_prompt", table_name="traces")
    op.drop_index("ix_traces_timestamp", table_name="traces")
    op.drop_table("traces")
