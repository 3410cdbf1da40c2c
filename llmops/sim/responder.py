"""The simulated model: deterministic answers that depend on the prompt, the model and drift.

An identical request always yields identical text (the RNG is seeded from a hash of the
request), while a better system prompt, a larger model or an unchanged provider really
produce better answers, so evaluations and drift detection have something true to find.

This module reads the request (its style, the model's profile), picks the task it is for
(``detect_task``), lets the task answer (``llmops.sim.tasks``) and shapes the answer as the API
returns it: JSON when the prompt asks for JSON, cut at a stop sequence or at ``max_tokens``.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from llmops.sim.config import model_tier, resolve_model
from llmops.sim.knowledge import REFUSAL, VERBOSE_CLOSER, VERBOSE_OPENER
from llmops.sim.protocol import MessagesRequest
from llmops.sim.tasks.ask import CODE_FENCE, TIER_PROFILES, Answer, Ask, after_provider_update, read_style
from llmops.sim.tasks.chat import chat_response
from llmops.sim.tasks.code_review import CODE_REQUEST, code_review
from llmops.sim.tasks.grading import grading, is_grading_request
from llmops.sim.tasks.summary import SUMMARY_REQUEST, document_summarization
from llmops.sim.usage import CHARS_PER_TOKEN, estimate_tokens

StopReason = Literal["end_turn", "max_tokens", "stop_sequence"]

TASKS: dict[str, Callable[[Ask], Answer]] = {
    "chat_response": chat_response,
    "document_summarization": document_summarization,
    "code_review": code_review,
    "grading": grading,
}


@dataclass(frozen=True)
class Completion:
    """The answer as the API returns it: text, why it stopped, and its output tokens."""

    text: str
    stop_reason: StopReason
    stop_sequence: str | None
    """The stop sequence that ended it, when ``stop_reason`` is ``stop_sequence``."""
    output_tokens: int


def complete(request: MessagesRequest, provider_updated: bool = False, sample: int = 0) -> Completion:
    """The answer as the API returns it: cut at a stop sequence or at ``max_tokens``.

    Args:
        request: A validated Messages request.
        provider_updated: Answer as the model after a silent provider update (drift).
        sample: 0 for the request's own answer; another value draws another sample of it.

    Returns:
        The text, its stop reason and output tokens (about four characters a token).

    Example:
        >>> request = MessagesRequest.model_validate({
        ...     "model": "claude-sonnet-4-5", "max_tokens": 256, "system": "You summarise documents.",
        ...     "messages": [{"role": "user", "content": "Summarize: The launch slipped. The team fixed the bug."}],
        ... })
        >>> completion = complete(request)
        >>> completion.stop_reason, completion == complete(request)
        ('end_turn', True)
    """
    text = answer_text(request, provider_updated, sample)
    limit = request.max_tokens * CHARS_PER_TOKEN
    stops = [(text.find(stop), stop) for stop in request.stop_sequences or [] if stop and stop in text]
    if stops:
        position, stop = min(stops)
        if position <= limit:
            cut = text[:position]
            return Completion(cut, "stop_sequence", stop, max(1, estimate_tokens(cut)))
    if len(text) > limit:
        return Completion(text[:limit], "max_tokens", None, request.max_tokens)
    return Completion(text, "end_turn", None, max(1, estimate_tokens(text)))


def answer_text(request: MessagesRequest, provider_updated: bool = False, sample: int = 0) -> str:
    """The full (untruncated) answer to ``request``; identical requests (and ``sample``) give identical text.

    Args:
        request: A validated Messages request.
        provider_updated: Answer as the model after a silent provider update (wordier, fewer facts, refusals).
        sample: 0 for the request's own answer; another value draws another sample of it.

    Returns:
        The answer's prose, or its JSON when the system prompt asks for JSON.

    Raises:
        UnknownModelError: The request's model is not one the simulator knows.
    """
    model_id = resolve_model(request.model)
    tier = model_tier(model_id)
    profile = TIER_PROFILES[tier]
    if provider_updated:
        profile = after_provider_update(profile)
    rng = random.Random(request_seed(request, model_id, provider_updated, sample))
    system = request.system_text()
    style = read_style(system)
    transcript = "\n\n".join(message.text() for message in request.messages if message.role == "user")
    ask = Ask(
        request.last_user_text(), style, profile, rng, varied=request.temperature != 0, tier=tier,
        system=system, transcript=transcript,
    )  # fmt: skip

    if rng.random() < profile.refusal_rate:
        answer = Answer(REFUSAL, {"refusal": REFUSAL})
    else:
        answer = TASKS[detect_task(system, ask.user, transcript)](ask)

    if style.json:
        data = {**answer.data, "note": VERBOSE_CLOSER} if profile.verbose else answer.data
        return json.dumps(data, ensure_ascii=False)
    if profile.verbose:
        return f"{VERBOSE_OPENER}\n\n{answer.prose}\n\n{VERBOSE_CLOSER}"
    return answer.prose


def request_seed(request: MessagesRequest, model_id: str, provider_updated: bool, sample: int = 0) -> int:
    """Hash of everything that defines the answer, so the same request gets the same text; a
    nonzero ``sample`` is another draw of the same request (a real model's sampling variation).

    Args:
        request: The request: its system prompt, turns, ``max_tokens`` and temperature count.
        model_id: The dated model id.
        provider_updated: Whether the model has drifted.
        sample: Which draw of the request.

    Returns:
        A 64-bit seed for the answer's RNG.
    """
    key = json.dumps(
        [
            model_id,
            request.system_text(),
            [(message.role, message.text()) for message in request.messages],
            request.max_tokens,
            request.temperature,
            int(provider_updated),
            *([sample] if sample else []),
        ]
    )
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def detect_task(system: str, user: str, transcript: str = "") -> str:
    """Which of the demo application's features the request is for, or a grader's request.

    Args:
        system: The system prompt.
        user: The last user turn.
        transcript: Every user turn (a grader's tagged answer may be in an earlier one).

    Returns:
        A key of ``TASKS``: ``grading``, ``code_review``, ``document_summarization`` or ``chat_response``.

    Example:
        >>> detect_task("You are a code reviewer.", "Please review this code")
        'code_review'
        >>> detect_task("You are Acme's support assistant.", "Where is my parcel?")
        'chat_response'
    """
    if is_grading_request(system, transcript or user):
        return "grading"
    if CODE_REQUEST.search(system) or CODE_REQUEST.search(user) or CODE_FENCE.search(user):
        return "code_review"
    if SUMMARY_REQUEST.search(system) or SUMMARY_REQUEST.search(user):
        return "document_summarization"
    return "chat_response"
