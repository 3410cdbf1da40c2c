"""One traced call and the trace it becomes: ``TracedCall``, started by a client's ``Tracer``.

Whatever shape the call takes (a whole message, a stream read to the end, abandoned or broken
off by an error), it reports what it sees to one ``TracedCall``, which measures latency and time
to first token, keeps the response's id, model, usage and stop reason, and hands exactly one
trace to the recorder when the call ends. The prompt and answer texts are not kept, only the
length of the last user message and a hash of the system prompt, unless text capture is on
(``LLMOPS_CAPTURE_TEXT=1`` or ``trace_anthropic(capture_text=True)``): then the last user message
and the answer's text go with the trace, cut, and the store redacts them. The wrappers that feed it
live in ``anthropic``; the context it is tagged with comes from ``context``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from uuid import uuid4

from llmops.tracing.context import TraceContext, current_trace_context
from llmops.tracing.recorder import TraceRecorder

__all__ = ["TracedCall", "Tracer"]

_USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


class TracedCall:
    """One API call being measured; turns into exactly one trace however it ends.

    The clock starts when it is made. The wrappers report a whole response (``completed``) or
    each stream event (``observe``), then the end (``ended``) or the failure (``failed``); only
    the first end counts, so a stream that is closed and then garbage-collected is one trace.

    Args:
        recorder: Where the trace goes.
        context: What the call served and for whom (already merged with the client's defaults).
        request: The ``messages.create`` keyword arguments: model, messages and system are read.
        capture_text: Characters of the prompt and answer text to keep with the trace; 0 keeps none.

    Example:
        >>> from datetime import UTC, datetime
        >>> kept = []
        >>> with TraceRecorder(kept.extend) as recorder:
        ...     call = TracedCall(recorder, TraceContext(feature="chat_response"), {"model": "claude-3-5-haiku-latest"})
        ...     call.failed(TimeoutError())
        >>> kept[0].status, kept[0].error_type, kept[0].feature
        ('error', 'TimeoutError', 'chat_response')
    """

    __slots__ = (
        "_recorder",
        "_context",
        "_model",
        "_user_message_length",
        "_system_prompt_hash",
        "_timestamp",
        "_started",
        "_ttft_ms",
        "_trace_id",
        "_response_model",
        "_finish_reason",
        "_usage",
        "_done",
        "_capture",
        "_input_text",
        "_output_parts",
    )

    def __init__(self, recorder: TraceRecorder, context: TraceContext, request: Mapping[str, Any], capture_text: int = 0) -> None:
        self._recorder = recorder
        self._context = context
        self._model = request.get("model")
        self._user_message_length = _last_user_message_length(request.get("messages"))
        self._capture = capture_text
        self._input_text = _last_user_message(request.get("messages"))[:capture_text] if capture_text else None
        self._output_parts: list[str] = []
        self._system_prompt_hash = _system_prompt_hash(request.get("system"))
        self._ttft_ms: float | None = None
        self._trace_id: str | None = None
        self._response_model: str | None = None
        self._finish_reason: str | None = None
        self._usage: dict[str, int] = {}
        self._done = False
        self._timestamp = datetime.now(UTC)
        self._started = time.perf_counter()

    def _take_usage(self, usage: Any) -> None:
        for name in _USAGE_FIELDS:
            value = getattr(usage, name, None)
            if value is not None:
                self._usage[name] = value

    def completed(self, message: Any) -> None:
        """A whole message came back (non-streaming call): take its id, usage and stop reason, and end.

        Args:
            message: The SDK's ``Message`` (or ``ParsedMessage``).
        """
        self._trace_id = getattr(message, "id", None)
        self._response_model = getattr(message, "model", None)
        self._finish_reason = getattr(message, "stop_reason", None)
        self._take_usage(getattr(message, "usage", None))
        if self._capture:
            self._output_parts.append(_text_of(getattr(message, "content", None)) or "")
        self.ended()

    def observe(self, event: Any) -> None:
        """Take what one raw stream event says: the message id and usage come first, the stop reason last.

        The first content delta sets the time to first token.

        Args:
            event: A raw server-sent event of the SDK (``message_start``, ``content_block_delta``...).
        """
        kind = getattr(event, "type", None)
        if kind == "content_block_delta":
            if self._ttft_ms is None:
                self._ttft_ms = (time.perf_counter() - self._started) * 1000.0
            if self._capture and len(self._output_parts) < self._capture:  # each part is a character or more
                self._output_parts.append(getattr(event.delta, "text", None) or "")
        elif kind == "message_start":
            message = event.message
            self._trace_id = message.id
            self._response_model = message.model
            self._take_usage(message.usage)
        elif kind == "message_delta":
            self._finish_reason = event.delta.stop_reason
            self._take_usage(event.usage)

    def failed(self, exc: BaseException) -> None:
        """End the call as an error of the type of ``exc`` (API error, timeout, cancellation).

        Args:
            exc: What the SDK or the app raised.
        """
        self.ended(error=exc)

    def ended(self, error: BaseException | None = None) -> None:
        """Record the trace: the response is complete, the stream is over or abandoned, or the call failed.

        Only the first end counts; later ones do nothing.

        Args:
            error: What ended the call, if it failed.
        """
        if self._done:
            return
        self._done = True
        latency_ms = (time.perf_counter() - self._started) * 1000.0
        context = self._context
        record: dict[str, Any] = {
            "trace_id": self._trace_id or f"trace_{uuid4().hex}",
            "timestamp": self._timestamp,
            "model": self._model if self._model is not None else "unknown",
            "response_model": self._response_model,
            **self._usage,
            "latency_ms": latency_ms,
            "ttft_ms": self._ttft_ms,
            "finish_reason": self._finish_reason,
            "status": "ok" if error is None else "error",
            "error_type": None if error is None else _error_type(error),
            "feature": context.feature,
            "prompt_name": context.prompt_name,
            "prompt_version": context.prompt_version,
            "user_id": context.user_id,
            "session_id": context.session_id,
            "tags": list(context.tags),
            "metadata": context.metadata,
            "user_message_length": self._user_message_length,
            "system_prompt_hash": self._system_prompt_hash,
            "is_batch": False,
        }
        if context.environment is not None:
            record["environment"] = context.environment
        if self._capture:
            record["input_text"] = self._input_text or None
            record["output_text"] = "".join(self._output_parts)[: self._capture] or None
        self._recorder.record(record)


class Tracer:
    """A wrapped client's recorder and default context; starts its calls.

    Shared by the client's ``with_options`` copies. It keeps the defaults merged with the last
    ``trace_context`` scope seen, so a call inside an unchanged scope does not merge again.

    Args:
        recorder: Where the client's traces go.
        defaults: The context given to ``trace_anthropic``; ``trace_context`` scopes override it.

    Example:
        ```python
        tracer = Tracer(TraceRecorder(kept.extend), TraceContext(feature="chat_response"))
        with tracer.call(kwargs) as call:
            message = client.messages.create(**kwargs)
        call.completed(message)
        ```
    """

    __slots__ = ("recorder", "defaults", "capture_text", "_merged")

    def __init__(self, recorder: TraceRecorder, defaults: TraceContext, capture_text: int = 0) -> None:
        self.recorder = recorder
        self.defaults = defaults
        self.capture_text = capture_text
        """Characters of prompt and answer text each call keeps; 0 keeps none."""
        self._merged: tuple[TraceContext | None, TraceContext] = (None, defaults)

    def start(self, request: Mapping[str, Any]) -> TracedCall:
        """Start measuring one call, tagged with the defaults under the current ``trace_context``.

        Args:
            request: The call's keyword arguments.

        Returns:
            The call, whose clock is running.
        """
        scope = current_trace_context()
        seen, merged = self._merged  # one tuple read: safe against another thread's update
        if scope is not seen:
            merged = self.defaults.merged(scope)
            self._merged = (scope, merged)
        return TracedCall(self.recorder, merged, request, self.capture_text)

    @contextmanager
    def call(self, request: Mapping[str, Any]) -> Iterator[TracedCall]:
        """Start a call around the SDK request in the block; an exception there is recorded, then re-raised.

        Args:
            request: The call's keyword arguments.

        Returns:
            A context manager yielding the started call; the block's API error, timeout or
            cancellation fails it and propagates unchanged.
        """
        call = self.start(request)
        try:
            yield call
        except BaseException as exc:
            call.failed(exc)
            raise


# --------------------------------------------------------------------------- what a request says


@lru_cache(maxsize=256)
def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _part(item: Any, name: str) -> Any:
    """A field of a request part, whether the app passed a dict or an SDK model."""
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)


def _text_of(content: Any) -> str | None:
    """The text of a string or of a list of content blocks (text blocks only)."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(_part(block, "text") or "" for block in content if _part(block, "type") == "text")
    return None


def _last_user_message(messages: Any) -> str:
    """The text of the last user message, or "" (for text capture)."""
    if isinstance(messages, Sequence):
        for message in reversed(messages):
            if _part(message, "role") == "user":
                return _text_of(_part(message, "content")) or ""
    return ""


def _last_user_message_length(messages: Any) -> int | None:
    # Only real sequences: iterating a generator the SDK accepts would consume the request.
    if not isinstance(messages, Sequence):
        return None
    for message in reversed(messages):
        if _part(message, "role") == "user":
            text = _text_of(_part(message, "content"))
            return None if text is None else len(text)
    return None


def _system_prompt_hash(system: Any) -> str | None:
    text = _text_of(system)
    return _text_hash(text) if text else None


def _error_type(exc: BaseException) -> str:
    """The SDK's exception class; for the generic status error, the API's own error type.
    Cut to the field's 64 characters so that an odd name cannot cost the whole trace."""
    name = type(exc).__name__
    if name == "APIStatusError":
        api_type = getattr(exc, "type", None)
        if isinstance(api_type, str) and api_type:
            name = api_type
    return name[:64]
