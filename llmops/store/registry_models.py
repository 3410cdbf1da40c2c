"""The prompt registry's rows as ORM classes, mapped onto the Core tables of ``llmops.store.registry_tables``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Mapped

from llmops.store.models import Base
from llmops.store.registry_tables import LABEL_EVENTS, PROMPT_LABELS, PROMPT_VERSIONS


class PromptVersionRow(Base):
    """One released prompt version; its content hash is fixed on first registration."""

    __table__ = PROMPT_VERSIONS

    id: Mapped[int]
    name: Mapped[str]
    version: Mapped[str]
    model: Mapped[str]
    content_hash: Mapped[str]
    system: Mapped[str]
    parameters: Mapped[dict[str, Any]]
    source_path: Mapped[str | None]
    registered_at: Mapped[datetime]
    registered_by: Mapped[str]


class PromptLabel(Base):
    """Which version holds a label of a prompt in one environment; ``revision`` guards writers."""

    __table__ = PROMPT_LABELS

    id: Mapped[int]
    name: Mapped[str]
    environment: Mapped[str]
    label: Mapped[str]
    version: Mapped[str | None]
    traffic_percent: Mapped[float | None]
    revision: Mapped[int]
    updated_at: Mapped[datetime]


class LabelEventRow(Base):
    """The audit log: who changed what, when, why, and from which flow run. Append-only."""

    __table__ = LABEL_EVENTS

    id: Mapped[int]
    time: Mapped[datetime]
    actor: Mapped[str]
    action: Mapped[str]
    name: Mapped[str]
    environment: Mapped[str | None]
    label: Mapped[str | None]
    from_version: Mapped[str | None]
    to_version: Mapped[str | None]
    from_traffic: Mapped[float | None]
    to_traffic: Mapped[float | None]
    label_revision: Mapped[int | None]
    reason: Mapped[str | None]
    flow_run_id: Mapped[str | None]
