"""File import: stream a trace file through the readers into the store, batch by batch.

Rejected lines go to ``<file>.rejects.jsonl`` as they are found, so a file of any size
needs memory for one batch only, and a crash never loses what was already committed.
"""

from __future__ import annotations

import gc
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine

from llmops.ingest.files import read_traces
from llmops.ingest.rejections import Rejection, rejection_to_json
from llmops.store.writer import WriteResult, write_traces

DEFAULT_BATCH_SIZE = 5_000
T = TypeVar("T")


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a bulk load.

    Records hold no reference cycles, so reference counting frees every batch; but with tens
    of thousands of live objects per batch the cyclic collector keeps re-scanning them and
    triples the cost of validation (measured: 27 → 8.5 µs per line).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_DONE = object()


def read_ahead(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Produce ``items`` in a background thread, up to ``depth`` ahead of the consumer.

    The database drivers release the GIL while they execute, so parsing and validating the
    next batch overlaps with writing the current one. Errors reach the consumer in order; a
    consumer that stops early stops the producer.
    """
    buffer: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            buffer.put(exc)

    producer = threading.Thread(target=produce, name="llmops-read-ahead", daemon=True)
    producer.start()
    try:
        while (item := buffer.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        producer.join()


@dataclass
class ImportReport:
    """What one file import did."""

    path: Path
    written: WriteResult = field(default_factory=WriteResult)
    rejected: int = 0
    skipped: int = 0
    rejects_path: Path | None = None
    first_rejections: list[Rejection] = field(default_factory=list)

    def summary(self) -> str:
        return f"imported {self.written.inserted}, duplicates {self.written.duplicates}, rejected {self.rejected}"

    def notes(self) -> list[str]:
        """Counts worth a line of their own, when they are not zero."""
        notes = []
        if self.written.unpriced:
            notes.append(f"{self.written.unpriced} with a model genai-prices does not know: stored unpriced")
        if self.skipped:
            notes.append(f"{self.skipped} spans skipped: not LLM calls")
        return notes


def rejects_path_for(path: Path) -> Path:
    return path.with_name(path.name + ".rejects.jsonl")


def import_file(
    engine: Engine,
    path: Path,
    fmt: str | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    keep_rejections: int = 20,
    on_batch: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Import one file; rejected lines are reported, never fatal.

    Raises ValueError for a problem with the whole file (unknown format, missing CSV columns).
    """
    report = ImportReport(path=path)
    rejects_path = rejects_path_for(path)
    rejects_path.unlink(missing_ok=True)
    with ExitStack() as stack:
        reader = stack.enter_context(read_traces(path, fmt))  # type: ignore[arg-type]
        stack.enter_context(cyclic_gc_paused())
        rejects_file = None
        for records, rejections in read_ahead(reader.batches(batch_size)):
            if records:
                report.written += write_traces(engine, records)
            if rejections:
                if rejects_file is None:
                    rejects_file = stack.enter_context(rejects_path.open("wb"))
                    report.rejects_path = rejects_path
                for rejection in rejections:
                    rejects_file.write(rejection_to_json(rejection))
                report.rejected += len(rejections)
                room = keep_rejections - len(report.first_rejections)
                report.first_rejections.extend(rejections[: max(room, 0)])
            report.skipped = reader.skipped
            if on_batch is not None:
                on_batch(report)
    return report
