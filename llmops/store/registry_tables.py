"""The prompt registry's tables in SQLAlchemy Core: immutable versions, movable labels, the audit.

Label rows are never deleted: clearing a label sets its version to NULL and bumps its
``revision``, so a stale ``expected_revision`` can never match a label that was cleared and
set again (no ABA). Rollouts keep their own tables and move labels through ``llmops.release.registry``.
Defined without the ORM, so ``resolve`` and ``prompts list`` start without it
(``llmops.store.columns``); ``llmops.store.registry_models`` maps its classes onto these tables.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, Float, Index, Integer, String, Table, Text, UniqueConstraint

from llmops.store.columns import METADATA, BigId, UTCDateTime

LABELS = ("production", "canary", "staging")

PROMPT_VERSIONS = Table(
    "prompt_versions",
    METADATA,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("version", String(64), nullable=False),
    Column("model", String(128), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("system", Text, nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("source_path", String(1024)),
    Column("registered_at", UTCDateTime, nullable=False),
    Column("registered_by", String(128), nullable=False),
    UniqueConstraint("name", "version", name="uq_prompt_versions_name_version"),
)
"""One released prompt version; its content hash is fixed on first registration."""

PROMPT_LABELS = Table(
    "prompt_labels",
    METADATA,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("environment", String(64), nullable=False),
    Column("label", String(16), nullable=False),
    Column("version", String(64)),
    Column("traffic_percent", Float),
    Column("revision", Integer, nullable=False, default=0),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("name", "environment", "label", name="uq_prompt_labels_key"),
)
"""Which version holds a label of a prompt in one environment; ``revision`` guards writers.
``traffic_percent`` is the canary's share of requests (0–100); NULL for production and staging."""

LABEL_EVENTS = Table(
    "label_events",
    METADATA,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("time", UTCDateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("name", String(128), nullable=False),
    Column("environment", String(64)),
    Column("label", String(16)),
    Column("from_version", String(64)),
    Column("to_version", String(64)),
    Column("from_traffic", Float),
    Column("to_traffic", Float),
    Column("label_revision", Integer),
    Column("reason", Text),
    Column("flow_run_id", String(64)),
    Index("ix_label_events_name", "name", "environment", "id"),
)
"""The audit log: who changed what, when, why, and from which flow run. Append-only."""
