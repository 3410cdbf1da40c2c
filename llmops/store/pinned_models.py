"""Pinned-model references: a serving version's outputs on a fixed subset of its eval dataset.

Captured when a version starts serving, so that every night the same subset can be asked of the
same pinned model again and the answers compared (``llmops.drift.pinned``). A reference is one
per version, model and dataset: a re-capture replaces it as a whole. Each answer keeps the hash
of the example it answered, so after the dataset is edited the examples still unchanged can go
on being compared. Each example is answered twice (``sample`` 0 and 1): sample 0 is the reference, and
sample 1 shows how much the model's answers vary on their own, which is what a night's answers
are judged against. The embedding is all-MiniLM-L6-v2's, stored as float32 bytes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from llmops.store.models import Base, BigId, UTCDateTime, table_of


class PinnedReference(Base):
    """One version's reference on one dataset's pinned subset."""

    __tablename__ = "pinned_references"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    prompt_name: Mapped[str] = mapped_column(String(128))
    prompt_version: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))
    dataset_name: Mapped[str] = mapped_column(String(255))
    dataset_hash: Mapped[str] = mapped_column(String(64))
    subset_hash: Mapped[str] = mapped_column(String(64))
    examples: Mapped[int] = mapped_column(Integer)
    eval_run_id: Mapped[int | None] = mapped_column(BigId)
    embedding_model: Mapped[str] = mapped_column(String(128))
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    captured_by: Mapped[str] = mapped_column(String(128))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        UniqueConstraint("prompt_name", "prompt_version", "model", "dataset_name", name="ux_pinned_references_version"),
    )


class PinnedReferenceOutput(Base):
    """One answer of the reference: its text, embedding and the traits the nightly check compares."""

    __tablename__ = "pinned_reference_outputs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reference_id: Mapped[int] = mapped_column(BigId, ForeignKey("pinned_references.id", ondelete="CASCADE"))
    example_id: Mapped[str] = mapped_column(String(255))
    example_hash: Mapped[str] = mapped_column(String(64))
    sample: Mapped[int] = mapped_column(Integer)
    output: Mapped[str] = mapped_column(Text)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    length: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    refused: Mapped[bool] = mapped_column(Boolean)
    structured_valid: Mapped[bool | None] = mapped_column(Boolean)
    judge_score: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint("reference_id", "example_id", "sample", name="ux_pinned_reference_outputs_example"),
        Index("ix_pinned_reference_outputs_reference", "reference_id"),
    )


PINNED_REFERENCES = table_of(PinnedReference)
PINNED_OUTPUTS = table_of(PinnedReferenceOutput)
