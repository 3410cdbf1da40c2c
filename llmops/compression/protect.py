"""What compression must never touch: the spans of a system prompt that stay verbatim.

LLMLingua drops the tokens a small model finds predictable, and in reference text those are
exactly the ones that matter: a name, the number of days, a template variable. So before a
prompt is compressed it is cut into segments, and these are kept word for word:
- structure: headings, line breaks and list markers, fenced blocks (JSON examples, schemas),
  XML-style tags (``<examples>``), and whole sections whose heading or tag names an output
  format (``## Answer format``, ``<output_format>``) or that the prompt file lists to keep;
- facts: template variables (``{customer_name}``), numbers with the words that give them a
  unit ("30 days", "5-7 business days", "$14.99"), quoted terms, menu paths
  ("Account > Billing"), e-mail addresses, URLs, inline code and JSON keys;
- whatever the prompt file's own ``keep_patterns`` match.

Everything else is prose LLMLingua may shorten, but not all prose alike. In a sentence that
states one of the facts above, only function words may go ("the", "of", "are"): its content
words stay, so "Standard shipping takes 3-5 business days" cannot lose "Standard" and become
ambiguous. A sentence that states a rule ("always", "never", "must", "do not") is compressed
more gently than the rest (at √rate), and explanations, courtesies and filler at the full rate.
Names are facts as well: a capitalised word the prompt uses in mid-sentence ("Acme") is kept
wherever it occurs. A kept span carries the whitespace before it, so that compressing the prose
in front cannot glue it to the previous word ("with30 days"), and ``unglue`` repairs the word
after it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise

KEEP_SECTION_WORDS = re.compile(r"\b(format(ting)?|outputs?|responses?|schemas?|json|templates?)\b|_format\b", re.I)
"""Sections whose heading or tag says they define the answer's shape: kept whole by default."""
HEADING = re.compile(r"^[ \t]*#{1,6}[ \t]+(?P<title>.+?)[ \t]*#*[ \t]*$", re.M)
FENCE = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1[ \t]*$", re.M | re.S)
TAG_BLOCK = re.compile(r"<(?P<tag>[A-Za-z_][\w.-]*)(?:\s[^<>]*)?>(?P<body>.*?)</(?P=tag)>", re.S)
TAG = re.compile(r"</?[A-Za-z_][\w.-]*(?:\s[^<>]*)?/?>")
LINE_START = re.compile(r"^[ \t]*(?:[-*+•]|\d+[.)])?[ \t]*", re.M)
"""Indentation and a list marker at the start of a line: the layout the model reads."""
LINE_BREAK = re.compile(r"[ \t]*\n[ \t]*")
UNIT_ADJECTIVES = "business|calendar|working|full|consecutive|failed|billing|grace"
INLINE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("template variable", re.compile(r"\{\{[A-Za-z_]\w*\}\}|\{[A-Za-z_]\w*\}")),
    ("inline code", re.compile(r"`[^`\n]+`")),
    ("JSON key", re.compile(r"\"[^\"\n]{1,60}\"\s*:")),
    ("URL", re.compile(r"\bhttps?://[^\s<>\"')\]]*[^\s<>\"')\].,;:!?]")),
    ("e-mail address", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("menu path", re.compile(r"\b[A-Z][\w-]*(?: [A-Z][\w-]*)?(?: > [A-Z][\w-]*(?: [A-Z][\w-]*)?)+")),
    ("quoted term", re.compile(r"(?<!\w)'[^'\n]{1,60}'(?!\w)|\"[^\"\n]{1,60}\"")),
    (
        "number with its unit",
        re.compile(
            r"(?<![\w.])v?[$€£#]?\d+(?:[.,:/-]\d+)*(?:\s?(?:–|to)\s?[$€£]?\d+(?:[.,:/-]\d+)*)?%?(?:-[A-Za-z]+)?"
            rf"(?:\s(?:(?:{UNIT_ADJECTIVES})\s)?[A-Za-z][\w'-]*)?"
        ),
    ),
)


