"""Application-side tracing: wrap an Anthropic client once, and every call becomes a trace.

The app keeps using the official SDK (``client.messages.create``, ``stream=True``, the
``messages.stream`` helper, sync or async); each call is measured (latency including the
SDK's retries, time to first token, usage, stop reason, error type) and tagged with who and
what it served (feature, prompt version, user, session), then handed to a ``TraceRecorder``
that writes in the background. The app's call never waits on the store and never fails
because of it. Prompt and answer text are not recorded.

We wrap the client rather than consume the SDK's own OpenTelemetry spans because those carry
neither the app's context (feature, prompt version, user) nor the time to first token.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast
from uuid import uuid4

from pydantic import ValidationError

from llmops.records import TraceRecord

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

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

log = logging.getLogger(__name__)

Sink = Callable[[list[TraceRecord]], None]
"""Where batches of traces go: ``sink(records)``; raising means "not written, retry"."""


# --------------------------------------------------------------------------- context


@dataclass(frozen=True, slots=True)
class TraceContext:
    """What a call served and for whom; unset fields (None) inherit from the enclosing scope."""

    feature: str | None = None
    prompt_name: str | None = None
    prompt_version: str | None = None
    environment: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def merged(self, inner: TraceContext) -> TraceContext:
        """``inner`` wins field by field; tags accumulate, metadata keys are overridden."""
        if inner is _EMPTY_CONTEXT:
            return self
        return TraceContext(
            feature=inner.feature if inner.feature is not None else self.feature,
            prompt_name=inner.prompt_name if inner.prompt_name is not None else self.prompt_name,
            prompt_version=inner.prompt_version if inner.prompt_version is not None else self.prompt_version,
            environment=inner.environment if inner.environment is not None else self.environment,
            user_id=inner.user_id if inner.user_id is not None else self.user_id,
            session_id=inner.session_id if inner.session_id is not None else self.session_id,
            tags=tuple(dict.fromkeys((*self.tags, *inner.tags))),
            metadata={**self.metadata, **inner.metadata},
        )


_EMPTY_CONTEXT = TraceContext()
_CURRENT_CONTEXT: ContextVar[TraceContext] = ContextVar("llmops_trace_context", default=_EMPTY_CONTEXT)


def current_trace_context() -> TraceContext:
    """The context that a call made here and now would be tagged with (besides client defaults)."""
    return _CURRENT_CONTEXT.get()


@contextmanager
def trace_context(
    *,
    feature: str | None = None,
    prompt_name: str | None = None,
    prompt_version: str | None = None,
    environment: str | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    tags: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> Iterator[TraceContext]:
    """Tag every traced call inside the block; overrides the client's defaults, nests, and
    follows asyncio tasks (it is a ``ContextVar``; new threads start without it)."""
    if isinstance(tags, str):
        raise TypeError(f"trace_context(tags=...) takes a list of tags, not the string {tags!r}")
    scope = _CURRENT_CONTEXT.get().merged(
        TraceContext(
            feature=feature,
            prompt_name=prompt_name,
            prompt_version=prompt_version,
            environment=environment,
            user_id=user_id,
            session_id=session_id,
            tags=tuple(tags),
            metadata=dict(metadata or {}),
        )
    )
    token = _CURRENT_CONTEXT.set(scope)
    try:
        yield scope
    finally:
        _CURRENT_CONTEXT.reset(token)


# --------------------------------------------------------------------------- recorder


@dataclass(frozen=True, slots=True)
class RecorderStats:
    """Counters of a recorder. Once flushed: ``recorded == written + every dropped_*``."""

    recorded: int
    """Calls to ``record()``."""
    written: int
    """Handed to the sink, which returned without raising."""
    dropped_queue_full: int
    """Refused because the queue was full (the store is slower than the app)."""
    dropped_sink_error: int
    """Given up after the sink kept raising."""
    dropped_invalid: int
    """Failed ``TraceRecord`` validation in the writer thread."""
    dropped_closed: int
    """Recorded after ``close()``."""
    pending: int
    """Waiting in the queue now."""


class _Flush:
    """Queue marker: set once everything queued before it is written or dropped."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()
