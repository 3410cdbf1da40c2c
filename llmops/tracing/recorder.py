"""The bounded background writer between the app's calls and the store: ``TraceRecorder``.

A traced call hands its trace to a recorder and returns; a daemon thread validates the traces
and writes them in batches to a sink (by default the llmops store, ``store_sink``). The app's
call never waits on the store and never fails because of it: a full queue or a sink that keeps
raising drops traces, counts them in ``RecorderStats`` and logs one line per outage. It knows
nothing of the Anthropic SDK, so any producer of ``TraceRecord``s can use it.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from llmops.records import TraceRecord

__all__ = ["RecorderStats", "Sink", "TraceRecorder", "default_recorder", "store_sink"]

# Named after the package, not this module: apps and tests configure the "llmops.tracing" logger.
log = logging.getLogger("llmops.tracing")

Sink = Callable[[list[TraceRecord]], None]
"""Where batches of traces go: ``sink(records)``; raising means "not written, retry"."""


@dataclass(frozen=True, slots=True)
class RecorderStats:
    """Counters of a recorder. Once flushed: ``recorded == written + every dropped_*``.

    Example:
        >>> TraceRecorder([].extend).stats.recorded
        0
    """

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

    Args:
        sink: Takes each batch of validated records; ``None`` writes to the store (``store_sink``).
        max_queue: Records that may wait; more are dropped (``stats.dropped_queue_full``).
        batch_size: The most records handed to the sink at once.
        flush_interval: Seconds between the writer's wake-ups.
        retry_delays: Seconds to wait before each retry of a raising sink.

    Raises:
        ValueError: An option is out of range.

    Example:
        >>> from datetime import UTC, datetime
        >>> kept = []
        >>> with TraceRecorder(kept.extend) as recorder:
        ...     recorder.record({"trace_id": "t1", "timestamp": datetime.now(UTC), "model": "claude-3-5-haiku-latest"})
        >>> [record.trace_id for record in kept], recorder.stats.written
        (['t1'], 1)
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
        """Queue one trace for writing, without blocking or raising.

        Args:
            record: A ``TraceRecord``, or a mapping of its fields: a mapping is validated
                later, in the writer thread, so that the app's call does not pay for validation.

        Example:
            >>> from datetime import UTC, datetime
            >>> recorder = TraceRecorder([].extend)
            >>> recorder.record({"trace_id": "t1", "timestamp": datetime.now(UTC), "model": "claude-3-5-haiku-latest"})
            >>> recorder.close()
            True
        """
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
        """Wait until everything recorded so far is written or dropped.

        Args:
            timeout: Seconds to wait at most; ``None`` waits for as long as the sink takes.

        Returns:
            True when done, False on timeout (the records are still queued or being written).

        Example:
            >>> TraceRecorder([].extend).flush(timeout=1)
            True
        """
        with self._lock:
            if self._thread is None or self._closed:
                return self._thread is None or not self._thread.is_alive()
            marker = _Flush()
            self._queue.put(marker)
            self._wake.put(None)
        return marker.done.wait(timeout)

    def close(self, timeout: float | None = 5.0) -> bool:
        """Write what is queued, then stop the writer thread; later records are dropped and counted.

        Idempotent; it also runs at interpreter exit.

        Args:
            timeout: Seconds to wait for the sink at most.

        Returns:
            False if the sink did not finish within ``timeout`` (what is left is lost).

        Example:
            >>> TraceRecorder([].extend).close()
            True
        """
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
        """A snapshot of the counters (see ``RecorderStats``)."""
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
    """The default sink: write a batch to the llmops store.

    The store is ``LLMOPS_DATABASE_URL``, or SQLite in ``LLMOPS_HOME``. The store is imported on
    first use so that an app importing the tracing package does not load SQLAlchemy.

    Args:
        records: The validated traces of one batch; they are priced and inserted together.

    Example:
        ```python
        recorder = TraceRecorder(store_sink)  # the same as TraceRecorder()
        ```
    """
    from llmops.store import writer
    from llmops.store.engine import get_engine

    writer.write_traces(get_engine(), records)


_default_recorder: TraceRecorder | None = None
_default_recorder_lock = threading.Lock()


def default_recorder() -> TraceRecorder:
    """The process-wide recorder writing to the store, used when a client is given none.

    Returns:
        The same ``TraceRecorder`` on every call (made on the first), writing with ``store_sink``.

    Example:
        ```python
        client = trace_anthropic(anthropic.Anthropic())  # records through default_recorder()
        default_recorder().flush()  # e.g. before a short script exits
        ```
    """
    global _default_recorder
    with _default_recorder_lock:
        if _default_recorder is None:
            _default_recorder = TraceRecorder()
        return _default_recorder
