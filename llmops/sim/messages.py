"""Response shapes of the Messages API: ids, the Message object with its usage, and the event stream.

What the simulator sends back, built the way the real API builds it (field names, order of
stream events, ``usage`` split by cache), so the official ``anthropic`` SDK parses every
response, streams included. The requests' side is ``protocol``.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from llmops.sim.faults import FaultInjector
from llmops.sim.responder import Completion
from llmops.sim.usage import InputUsage

STREAM_WORDS_PER_CHUNK = 3


def new_id(prefix: str) -> str:
    """A fresh API object id in Anthropic's shape.

    Args:
        prefix: The object kind: ``msg``, ``req``, ``msgbatch``.

    Returns:
        ``<prefix>_`` and 24 random hex digits.

    Example:
        >>> new_id("msg").startswith("msg_"), len(new_id("msg"))
        (True, 28)
    """
    return f"{prefix}_{secrets.token_hex(12)}"


def usage_json(usage: InputUsage, output_tokens: int, service_tier: str) -> dict[str, Any]:
    """The ``usage`` object of a Message, input split by cache as the API reports it.

    Args:
        usage: The prompt's input tokens, as the prompt cache accounted them.
        output_tokens: Tokens of the answer.
        service_tier: ``standard`` for live calls, ``batch`` for batch results.

    Returns:
        The JSON object, ``cache_creation`` broken down by TTL.
    """
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage.cache_creation_5m,
            "ephemeral_1h_input_tokens": usage.cache_creation_1h,
        },
        "service_tier": service_tier,
    }


def message_json(model_id: str, completion: Completion, usage: InputUsage, service_tier: str) -> dict[str, Any]:
    """A complete Message object: one text block, its stop reason and usage.

    Args:
        model_id: The dated model id that answered (an alias in the request is answered under it).
        completion: The simulated answer.
        usage: The prompt's input tokens, as the prompt cache accounted them.
        service_tier: ``standard`` or ``batch``.

    Returns:
        The JSON body of ``POST /v1/messages`` (or of a succeeded batch result), with a new id.
    """
    return {
        "id": new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model_id,
        "content": [{"type": "text", "text": completion.text}],
        "stop_reason": completion.stop_reason,
        "stop_sequence": completion.stop_sequence,
        "usage": usage_json(usage, completion.output_tokens, service_tier),
    }


def sse(event: str, data: dict[str, Any]) -> str:
    """One server-sent event.

    Example:
        >>> sse("ping", {"type": "ping"})
        'event: ping\\ndata: {"type": "ping"}\\n\\n'
    """
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def text_chunks(text: str) -> list[str]:
    """The answer cut into text deltas of a few words; joined they give back ``text`` exactly.

    Example:
        >>> text_chunks("One two three four five.")
        ['One two three ', 'four five.']
    """
    pieces = re.findall(r"\S+\s*|\s+", text)
    return ["".join(pieces[i : i + STREAM_WORDS_PER_CHUNK]) for i in range(0, len(pieces), STREAM_WORDS_PER_CHUNK)]


async def stream_events(
    message: dict[str, Any], model_id: str, faults: FaultInjector, pause: Callable[[float], Awaitable[None]]
) -> AsyncIterator[str]:
    """The Messages streaming protocol, in the real order, paced by time to first token and latency.

    The timings are drawn when the stream starts, from the same fault RNG as everything else.

    Args:
        message: The complete Message (``message_json``) the stream spells out.
        model_id: The dated model id, which scales the timings.
        faults: Where the time to first token and the total latency are drawn.
        pause: How to wait between events (a sleep that ends early when the server stops).

    Yields:
        Server-sent events: ``message_start`` … ``content_block_delta`` … ``message_stop``.
    """
    text = message["content"][0]["text"]
    usage = message["usage"]
    opening = {**message, "content": [], "stop_reason": None, "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}
    yield sse("message_start", {"type": "message_start", "message": opening})
    empty_block = {"type": "text", "text": ""}
    yield sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": empty_block})
    yield sse("ping", {"type": "ping"})
    ttft = faults.ttft_seconds(model_id)
    chunks = text_chunks(text)
    interval = max(0.0, faults.latency_seconds(model_id) - ttft) / max(1, len(chunks))
    await pause(ttft)
    for index, chunk in enumerate(chunks):
        if index:
            await pause(interval)
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": chunk}}
        yield sse("content_block_delta", delta)
    yield sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    closing = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    yield sse("message_delta", {"type": "message_delta", "delta": closing, "usage": usage})
    yield sse("message_stop", {"type": "message_stop"})
