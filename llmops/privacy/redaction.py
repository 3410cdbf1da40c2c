"""Personal data in text replaced by typed placeholders: e-mail, phone, card (Luhn), SSN, NINO and the deployment's own patterns.

The detectors are compiled regular expressions with a cheap pre-check (no ``@``: no e-mail
search; no run of digits: no number search), so a trace without personal data costs about a
microsecond.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from llmops import settings

DETECTORS = ("email", "phone", "card", "ssn", "nino")
"""The built-in detectors, each the name of its placeholder (``[redacted:email]``...)."""

_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,63}(?!\w)")
_NUMBER_PATTERNS = {
    # US social-security number: never area 000, 666 or 9xx, group 00 or serial 0000.
    "ssn": r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])",
    # International: a leading +, a country code, then digit groups (8-15 digits in all, checked below).
    "phone_intl": r"(?<![\w+])\+[1-9]\d{0,2}+(?:[ -]?\(\d{1,4}\))?(?:[ -]?\d++){1,6}+(?![\w.]|-\d)",
    # North American: (NXX) NXX-XXXX or NXX-NXX-XXXX (also with dots or spaces), optionally +1 / 1-.
    "phone_us": r"(?<![\w.+-])(?:1[ .-])?(?:\(\s?[2-9]\d\d\s?\)\s?|[2-9]\d\d[ .-])[2-9]\d\d[ .-]\d{4}(?![\w-]|\.\d)",
    # 13 to 19 digits, together or grouped from four (4-4-4-4, Amex's 4-6-5) by single spaces or hyphens
    # (network prefix and Luhn checked below).
    "card": r"(?<![\w.+-])(?:\d{13,19}|\d{4}[ -]\d{4}(?:[ -]?\d){5,11})(?![\w-]|\.\d)",
    # UK national insurance number: two prefix letters (not D, F, I, Q, U, V; not O second; not BG, GB,
    # KN, NK, NT, TN, ZZ), six digits (in pairs, optionally spaced) and a suffix letter A-D.
    "nino": r"(?<![A-Za-z0-9])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])",
}
_NUMBER_DETECTOR = {"ssn": "ssn", "phone_intl": "phone", "phone_us": "phone", "card": "card", "nino": "nino"}
_NUMBER_HINT = re.compile(
    r"(?=[\d+(A-Z])(?:(?<!\d)\d{3}(?:[ .-]\d|\d[ -]\d{4}|\d{10})|\+[1-9]|\(\s?\d{3}|[A-Z]{2} ?\d\d ?\d\d ?\d\d)"
)
"""A piece every number detector's match contains: none in timestamps, dates, versions, token counts or short ids,
which then cost one quick search."""
_SHORT = 64
"""Up to this many characters, the number detectors scan the whole text; beyond, only around each hint."""
_WINDOW_BEFORE, _WINDOW_AFTER = 8, 48
"""Characters around a hint's start that a match may span ("+1 (" or a NINO's letters before; a card after)."""
MAX_DEPTH = 256
"""Metadata nested deeper than this is replaced whole (``[redacted:nested]``); validation already refuses
metadata deeper than orjson's 254 levels, so this only guards the recursion."""
_CONTAINERS = (dict, list, tuple)
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,9})?)?(?:Z|[+-]\d\d:?\d\d)?)?")
"""An ISO 8601 date or time alone, the commonest digit-rich value: nothing to find in it."""


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _is_card(candidate: str) -> bool:
    """A card network's prefix (3-6: Amex, Diners, JCB, Visa, Mastercard, Discover, UnionPay, Maestro;
    2221-2720: Mastercard's 2-series, 16 digits), one kind of separator, and the Luhn check."""
    digits = candidate.replace(" ", "").replace("-", "")
    if " " in candidate and "-" in candidate:
        return False
    if digits[0] == "2":
        return len(digits) == 16 and 2221 <= int(digits[:4]) <= 2720 and _luhn(digits)
    return digits[0] in "3456" and _luhn(digits)


def _card_prefix(candidate: str) -> int:
    """The end of the longest run of whole groups at the candidate's start that is a card, or 0."""
    for cut in range(len(candidate) - 1, 0, -1):
        if candidate[cut] in " -" and sum(char.isdigit() for char in candidate[:cut]) >= 13 and _is_card(candidate[:cut]):
            return cut
    return 0


def _is_international_phone(candidate: str) -> bool:
    return 8 <= sum(char.isdigit() for char in candidate) <= 15


_VALID: dict[str, Callable[[str], bool]] = {"card": _is_card, "phone_intl": _is_international_phone}
_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


