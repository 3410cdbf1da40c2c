"""How many tokens a system prompt costs, in the pinned model's own count.

The provider's ``count_tokens`` endpoint (or the local model server's) counts what the model
is billed for; LLMLingua's tokenizer and tiktoken count something else. A system prompt's
share is the count with it minus the count of the same one-line conversation without it, so
the API's framing tokens cancel out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import anthropic
from anthropic.types import MessageParam

PROBE_MESSAGES: list[MessageParam] = [{"role": "user", "content": "Hello"}]
"""The one-line conversation counted with and without each system prompt."""


async def system_prompt_tokens(client: anthropic.AsyncAnthropic, model: str, systems: Sequence[str]) -> list[int]:
    """The tokens each of ``systems`` adds to a request to ``model``.

    Args:
        client: An Anthropic client (the API, or the local model server).
        model: The pinned model, whose tokenizer counts.
        systems: System prompts to count (the original and its compressions).

    Returns:
        One count per system prompt, in order (the API's framing tokens cancel out).

    Example:
        ```python
        client = anthropic.AsyncAnthropic()
        before, after = await system_prompt_tokens(client, prompt.model, [prompt.system, compressed.text])
        ```
    """
    base = await client.messages.count_tokens(model=model, messages=PROBE_MESSAGES)
    counted = await asyncio.gather(
        *(client.messages.count_tokens(model=model, system=system, messages=PROBE_MESSAGES) for system in systems)
    )
    return [count.input_tokens - base.input_tokens for count in counted]
