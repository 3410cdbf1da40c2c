"""The trace record: one LLM call, as every importer, the tracing SDK and the store see it.

Field names follow the seed's trace record. Validation is strict about meaning (no negative
token counts, a known status, a score in [0, 1]) and lenient about spelling (numbers as
strings from CSV, naive timestamps taken as UTC), so real exports load without hand-editing.

Whatever passes validation can be stored: numbers are finite, times lie in a bounded range,
text has no NUL character, metadata serialises to JSON of bounded depth and size. A record
that could not be stored is rejected here, alone, instead of failing the batch it is written in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict
from pydantic_core import PydanticCustomError

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

EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_TIMESTAMP = datetime(2100, 1, 1, tzinfo=UTC)
"""Timestamps must lie in [2000-01-01, 2100-01-01) UTC. Earlier is an unset clock (epoch 0) or a
unit mix-up, later a typo or a sentinel such as 9999-12-31; fixed bounds rather than "now ± n
days", so old exports and skewed clocks still load. Every day in the range exists in every
timezone, so rollup days never overflow."""
METADATA_MAX_BYTES = 65_536
"""The most bytes a record's metadata may take as JSON."""
METADATA_MAX_DEPTH = 254
"""The deepest metadata nesting stored: orjson's own limit."""
INTEGER_COLUMN_MAX = 2**31 - 1
"""The largest value of a 32-bit INTEGER column (PostgreSQL's ``integer``)."""
NO_NUL = r"^[^\x00]*$"
"""Text without NUL characters, which PostgreSQL text columns cannot hold."""

# Python runs only for inputs that need it (the timestamp's range, a thumbs word, tags as one
# string, non-empty metadata): the rest of the common JSON line is validated inside
# pydantic-core, which import speed needs.


def _as_utc(value: datetime) -> datetime:
    """Aware UTC, within ``EARLIEST_TIMESTAMP`` and ``LATEST_TIMESTAMP`` (checked before converting,
    which would overflow at the calendar's ends)."""
    if 2000 < value.year < 2099:  # in range whatever the offset: no need for the slower comparison
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not EARLIEST_TIMESTAMP <= value < LATEST_TIMESTAMP:
        raise PydanticCustomError(
            "timestamp_range",
            "must be from {earliest} to before {latest} (UTC)",
            {"earliest": EARLIEST_TIMESTAMP.date().isoformat(), "latest": LATEST_TIMESTAMP.date().isoformat()},
        )
    return value.astimezone(UTC)


def _storable_metadata(value: dict[str, Any]) -> dict[str, Any]:
    """Metadata that serialises to JSON (no sets, objects, huge ints, lone surrogates), at most
    ``METADATA_MAX_DEPTH`` deep and ``METADATA_MAX_BYTES`` long; empty metadata costs nothing."""
    if not value:
        return value
    try:
        size = len(orjson.dumps(value))
    except TypeError as exc:  # orjson.JSONEncodeError
        problem = str(exc)
        if problem == "Recursion limit reached":
            problem = f"nested deeper than {METADATA_MAX_DEPTH} levels"
        raise PydanticCustomError("metadata_json", "cannot be stored as JSON: {problem}", {"problem": problem}) from None
    if size > METADATA_MAX_BYTES:
        raise PydanticCustomError(
            "metadata_size", "is {size} bytes as JSON; at most {limit} are stored", {"size": size, "limit": METADATA_MAX_BYTES}
        )
    return value


def _split_tags(value: str) -> list[str]:
    """CSV gives tags as ``a;b`` or ``a,b``."""
    return [tag.strip() for tag in value.replace(";", ",").split(",") if tag.strip()]


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
FeedbackWordName = Literal["positive", "thumbs_up", "up", "good", "neutral", "negative", "thumbs_down", "down", "bad"]
FeedbackWord = Annotated[FeedbackWordName, AfterValidator(FEEDBACK_WORDS.__getitem__)]
FeedbackThumb = Annotated[bool, Strict(), AfterValidator(lambda up: 1.0 if up else -1.0)]
Feedback = FeedbackThumb | Annotated[float, Field(ge=-1.0, le=1.0, allow_inf_nan=False)] | FeedbackWord | None
Tag = Annotated[str, Field(max_length=255)]  # a length limit also makes pydantic refuse lone surrogates
Tags = list[Tag] | Annotated[str, Field(max_length=65_536), AfterValidator(_split_tags)]
Tokens = Annotated[int, Field(ge=0, le=100_000_000)]
Metadata = Annotated[dict[str, Any], AfterValidator(_storable_metadata)]


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

    trace_id: str = Field(min_length=1, max_length=255, pattern=NO_NUL, description="Unique id of the call.")
    timestamp: UtcDatetime = Field(description="When the call started; naive means UTC.")
    model: str = Field(min_length=1, max_length=128, pattern=NO_NUL, description="Model id as requested.")
    environment: str = Field(default="production", min_length=1, max_length=64, pattern=NO_NUL)
    feature: str | None = Field(default=None, max_length=128, pattern=NO_NUL)
    """The application feature that made the call (``chat_response``, ``code_review``…)."""
    prompt_name: str | None = Field(default=None, max_length=128, pattern=NO_NUL)
    prompt_version: str | None = Field(default=None, max_length=64, pattern=NO_NUL)
    response_model: str | None = Field(default=None, max_length=128, pattern=NO_NUL)
    """The model id the provider says answered: differs from ``model`` when an alias moved."""
    input_tokens: Tokens = Field(default=0, description="Uncached input tokens (Anthropic's convention).")
    output_tokens: Tokens = 0
    cache_read_input_tokens: Tokens = 0
    cache_creation_input_tokens: Tokens = 0
    latency_ms: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    ttft_ms: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    finish_reason: str | None = Field(default=None, max_length=32, pattern=NO_NUL)
    status: Literal["ok", "error"] = "ok"
    error_type: str | None = Field(default=None, max_length=64, pattern=NO_NUL)
    """The provider's error type (``rate_limit_error``, ``overloaded_error``…) when ``status`` is ``error``."""
    cost_usd: Decimal | None = Field(default=None, ge=0, le=1_000_000, description="Provided cost; None = price it.")
    user_id: str | None = Field(default=None, max_length=255)
    """The application's user id; the store keeps only a salted hash of it."""
    session_id: str | None = Field(default=None, max_length=128, pattern=NO_NUL)
    user_message_length: int | None = Field(default=None, ge=0, le=INTEGER_COLUMN_MAX)
    """Characters of the user's message (its text is not required)."""
    system_prompt_hash: str | None = Field(default=None, max_length=128, pattern=NO_NUL)
    """A hash of the system prompt sent; with ``user_message_length``, it spots repeated requests (the digest's caching estimate)."""
    user_feedback: Feedback = Field(default=None, description="-1 (thumbs down) to 1 (thumbs up).")
    automated_eval_score: float | None = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False)
    """An online evaluator's score of the answer, in [0, 1]."""
    is_batch: bool = False
    """Made through the Message Batches API (half price)."""
    tags: Tags = Field(default_factory=list)
    metadata: Metadata = Field(default_factory=dict)
    """Free key-value pairs: JSON, at most ``METADATA_MAX_DEPTH`` deep and ``METADATA_MAX_BYTES`` long."""
    input_text: str | None = None
    """The prompt's text (the last user message); stored, redacted and cut, only with ``LLMOPS_CAPTURE_TEXT=1``."""
    output_text: str | None = None
    """The answer's text; stored, redacted and cut, only with ``LLMOPS_CAPTURE_TEXT=1``."""


TRACE_FIELDS: tuple[str, ...] = tuple(TraceRecord.model_fields)
