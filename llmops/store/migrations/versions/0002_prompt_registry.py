"""prompt_versions, prompt_labels, label_events: the prompt registry and its audit log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "prompt_versions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("system", sa.Text(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("source_path", sa.String(1024)),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.Column("registered_by", sa.String(128), nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_prompt_versions_name_version"),
    )

    op.create_table(
        "prompt_labels",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("version", sa.String(64)),
        sa.Column("traffic_percent", sa.Float()),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("name", "environment", "label", name="uq_prompt_labels_key"),
    )

    op.create_table(
        "label_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("time", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("environment", sa.String(64)),
        sa.Column("label", sa.String(16)),
        sa.Column("from_version", sa.String(64)),
        sa.Column("to_version", sa.String(64)),
        sa.Column("from_traffic", sa.Float()),
        sa.Column("to_traffic", sa.Float()),
        sa.Column("label_revision", sa.Integer()),
        sa.Column("reason", sa.Text()),
        sa.Column("flow_run_id", sa.String(64)),
    )
    op.create_index("ix_label_events_name", "label_events", ["name", "environment", "id"])


def downgrade() -> None:
    op.drop_index("ix_label_events_name", table_name="label_events")
    op.drop_table("label_events")
    op.drop_table("prompt_labels")
    op.drop_table("prompt_versions")
