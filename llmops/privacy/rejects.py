"""Rejected input lines as ``<file>.rejects.jsonl`` keeps them: user ids as the store's pseudonyms, the rest redacted."""

from __future__ import annotations

import re
from typing import Any

import orjson

from llmops.privacy.pseudonyms import user_id_pseudonym
from llmops.privacy.redaction import MAX_DEPTH, Redactor, redactor

USER_ID_KEYS = frozenset({"user_id", "userId", "user.id", "enduser.id"})
"""Keys whose value is a user id, in trace files (JSONL, CSV headers) and OTel attributes."""
_USER_ID_IN_TEXT = re.compile(
    r'(?P<head>"(?:user_id|userId|user\.id|enduser\.id)"\s*:\s*(?:\{\s*"(?:stringValue|intValue)"\s*:\s*)?)'
    r'(?P<value>"(?:[^"\\]|\\.)*(?:"|$)|-?\d+)'
)
_OTEL_USER_ID = re.compile(
    r'(?P<head>"key"\s*:\s*"(?:user\.id|enduser\.id)"\s*,\s*"value"\s*:\s*\{\s*"(?:stringValue|intValue)"\s*:\s*)'
    r'(?P<value>"(?:[^"\\]|\\.)*(?:"|$)|-?\d+)'
)


def scrub_document(value: Any, redact: Redactor | None = None, salt: bytes | None = None, _depth: int = 0) -> Any:
    """A parsed input (a JSON line, an OTel span) with user ids as pseudonyms and the rest redacted.

    Example:
        >>> doc = scrub_document({"user_id": "carol", "metadata": {"ssn": "123-45-6789"}}, Redactor(), b"salt")
        >>> doc["user_id"].startswith("[user_id:"), doc["metadata"]
        (True, {'ssn': '[redacted:ssn]'})
    """
    redact = redact or redactor()
    if _depth >= MAX_DEPTH:
        return "[redacted:nested]" if isinstance(value, dict | list | tuple) else value
    if isinstance(value, dict):
        if value.get("key") in USER_ID_KEYS and isinstance(value.get("value"), dict):  # an OTel attribute
            inner = value["value"]
            raw = inner.get("stringValue", inner.get("intValue"))
            return {**value, "value": {"stringValue": user_id_pseudonym(raw, salt)}} if raw is not None else value
        return {
            key: user_id_pseudonym(item, salt)
            if key in USER_ID_KEYS and isinstance(item, str | int) and not isinstance(item, bool)
            else scrub_document(item, redact, salt, _depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub_document(item, redact, salt, _depth + 1) for item in value]
    if isinstance(value, str):
        return redact.text(value)
    return value


def _pseudonym_in_text(match: re.Match[str], salt: bytes | None) -> str:
    value = match.group("value")
    if value.startswith('"'):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:  # cut off at the end of a truncated line
            value = value[1:].removesuffix('"')
    return match.group("head") + orjson.dumps(user_id_pseudonym(value, salt)).decode()


def scrub_raw(text: str, redact: Redactor | None = None, salt: bytes | None = None) -> str:
    """A rejected input line as the rejects file keeps it: user ids as pseudonyms, the rest redacted.

    A line that parses as JSON is redacted value by value (and written back compact); any other
    line (CSV, broken JSON) has its ``"user_id": …`` values replaced and is redacted as text.
    CSV user id cells are replaced by the reader, which knows the columns.

    Example:
        >>> line = scrub_raw('{"user_id": "carol@example.com", "input_tokens": -5}', Redactor(), b"salt")
        >>> "carol" in line, '"input_tokens":-5' in line
        (False, True)
    """
    redact = redact or redactor()
    if text.lstrip()[:1] in ("{", "["):
        try:
            document = orjson.loads(text)
            scrubbed = scrub_document(document, redact, salt)
            return text if scrubbed == document else orjson.dumps(scrubbed).decode()  # as it was, when nothing changed
        except (orjson.JSONDecodeError, orjson.JSONEncodeError, RecursionError, TypeError):
            pass  # not JSON after all, or too deep to write back: redact it as text
    if "user" in text:
        text = _OTEL_USER_ID.sub(lambda match: _pseudonym_in_text(match, salt), text)
        text = _USER_ID_IN_TEXT.sub(lambda match: _pseudonym_in_text(match, salt), text)
    return redact.text(text)