"""Queue marker: write what is before it, then end the writer thread."""


class _LossReport:
    """Warns once when records start being lost, and once with the total when it stops,
    so an outage produces two log lines instead of one per batch."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._lost = 0

    def lost(self, count: int, reason: str) -> None:
        if self._lost == 0:
            log.warning(
                "llmops tracing: %s; dropped %d trace records; further losses are counted in "
                "recorder.stats and reported when it recovers",
                reason,
                count,
            )
        self._lost += count

    def recovered(self) -> None:
        if self._lost:
            log.warning("llmops tracing: %s recovered after %d trace records were dropped", self._what, self._lost)
            self._lost = 0


_LIVE_RECORDERS: weakref.WeakSet[TraceRecorder] = weakref.WeakSet()


class TraceRecorder:
    """A bounded background batch writer between the app's calls and a sink (the store).

    ``record()`` never blocks and never raises: a full queue drops the record and counts it.
    A daemon thread, started on the first record, wakes every ``flush_interval`` seconds (or
    as soon as ``batch_size`` records wait) and hands the sink what is queued, in batches of
    up to ``batch_size``; a raising sink is retried after each of ``retry_delays`` and then the
    batch is dropped and counted. ``close()`` runs at interpreter exit.

    The writer does not wake per record: a wake-up takes the GIL from the app while it waits
    on the network. The queues are ``SimpleQueue`` and the lock reentrant because a trace can
    be recorded from a garbage-collected stream's finalizer, i.e. inside another ``record()``.
    """

    def __init__(
        self,
        sink: Sink | None = None,
        *,
        max_queue: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        retry_delays: Sequence[float] = (0.5, 1.5),
    ) -> None:
        if max_queue < 1:
            raise ValueError(f"TraceRecorder(max_queue={max_queue}) must be at least 1")
        if batch_size < 1:
            raise ValueError(f"TraceRecorder(batch_size={batch_size}) must be at least 1")
        if flush_interval <= 0:
            raise ValueError(f"TraceRecorder(flush_interval={flush_interval}) must be a positive number of seconds")
        if any(delay < 0 for delay in retry_delays):
            raise ValueError(f"TraceRecorder(retry_delays={tuple(retry_delays)}) must not contain negative delays")
        self._sink: Sink = sink if sink is not None else store_sink
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._retry_delays = tuple(retry_delays)
        self._sink_losses = _LossReport("the trace sink")
        self._overflow_losses = _LossReport("the trace queue")
        self._invalid_reported = False
        self._recorded = 0
        self._written = 0
        self._dropped_queue_full = 0
        self._dropped_sink_error = 0
        self._dropped_invalid = 0
        self._dropped_closed = 0
        self._overflow_seen = 0
        self._closed = False
        self._reset_queue()
        _LIVE_RECORDERS.add(self)
        atexit.register(self.close)

    def _reset_queue(self) -> None:
        self._lock = threading.RLock()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._wake: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._pending = 0
        self._thread: threading.Thread | None = None

    def record(self, record: TraceRecord | Mapping[str, Any]) -> None:
        """Queue one trace for writing; a mapping is validated as a ``TraceRecord`` later, in
        the writer thread, so that the app's call does not pay for validation."""
        with self._lock:
            self._recorded += 1
            if self._closed:
                self._dropped_closed += 1
                return
            if self._pending >= self._max_queue:
                self._dropped_queue_full += 1
                return
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="llmops-trace-writer", daemon=True)
                self._thread.start()
            self._queue.put(record)
            if self._pending == self._batch_size:
                self._wake.put(None)

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until everything recorded so far is written or dropped; False on timeout."""
        with self._lock:
            if self._thread is None or self._closed:
                return self._thread is None or not self._thread.is_alive()
            marker = _Flush()
            self._queue.put(marker)
            self._wake.put(None)
        return marker.done.wait(timeout)

    def close(self, timeout: float | None = 5.0) -> bool:
        """Write what is queued, then stop the writer thread; later records are dropped.
        False if the sink did not finish within ``timeout`` (what is left is lost)."""
        with self._lock:
            if self._closed:
                thread = self._thread
                return thread is None or not thread.is_alive()
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._queue.put(_STOP)
                self._wake.put(None)
        atexit.unregister(self.close)
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    @property
    def stats(self) -> RecorderStats:
        """A snapshot of the counters."""
        with self._lock:
            return RecorderStats(
                recorded=self._recorded,
                written=self._written,
                dropped_queue_full=self._dropped_queue_full,
                dropped_sink_error=self._dropped_sink_error,
                dropped_invalid=self._dropped_invalid,
                dropped_closed=self._dropped_closed,
                pending=self._pending,
            )

    def __enter__(self) -> TraceRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writer thread

    def _run(self) -> None:
        while True:
            try:
                self._wake.get(timeout=self._flush_interval)
            except queue.Empty:
                pass
            stopping = self._drain()
            self._report_overflow()
            if stopping:
                return

    def _drain(self) -> bool:
        """Write everything queued now, in order; answer flushes; True once told to stop."""
        batch: list[Any] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                self._write(batch)
                return True
            if isinstance(item, _Flush):
                self._write(batch)
                batch = []
                item.done.set()
                continue
            batch.append(item)
            if len(batch) >= self._batch_size:
                self._write(batch)
                batch = []
        self._write(batch)
        return False

    def _write(self, batch: list[Any]) -> None:
        if not batch:
            return
        with self._lock:
            self._pending -= len(batch)
        records = self._validated(batch)
        if not records:
            return
        failure = ""
        for delay in (*self._retry_delays, None):
            try:
                self._sink(records)
            except Exception as exc:  # the sink is the app's or the store's: any failure is retried
                failure = type(exc).__name__
                if delay is not None:
                    time.sleep(delay)
                continue
            with self._lock:
                self._written += len(records)
            self._sink_losses.recovered()
            return
        with self._lock:
            self._dropped_sink_error += len(records)
        attempts = len(self._retry_delays) + 1
        self._sink_losses.lost(len(records), f"the trace sink raised {failure} {attempts} times in a row")

    def _validated(self, batch: list[Any]) -> list[TraceRecord]:
        records: list[TraceRecord] = []
        invalid_fields: set[str] = set()
        for item in batch:
            if isinstance(item, TraceRecord):
                records.append(item)
                continue
            try:
                records.append(TraceRecord.model_validate(item))
            except ValidationError as exc:
                invalid_fields.update(str(error["loc"][0]) for error in exc.errors() if error["loc"])
        invalid = len(batch) - len(records)
        if invalid:
            with self._lock:
                self._dropped_invalid += invalid
            if not self._invalid_reported:
                # Field names only: values may hold user ids or metadata.
                log.warning(
                    "llmops tracing: dropped %d trace records that are not valid TraceRecords (fields: %s); "
                    "later ones are only counted in recorder.stats",
                    invalid,
                    ", ".join(sorted(invalid_fields)) or "?",
                )
                self._invalid_reported = True
        return records

    def _report_overflow(self) -> None:
        overflow = self._dropped_queue_full
        if overflow > self._overflow_seen:
            self._overflow_losses.lost(overflow - self._overflow_seen, f"the trace queue is full ({self._max_queue} records)")
        else:
            self._overflow_losses.recovered()
        self._overflow_seen = overflow


def _reset_recorders_after_fork() -> None:
    """A forked child has no writer thread: start afresh; the parent writes what it queued."""
    for recorder in list(_LIVE_RECORDERS):
        recorder._reset_queue()


os.register_at_fork(after_in_child=_reset_recorders_after_fork)


def store_sink(records: list[TraceRecord]) -> None:
    """The default sink: the llmops store (``LLMOPS_DATABASE_URL`` or SQLite in ``LLMOPS_HOME``).
    Imported on first use so that an app importing the tracing module does not load SQLAlchemy."""
    from llmops.store import writer
    from llmops.store.engine import get_engine

    writer.write_traces(get_engine(), records)


_default_recorder: TraceRecorder | None = None
_default_recorder_lock = threading.Lock()


def default_recorder() -> TraceRecorder:
    """The process-wide recorder writing to the store, used when a client is given none."""
    global _default_recorder
    with _default_recorder_lock:
        if _default_recorder is None:
            _default_recorder = TraceRecorder()
        return _default_recorder


# --------------------------------------------------------------------------- one call


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


_USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


class _Call:
    """One API call being measured; turns into exactly one trace however it ends."""

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
    )

    def __init__(self, recorder: TraceRecorder, context: TraceContext, request: Mapping[str, Any]) -> None:
        self._recorder = recorder
        self._context = context
        self._model = request.get("model")
        self._user_message_length = _last_user_message_length(request.get("messages"))
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
        """A whole message came back (non-streaming call)."""
        self._trace_id = getattr(message, "id", None)
        self._response_model = getattr(message, "model", None)
        self._finish_reason = getattr(message, "stop_reason", None)
        self._take_usage(getattr(message, "usage", None))
        self.ended()

    def observe(self, event: Any) -> None:
        """One raw stream event: the message id and usage come first, the stop reason last."""
        kind = getattr(event, "type", None)
        if kind == "content_block_delta":
            if self._ttft_ms is None:
                self._ttft_ms = (time.perf_counter() - self._started) * 1000.0
        elif kind == "message_start":
            message = event.message
            self._trace_id = message.id
            self._response_model = message.model
            self._take_usage(message.usage)
        elif kind == "message_delta":
            self._finish_reason = event.delta.stop_reason
            self._take_usage(event.usage)

    def failed(self, exc: BaseException) -> None:
        self.ended(error=exc)

    def ended(self, error: BaseException | None = None) -> None:
        """Record the trace: when the response is complete, the stream is over or abandoned,
        or the call failed. Only the first end counts."""
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
        self._recorder.record(record)


class _Tracer:
    """A wrapped client's recorder and default context, shared by its ``with_options`` copies."""

    __slots__ = ("recorder", "defaults", "_merged")

    def __init__(self, recorder: TraceRecorder, defaults: TraceContext) -> None:
        self.recorder = recorder
        self.defaults = defaults
        self._merged = (_EMPTY_CONTEXT, defaults)

    def start(self, request: Mapping[str, Any]) -> _Call:
        scope = _CURRENT_CONTEXT.get()
        seen, merged = self._merged  # one tuple read: safe against another thread's update
        if scope is not seen:
            merged = self.defaults.merged(scope)
            self._merged = (scope, merged)
        return _Call(self.recorder, merged, request)


