"""The ``document_summarization`` task: an extractive summary whose length follows the prompt and the model.

The summary is the document's most content-bearing sentences in their original order; a
larger model keeps more of them, and "concise", "one sentence" or "detailed" in the system
prompt shorten or lengthen it, so a summarisation evaluation sees both effects.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from llmops.sim.knowledge import STOPWORDS
from llmops.sim.tasks.ask import CODE_FENCE, Answer, Ask, Profile, Style

SUMMARY_REQUEST = re.compile(r"\bsummar(y|ies|ize|ise|izing|ising)\b|\btl;?dr\b", re.I)
DOCUMENT_TAG = re.compile(r"<document>(.*?)</document>", re.S | re.I)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])")
WORD = re.compile(r"[a-z0-9']+")


def extract_document(user: str) -> str:
    """The text to summarise: a tagged or fenced document, or what follows the instruction.

    Example:
        >>> extract_document("Summarize this: The plan failed. We retried.")
        'The plan failed. We retried.'
    """
    if match := DOCUMENT_TAG.search(user) or CODE_FENCE.search(user):
        return match.group(1).strip()
    for separator in ("\n", ":"):
        head, found, rest = user.partition(separator)
        if found and SUMMARY_REQUEST.search(head) and rest.strip():
            return rest.strip()
    return user.strip()


def split_sentences(document: str) -> list[str]:
    """The document's sentences, whitespace collapsed.

    Example:
        >>> split_sentences("The plan failed.  We retried\\nat 9. It worked!")
        ['The plan failed.', 'We retried at 9.', 'It worked!']
    """
    return [sentence.strip() for sentence in SENTENCE_END.split(" ".join(document.split())) if sentence.strip()]


def top_sentences(sentences: list[str], count: int) -> list[str]:
    """The ``count`` most content-bearing sentences (frequent content words, lead bonus), in order.

    Args:
        sentences: The document's sentences.
        count: How many to keep.

    Returns:
        At most ``count`` sentences, in document order.
    """
    words = [[word for word in WORD.findall(sentence.lower()) if word not in STOPWORDS] for sentence in sentences]
    frequency = Counter(word for sentence_words in words for word in sentence_words)

    def score(index: int) -> float:
        content = sum(frequency[word] for word in set(words[index]))
        lead_bonus = 1.5 if index == 0 else 1.0
        return lead_bonus * content / math.sqrt(len(words[index]) + 1)

    chosen = sorted(sorted(range(len(sentences)), key=lambda index: (-score(index), index))[:count])
    return [sentences[index] for index in chosen]


def summary_length(style: Style, profile: Profile) -> int:
    """Sentences in the summary: the model's own length, adjusted for what the prompt asks."""
    if style.single_sentence:
        return 1
    if style.concise:
        return max(1, profile.summary_sentences - 1)
    if style.detailed:
        return profile.summary_sentences + 2
    return profile.summary_sentences


def document_summarization(ask: Ask) -> Answer:
    """A summary of the document in the user's turn (bulleted when the prompt asks for bullets).

    Args:
        ask: The request; the document is tagged, fenced, or follows the instruction.

    Returns:
        The summary, and as JSON its ``summary`` and ``key_points`` (an ``error`` when there is no document).
    """
    sentences = split_sentences(extract_document(ask.user))
    if not sentences:
        message = "There is no document to summarise. Please include the text."
        return Answer(message, {"summary": "", "key_points": [], "error": message})
    key_points = top_sentences(sentences, summary_length(ask.style, ask.profile))
    summary = " ".join(key_points)
    prose = "\n".join(f"- {point}" for point in key_points) if ask.style.bullets else summary
    return Answer(prose, {"summary": summary, "key_points": key_points})
