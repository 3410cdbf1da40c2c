"""prefect-llmops' core: what an application and the flows use, importable without Prefect.

An application records its LLM calls and asks which prompt version to serve:

    import anthropic
    from llmops import get_registry, trace_anthropic, trace_context

    client = trace_anthropic(anthropic.Anthropic(), feature="chat_response", prompt_name="support-chat")
    prompt = get_registry().resolve("support-chat", user_id="u-42")
    with trace_context(user_id="u-42", prompt_version=prompt.version):
        client.messages.create(model=prompt.model, system=prompt.system, max_tokens=512, messages=[...])

The names below are loaded on first use, so ``import llmops.settings`` (or the command line's
start) does not pay for the Anthropic SDK or the store. The features live in packages: the store,
ingest and tracing of calls, prompts and their release, evaluations, drift, reports and
compression (see the README's Layout).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmops import settings
from llmops.lazy import lazy_exports

__version__ = "0.2.0"
"""The distribution's version, read by the build (pyproject's dynamic version) and by both packages."""

__all__ = [
    "__version__",
    "Registry",
    "ResolvedPrompt",
    "TraceRecorder",
    "current_trace_context",
    "get_registry",
    "resolve",
    "settings",
    "trace_anthropic",
    "trace_context",
]

if TYPE_CHECKING:
    from llmops.release.registry import Registry, ResolvedPrompt, get_registry, resolve
    from llmops.tracing import TraceRecorder, current_trace_context, trace_anthropic, trace_context
else:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "Registry": "llmops.release.registry",
            "ResolvedPrompt": "llmops.release.registry",
            "get_registry": "llmops.release.registry",
            "resolve": "llmops.release.registry",
            "TraceRecorder": "llmops.tracing",
            "current_trace_context": "llmops.tracing",
            "trace_anthropic": "llmops.tracing",
            "trace_context": "llmops.tracing",
        },
    )
