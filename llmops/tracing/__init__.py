"""Application-side tracing: wrap an Anthropic client once, and every call becomes a trace.

The app keeps using the official SDK; each call is measured (latency including the SDK's
retries, time to first token, usage, stop reason, error type), tagged with who and what it
served (feature, prompt version, user, session), and handed to a ``TraceRecorder`` that writes
in the background, so the app's call never waits on the store and never fails because of it.
Prompt and answer text are not recorded unless text capture is on (``LLMOPS_CAPTURE_TEXT=1``).
``context`` holds the scopes (``trace_context``),
``recorder`` the background writer, ``calls`` what one call records, and ``anthropic`` the
client wrapper (``trace_anthropic``); import the public names from here.
"""

from llmops.tracing.anthropic import TracedClient, trace_anthropic
from llmops.tracing.context import TraceContext, current_trace_context, trace_context
from llmops.tracing.recorder import RecorderStats, Sink, TraceRecorder, default_recorder, store_sink

__all__ = [
    "RecorderStats",
    "Sink",
    "TraceContext",
    "TraceRecorder",
    "TracedClient",
    "current_trace_context",
    "default_recorder",
    "store_sink",
    "trace_anthropic",
    "trace_context",
]
