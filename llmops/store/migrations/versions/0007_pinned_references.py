"""pinned_references, pinned_reference_outputs: what a serving version answered on its pinned subset

Revision ID: 0007
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pinned_references",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("prompt_name", sa.String(128), nullable=False),
        sa.Column("prompt_version", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("dataset_name", sa.String(255), nullable=False),
        sa.Column("dataset_hash", sa.String(64), nullable=False),
        sa.Column("subset_hash", sa.String(64), nullable=False),
        sa.Column("examples", sa.Integer(), nullable=False),
        sa.Column("eval_run_id", BigId),
        sa.Column("embedding_model", sa.String(128), nullable=False),
        sa.Column("captured_at", sa.DateTime(), nullable=False),
        sa.Column("captured_by", sa.String(128), nullable=False),
        sa.Column("details", sa.JSON()),
        sa.UniqueConstraint("prompt_name", "prompt_version", "model", "dataset_name", name="ux_pinned_references_version"),
    )
    op.create_table(
        "pinned_reference_outputs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("reference_id", BigId, sa.ForeignKey("pinned_references.id", ondelete="CASCADE"), nullable=False),
        sa.Column("example_id", sa.String(255), nullable=False),
        sa.Column("example_hash", sa.String(64), nullable=False),
        sa.Column("sample", sa.Integer(), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer()),
        sa.Column("refused", sa.Boolean(), nullable=False),
        sa.Column("structured_valid", sa.Boolean()),
        sa.Column("judge_score", sa.Float()),
        sa.UniqueConstraint("reference_id", "example_id", "sample", name="ux_pinned_reference_outputs_example"),
    )
    op.create_index("ix_pinned_reference_outputs_reference", "pinned_reference_outputs", ["reference_id"])


def downgrade() -> None:
    op.drop_index("ix_pinned_reference_outputs_reference", table_name="pinned_reference_outputs")
    op.drop_table("pinned_reference_outputs")
    op.drop_table("pinned_references")
