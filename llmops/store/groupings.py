"""What the cost report can group by, apart from ``rollups``: ``llmops costs --help`` names them
without importing SQLAlchemy."""

from __future__ import annotations

GROUPINGS = ("feature", "model", "prompt_version", "environment", "day", "prompt_name")
"""What ``llmops.store.rollups.cost_report`` can group by."""
