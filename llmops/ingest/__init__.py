"""Importers that turn trace files into validated ``TraceRecord``s and ``Rejection``s."""

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
