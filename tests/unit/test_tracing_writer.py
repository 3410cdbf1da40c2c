"""The trace recorder: a bounded background writer that never blocks or breaks the app."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from llmops.records import TraceRecord
from llmops.tracing import TraceRecorder

SECRET_URL = "postgresql://app:s3cret-pw@db.internal/llmops"


def trace(**overrides: Any) -> dict[str, Any]:
    """A trace as the tracing wrapper hands it to the recorder: an unvalidated dict."""
    return {
        "trace_id": f"msg_{uuid.uuid4().hex}",
        "timestamp": datetime.now(UTC),
        "model": "claude-3-5-sonnet-20241022",
        "input_tokens": 10,
        "output_tokens": 5,
        "latency_ms": 12.5,
        "status": "ok",
        **overrides,
    }


class ListSink:
    """Collects every batch it is given."""

    def __init__(self) -> None:
        self.batches: list[list[TraceRecord]] = []

    def __call__(self, records: list[TraceRecord]) -> None:
        self.batches.append(list(records))

    @property
    def records(self) -> list[TraceRecord]:
        return [record for batch in self.batches for record in batch]


class BrokenStore(Exception):
    """Stands for a database driver error whose message carries a connection URL."""


class FailingSink:
    """Raises ``failures`` times (forever when None), then accepts."""

    def __init__(self, failures: int | None = None) -> None:
        self.failures = failures
        self.calls = 0
        self.accepted: list[TraceRecord] = []

    def __call__(self, records: list[TraceRecord]) -> None:
        self.calls += 1
        if self.failures is None or self.calls <= self.failures:
            raise BrokenStore(f"could not connect to {SECRET_URL}")
        self.accepted.extend(records)


class BlockingSink:
    """Holds the writer thread inside the sink until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.records: list[TraceRecord] = []

    def __call__(self, records: list[TraceRecord]) -> None:
        self.entered.set()
        self.release.wait(10)
        self.records.extend(records)


@pytest.fixture
def recorders() -> Iterator[list[TraceRecorder]]:
    """Recorders made by a test, closed after it whatever happened."""
    made: list[TraceRecorder] = []
    yield made
    for recorder in made:
        recorder.close(timeout=5)


def test_records_reach_the_sink_validated_and_in_order(recorders: list[TraceRecorder]) -> None:
    sink = ListSink()
    recorder = TraceRecorder(sink)
    recorders.append(recorder)
    sent = [trace(input_tokens=i) for i in range(25)]
    for item in sent:
        recorder.record(item)

    assert recorder.flush(timeout=10)

    assert all(isinstance(record, TraceRecord) for record in sink.records)
    assert [record.trace_id for record in sink.records] == [item["trace_id"] for item in sent]
    stats = recorder.stats
    assert (stats.recorded, stats.written, stats.pending) == (25, 25, 0)


def test_a_trace_record_is_accepted_as_is(recorders: list[TraceRecorder]) -> None:
    sink = ListSink()
    recorder = TraceRecorder(sink)
    recorders.append(recorder)
    record = TraceRecord.model_validate(trace(feature="chat"))

    recorder.record(record)
    recorder.flush(timeout=10)

    assert sink.records == [record]


def test_batches_never_exceed_batch_size(recorders: list[TraceRecorder]) -> None:
    sink = BlockingSink()
    batches = ListSink()

    def sink_then_collect(records: list[TraceRecord]) -> None:
        sink(records)
        batches(records)

    recorder = TraceRecorder(sink_then_collect, batch_size=7, flush_interval=60)
    recorders.append(recorder)
    recorder.record(trace())
    threading.Thread(target=recorder.flush, daemon=True).start()  # hands the first record over now
    assert sink.entered.wait(10)
    for _ in range(30):  # queued while the writer is busy: drained in full batches
        recorder.record(trace())
    sink.release.set()
    recorder.flush(timeout=10)

    assert [len(batch) for batch in batches.batches] == [1, 7, 7, 7, 7, 2]


def test_a_full_queue_drops_new_records_without_blocking(
    recorders: list[TraceRecorder], caplog: pytest.LogCaptureFixture
) -> None:
    sink = BlockingSink()
    recorder = TraceRecorder(sink, max_queue=3)
    recorders.append(recorder)
    recorder.record(trace())
    assert sink.entered.wait(10)  # the writer holds one record; the queue is empty again

    for _ in range(10):
        recorder.record(trace())  # returns at once although the store is stuck

    assert recorder.stats.dropped_queue_full == 7
    assert recorder.stats.pending == 3
    with caplog.at_level(logging.WARNING, logger="llmops.tracing"):
        sink.release.set()
        assert recorder.flush(timeout=10)
    stats = recorder.stats
    assert (stats.recorded, stats.written, stats.dropped_queue_full) == (11, 4, 7)
    assert len(sink.records) == 4
    assert "queue is full" in caplog.text and "dropped 7 trace records" in caplog.text


