"""The ``drift_reports`` table: what the nightly drift detection found, one row per finding.

A night's findings are replaced as a whole when the day is checked again (late traces, a
rerun), so a day never holds two verdicts on the same metric. Group key columns use '' for
"none", as the rollups do. ``kind`` says which detector: ``trace`` (a metric of the day moved
against its reference window; the statistic, threshold and p-values are set) or ``pinning``
(calls on an alias, off the version's pinned model, or answered by another model; ``value``
is the number of calls, ``reference`` the calls it is a share of, ``details`` the examples) or
``pinned`` (a serving version's answers on its pinned eval subset moved against its reference:
the statistic is the paired test's p-value, the threshold the night's cutoff).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from llmops.store.models import Base, BigId, UTCDateTime, table_of

FINDING_KINDS = ("trace", "pinning", "pinned")


class DriftReportRow(Base):
    """One finding of one night."""

    __tablename__ = "drift_reports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))
    environment: Mapped[str] = mapped_column(String(64))
    feature: Mapped[str] = mapped_column(String(128))
    prompt_name: Mapped[str] = mapped_column(String(128))
    prompt_version: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))
    metric: Mapped[str] = mapped_column(String(128))
    value: Mapped[float | None] = mapped_column(Float)
    reference: Mapped[float | None] = mapped_column(Float)
    reference_spread: Mapped[float | None] = mapped_column(Float)
    change: Mapped[float | None] = mapped_column(Float)
    statistic: Mapped[float | None] = mapped_column(Float)
    statistic_name: Mapped[str | None] = mapped_column(String(128))
    threshold: Mapped[float | None] = mapped_column(Float)
    p_value: Mapped[float | None] = mapped_column(Float)
    adjusted_p_value: Mapped[float | None] = mapped_column(Float)
    calls: Mapped[int] = mapped_column(Integer)
    reference_days: Mapped[int | None] = mapped_column(Integer)
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_drift_reports_day", "day", "kind"),
        Index("ix_drift_reports_prompt", "prompt_name", "day"),
    )


DRIFT_REPORTS = table_of(DriftReportRow)
