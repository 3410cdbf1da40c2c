"""What every task is given and returns: the model's profile, the prompt's style, the ``Ask`` and ``Answer``.

The profile is what a larger model or a silent provider update changes; the style is what a
better system prompt changes. Both are read once per request by ``llmops.sim.responder`` and
handed to the task, so every task answers better for the same reasons.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, fields, replace
from typing import Any

from llmops.sim.config import Tier

CODE_FENCE = re.compile(r"```[\w+-]*\n?(.*?)```", re.S)
"""A fenced block in the user's turn: the code to review, or the document to summarise."""


@dataclass(frozen=True)
class Profile:
    """How complete a model is: the chance of stating each fact or issue, summary length, drift traits."""

    keep_fact: float
    """Chance of stating each policy fact the system prompt supports."""
    keep_issue: float
    """Chance of reporting each code issue present."""
    summary_sentences: int
    suggests_fixes: bool
    refusal_rate: float = 0.0
    verbose: bool = False
    """Wrapped in filler before and after (a provider-update trait)."""


TIER_PROFILES: dict[Tier, Profile] = {
    "haiku": Profile(keep_fact=0.6, keep_issue=0.65, summary_sentences=2, suggests_fixes=False),
    "sonnet": Profile(keep_fact=0.92, keep_issue=0.9, summary_sentences=3, suggests_fixes=True),
    "opus": Profile(keep_fact=0.98, keep_issue=1.0, summary_sentences=4, suggests_fixes=True),
}


def after_provider_update(profile: Profile) -> Profile:
    """The silent model change: wordier, drops policy facts, refuses more often.

    Args:
        profile: The model's profile before the update.

    Returns:
        The same model after it, what ``SimConfig.provider_updated_models`` switches on.

    Example:
        >>> after_provider_update(TIER_PROFILES["sonnet"]).refusal_rate
        0.3
    """
    return replace(profile, keep_fact=profile.keep_fact * 0.35, refusal_rate=0.3, verbose=True)


@dataclass(frozen=True)
class Style:
    """What the system prompt asks for."""

    policy: bool
    """It mentions policies: the model may state the policy facts the prompt supports."""
    escalation: bool
    concise: bool
    json: bool
    bullets: bool
    single_sentence: bool
    detailed: bool


STYLE_PATTERNS: dict[str, re.Pattern[str]] = {
    "policy": re.compile(r"\bpolic(y|ies)\b", re.I),
    "escalation": re.compile(r"\bescalat|\bhuman (agent|support)", re.I),
    "concise": re.compile(r"\b(concise|brief|briefly|short|succinct|terse)\b", re.I),
    "json": re.compile(r"\bjson\b", re.I),
    "bullets": re.compile(r"\bbullet", re.I),
    "single_sentence": re.compile(r"\b(one|single|1)[ -]sentence\b", re.I),
    "detailed": re.compile(r"\b(detailed|thorough|comprehensive)\b", re.I),
}


def read_style(system: str) -> Style:
    """What a system prompt asks of the answer, by the words it uses.

    Args:
        system: The system prompt.

    Returns:
        One flag per ``Style`` field.

    Example:
        >>> style = read_style("Be concise. Answer in JSON.")
        >>> style.concise, style.json, style.bullets
        (True, True, False)
    """
    return Style(**{field.name: bool(STYLE_PATTERNS[field.name].search(system)) for field in fields(Style)})


@dataclass(frozen=True)
class Ask:
    """One request as a task sees it: the user's turn, the prompt's style, the model and its RNG."""

    user: str
    """The last user turn, which the answer responds to."""
    style: Style
    profile: Profile
    rng: random.Random
    """Seeded from the request, so an identical request draws identically."""
    varied: bool
    """The temperature is not 0: phrasings are drawn rather than always the first."""
    tier: Tier
    system: str
    transcript: str
    """Every user turn: a grader re-reads the answer it was given in the first one."""


@dataclass(frozen=True)
class Answer:
    """One answer in both renderings: prose, and the structure returned when JSON is asked for."""

    prose: str
    data: dict[str, Any]


def pick(options: tuple[str, ...], ask: Ask) -> str:
    """The first phrasing at temperature 0, a seeded choice otherwise.

    Args:
        options: Interchangeable phrasings, the preferred one first.
        ask: The request, whose ``varied`` and ``rng`` decide.

    Returns:
        One of ``options``.
    """
    return ask.rng.choice(options) if ask.varied else options[0]
