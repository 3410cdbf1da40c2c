"""The outbox and alert tables: every Slack message is stored before it is sent.

A message is written once per ``dedupe_key`` (a digest per day and channel, an alert per
flow run and finding), so reruns and retries never post it twice; a failed send leaves it
``pending`` for the next run. The chart goes into the message's thread in a second step,
so the row remembers the message's ``slack_ts`` the moment it is posted, and a retry after
a failed upload only uploads the chart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from llmops.store.models import Base, BigId, UTCDateTime, table_of

OUTBOX_KINDS = ("digest", "alert")
ALERT_SEVERITIES = ("info", "warning", "critical")


class OutboxMessage(Base):
    """One Slack message, from the moment it is decided until Slack has it (or gave up)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    dedupe_key: Mapped[str] = mapped_column(String(255))
    channel: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"text", "blocks", "markdown", "chart": {...} | None}
    chart_png: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)  # scrubbed: never a token or webhook URL
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    slack_channel_id: Mapped[str | None] = mapped_column(String(64))
    slack_ts: Mapped[str | None] = mapped_column(String(64))
    chart_file_id: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a sender's lease on the row

    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
        Index("ix_outbox_status_channel", "status", "channel", "created_at"),
    )


class AlertRecord(Base):
    """What fired, when, how bad, and where to look; its message lives in the outbox."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(300))
    details: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(Text)
    dedupe_key: Mapped[str] = mapped_column(String(255))
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_alerts_dedupe_key"),
        Index("ix_alerts_fired_at", "fired_at"),
    )


OUTBOX = table_of(OutboxMessage)
ALERTS = table_of(AlertRecord)
