"""File import: stream a trace file through the readers into the store, batch by batch.

Rejected lines go to ``<file>.rejects.jsonl`` as they are found, so a file of any size
needs memory for one batch only, and a crash never loses what was already committed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from llmops.ingest.files import read_traces
from llmops.ingest.rejections import Rejection, rejection_to_json
from llmops.store.writer import WriteResult, write_traces

DEFAULT_BATCH_SIZE = 5_000


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
    reader = read_traces(path, fmt)  # type: ignore[arg-type]
    rejects_path = rejects_path_for(path)
    rejects_path.unlink(missing_ok=True)
    rejects_file = None
    try:
        for records, rejections in reader.batches(batch_size):
            if records:
                report.written += write_traces(engine, records)
            if rejections:
                if rejects_file is None:
                    rejects_file = rejects_path.open("wb")
                    report.rejects_path = rejects_path
                for rejection in rejections:
                    rejects_file.write(rejection_to_json(rejection))
                report.rejected += len(rejections)
                room = keep_rejections - len(report.first_rejections)
                report.first_rejections.extend(rejections[: max(room, 0)])
            report.skipped = reader.skipped
            if on_batch is not None:
                on_batch(report)
    finally:
        reader.close()
        if rejects_file is not None:
            rejects_file.close()
    return report