def _parse_patterns(raw: str | None) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """``LLMOPS_REDACT_PATTERNS``: a JSON object of name -> regex, or a file of ``name=regex`` lines."""
    if not raw:
        return ()
    setting = settings.LLMOPS_REDACT_PATTERNS
    pairs: Iterable[tuple[Any, Any]]
    if raw.lstrip().startswith("{"):
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"{setting} is not a JSON object of name -> regular expression: {exc}") from None
        pairs = document.items()
    else:
        path = Path(raw).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ValueError(f"{setting}={raw!r}: neither a JSON object nor a readable file ({exc.strerror})") from None
        pairs = [
            (line.partition("=")[0], line.partition("=")[2] or None)
            for line in (line.strip() for line in lines)
            if line and not line.startswith("#")
        ]
    compiled = []
    for name, pattern in pairs:
        name = str(name).strip()
        if not _NAME.fullmatch(name):
            raise ValueError(f"{setting}: the pattern name {name!r} must be lowercase letters, digits and _ (e.g. employee_id)")
        if not isinstance(pattern, str) or not pattern:
            raise ValueError(f"{setting}: the pattern {name!r} needs a regular expression (name=regex)")
        try:
            compiled.append((name, re.compile(pattern.strip())))
        except re.error as exc:
            raise ValueError(f"{setting}: the pattern {name!r} is not a valid regular expression: {exc}") from None
    return tuple(compiled)


def _parse_detectors(raw: str) -> tuple[str, ...]:
    words = [word.strip().lower() for word in raw.split(",") if word.strip()]
    if words in ([], ["none"]):
        return ()
    if words == ["all"]:
        return DETECTORS
    unknown = [word for word in words if word not in DETECTORS]
    if unknown:
        raise ValueError(
            f"{settings.LLMOPS_REDACT_DETECTORS}: unknown detector(s) {', '.join(unknown)}; "
            f"choose from {', '.join(DETECTORS)}, or all, or none"
        )
    return tuple(name for name in DETECTORS if name in words)


