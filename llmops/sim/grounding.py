"""Does the system prompt state a fact? The simulated model only says what its prompt supports.

A real model knows nothing about Acme Corp's policies but what its system prompt tells it, so
the simulator states a policy fact only when the prompt it received states it: every specific
of the fact (a number with the word after it, such as "30 days" or "$14.99") appears in the
prompt, and most of the fact's telling words (weighted by how rare they are among the facts the
simulator knows) appear near it or in the heading of the section it sits in. A prompt that lost "30 days",
or kept the number but lost what it is about ("refund", "purchase"), no longer supports the
fact, so over-compression shows up in evaluations as missing facts, as it would with a model.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from llmops.sim.knowledge import ESCALATION_FOLLOW_UP, STOPWORDS, SUPPORT_TOPICS

SPECIFIC = re.compile(r"[$#]?\d+(?:[.,]\d+)*(?:-\d+(?:[.,]\d+)*)?(?:-[A-Za-z]+)?(?: [A-Za-z]+)?")
"""A number (a range, an amount) and the word that follows it: "30 days", "5-7 business", "$14.99", "1-year limited"."""
WORD = re.compile(r"[a-z0-9$][a-z0-9'$.,-]*[a-z0-9]|[a-z0-9]")
HEADING = re.compile(r"^#{1,6} (.+)$")
STEM_LENGTH = 5
WINDOW_WORDS = 30
"""How near a fact's content words must be to its specifics: about two sentences of prose."""
COVERAGE = 0.6
"""The share of a fact's content words its prompt must state near its specifics."""
GENERIC_WORDS = frozenset("within must days hours minutes weeks months years business once only after before each every".split())
"""Words that say nothing about which fact a sentence states."""


@dataclass(frozen=True)
class Evidence:
    """What a prompt must contain to state one fact: its specifics, and its words by how telling they are."""

    specifics: tuple[re.Pattern[str], ...]
    weights: dict[str, float]


def _stem(word: str) -> str:
    return word.strip("'.,").removesuffix("'s")[:STEM_LENGTH]


def _content_stems(text: str) -> frozenset[str]:
    words = (word for word in WORD.findall(text.lower()) if not any(char.isdigit() for char in word))
    return frozenset(_stem(word) for word in words if len(word) > 3 and word not in STOPWORDS | GENERIC_WORDS)


def _without_specifics(fact: str) -> str:
    return SPECIFIC.sub(" ", fact)


@lru_cache(maxsize=1)
def _document_frequency() -> tuple[int, Counter[str]]:
    """In how many of the simulator's known facts each word occurs: "takes" tells little, "warranty" a lot."""
    facts = [fact for topic in SUPPORT_TOPICS for fact in topic.facts] + [ESCALATION_FOLLOW_UP]
    return len(facts), Counter(stem for fact in facts for stem in _content_stems(_without_specifics(fact)))


@lru_cache(maxsize=512)
def evidence(fact: str) -> Evidence:
    """What a prompt must contain to state ``fact`` (computed once per fact).

    Args:
        fact: A policy fact of the knowledge base.

    Returns:
        Its specifics as patterns and its content words weighted by rarity among all known facts.
    """
    specifics = tuple(re.compile(rf"(?<![\w$#.]){re.escape(found.lower())}(?![\d])") for found in SPECIFIC.findall(fact))
    total, frequency = _document_frequency()
    stems = _content_stems(_without_specifics(fact))
    return Evidence(specifics, {stem: math.log((total + 1) / (frequency[stem] + 0.5)) for stem in stems})


@dataclass(frozen=True)
class PromptText:
    """A system prompt prepared for lookups: lowercase, one space between words, each word's offset
    and the words of the heading it sits under (a heading is context for everything below it)."""

    text: str
    words: tuple[str, ...]
    starts: tuple[int, ...]
    headings: tuple[frozenset[str], ...]

    @classmethod
    def of(cls, system: str) -> PromptText:
        """Prepare a system prompt for ``states``.

        Example:
            >>> PromptText.of("# Refunds\\nWithin 30 days.").text
            '# refunds within 30 days.'
        """
        text_parts: list[str] = []
        words: list[str] = []
        starts: list[int] = []
        headings: list[frozenset[str]] = []
        heading: frozenset[str] = frozenset()
        offset = 0
        for line in system.lower().splitlines():
            collapsed = " ".join(line.split())
            if not collapsed:
                continue
            if found := HEADING.match(collapsed):
                heading = frozenset(_stem(word) for word in WORD.findall(found.group(1)))
            for match in WORD.finditer(collapsed):
                words.append(_stem(match.group(0)))
                starts.append(offset + match.start())
                headings.append(heading)
            text_parts.append(collapsed)
            offset += len(collapsed) + 1
        return cls(" ".join(text_parts), tuple(words), tuple(starts), tuple(headings))

    def word_index(self, offset: int) -> int:
        """The index of the word at or after character ``offset``."""
        return bisect.bisect_left(self.starts, offset)

    def context(self, centre: int) -> set[str]:
        """The words around ``centre`` and the heading above it."""
        nearby = set(self.words[max(0, centre - WINDOW_WORDS) : centre + WINDOW_WORDS + 1])
        return nearby | (self.headings[min(centre, len(self.headings) - 1)] if self.headings else frozenset())

    def span(self, centre: int) -> str:
        """The text of the window around ``centre``."""
        start = self.starts[max(0, centre - WINDOW_WORDS)] if self.starts else 0
        end_word = centre + WINDOW_WORDS + 1
        return self.text[start : self.starts[end_word] if end_word < len(self.starts) else len(self.text)]


def states(prompt: PromptText, fact: str) -> bool:
    """True when ``prompt`` states ``fact``: its specifics, near enough of its telling words.

    Args:
        prompt: The system prompt, prepared with ``PromptText.of``.
        fact: A policy fact of the knowledge base.

    Returns:
        Whether the simulated model may state the fact under this prompt.

    Example:
        >>> fact = "Password reset links expire after 24 hours."
        >>> states(PromptText.of("Password reset links expire after 24 hours."), fact)
        True
        >>> states(PromptText.of("Links expire."), fact)
        False
    """
    found = evidence(fact)
    if found.specifics:
        anchors = [prompt.word_index(match.start()) for match in found.specifics[0].finditer(prompt.text)]
    else:
        anchors = [index for index, word in enumerate(prompt.words) if word in found.weights]
    needed = COVERAGE * sum(found.weights.values())
    for anchor in anchors:
        if not all(pattern.search(prompt.span(anchor)) for pattern in found.specifics[1:]):
            continue
        context = prompt.context(anchor)
        if sum(weight for stem, weight in found.weights.items() if stem in context) >= needed:
            return True
    return False