# --------------------------------------------------------------------------- streams


class _TracedStream:
    """The SDK's ``Stream`` as the app sees it, reporting each event to its call."""

    def __init__(self, stream: Any, call: _Call) -> None:
        self._stream = stream
        self._call = call

    def __iter__(self) -> Iterator[Any]:
        try:
            for event in self._stream:
                self._call.observe(event)
                yield event
        except GeneratorExit:  # the app stopped iterating: recorded as abandoned, below
            raise
        except BaseException as exc:
            self._call.failed(exc)
            raise
        finally:
            self._call.ended()

    def __next__(self) -> Any:
        try:
            event = next(self._stream)
        except StopIteration:
            self._call.ended()
            raise
        except BaseException as exc:
            self._call.failed(exc)
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

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __del__(self) -> None:
        # A stream dropped without being read to the end or closed is still one call.
        self._call.ended()


class _TracedAsyncStream:
    """The SDK's ``AsyncStream`` as the app sees it, reporting each event to its call."""

    def __init__(self, stream: Any, call: _Call) -> None:
        self._stream = stream
        self._call = call

    async def __aiter__(self) -> AsyncIterator[Any]:
        try:
            async for event in self._stream:
                self._call.observe(event)
                yield event
        except GeneratorExit:  # the app stopped iterating: recorded as abandoned, below
            raise
        except BaseException as exc:
            self._call.failed(exc)
            raise
        finally:
            self._call.ended()

    async def __anext__(self) -> Any:
        try:
            event = await self._stream.__anext__()
        except StopAsyncIteration:
            self._call.ended()
            raise
        except BaseException as exc:
            self._call.failed(exc)
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

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __del__(self) -> None:
        self._call.ended()


