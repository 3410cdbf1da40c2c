"""Importers that turn trace files into validated ``TraceRecord``s and ``Rejection``s.

- ``files``: JSONL, CSV and OTLP/JSON files streamed record by record (``read_traces``);
  ``otel`` maps OpenTelemetry GenAI spans to trace fields.
- ``rejections``: a line that is not a trace, and why, in words a person can fix.
- ``pipeline``: a file into the store, batch by batch, in worker processes for large JSONL
  (``import_file``); ``pull``: an application's own SQL table, incrementally (``pull_traces``).
"""

from llmops.ingest.files import (
    FORMATS,
    REQUIRED_CSV_COLUMNS,
    TraceFormat,
    TraceReader,
    batched_traces,
    detect_format,
    read_traces,
)
from llmops.ingest.rejections import Rejection, rejection_to_json

__all__ = [
    "FORMATS",
    "REQUIRED_CSV_COLUMNS",
    "Rejection",
    "TraceFormat",
    "TraceReader",
    "batched_traces",
    "detect_format",
    "read_traces",
    "rejection_to_json",
]
