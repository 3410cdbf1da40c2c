"""The trace store as a Prefect Block: which database the flows write traces and rollups to."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr
from sqlalchemy import Engine

from llmops.store.engine import get_engine
from prefect_llmops.blocks.catalog import DOCUMENTATION_URL, LOGO_URL


class TraceStore(Block):
    """The llmops store (SQLite or PostgreSQL) that traces, rollups and watermarks live in.

    Leave ``database_url`` empty to use ``LLMOPS_DATABASE_URL`` or the SQLite file in
    ``LLMOPS_HOME``; set it to keep the production store's credentials in Prefect.

    Example:
        ```python
        from prefect_llmops.blocks import TraceStore

        trace_store = TraceStore.load("BLOCK_NAME")
        engine = trace_store.get_engine()
        ```
    """

    _logo_url = LOGO_URL
    _documentation_url = DOCUMENTATION_URL
    _block_type_name = "LLMOps Trace Store"
    _description = "The database llmops stores traces, rollups and ingest watermarks in."

    database_url: SecretStr | None = Field(
        default=None,
        title="Database URL",
        description=(
            "SQLAlchemy URL of the store, e.g. postgresql+psycopg://llmops:PASSWORD@db:5432/llmops. "
            "Empty: LLMOPS_DATABASE_URL, else SQLite in LLMOPS_HOME."
        ),
    )

    def get_engine(self) -> Engine:
        """The store's engine, migrated to the latest schema on first use."""
        return get_engine(self.database_url.get_secret_value() if self.database_url else None)