class _TracedStreamManager:
    """``messages.stream(...)``: the call starts when the ``with`` block is entered."""

    def __init__(self, manager: Any, start: Callable[[], _Call]) -> None:
        self._manager = manager
        self._start = start

    def __enter__(self) -> Any:
        call = self._start()
        try:
            message_stream = self._manager.__enter__()
        except BaseException as exc:
            call.failed(exc)
            raise
        # MessageStream reads its raw stream lazily, so every event now passes the call.
        message_stream._raw_stream = _TracedStream(message_stream._raw_stream, call)
        return message_stream

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._manager.__exit__(exc_type, exc, tb)


class _TracedAsyncStreamManager:
    """``async with messages.stream(...)``: the call starts when the block is entered."""

    def __init__(self, manager: Any, start: Callable[[], _Call]) -> None:
        self._manager = manager
        self._start = start

    async def __aenter__(self) -> Any:
        call = self._start()
        try:
            message_stream = await self._manager.__aenter__()
        except BaseException as exc:
            call.failed(exc)
            raise
        message_stream._raw_stream = _TracedAsyncStream(message_stream._raw_stream, call)
        return message_stream

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._manager.__aexit__(exc_type, exc, tb)


# --------------------------------------------------------------------------- resources and client


@contextmanager
def _recorded_call(tracer: _Tracer, request: Mapping[str, Any]) -> Iterator[_Call]:
    """One traced call: an exception (API error, timeout, cancellation) is recorded, then re-raised."""
    call = tracer.start(request)
    try:
        yield call
    except BaseException as exc:
        call.failed(exc)
        raise


