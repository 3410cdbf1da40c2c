"""The ``chat_response`` task: a customer-support reply that states only what its system prompt supports.

The reply finds the user's topic, states each policy fact the prompt states (``grounding``)
with the model's probability, and offers escalation to a human when the prompt asks for it and
the user is angry or the case complex: the things a support-chat evaluation checks.
"""

from __future__ import annotations

import re
from functools import lru_cache

from llmops.sim.grounding import PromptText, states
from llmops.sim.knowledge import (
    ANGER_MARKERS,
    CLOSING,
    ESCALATION_FOLLOW_UP,
    ESCALATION_OFFER,
    ESCALATION_OFFER_WITHOUT_TIME,
    GENERAL_TOPIC,
    OPENERS,
    ORDER_NUMBER_INSTRUCTION,
    SUPPORT_TOPICS,
    Topic,
)
from llmops.sim.tasks.ask import Answer, Ask, pick


def keyword_hits(topic: Topic, text: str) -> int:
    """How often ``topic``'s keywords occur in ``text`` (lowercase), as whole words."""
    return sum(len(re.findall(rf"\b{re.escape(keyword)}\b", text)) for keyword in topic.keywords)


def detect_topics(user: str) -> list[Topic]:
    """Topics mentioned by the user, most mentioned first.

    Args:
        user: The user's turn.

    Returns:
        The support topics whose keywords occur, ties in the knowledge base's order.

    Example:
        >>> [topic.name for topic in detect_topics("My delivery is late and I want a refund")]
        ['refund', 'shipping']
    """
    lowered = user.lower()
    scored = [(keyword_hits(topic, lowered), index, topic) for index, topic in enumerate(SUPPORT_TOPICS)]
    return [topic for hits, _, topic in sorted(scored, key=lambda item: (-item[0], item[1])) if hits]


def is_angry(user: str) -> bool:
    """Whether the user shouts (mostly capitals) or uses an anger marker.

    Example:
        >>> is_angry("WHERE IS MY ORDER"), is_angry("Where is my order?")
        (True, False)
    """
    letters = [char for char in user if char.isalpha()]
    shouting = len(letters) >= 12 and sum(char.isupper() for char in letters) / len(letters) > 0.6
    return shouting or any(marker in user.lower() for marker in ANGER_MARKERS)


@lru_cache(maxsize=64)
def prompt_text(system: str) -> PromptText:
    """A system prompt parsed once for the fact lookups of every request that sends it."""
    return PromptText.of(system)


def chat_response(ask: Ask) -> Answer:
    """A support reply: only the policy facts the system prompt states (``grounding``), each
    kept with the model's probability, and the escalation offer when the prompt asks for one.

    Args:
        ask: The request; its style decides policy facts, escalation, concision and bullets.

    Returns:
        The reply, and as JSON its ``topic``, ``answer``, ``policy_facts`` and ``escalate``.
    """
    topics = detect_topics(ask.user)
    topic = topics[0] if topics else GENERAL_TOPIC
    angry = is_angry(ask.user)
    complex_case = topic.complex_case or len(topics) > 1 or len(ask.user.split()) > 80
    prompt = prompt_text(ask.system)
    stated = [fact for fact in topic.facts if states(prompt, fact)] if ask.style.policy else []
    kept = [fact for fact in stated if ask.rng.random() < ask.profile.keep_fact]
    facts = kept[:2] if ask.style.concise else kept
    escalate = ask.style.escalation and (angry or complex_case)
    offer = ESCALATION_OFFER if states(prompt, ESCALATION_FOLLOW_UP) else ESCALATION_OFFER_WITHOUT_TIME
    opener = pick(OPENERS["angry" if angry else "calm"], ask)
    reply = topic.reply
    if topic.order_number_request and ORDER_NUMBER_INSTRUCTION.search(" ".join(ask.system.split())):
        reply = f"{reply} {topic.order_number_request}"
    lead = [reply] if ask.style.concise else [opener, reply]
    tail = ([offer] if escalate else []) + ([] if ask.style.concise else [CLOSING])
    if ask.style.bullets and facts:
        prose = "\n".join([" ".join(lead), *(f"- {fact}" for fact in facts), " ".join(tail)]).strip()
    else:
        prose = " ".join([*lead, *facts, *tail])
    return Answer(
        prose=prose,
        data={"topic": topic.name, "answer": " ".join([*lead, *tail]), "policy_facts": facts, "escalate": escalate},
    )
