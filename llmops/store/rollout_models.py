"""The ``rollouts`` table: a staged promotion's plan and state, so no flow run stays open for days.

A rollout is live while its status is ``active``, ``paused`` or ``awaiting_approval``; a partial
unique index allows one live rollout per prompt and environment, so two promotions racing for
the same prompt cannot both start (on SQLite and PostgreSQL alike). ``revision`` guards every
update: the scheduled advance and a person approving or rolling back never both apply.
Labels themselves move through ``llmops.release.registry`` in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from llmops.store.models import Base, BigId, UTCDateTime, table_of

LIVE_STATUSES = ("active", "paused", "awaiting_approval")
"""Then ``completed`` or ``rolled_back``: every transition commits with its label moves, so no
rollout is ever left half-done."""
LIVE_CONDITION = "status IN ('active', 'paused', 'awaiting_approval')"


class RolloutRow(Base):
    """One promotion of ``candidate`` over ``baseline`` (the production version it started from)."""

    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    prompt_name: Mapped[str] = mapped_column(String(128))
    environment: Mapped[str] = mapped_column(String(64))
    candidate: Mapped[str] = mapped_column(String(64))
    baseline: Mapped[str | None] = mapped_column(String(64))
    strategy: Mapped[str] = mapped_column(String(16))
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    current_step: Mapped[int] = mapped_column(Integer, default=0)
    step_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(24))
    status_reason: Mapped[str | None] = mapped_column(Text)
    last_gate_results: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    revision: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        Index(
            "uq_rollouts_one_live",
            "prompt_name",
            "environment",
            unique=True,
            sqlite_where=text(LIVE_CONDITION),
            postgresql_where=text(LIVE_CONDITION),
        ),
        Index("ix_rollouts_prompt", "prompt_name", "environment", "id"),
    )


ROLLOUTS = table_of(RolloutRow)
