"""drift_reports: the nightly drift findings

Revision ID: 0006
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "drift_reports",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("feature", sa.String(128), nullable=False),
        sa.Column("prompt_name", sa.String(128), nullable=False),
        sa.Column("prompt_version", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("metric", sa.String(128), nullable=False),
        sa.Column("value", sa.Float()),
        sa.Column("reference", sa.Float()),
        sa.Column("reference_spread", sa.Float()),
        sa.Column("change", sa.Float()),
        sa.Column("statistic", sa.Float()),
        sa.Column("statistic_name", sa.String(128)),
        sa.Column("threshold", sa.Float()),
        sa.Column("p_value", sa.Float()),
        sa.Column("adjusted_p_value", sa.Float()),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("reference_days", sa.Integer()),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("flow_run_id", sa.String(64)),
    )
    op.create_index("ix_drift_reports_day", "drift_reports", ["day", "kind"])
    op.create_index("ix_drift_reports_prompt", "drift_reports", ["prompt_name", "day"])


def downgrade() -> None:
    op.drop_index("ix_drift_reports_prompt", table_name="drift_reports")
    op.drop_index("ix_drift_reports_day", table_name="drift_reports")
    op.drop_table("drift_reports")
