"""The Anthropic client wrapper: ``trace_anthropic``, and the traced client, messages and streams it hands out.

The app keeps using the official SDK (``client.messages.create``, ``stream=True``, the
``messages.stream`` helper, sync or async): ``TracedClient`` stands in for the client, runs
``create``, ``parse`` and ``stream`` through one ``TracedCall`` each and leaves everything else to
the client. Each wrapper has a sync and an async form; a common base holds what they do, and
they differ only where the SDK does (``for`` or ``async for``, ``await``, ``__aenter__``). We wrap
the client rather than consume the SDK's own OpenTelemetry spans because those carry neither
the app's context (feature, prompt version, user) nor the time to first token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, TypeVar, cast

from llmops import settings
from llmops.tracing.calls import TracedCall, Tracer
from llmops.tracing.context import TraceContext
from llmops.tracing.recorder import TraceRecorder, default_recorder

__all__ = ["TracedClient", "trace_anthropic"]


# --------------------------------------------------------------------------- streams

_NORMAL_ENDS = (StopIteration, StopAsyncIteration, GeneratorExit)
"""How iterating a stream stops without failing: the stream is over, or the app left the loop."""


class _TracedStreamBase:
    """The SDK's stream as the app sees it, reporting each event to its call; any other
    attribute is the SDK stream's. The sync and async forms below only iterate and close."""

    def __init__(self, stream: Any, call: TracedCall) -> None:
        self._stream = stream
        self._call = call

    def _interrupted(self, exc: BaseException) -> None:
        """An iteration step raised ``exc`` (the caller re-raises it): the stream's end or the app
        leaving the loop ends the call (abandoned is not an error); anything else fails it."""
        if isinstance(exc, _NORMAL_ENDS):
            self._call.ended()
        else:
            self._call.failed(exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __del__(self) -> None:
        # A stream dropped without being read to the end or closed is still one call.
        self._call.ended()


class _TracedStream(_TracedStreamBase):
    """The SDK's ``Stream``: ``for``, ``next()``, ``close()`` and ``with``."""

    def __iter__(self) -> Iterator[Any]:
        try:
            for event in self._stream:
                self._call.observe(event)
                yield event
        except BaseException as exc:
            self._interrupted(exc)
            raise
        self._call.ended()

    def __next__(self) -> Any:
        try:
            event = next(self._stream)
        except BaseException as exc:
            self._interrupted(exc)
            raise
        self._call.observe(event)
        return event

    def close(self) -> None:
        self._stream.close()
        self._call.ended()

    def __enter__(self) -> _TracedStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _TracedAsyncStream(_TracedStreamBase):
    """The SDK's ``AsyncStream``: ``async for``, ``anext()``, ``await close()`` and ``async with``."""

    async def __aiter__(self) -> AsyncIterator[Any]:
        try:
            async for event in self._stream:
                self._call.observe(event)
                yield event
        except BaseException as exc:
            self._interrupted(exc)
            raise
        self._call.ended()

    async def __anext__(self) -> Any:
        try:
            event = await self._stream.__anext__()
        except BaseException as exc:
            self._interrupted(exc)
            raise
        self._call.observe(event)
        return event

    async def close(self) -> None:
        await self._stream.close()
        self._call.ended()

    async def __aenter__(self) -> _TracedAsyncStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class _TracedStreamManagerBase:
    """``messages.stream(...)``: the call starts when the block is entered (a failure to enter
    is recorded), and every event of the ``MessageStream`` the block gets passes the call."""

    _stream_type: ClassVar[type[_TracedStreamBase]]

    def __init__(self, manager: Any, tracer: Tracer, request: Mapping[str, Any]) -> None:
        self._manager = manager
        self._tracer = tracer
        self._request = request

    def _traced(self, message_stream: Any, call: TracedCall) -> Any:
        # MessageStream reads its raw stream lazily, so every event now passes the call.
        message_stream._raw_stream = self._stream_type(message_stream._raw_stream, call)
        return message_stream


class _TracedStreamManager(_TracedStreamManagerBase):
    """``with messages.stream(...)``."""

    _stream_type = _TracedStream

    def __enter__(self) -> Any:
        with self._tracer.call(self._request) as call:
            message_stream = self._manager.__enter__()
        return self._traced(message_stream, call)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._manager.__exit__(exc_type, exc, tb)


class _TracedAsyncStreamManager(_TracedStreamManagerBase):
    """``async with messages.stream(...)``."""

    _stream_type = _TracedAsyncStream

    async def __aenter__(self) -> Any:
        with self._tracer.call(self._request) as call:
            message_stream = await self._manager.__aenter__()
        return self._traced(message_stream, call)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._manager.__aexit__(exc_type, exc, tb)


# --------------------------------------------------------------------------- resources and client


class _TracedMessagesBase:
    """``client.messages`` with ``create``, ``parse`` and ``stream`` traced; the rest untouched.
    The sync and async forms below only call the SDK (and await it)."""

    _stream_type: ClassVar[type[_TracedStreamBase]]
    _manager_type: ClassVar[type[_TracedStreamManagerBase]]

    def __init__(self, messages: Any, tracer: Tracer) -> None:
        self._messages = messages
        self._tracer = tracer

    def _returned(self, call: TracedCall, result: Any, request: Mapping[str, Any]) -> Any:
        """What ``create`` hands the app: a stream wrapped to report its events (the call ends
        with it), or the whole message, whose call ends now."""
        if request.get("stream"):
            return self._stream_type(result, call)
        call.completed(result)
        return result

    def stream(self, **kwargs: Any) -> Any:
        return self._manager_type(self._messages.stream(**kwargs), self._tracer, kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._messages, name)


class _TracedMessages(_TracedMessagesBase):
    """``client.messages`` of a sync client."""

    _stream_type = _TracedStream
    _manager_type = _TracedStreamManager

    def create(self, **kwargs: Any) -> Any:
        with self._tracer.call(kwargs) as call:
            result = self._messages.create(**kwargs)
        return self._returned(call, result, kwargs)

    def parse(self, **kwargs: Any) -> Any:
        with self._tracer.call(kwargs) as call:
            result = self._messages.parse(**kwargs)
        call.completed(result)
        return result


class _TracedAsyncMessages(_TracedMessagesBase):
    """``client.messages`` of an async client."""

    _stream_type = _TracedAsyncStream
    _manager_type = _TracedAsyncStreamManager

    async def create(self, **kwargs: Any) -> Any:
        with self._tracer.call(kwargs) as call:
            result = await self._messages.create(**kwargs)
        return self._returned(call, result, kwargs)

    async def parse(self, **kwargs: Any) -> Any:
        with self._tracer.call(kwargs) as call:
            result = await self._messages.parse(**kwargs)
        call.completed(result)
        return result


class TracedClient:
    """An Anthropic client whose message calls are traced; everything else is the client's.

    Made by ``trace_anthropic``, which returns it typed as the client it wraps. Copies made with
    ``with_options``, ``copy`` or ``with_middleware`` stay traced, with the same recorder and defaults.

    Args:
        client: An ``anthropic.Anthropic`` or ``anthropic.AsyncAnthropic`` (or a client with the same ``messages``).
        tracer: Its recorder and default context.

    Example:
        ```python
        client = trace_anthropic(anthropic.Anthropic(), feature="chat_response")
        assert isinstance(client, TracedClient)
        fast = client.with_options(timeout=10)  # still traced
        raw = client.wrapped_client  # calls through it are not
        ```
    """

    def __init__(self, client: Any, tracer: Tracer) -> None:
        self._client = client
        self._tracer = tracer
        from anthropic.resources import AsyncMessages  # the app has imported the SDK already

        messages = client.messages
        traced = _TracedAsyncMessages if isinstance(messages, AsyncMessages) else _TracedMessages
        self.messages = traced(messages, tracer)

    @property
    def wrapped_client(self) -> Any:
        """The untraced client underneath."""
        return self._client

    def with_options(self, **options: Any) -> Any:
        """The client's ``with_options(**options)``, traced like this one.

        Args:
            **options: As for the SDK (``timeout``, ``max_retries``...).

        Returns:
            A new ``TracedClient`` sharing this one's recorder and defaults.
        """
        return TracedClient(self._client.with_options(**options), self._tracer)

    def copy(self, **options: Any) -> Any:
        """The client's ``copy(**options)``, traced like this one.

        Args:
            **options: As for the SDK.

        Returns:
            A new ``TracedClient`` sharing this one's recorder and defaults.
        """
        return TracedClient(self._client.copy(**options), self._tracer)

    def with_middleware(self, *middleware: Any) -> Any:
        """The client's ``with_middleware(*middleware)``, traced like this one.

        Args:
            *middleware: As for the SDK.

        Returns:
            A new ``TracedClient`` sharing this one's recorder and defaults.
        """
        return TracedClient(self._client.with_middleware(*middleware), self._tracer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def __enter__(self) -> Any:
        self._client.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._client.__exit__(*exc_info)

    async def __aenter__(self) -> Any:
        await self._client.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._client.__aexit__(*exc_info)

    def __repr__(self) -> str:
        return f"TracedClient({self._client!r})"


ClientT = TypeVar("ClientT")


def trace_anthropic(
    client: ClientT,
    *,
    recorder: TraceRecorder | None = None,
    feature: str | None = None,
    prompt_name: str | None = None,
    prompt_version: str | None = None,
    environment: str | None = None,
    tags: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
    capture_text: bool | None = None,
) -> ClientT:
    """Wrap an Anthropic client (sync or async) so that every ``messages`` call is recorded as one trace.

    Wrap once, where the client is made, and use the result as the client. ``create`` (plain or
    ``stream=True``), ``parse`` and the ``messages.stream(...)`` helper are measured: latency
    including the SDK's retries, time to first token, usage with cache tokens, stop reason, and
    the error type of a failed call (the exception still reaches the app unchanged). Traces are
    written in the background; the call never waits on the store and never fails because of it.
    Prompt and answer text are not recorded unless text capture is on; the store then keeps them
    redacted and cut to ``LLMOPS_CAPTURE_TEXT_MAX_CHARS``.

    Args:
        client: An ``anthropic.Anthropic`` or ``anthropic.AsyncAnthropic``, not already traced.
        recorder: Where traces go; ``None`` uses ``default_recorder()``, which writes to the store.
        feature: Default product feature of every trace from this client.
        prompt_name: Default prompt name.
        prompt_version: Default prompt version.
        environment: Default environment (``"production"`` when unset everywhere).
        tags: Tags of every trace; ``trace_context`` adds more.
        metadata: Metadata of every trace; ``trace_context`` overrides keys.
        capture_text: Keep the last user message and the answer's text with each trace. None
            follows ``LLMOPS_CAPTURE_TEXT`` (off by default); False keeps this client's text out
            even when it is on. The store keeps text only while ``LLMOPS_CAPTURE_TEXT=1``.

    Returns:
        A ``TracedClient`` standing in for ``client`` (typed as ``client`` for the app's type checker).

    Raises:
        TypeError: ``client`` is already traced, has no ``messages``, or ``tags`` is a string.

    Example:
        A support bot: the client's defaults, and per request who it served (``trace_context``
        overrides the defaults within its block):

        ```python
        import anthropic
        from llmops.tracing import trace_anthropic, trace_context

        client = trace_anthropic(
            anthropic.Anthropic(), feature="chat_response", prompt_name="support-chat", prompt_version="2.3.1"
        )
        with trace_context(user_id="u-42", session_id="s-7"):
            reply = client.messages.create(model="claude-3-5-sonnet-20241022", max_tokens=512, messages=messages)
        ```

        Async and streaming calls are traced the same way; here into memory instead of the store:

        ```python
        from llmops.tracing import TraceRecorder

        traces = []
        recorder = TraceRecorder(traces.extend)
        client = trace_anthropic(anthropic.AsyncAnthropic(), recorder=recorder, feature="chat_response")
        async with client.messages.stream(model="claude-3-5-sonnet-20241022", max_tokens=512, messages=messages) as stream:
            answer = await stream.get_final_text()
        recorder.flush()  # traces[0].ttft_ms, traces[0].output_tokens...
        ```
    """
    if isinstance(client, TracedClient):
        raise TypeError("trace_anthropic: this client is already traced; wrap the original client once")
    if not hasattr(client, "messages"):
        raise TypeError(f"trace_anthropic expects an anthropic.Anthropic or AsyncAnthropic client, got {type(client).__name__}")
    if isinstance(tags, str):
        raise TypeError(f"trace_anthropic(tags=...) takes a list of tags, not the string {tags!r}")
    defaults = TraceContext(
        feature=feature,
        prompt_name=prompt_name,
        prompt_version=prompt_version,
        environment=environment,
        tags=tuple(tags),
        metadata=dict(metadata or {}),
    )
    capture = settings.capture_text() if capture_text is None else capture_text
    limit = settings.capture_text_max_chars() + 64 if capture else 0  # the store redacts, then cuts to the limit
    traced = TracedClient(client, Tracer(recorder if recorder is not None else default_recorder(), defaults, limit))
    return cast(ClientT, traced)  # it stands in for the client: same attributes, traced messages
