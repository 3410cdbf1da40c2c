"""The trace record: one LLM call, as every importer, the tracing SDK and the store see it.

Field names follow the seed's trace record. Validation is strict about meaning (no negative
token counts, a known status, a score in [0, 1]) and lenient about spelling (numbers as
strings from CSV, naive timestamps taken as UTC), so real exports load without hand-editing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict

FEEDBACK_WORDS: dict[str, float] = {  # the same words as FeedbackWordName below
    "positive": 1.0,
    "thumbs_up": 1.0,
    "up": 1.0,
    "good": 1.0,
    "neutral": 0.0,
    "negative": -1.0,
    "thumbs_down": -1.0,
    "down": -1.0,
    "bad": -1.0,
}

# Python runs only for inputs that need it (a naive time, a thumbs word, tags as one string):
# the common JSON line is validated entirely inside pydantic-core, which import speed needs.


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _split_tags(value: str) -> list[str]:
    """CSV gives tags as ``a;b`` or ``a,b``."""
    return [tag.strip() for tag in value.replace(";", ",").split(",") if tag.strip()]


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
FeedbackWordName = Literal["positive", "thumbs_up", "up", "good", "neutral", "negative", "thumbs_down", "down", "bad"]
FeedbackWord = Annotated[FeedbackWordName, AfterValidator(FEEDBACK_WORDS.__getitem__)]
FeedbackThumb = Annotated[bool, Strict(), AfterValidator(lambda up: 1.0 if up else -1.0)]
Feedback = FeedbackThumb | Annotated[float, Field(ge=-1.0, le=1.0)] | FeedbackWord | None
Tags = list[str] | Annotated[str, AfterValidator(_split_tags)]
Tokens = Annotated[int, Field(ge=0, le=100_000_000)]


class TraceRecord(BaseModel):
    """One LLM call. ``cost_usd`` absent means "price it"; present means "keep it".

    Unknown fields are ignored, so exports with extra columns load as they are.

    Example:
        >>> record = TraceRecord.model_validate({
        ...     "trace_id": "msg_1", "timestamp": "2025-11-15 10:00:00", "model": "claude-3-5-sonnet-20241022",
        ...     "input_tokens": "1200", "user_feedback": "thumbs_up", "tags": "support;vip",
        ... })
        >>> record.timestamp.tzname(), record.input_tokens, record.user_feedback, record.tags
        ('UTC', 1200, 1.0, ['support', 'vip'])
    """

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=False)

    trace_id: str = Field(min_length=1, max_length=255, description="Unique id of the call.")
    timestamp: UtcDatetime = Field(description="When the call started; naive means UTC.")
    model: str = Field(min_length=1, max_length=128, description="Model id as requested.")
    environment: str = Field(default="production", min_length=1, max_length=64)
    feature: str | None = Field(default=None, max_length=128)
    """The application feature that made the call (``chat_response``, ``code_review``…)."""
    prompt_name: str | None = Field(default=None, max_length=128)
    prompt_version: str | None = Field(default=None, max_length=64)
    response_model: str | None = Field(default=None, max_length=128)
    """The model id the provider says answered: differs from ``model`` when an alias moved."""
    input_tokens: Tokens = Field(default=0, description="Uncached input tokens (Anthropic's convention).")
    output_tokens: Tokens = 0
    cache_read_input_tokens: Tokens = 0
    cache_creation_input_tokens: Tokens = 0
    latency_ms: float | None = Field(default=None, ge=0)
    ttft_ms: float | None = Field(default=None, ge=0)
    finish_reason: str | None = Field(default=None, max_length=32)
    status: Literal["ok", "error"] = "ok"
    error_type: str | None = Field(default=None, max_length=64)
    """The provider's error type (``rate_limit_error``, ``overloaded_error``…) when ``status`` is ``error``."""
    cost_usd: Decimal | None = Field(default=None, ge=0, le=1_000_000, description="Provided cost; None = price it.")
    user_id: str | None = Field(default=None, max_length=255)
    """The application's user id; the store keeps only a salted hash of it."""
    session_id: str | None = Field(default=None, max_length=128)
    user_message_length: int | None = Field(default=None, ge=0)
    """Characters of the user's message (its text is not required)."""
    system_prompt_hash: str | None = Field(default=None, max_length=128)
    """A hash of the system prompt sent; with ``user_message_length``, it spots repeated requests (the digest's caching estimate)."""
    user_feedback: Feedback = Field(default=None, description="-1 (thumbs down) to 1 (thumbs up).")
    automated_eval_score: float | None = Field(default=None, ge=0.0, le=1.0)
    """An online evaluator's score of the answer, in [0, 1]."""
    is_batch: bool = False
    """Made through the Message Batches API (half price)."""
    tags: Tags = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


TRACE_FIELDS: tuple[str, ...] = tuple(TraceRecord.model_fields)