def test_a_failing_sink_is_retried_then_the_batch_is_dropped_and_counted(
    recorders: list[TraceRecorder], caplog: pytest.LogCaptureFixture
) -> None:
    sink = FailingSink()
    recorder = TraceRecorder(sink, retry_delays=(0, 0))
    recorders.append(recorder)

    with caplog.at_level(logging.WARNING, logger="llmops.tracing"):
        for _ in range(4):
            recorder.record(trace())
        assert recorder.flush(timeout=10)

    assert sink.calls == 3  # one batch, three tries
    stats = recorder.stats
    assert (stats.recorded, stats.written, stats.dropped_sink_error) == (4, 0, 4)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "BrokenStore" in warnings[0].getMessage() and "dropped 4 trace records" in warnings[0].getMessage()


def test_sink_errors_are_logged_once_per_outage_without_secrets(
    recorders: list[TraceRecorder], caplog: pytest.LogCaptureFixture
) -> None:
    sink = FailingSink()
    recorder = TraceRecorder(sink, retry_delays=())
    recorders.append(recorder)

    with caplog.at_level(logging.DEBUG, logger="llmops.tracing"):
        for _ in range(3):  # three batches, each dropped
            recorder.record(trace(user_id="alice@example.com"))
            recorder.flush(timeout=10)
        sink.failures = 0  # the store is back
        recorder.record(trace())
        recorder.flush(timeout=10)

    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert "dropped 1 trace records" in messages[0]
    assert "recovered after 3 trace records were dropped" in messages[1]
    assert "s3cret" not in caplog.text and "alice" not in caplog.text
    assert recorder.stats.written == 1 and recorder.stats.dropped_sink_error == 3


def test_a_sink_that_recovers_within_the_retries_loses_nothing(recorders: list[TraceRecorder]) -> None:
    sink = FailingSink(failures=2)
    recorder = TraceRecorder(sink, retry_delays=(0, 0))
    recorders.append(recorder)
    for _ in range(5):
        recorder.record(trace())

    recorder.flush(timeout=10)

    assert len(sink.accepted) == 5
    assert recorder.stats.written == 5 and recorder.stats.dropped_sink_error == 0


def test_an_invalid_record_is_dropped_alone_and_its_values_are_not_logged(
    recorders: list[TraceRecorder], caplog: pytest.LogCaptureFixture
) -> None:
    sink = ListSink()
    recorder = TraceRecorder(sink)
    recorders.append(recorder)

    with caplog.at_level(logging.WARNING, logger="llmops.tracing"):
        recorder.record(trace())
        recorder.record(trace(input_tokens=-5, user_id="bob@example.com"))
        recorder.record(trace())
        recorder.flush(timeout=10)

    assert len(sink.records) == 2
    assert recorder.stats.dropped_invalid == 1
    assert "input_tokens" in caplog.text and "bob@example.com" not in caplog.text


def test_flush_reports_a_timeout_while_the_sink_is_stuck(recorders: list[TraceRecorder]) -> None:
    sink = BlockingSink()
    recorder = TraceRecorder(sink)
    recorders.append(recorder)
    recorder.record(trace())
    assert sink.entered.wait(10)

    assert recorder.flush(timeout=0.05) is False

    sink.release.set()
    assert recorder.flush(timeout=10) is True


def test_flush_without_records_returns_at_once() -> None:
    recorder = TraceRecorder(ListSink())
    assert recorder.flush(timeout=0) is True
    assert recorder.close() is True


def test_close_writes_what_is_queued_is_idempotent_and_later_records_are_counted(
    recorders: list[TraceRecorder],
) -> None:
    sink = ListSink()
    recorder = TraceRecorder(sink, flush_interval=60)
    recorders.append(recorder)
    for _ in range(3):
        recorder.record(trace())

    assert recorder.close(timeout=10) is True
    assert recorder.close(timeout=10) is True
    recorder.record(trace())

    assert len(sink.records) == 3
    stats = recorder.stats
    assert (stats.recorded, stats.written, stats.dropped_closed) == (4, 3, 1)
    assert recorder.flush(timeout=1) is True


def test_records_queued_at_interpreter_exit_are_written(tmp_path: Path) -> None:
    out = tmp_path / "written.txt"
    script = f"""
from datetime import UTC, datetime
from pathlib import Path
from llmops.tracing import TraceRecorder

def sink(records):
    with Path({str(out)!r}).open("a") as f:
        f.writelines(r.trace_id + "\\n" for r in records)

recorder = TraceRecorder(sink, flush_interval=60)
for i in range(3):
    recorder.record({{"trace_id": f"t{{i}}", "timestamp": datetime.now(UTC), "model": "m"}})
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)

    assert out.read_text().split() == ["t0", "t1", "t2"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_queue": 0}, "max_queue=0"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"flush_interval": 0}, "flush_interval=0"),
        ({"retry_delays": (1, -1)}, "negative"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TraceRecorder(ListSink(), **options)
