"""Trace records for tests: realistic defaults, override what the test is about."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from llmops.records import TraceRecord

_ids = itertools.count()
T0 = datetime(2025, 11, 1, 12, 0, tzinfo=UTC)


def trace(**overrides: Any) -> TraceRecord:
    n = next(_ids)
    fields: dict[str, Any] = {
        "trace_id": f"trace-{n}",
        "timestamp": T0 + timedelta(minutes=n % 600),
        "model": "claude-3-5-sonnet-20241022",
        "environment": "production",
        "feature": "chat_response",
        "prompt_name": "support",
        "prompt_version": "2.3.1",
        "input_tokens": 1000,
        "output_tokens": 200,
        "latency_ms": 1000.0 + n % 997,
        "finish_reason": "end_turn",
        "user_id": f"user-{n % 50}",
    }
    fields.update(overrides)
    return TraceRecord(**fields)
