"""rollouts: staged promotions' plans and state

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LIVE_CONDITION = "status IN ('active', 'paused', 'awaiting_approval')"


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("prompt_name", sa.String(128), nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("candidate", sa.String(64), nullable=False),
        sa.Column("baseline", sa.String(64)),
        sa.Column("strategy", sa.String(16), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("current_step", sa.Integer(), nullable=False),
        sa.Column("step_started_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("status_reason", sa.Text()),
        sa.Column("last_gate_results", sa.JSON()),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime()),
        sa.Column("flow_run_id", sa.String(64)),
        sa.Column("revision", sa.Integer(), nullable=False),
    )
    op.create_index(
        "uq_rollouts_one_live",
        "rollouts",
        ["prompt_name", "environment"],
        unique=True,
        sqlite_where=sa.text(LIVE_CONDITION),
        postgresql_where=sa.text(LIVE_CONDITION),
    )
    op.create_index("ix_rollouts_prompt", "rollouts", ["prompt_name", "environment", "id"])


def downgrade() -> None:
    op.drop_index("ix_rollouts_prompt", table_name="rollouts")
    op.drop_index("uq_rollouts_one_live", table_name="rollouts")
    op.drop_table("rollouts")
