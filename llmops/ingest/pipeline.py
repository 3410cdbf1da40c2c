"""File import: stream a trace file through the readers into the store, batch by batch.

Rejected lines go to ``<file>.rejects.jsonl`` as they are found, so a file of any size needs
memory for a few batches only, and a crash never loses what was already committed.

Large JSONL files are imported by worker processes, each validating, pricing and writing its
own batches: preparation is pure Python that holds the GIL, so only other processes can run
it alongside the database's work. Writes take turns on one lock; every batch is still its own
transaction, and rejections are reported in file order.
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from llmops import privacy, settings
from llmops.ingest.files import DEFAULT_BATCH_SIZE, open_binary, parse_jsonl_lines, read_traces
from llmops.ingest.rejections import Rejection, rejection_to_json, sort_out
from llmops.records import TraceRecord
from llmops.store.engine import get_engine
from llmops.store.writer import WriteResult, prepare, write_prepared, write_traces

PARALLEL_MIN_BYTES = 8 * 1024 * 1024  # below this, starting a worker costs more than it saves
MAX_WORKERS = 4


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


@dataclass
class ImportReport:
    """What one file import did."""

    path: Path
    written: WriteResult = field(default_factory=WriteResult)
    """Inserted, duplicate and unpriced counts and cost, over all batches."""
    rejected: int = 0
    skipped: int = 0
    """OTel spans that were not LLM calls."""
    workers: int = 0
    """Worker processes used (0: imported in this process)."""
    rejects_path: Path | None = None
    """``<file>.rejects.jsonl``, when anything was rejected."""
    first_rejections: list[Rejection] = field(default_factory=list)
    """The first few rejections, to show; all of them are in ``rejects_path``."""

    def summary(self) -> str:
        """One line: imported, duplicates, rejected."""
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
    """Where the rejected lines of ``path`` are written: ``<file>.rejects.jsonl`` beside it.

    Example:
        >>> rejects_path_for(Path("exports/calls.csv")).name
        'calls.csv.rejects.jsonl'
    """
    return path.with_name(path.name + ".rejects.jsonl")


def default_workers(path: Path, fmt: str | None) -> int:
    """Worker processes for ``path``: none for small files, other formats, or one core.

    Args:
        path: The file to import.
        fmt: Its format, or None to go by its name.

    Returns:
        0 (import here), or up to ``MAX_WORKERS`` for a JSONL file of ``PARALLEL_MIN_BYTES`` or more.
    """
    cores = os.cpu_count() or 1
    is_jsonl = (fmt or "").lower() == "jsonl" or (fmt is None and ".jsonl" in path.name.lower())
    if not is_jsonl or cores < 2 or path.stat().st_size < PARALLEL_MIN_BYTES:
        return 0
    return min(cores, MAX_WORKERS)


_write_lock: Any = None


def _init_worker(write_lock: Any) -> None:
    global _write_lock
    _write_lock = write_lock
    gc.disable()  # see cyclic_gc_paused; a worker only ever imports batches


def import_jsonl_chunk(
    database_url: str, lines: list[bytes], source: str, first_line: int, timezone: str
) -> tuple[WriteResult, list[Rejection]]:
    """Validate, prepare and write one chunk of JSONL lines (runs in a worker process).

    Preparing runs in parallel across workers; writing takes the shared lock, so writers
    queue on it and wake at once instead of polling SQLite's busy timeout.

    Args:
        database_url: The store's URL (engines do not cross processes).
        lines: The chunk's raw lines.
        source: The file's name, for rejections.
        first_line: The number of the chunk's first line.
        timezone: The rollup timezone, as the main process read it.

    Returns:
        The chunk's write result and its rejections.
    """
    engine = get_engine(database_url)
    records: list[TraceRecord] = []
    rejections: list[Rejection] = []
    for item in parse_jsonl_lines(lines, source, first_line):
        sort_out(item, records, rejections)
    batch = prepare(records, sqlite_times=engine.dialect.name == "sqlite", timezone=timezone)
    with _write_lock:
        return write_prepared(engine, batch), rejections


def _imported_in_workers(
    engine: Engine, path: Path, batch_size: int, workers: int
) -> Iterator[tuple[WriteResult, list[Rejection]]]:
    """Chunks of the file imported by ``workers`` processes; results in file order, a few in flight."""
    timezone = settings.timezone().key
    privacy.user_id_salt()  # warns here, once, rather than in every worker
    database_url = engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
    if os.name == "posix":
        context.set_forkserver_preload([__name__])  # workers fork with pydantic, SQLAlchemy… imported
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(context.Lock(),))
    with pool, open_binary(path) as stream:
        in_flight: deque[Future[tuple[WriteResult, list[Rejection]]]] = deque()
        first_line = 1
        while chunk := list(itertools.islice(stream, batch_size)):
            in_flight.append(pool.submit(import_jsonl_chunk, database_url, chunk, str(path), first_line, timezone))
            first_line += len(chunk)
            if len(in_flight) > 2 * workers:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()


def _imported_here(
    engine: Engine, path: Path, fmt: str | None, batch_size: int, report: ImportReport
) -> Iterator[tuple[WriteResult, list[Rejection]]]:
    with read_traces(path, fmt) as reader:
        for records, rejections in reader.batches(batch_size):
            report.skipped = reader.skipped
            yield write_traces(engine, records), rejections


def import_file(
    engine: Engine,
    path: Path,
    fmt: str | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int | None = None,
    keep_rejections: int = 20,
    on_batch: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Import one file; rejected lines are reported, never fatal.

    Each batch commits on its own, so a crash keeps what was written; importing the same file
    again only counts duplicates. Rejected lines go to ``<file>.rejects.jsonl`` as they are found.

    Args:
        engine: The store.
        path: The trace file (JSONL, CSV or OTLP/JSON, optionally gzipped).
        fmt: Its format; None decides by its name.
        batch_size: Records per write transaction.
        workers: Processes that import JSONL batches; None decides by file size and cores.
        keep_rejections: How many rejections the report keeps to show.
        on_batch: Called with the report after every batch (progress).

    Returns:
        The counts, the rejects file and the first rejections.

    Raises:
        ValueError: A problem with the whole file (unknown format, missing CSV columns).
        RollupTimezoneMismatch: ``LLMOPS_TIMEZONE`` differs from the store's rollup timezone.

    Example:
        ```python
        report = import_file(get_engine(), Path("exports/calls.jsonl"))
        print(report.summary())  # imported 1200, duplicates 0, rejected 3
        ```
    """
    read_traces(path, fmt).close()  # whole-file problems surface here, before any work starts
    workers = default_workers(path, fmt) if workers is None else workers
    report = ImportReport(path=path, workers=workers)
    rejects_path = rejects_path_for(path)
    rejects_path.unlink(missing_ok=True)
    with ExitStack() as stack:
        stack.enter_context(cyclic_gc_paused())
        results = (
            _imported_in_workers(engine, path, batch_size, workers)
            if workers
            else _imported_here(engine, path, fmt, batch_size, report)
        )
        rejects_file = None
        for written, rejections in results:
            report.written += written
            if rejections:
                if rejects_file is None:
                    rejects_file = stack.enter_context(rejects_path.open("wb"))
                    report.rejects_path = rejects_path
                for rejection in rejections:
                    rejects_file.write(rejection_to_json(rejection))
                report.rejected += len(rejections)
                room = keep_rejections - len(report.first_rejections)
                report.first_rejections.extend(rejections[: max(room, 0)])
            if on_batch is not None:
                on_batch(report)
    return report
