"""Prefect tasks: the units of work with retries, timeouts and names; the logic lives in ``llmops``."""

from prefect_llmops.tasks.ingest import pull_source

__all__ = ["pull_source"]