class Redactor:
    """Replaces personal data in text by typed placeholders: ``[redacted:email]``, ``[redacted:card]``...

    Built-in detectors (``DETECTORS``):

    - ``email``: ``name@domain.tld``.
    - ``phone``: international numbers written with a leading ``+`` and 8-15 digits
      (``+44 20 7946 0958``), and North American ones with separators (``(212) 555-0123``,
      ``212-555-0123``, ``212.555.0123``; area code and exchange not starting with 0 or 1).
    - ``card``: 13-19 digits, optionally grouped by spaces or hyphens, with a card network's prefix (the
      card networks: 3-6, or 2221-2720 for Mastercard's 2-series) and passing the Luhn check.
    - ``ssn``: US social-security numbers ``ddd-dd-dddd`` (not 000, 666 or 9xx, group 00 or serial 0000).
    - ``nino``: UK national insurance numbers (``AB 12 34 56 C``).

    Bare digit runs without separators (token counts, epoch times, numeric ids), ISO timestamps,
    versions and ids with letters around the digits (``msg_01…``) are left alone. Own patterns
    come after the detectors and are replaced by ``[redacted:<name>]``. Redacting twice
    changes nothing, as long as no own pattern matches a placeholder.

    Args:
        detectors: The built-in detectors to run.
        patterns: Own patterns, ``(name, regex)``.
        key: With a key, placeholders carry a short keyed hash of what they replace
            (``[redacted:email:3f9a1c0e]``): identifiers such as session ids stay distinct.

    Example:
        >>> Redactor().text("mail jane.doe@example.com or call +1 (212) 555-0123 about 4111 1111 1111 1111")
        'mail [redacted:email] or call [redacted:phone] about [redacted:card]'
        >>> Redactor().text("2025-11-15T10:00:00Z v1.2.3 msg_01ABC123456789 1200 tokens")
        '2025-11-15T10:00:00Z v1.2.3 msg_01ABC123456789 1200 tokens'
    """

    __slots__ = ("detectors", "patterns", "_email", "_numbers", "_key", "_keyed")

    def __init__(
        self,
        detectors: Iterable[str] = DETECTORS,
        patterns: Mapping[str, str] | Iterable[tuple[str, str | re.Pattern[str]]] = (),
        *,
        key: bytes | None = None,
    ) -> None:
        self.detectors = tuple(detectors)
        unknown = set(self.detectors) - set(DETECTORS)
        if unknown:
            raise ValueError(f"unknown detector(s): {', '.join(sorted(unknown))}")
        items = patterns.items() if isinstance(patterns, Mapping) else patterns
        self.patterns = tuple((name, re.compile(pattern)) for name, pattern in items)
        self._email = "email" in self.detectors
        groups = [
            f"(?P<{group}>{regex})" for group, regex in _NUMBER_PATTERNS.items() if _NUMBER_DETECTOR[group] in self.detectors
        ]
        # Every number starts after a non-word character, with a digit, "+", "(" or a capital: one check first.
        self._numbers = re.compile(rf"(?<!\w)(?=[\d+(A-Z])(?:{'|'.join(groups)})") if groups else None
        self._key = key[:64] if key else None
        self._keyed: dict[bytes, Redactor] = {}

    def _placeholder(self, kind: str, found: str) -> str:
        if self._key is None:
            return f"[redacted:{kind}]"
        return f"[redacted:{kind}:{hashlib.blake2b(found.encode(), key=self._key, digest_size=4).hexdigest()}]"

    def _number(self, match: re.Match[str]) -> str:
        group = match.lastgroup or ""
        found = match.group(0)
        valid = _VALID.get(group)
        if valid is not None and not valid(found):
            if group == "card" and (cut := _card_prefix(found)):  # a card, then another number: "… 1111 2"
                return self._placeholder("card", found[:cut]) + found[cut:]
            return found
        return self._placeholder(_NUMBER_DETECTOR[group], found)

    def _numbers_around_hints(self, value: str) -> str:
        """The number detectors, run only in a window around each hint: a long text has few.

        A match that reaches a window's end may go on past it: the window grows until it does not.
        """
        numbers = self._numbers
        assert numbers is not None
        pieces: list[str] = []
        done, size = 0, len(value)
        for hint in _NUMBER_HINT.finditer(value):
            position = max(hint.start() - _WINDOW_BEFORE, done)
            end = min(hint.start() + _WINDOW_AFTER, size)
            while position < end:
                match = numbers.search(value, position, end)
                if match is None:
                    break
                if match.end() + 2 >= end and end < size:  # cut by the window (or its lookahead): look further
                    end = min(end + _WINDOW_AFTER, size)
                    continue
                pieces += (value[done : match.start()], self._number(match))
                done = position = match.end()
        if not pieces:
            return value
        pieces.append(value[done:])
        return "".join(pieces)

    def text(self, value: str) -> str:
        """``value`` with every detected item replaced by its placeholder.

        Example:
            >>> Redactor(patterns={"ticket": r"TCK-\\d+"}).text("SSN 123-45-6789, ticket TCK-991")
            'SSN [redacted:ssn], ticket [redacted:ticket]'
        """
        if len(value) < 6 and not self.patterns:  # the shortest e-mail address, a@b.co, has six
            return value
        if self._email and "@" in value:
            value = _EMAIL.sub(lambda match: self._placeholder("email", match.group(0)), value)
        if self._numbers is not None:
            if len(value) <= _SHORT:
                if value[:1].isdigit() and len(value) <= 35 and _TIMESTAMP.fullmatch(value):
                    pass
                elif _NUMBER_HINT.search(value):
                    value = self._numbers.sub(self._number, value)
            else:
                value = self._numbers_around_hints(value)
        for name, pattern in self.patterns:
            value = pattern.sub(functools.partial(self._own, name), value)
        return value

    def _own(self, name: str, match: re.Match[str]) -> str:
        return self._placeholder(name, match.group(0))

    def json(self, value: Any, _depth: int = 0) -> Any:
        """A JSON-like value with every string in it redacted (keys are kept; other values too).

        Example:
            >>> Redactor().json({"customer": {"ssn": "123-45-6789", "visits": [3, "bob@example.org"]}, "ok": True})
            {'customer': {'ssn': '[redacted:ssn]', 'visits': [3, '[redacted:email]']}, 'ok': True}
        """
        if isinstance(value, str):
            return self.text(value)
        if not isinstance(value, _CONTAINERS):
            return value
        if _depth >= MAX_DEPTH:
            return "[redacted:nested]"
        text, json, depth = self.text, self.json, _depth + 1
        if isinstance(value, dict):  # the common flat dict of strings and numbers: no call per number
            return {
                key: text(item) if type(item) is str else json(item, depth) if isinstance(item, _CONTAINERS) else item
                for key, item in value.items()
            }
        return [text(item) if type(item) is str else json(item, depth) for item in value]

    def keyed(self, key: bytes) -> Redactor:
        """The same detectors and patterns, with placeholders carrying a keyed hash (see ``key``); made once per key.

        Example:
            >>> Redactor().keyed(b"salt").text("chat of jane@example.com")  # doctest: +ELLIPSIS
            'chat of [redacted:email:...]'
        """
        keyed = self._keyed.get(key)
        if keyed is None:
            keyed = self._keyed[key] = Redactor(self.detectors, self.patterns, key=key)
        return keyed


@functools.lru_cache(maxsize=8)
def _redactor(detectors: str, patterns: str | None) -> Redactor:
    return Redactor(_parse_detectors(detectors), _parse_patterns(patterns))


def redactor() -> Redactor:
    """The redactor the settings configure (``LLMOPS_REDACT_DETECTORS``, ``LLMOPS_REDACT_PATTERNS``).

    Returns:
        The same ``Redactor`` while the settings stay the same.

    Raises:
        ValueError: A setting names an unknown detector, or a pattern is not a valid regular expression.

    Example:
        >>> redactor() is redactor()
        True
    """
    return _redactor(settings.redact_detectors(), settings.redact_patterns())


def captured_text(redact: Redactor, text: str | None, limit: int) -> str | None:
    """A prompt or answer text as the store keeps it: redacted, then cut to ``limit`` characters.

    Only about twice ``limit`` characters are redacted, so a huge text costs no more than a long one.

    Example:
        >>> captured_text(Redactor(), "card 4111-1111-1111-1111 ok", 12)
        'card [redac…'
    """
    if not text:
        return None
    value = redact.text(text[: 2 * limit + 64].replace("\x00", ""))  # PostgreSQL text holds no NUL
    return value if len(value) <= limit else value[: limit - 1] + "…"
