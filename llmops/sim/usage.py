"""Token accounting: the characters/4 estimate and Anthropic-style prompt caching.

Input tokens are counted per content block so that a cached prefix plus the rest adds up to
exactly the uncached total, and ``count_tokens`` agrees with ``usage`` of the same prompt.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from llmops.sim.protocol import CountTokensRequest

CHARS_PER_TOKEN = 4
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
MAX_LIVE_ENTRIES = 10_000
"""Above this many cache entries, expired ones are dropped (a long-running demo server stays small)."""


def estimate_tokens(text: str) -> int:
    """About one token per four characters, as a rule of thumb for English text.

    Example:
        >>> estimate_tokens("Hello, world"), estimate_tokens("")
        (3, 0)
    """
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Segment:
    """One block of the prompt in the order the model reads it; ``cache_ttl`` marks a breakpoint."""

    text: str
    tokens: int
    cache_ttl: str | None


def prompt_segments(request: CountTokensRequest) -> list[Segment]:
    """System blocks then message blocks, each with its token count and cache breakpoint.

    Args:
        request: A Messages or count_tokens request.

    Returns:
        One segment per block, in the order the model reads them.
    """
    blocks = list(request.system_blocks())
    for message in request.messages:
        blocks.extend(message.blocks())
    return [
        Segment(
            text=f"{index}:{block.as_text()}",
            tokens=estimate_tokens(block.as_text()),
            cache_ttl=block.cache_control.ttl if block.cache_control else None,
        )
        for index, block in enumerate(blocks)
    ]


def count_input_tokens(request: CountTokensRequest) -> int:
    """Total input tokens of the prompt, never zero (the API counts framing tokens too).

    Example:
        >>> from llmops.sim.protocol import CountTokensRequest
        >>> count_input_tokens(CountTokensRequest(model="claude-haiku-4-5", messages=[{"role": "user", "content": "Hello, world"}]))
        3
    """
    return max(1, sum(segment.tokens for segment in prompt_segments(request)))


@dataclass(frozen=True)
class InputUsage:
    """Anthropic's split: ``input_tokens`` excludes what was read from or written to the cache."""

    input_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cache_creation_5m: int
    cache_creation_1h: int


class PromptCache:
    """Prefixes up to each ``cache_control`` breakpoint, per model, alive for their TTL.

    A request reads the longest live cached prefix and writes the rest up to its last breakpoint;
    a read refreshes the entry's lifetime, as Anthropic's cache does.

    Args:
        ttl_5m_seconds: The lifetime of a ``5m`` entry, read at every request (configurable for tests).
        clock: Monotonic seconds.
    """

    def __init__(self, ttl_5m_seconds: Callable[[], float], clock: Callable[[], float] = time.monotonic):
        self._ttl_5m_seconds = ttl_5m_seconds
        self._clock = clock
        self._expiry: dict[str, float] = {}

    def account(self, model_id: str, request: CountTokensRequest) -> InputUsage:
        """Read and write the cache for one request, and split its input tokens accordingly.

        Args:
            model_id: The dated model id (each model has its own cache).
            request: The request, whose blocks may carry ``cache_control`` breakpoints.

        Returns:
            Uncached, cache-read and cache-written input tokens; without breakpoints all are uncached.
        """
        segments = prompt_segments(request)
        total = max(1, sum(segment.tokens for segment in segments))
        now = self._clock()
        digest = hashlib.sha256(model_id.encode())
        breakpoints: list[tuple[str, int, str]] = []
        prefix_tokens = 0
        for segment in segments:
            digest.update(segment.text.encode())
            digest.update(b"\x00")
            prefix_tokens += segment.tokens
            if segment.cache_ttl:
                breakpoints.append((digest.hexdigest(), prefix_tokens, segment.cache_ttl))
        if not breakpoints:
            return InputUsage(total, 0, 0, 0, 0)
        if len(self._expiry) > MAX_LIVE_ENTRIES:
            self._expiry = {key: expiry for key, expiry in self._expiry.items() if expiry > now}

        read = 0
        for key, tokens, ttl in breakpoints:
            if self._expiry.get(key, 0.0) > now:
                read = tokens
                self._expiry[key] = now + self._ttl(ttl)
        written = {"5m": 0, "1h": 0}
        covered = read
        for key, tokens, ttl in breakpoints:
            if tokens > covered:
                written[ttl] += tokens - covered
                covered = tokens
                self._expiry[key] = now + self._ttl(ttl)
        creation = written["5m"] + written["1h"]
        return InputUsage(
            input_tokens=max(0, total - read - creation),
            cache_creation_input_tokens=creation,
            cache_read_input_tokens=read,
            cache_creation_5m=written["5m"],
            cache_creation_1h=written["1h"],
        )

    def _ttl(self, ttl: str) -> float:
        return self._ttl_5m_seconds() if ttl == "5m" else TTL_SECONDS[ttl]
