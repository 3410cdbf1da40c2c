"""evals: eval_runs, eval_results, eval_cache

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "eval_runs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("prompt_name", sa.String(128), nullable=False),
        sa.Column("prompt_version", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("dataset_name", sa.String(255), nullable=False),
        sa.Column("dataset_hash", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("repeats", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text()),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime()),
        sa.Column("cost_usd", sa.BigInteger(), nullable=False),
        sa.Column("unpriced_calls", sa.Integer(), nullable=False),
        sa.Column("cases_total", sa.Integer(), nullable=False),
        sa.Column("cases_done", sa.Integer(), nullable=False),
        sa.Column("cases_failed", sa.Integer(), nullable=False),
        sa.Column("cases_cached", sa.Integer(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("scores", sa.JSON()),
        sa.Column("details", sa.JSON()),
        sa.Column("created_by", sa.String(128)),
    )
    op.create_index("ix_eval_runs_lookup", "eval_runs", ["prompt_name", "prompt_version", "dataset_hash", "status", "id"])
    op.create_table(
        "eval_results",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("run_id", BigId, sa.ForeignKey("eval_runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("example_id", sa.String(255), nullable=False),
        sa.Column("repeat", sa.Integer(), nullable=False),
        sa.Column("output", sa.Text()),
        sa.Column("scores", sa.JSON()),
        sa.Column("reasons", sa.JSON()),
        sa.Column("cost_usd", sa.BigInteger()),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("input_tokens", sa.Integer()),
        sa.Column("output_tokens", sa.Integer()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("run_id", "example_id", "repeat", name="uq_eval_results_case"),
    )
    op.create_table(
        "eval_cache",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.BigInteger()),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("is_batch", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("eval_cache")
    op.drop_table("eval_results")
    op.drop_index("ix_eval_runs_lookup", table_name="eval_runs")
    op.drop_table("eval_runs")
