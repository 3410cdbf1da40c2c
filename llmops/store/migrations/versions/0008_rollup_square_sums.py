"""trace_rollups: sums of squares, so drift tests know each day's own sampling variance

Existing rows keep NULL (their traces' squares were never summed) and drift detection tests
them as before; ``llmops db rebuild-rollups`` fills them from the raw traces.

Revision ID: 0008
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = ("input_tokens_sq_sum", "output_tokens_sq_sum", "cost_usd_sq_sum", "feedback_sq_sum", "eval_score_sq_sum")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("trace_rollups", sa.Column(name, sa.Float()))


def downgrade() -> None:
    with op.batch_alter_table("trace_rollups") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
