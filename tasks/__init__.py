"""Prefect tasks: the units of work with retries, timeouts and names; the logic lives in ``llmops``."""

from tasks.ingest import pull_source

__all__ = ["pull_source"]
