"""The prompt registry's tables: immutable versions, movable labels, and the audit of every move.

Label rows are never deleted: clearing a label sets its version to NULL and bumps its
``revision``, so a stale ``expected_revision`` can never match a label that was cleared and
set again (no ABA). Rollouts keep their own tables and move labels through ``llmops.release.registry``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from llmops.store.models import Base, BigId, UTCDateTime, table_of

LABELS = ("production", "canary", "staging")


class PromptVersionRow(Base):
    """One released prompt version; its content hash is fixed on first registration."""

    __tablename__ = "prompt_versions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))
    content_hash: Mapped[str] = mapped_column(String(64))
    system: Mapped[str] = mapped_column(Text)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    source_path: Mapped[str | None] = mapped_column(String(1024))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    registered_by: Mapped[str] = mapped_column(String(128))

    __table_args__ = (UniqueConstraint("name", "version", name="uq_prompt_versions_name_version"),)


class PromptLabel(Base):
    """Which version holds a label of a prompt in one environment; ``revision`` guards writers.

    ``traffic_percent`` is the canary's share of requests (0–100); production serves the rest
    and staging serves none, so it is NULL for them.
    """

    __tablename__ = "prompt_labels"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    environment: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(16))
    version: Mapped[str | None] = mapped_column(String(64))
    traffic_percent: Mapped[float | None] = mapped_column(Float)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("name", "environment", "label", name="uq_prompt_labels_key"),)


class LabelEventRow(Base):
    """The audit log: who changed what, when, why, and from which flow run. Append-only."""

    __tablename__ = "label_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    environment: Mapped[str | None] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(16))
    from_version: Mapped[str | None] = mapped_column(String(64))
    to_version: Mapped[str | None] = mapped_column(String(64))
    from_traffic: Mapped[float | None] = mapped_column(Float)
    to_traffic: Mapped[float | None] = mapped_column(Float)
    label_revision: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_label_events_name", "name", "environment", "id"),)


PROMPT_VERSIONS = table_of(PromptVersionRow)
PROMPT_LABELS = table_of(PromptLabel)
LABEL_EVENTS = table_of(LabelEventRow)
