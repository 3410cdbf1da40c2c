"""Rejected input lines, and pydantic's validation errors said in plain words.

A rejection names the line and field a person has to fix, so the rejects file can be
corrected by hand and imported again.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from llmops import privacy
from llmops.records import TraceRecord

RAW_LIMIT = 2000
"""Characters of an offending line kept in a rejection: enough to fix it, not a whole blob."""

SCRUB_WHOLE_LIMIT = 1_000_000
"""Characters of an offending line parsed as a whole to make it private; of a longer one, only the kept start is scrubbed."""

VALUE_LIMIT = 80
"""Characters of an offending value quoted in a reason."""

_INTEGER_FIELDS = frozenset(name for name, info in TraceRecord.model_fields.items() if info.annotation in (int, int | None))


@dataclass(frozen=True, slots=True)
class Rejection:
    """One input line (or OTel span) that did not become a trace, and why."""

    source: str
    """The file it came from."""
    line: int
    """1-based line number (of the line a CSV record starts on; of the request, for OTel)."""
    field: str | None
    """The first offending field, in the input's own name; None when the line as a whole is bad."""
    reason: str
    """Every problem of the line, in words."""
    raw: str
    """The offending input, cut to ``RAW_LIMIT`` characters."""


def sort_out(item: TraceRecord | Rejection, records: list[TraceRecord], rejections: list[Rejection]) -> None:
    """Append a parsed line to the records or the rejections it belongs to.

    Args:
        item: What a reader yielded.
        records: Where a record goes.
        rejections: Where a rejection goes.
    """
    if isinstance(item, Rejection):
        rejections.append(item)
    else:
        records.append(item)


def rejection_to_json(rejection: Rejection) -> bytes:
    """One newline-terminated line of ``<file>.rejects.jsonl``.

    Example:
        >>> rejection_to_json(Rejection("t.jsonl", 3, "model", "is required but missing", "{}"))
        b'{"line":3,"field":"model","reason":"is required but missing","raw":"{}"}\\n'
    """
    document = {"line": rejection.line, "field": rejection.field, "reason": rejection.reason, "raw": rejection.raw}
    return orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE)


def truncate_raw(raw: bytes | str) -> str:
    """The offending input as text, without its line ending, private, cut to ``RAW_LIMIT`` characters.

    Private: user ids become the store's pseudonym and personal data is redacted (``privacy.scrub_raw``).

    Example:
        >>> truncate_raw(b'{"trace_id": 1, "metadata": {"ssn": "123-45-6789"}}\\r\\n')
        '{"trace_id":1,"metadata":{"ssn":"[redacted:ssn]"}}'
    """
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = text.rstrip("\r\n")
    if len(text) > SCRUB_WHOLE_LIMIT:  # too long to parse: only what is kept is scrubbed
        text = text[: RAW_LIMIT + 256]
    text = privacy.scrub_raw(text)
    return text if len(text) <= RAW_LIMIT else text[:RAW_LIMIT] + "…"


def quote_value(value: Any) -> str:
    """A value as it would look in the input (JSON spelling), cut to ``VALUE_LIMIT`` characters.

    Example:
        >>> quote_value(None), quote_value("12"), quote_value(float("-inf"))
        ('null', '"12"', '-Infinity')
    """
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value).replace("inf", "Infinity").replace("nan", "NaN")  # JSON would say null
    try:
        text = orjson.dumps(privacy.scrub_document(value), default=str).decode()
    except TypeError:  # not JSON, or nested too deep for it: a shallow repr
        text = reprlib.repr(value)
    text = privacy.redactor().text(text)  # also what default=str or repr spelled out
    return text if len(text) <= VALUE_LIMIT else text[:VALUE_LIMIT] + "…"


def explain_error(error: ErrorDetails) -> str:
    """One pydantic error in words a person fixing the input understands.

    Args:
        error: One item of ``ValidationError.errors()`` for a ``TraceRecord``.

    Returns:
        The reason, quoting the offending value.
    """
    kind = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    user_id = error["loc"][:1] == ("user_id",) and value is not None  # the store's pseudonym, never the id
    got = f"got {privacy.user_id_pseudonym(value) if user_id else quote_value(value)}"
    loc = error["loc"]
    field = loc[0] if loc else None
    number = "an integer" if field in _INTEGER_FIELDS else "a number"
    if kind == "missing":
        return "is required but missing"
    if kind == "json_invalid":
        return f"invalid JSON: {ctx.get('error', 'cannot be parsed')}"
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return f"expected a JSON object, {got}"
    if kind in {"int_parsing", "int_type", "int_from_float", "int_parsing_size"}:
        return f"expected an integer, {got}"
    if kind in {"float_parsing", "float_type"}:
        return f"expected a number, {got}"
    if kind == "finite_number":
        return f"expected a finite number, {got}"
    if kind == "timestamp_range":
        return f"expected a time from {ctx['earliest']} to before {ctx['latest']} (UTC), {got}"
    if kind in {"metadata_json", "metadata_size"}:
        return error["msg"]
    if kind == "string_pattern_mismatch" and "\\x00" in str(ctx.get("pattern")):
        return "must not contain NUL (\\u0000) characters"
    if kind == "greater_than_equal":
        return f"expected {number} ≥ {ctx['ge']}, {got}"
    if kind == "greater_than":
        return f"expected {number} > {ctx['gt']}, {got}"
    if kind == "less_than_equal":
        return f"expected {number} ≤ {ctx['le']}, {got}"
    if kind == "less_than":
        return f"expected {number} < {ctx['lt']}, {got}"
    if kind == "literal_error":
        return f"expected one of {ctx['expected']}, {got}"
    if kind.startswith(("datetime_", "date_")):
        return f"expected an ISO 8601 timestamp such as 2025-11-15T10:00:00Z, {got}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters, got {len(str(error.get('input')))}"
    if kind == "string_type":
        return f"expected text, {got}"
    if kind == "string_unicode":
        return f"expected valid Unicode text (no lone surrogates), {got}"
    if kind in {"bool_parsing", "bool_type"}:
        return f"expected true or false, {got}"
    if kind in {"decimal_parsing", "decimal_type"}:
        return f"expected a decimal number, {got}"
    if kind == "list_type":
        return f"expected a list, {got}"
    message = error["msg"]
    return f"{message[:1].lower()}{message[1:]}, {got}"


def describe_validation_error(exc: ValidationError, field_names: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """The first bad field and a reason naming every problem of the record.

    ``field_names`` renames record fields to the input's own names (an OTel attribute, say),
    so the message points at what the user wrote.

    Args:
        exc: A ``TraceRecord`` validation error.
        field_names: Record field -> the input's name for it.

    Returns:
        ``(field, reason)``: the first bad field (renamed) or None, and every problem in words.

    Example:
        >>> from pydantic import ValidationError
        >>> try:
        ...     TraceRecord.model_validate({"trace_id": "t1", "timestamp": "2025-11-15T10:00:00Z", "input_tokens": -1})
        ... except ValidationError as exc:
        ...     describe_validation_error(exc, {"input_tokens": "usage.input"})
        ('model', 'is required but missing; also usage.input: expected an integer ≥ 0, got -1')
    """
    renames = field_names or {}
    problems: list[tuple[str | None, str]] = []
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        field = str(loc[0]) if loc else None
        problems.append((renames.get(field, field) if field else None, explain_error(error)))
    first_field, reason = problems[0]
    if len(problems) > 1:
        reason += "".join(f"; also {field or 'the record'}: {text}" for field, text in problems[1:])
    return first_field, reason