FACT_KINDS = frozenset({"template variable", "URL", "e-mail address", "menu path", "quoted term", "number with its unit", "name"})
"""Kept spans that make the sentence around them a statement of fact."""
FUNCTION_WORDS = frozenset(
    """a an the and or but nor so yet if then than that this these those there here which who whom whose what
    when where while as at by for from in into of off on onto out over to up upon with within without about
    above after against along among around before behind below beneath beside between beyond during except
    inside near since through throughout toward towards under until via is are was were be been being am do
    does did done has have had having will would shall should can could may might must it its it's they them
    their theirs we us our ours you your yours he him his she her hers i me my mine one ones any all both
    each either neither every some such own same other another also just only very too quite rather really
    simply always often once still even again further however therefore thus hence because although though
    unless whether not no""".split()
)
"""English function words: what a fact's sentence may lose without losing what it states."""
WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
WORD_CHARACTER = re.compile(r"\w")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(\[{<])|\n\s*\n|\n(?=[ \t]*(?:#|<|[-*+•] |\d+[.)] ))")
MID_SENTENCE_NAME = re.compile(r"(?<=[a-z,;:] )[A-Z][a-z]+(?:[A-Z][a-z]+)*\b")
"""A capitalised word after a lowercase one: a name, not the start of a sentence."""


RULE_MARKERS = re.compile(
    r"\b(?:always|never|must|should|shall|only|ensure|avoid|required?|do not|don't|does not|cannot|can't|may not|make sure)\b",
    re.I,
)
"""Words that make a sentence a rule the model must follow, not an explanation."""


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of the prompt in order; ``keep`` pieces go through compression untouched, and
    ``rule`` prose (in a sentence that states a rule) is compressed more gently."""

    text: str
    keep: bool
    why: str | None = None
    """What made a kept segment kept ("number with its unit", "heading"…)."""
    rule: bool = False


@dataclass(frozen=True)
class Protection:
    """What a prompt file adds to the defaults: section names to keep whole, and regexes.

    Example:
        >>> protection = Protection(keep_sections=("Examples",), keep_patterns=("SKU-[0-9]+",))
        >>> protection.keeps_section("## Examples"), protection.keeps_section("Answer format"), protection.keeps_section("Tone")
        (True, True, False)
    """

    keep_sections: tuple[str, ...] = ()
    """Headings or tag names (case-insensitive substrings) whose whole section is kept."""
    keep_patterns: tuple[str, ...] = ()
    """Regular expressions whose matches are kept."""

    def patterns(self) -> list[re.Pattern[str]]:
        """``keep_patterns``, compiled."""
        return [re.compile(pattern) for pattern in self.keep_patterns]

    def keeps_section(self, name: str) -> bool:
        """Whether a section of this heading or tag is kept whole: an output-format section, or one listed."""
        lowered = name.strip().lower()
        return bool(KEEP_SECTION_WORDS.search(name)) or any(wanted.lower() in lowered for wanted in self.keep_sections)


def _headings(text: str) -> list[re.Match[str]]:
    """Markdown headings, not the ``# comments`` inside fenced blocks."""
    fences = [match.span() for match in FENCE.finditer(text)]
    return [match for match in HEADING.finditer(text) if not any(start <= match.start() < end for start, end in fences)]


def _sections(text: str, protection: Protection) -> Iterator[tuple[int, int, str]]:
    """Whole sections to keep: under a matching heading (to the next heading), or in a matching tag."""
    headings = _headings(text)
    for index, heading in enumerate(headings):
        if protection.keeps_section(heading.group("title")):
            end = headings[index + 1].start() if index + 1 < len(headings) else len(text)
            yield heading.start(), end, f"section '{heading.group('title')}'"
    for block in TAG_BLOCK.finditer(text):
        if protection.keeps_section(block.group("tag")):
            yield block.start(), block.end(), f"<{block.group('tag')}> section"


def _names(text: str) -> re.Pattern[str] | None:
    """Every word the prompt capitalises in mid-sentence, wherever it occurs (also sentence-first)."""
    names = sorted({match.group(0) for match in MID_SENTENCE_NAME.finditer(text)}, key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(map(re.escape, names)) + r")\b") if names else None


def _spans(text: str, protection: Protection) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = list(_sections(text, protection))
    spans += [(m.start(), m.end(), "fenced block") for m in FENCE.finditer(text)]
    spans += [(m.start(), m.end(), "heading") for m in _headings(text)]
    spans += [(m.start(), m.end(), "tag") for m in TAG.finditer(text)]
    spans += [(m.start(), m.end(), "line break") for m in LINE_BREAK.finditer(text)]
    spans += [(m.start(), m.end(), "line start") for m in LINE_START.finditer(text) if m.end() > m.start()]
    names = _names(text)
    extra = [("keep pattern", pattern) for pattern in protection.patterns()] + ([("name", names)] if names else [])
    for why, pattern in (*INLINE_PATTERNS, *extra):
        spans += [(m.start(), m.end(), why) for m in pattern.finditer(text) if m.end() > m.start()]
    return spans


def _with_leading_space(text: str, spans: Iterable[tuple[int, int, str]]) -> Iterator[tuple[int, int, str]]:
    """A kept span takes the spaces before it: dropping the prose in front cannot glue it to a word."""
    for start, end, why in spans:
        while start > 0 and text[start - 1] in " \t":
            start -= 1
        yield start, end, why


def _merge(spans: Iterable[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    merged: list[tuple[int, int, str]] = []
    for start, end, why in sorted(spans):
        if merged and start <= merged[-1][1]:
            previous_start, previous_end, previous_why = merged[-1]
            merged[-1] = (previous_start, max(previous_end, end), previous_why)
        else:
            merged.append((start, end, why))
    return merged


def _sentences(text: str) -> list[tuple[int, int]]:
    bounds = [0, *(match.end() for match in SENTENCE_END.finditer(text)), len(text)]
    return list(pairwise(bounds))


def _fact_sentences(text: str, spans: Iterable[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """The ``(start, end)`` of every sentence that holds a fact span."""
    facts = sorted(start for start, _, why in spans if why in FACT_KINDS)
    return [(start, end) for start, end in _sentences(text) if any(start <= fact < end for fact in facts)]


def _rule_sentences(text: str) -> list[tuple[int, int]]:
    return [(start, end) for start, end in _sentences(text) if RULE_MARKERS.search(text, start, end)]


def _content_words(text: str, sentences: Iterable[tuple[int, int]]) -> Iterator[tuple[int, int, str]]:
    for start, end in sentences:
        for match in WORD.finditer(text, start, end):
            if match.group(0).lower() not in FUNCTION_WORDS:
                yield match.start(), match.end(), "word of a fact"


def protected_spans(text: str, protection: Protection | None = None) -> list[tuple[int, int, str]]:
    """Every ``(start, end, why)`` to keep verbatim, merged where they touch, in order.

    Args:
        text: The system prompt.
        protection: The prompt file's additions; None for the defaults only.

    Returns:
        Character spans of ``text`` with the reason each is kept.

    Example:
        >>> protected_spans("Refunds are possible within 30 days. Be friendly and helpful.")
        [(0, 7, 'word of a fact'), (11, 20, 'word of a fact'), (27, 35, 'number with its unit')]
    """
    spans = _spans(text, protection or Protection())
    spans += _content_words(text, _fact_sentences(text, spans))
    return _merge(_with_leading_space(text, spans))


def segment(text: str, protection: Protection | None = None) -> list[Segment]:
    """The prompt as alternating prose (compressible) and kept segments; joined, they are ``text``.

    Args:
        text: The system prompt.
        protection: The prompt file's additions; None for the defaults only.

    Returns:
        The segments in order; prose in a sentence that states a rule is marked ``rule``.

    Example:
        >>> [(piece.text, piece.keep) for piece in segment("Refunds are possible within 30 days. Be friendly.")]
        [('Refunds', True), (' are', False), (' possible', True), (' within', False), (' 30 days', True), ('. Be friendly.', False)]
    """
    rules = _rule_sentences(text)
    cuts = {edge for sentence in rules for edge in sentence}

    def prose(start: int, end: int) -> Iterator[Segment]:
        for left, right in pairwise(sorted({start, end, *(cut for cut in cuts if start < cut < end)})):
            yield Segment(text[left:right], keep=False, rule=any(a <= left < b for a, b in rules))

    segments: list[Segment] = []
    position = 0
    for start, end, why in protected_spans(text, protection):
        if start > position:
            segments.extend(prose(position, start))
        segments.append(Segment(text[start:end], keep=True, why=why))
        position = end
    if position < len(text):
        segments.extend(prose(position, len(text)))
    return segments


def _is_word(char: str) -> bool:
    return bool(WORD_CHARACTER.match(char))


@dataclass(frozen=True, slots=True)
class KeptSpan:
    """A kept span without its surrounding whitespace, and whether it stood apart from the words
    before and after it in the original."""

    text: str
    apart_before: bool
    apart_after: bool


def kept_spans(original: str, protection: Protection | None = None) -> Iterator[KeptSpan]:
    """The kept spans of ``original``, stripped, with whether each stood apart from its neighbours.

    Args:
        original: The uncompressed system prompt.
        protection: The prompt file's additions; None for the defaults only.

    Yields:
        One ``KeptSpan`` per non-blank kept span, in order.
    """
    for start, end, _ in protected_spans(original, protection):
        raw = original[start:end]
        text = raw.strip()
        if not text:
            continue
        first = start + raw.index(text)
        last = first + len(text) - 1
        yield KeptSpan(
            text,
            apart_before=_is_word(text[0]) and not (first > 0 and _is_word(original[first - 1])),
            apart_after=_is_word(text[-1]) and not (last + 1 < len(original) and _is_word(original[last + 1])),
        )


def missing_spans(original: str, compressed: str, protection: Protection | None = None) -> list[str]:
    """The kept spans of ``original`` that ``compressed`` does not hold in order and whole (should be
    none): a span glued to a neighbouring word ("247" for "24/7") counts as missing. A check, not a repair.

    Args:
        original: The uncompressed system prompt.
        compressed: Its compression.
        protection: The protection it was compressed with.

    Returns:
        The missing spans' text, in order; empty when compression kept its promise.

    Example:
        >>> missing_spans("Refunds are possible within 30 days.", "Refunds within 30days.")
        ['possible', '30 days']
    """
    missing: list[str] = []
    position = 0
    for span in kept_spans(original, protection):
        pattern = ("(?<!\\w)" if span.apart_before else "") + re.escape(span.text) + ("(?!\\w)" if span.apart_after else "")
        found = re.compile(pattern).search(compressed, position)
        if found is None:
            missing.append(span.text)
        else:
            position = found.end()
    return missing


def unglue(original: str, compressed: str, protection: Protection | None = None) -> str:
    """Put back the space after a kept span where dropping a token glued the next word to it
    ("30 daysof" → "30 days of"); nothing else changes.

    Args:
        original: The uncompressed system prompt.
        compressed: Its compression.
        protection: The protection it was compressed with.

    Returns:
        ``compressed`` with those spaces restored.

    Example:
        >>> unglue("Refunds within 30 days. Be friendly.", "Refunds within 30 daysfriendly.")
        'Refunds within 30 days friendly.'
    """
    pieces: list[str] = []
    position = 0
    for span in kept_spans(original, protection):
        found = compressed.find(span.text, position)
        if found < 0:
            continue
        stop = found + len(span.text)
        glued = span.apart_after and stop < len(compressed) and _is_word(compressed[stop])
        pieces.append(compressed[position:stop] + (" " if glued else ""))
        position = stop
    pieces.append(compressed[position:])
    return "".join(pieces)


def compressible_share(segments: Sequence[Segment]) -> float:
    """The share of characters compression may touch; a prompt that is mostly kept cannot shrink much.

    Example:
        >>> round(compressible_share(segment("Refunds are possible within 30 days. Be friendly and helpful.")), 2)
        0.61
    """
    total = sum(len(piece.text) for piece in segments)
    return sum(len(piece.text) for piece in segments if not piece.keep) / total if total else 0.0