class _TracedMessages:
    """``client.messages`` with ``create``, ``parse`` and ``stream`` traced; the rest untouched."""

    def __init__(self, messages: Any, tracer: _Tracer) -> None:
        self._messages = messages
        self._tracer = tracer

    def create(self, **kwargs: Any) -> Any:
        with _recorded_call(self._tracer, kwargs) as call:
            result = self._messages.create(**kwargs)
        if kwargs.get("stream"):
            return _TracedStream(result, call)
        call.completed(result)
        return result

    def parse(self, **kwargs: Any) -> Any:
        with _recorded_call(self._tracer, kwargs) as call:
            result = self._messages.parse(**kwargs)
        call.completed(result)
        return result

    def stream(self, **kwargs: Any) -> Any:
        return _TracedStreamManager(self._messages.stream(**kwargs), lambda: self._tracer.start(kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._messages, name)


class _TracedAsyncMessages:
    """``client.messages`` of an async client, traced like ``_TracedMessages``."""

    def __init__(self, messages: Any, tracer: _Tracer) -> None:
        self._messages = messages
        self._tracer = tracer

    async def create(self, **kwargs: Any) -> Any:
        with _recorded_call(self._tracer, kwargs) as call:
            result = await self._messages.create(**kwargs)
        if kwargs.get("stream"):
            return _TracedAsyncStream(result, call)
        call.completed(result)
        return result

    async def parse(self, **kwargs: Any) -> Any:
        with _recorded_call(self._tracer, kwargs) as call:
            result = await self._messages.parse(**kwargs)
        call.completed(result)
        return result

    def stream(self, **kwargs: Any) -> Any:
        return _TracedAsyncStreamManager(self._messages.stream(**kwargs), lambda: self._tracer.start(kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._messages, name)


class TracedClient:
    """An Anthropic client whose message calls are traced; everything else is the client's."""

    def __init__(self, client: Any, tracer: _Tracer) -> None:
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
        return TracedClient(self._client.with_options(**options), self._tracer)

    def copy(self, **options: Any) -> Any:
        return TracedClient(self._client.copy(**options), self._tracer)

    def with_middleware(self, *middleware: Any) -> Any:
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
) -> ClientT:
    """Wrap ``client`` (sync or async) so that every ``messages`` call is recorded as one trace.

    The keyword arguments are the defaults of every trace from this client; ``trace_context``
    overrides them per block. Without ``recorder``, traces go to the store via
    ``default_recorder()``.
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
    traced = TracedClient(client, _Tracer(recorder if recorder is not None else default_recorder(), defaults))
    return cast(ClientT, traced)  # it stands in for the client: same attributes, traced messages
