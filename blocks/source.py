"""An application's own SQL table of LLM calls as a Prefect Block, for the ingest-traces flow."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from llmops.ingest.pull import DEFAULT_BATCH_SIZE, SourceConfig
from prefect_llmops.blocks.catalog import DOCUMENTATION_URL, LOGO_URL


class TraceSource(Block):
    """Where the application records its LLM calls, and how its columns map to trace fields.

    The pull reads rows in ``(cursor_column, id_column)`` order from the last committed
    watermark, so the cursor must only grow (an insert timestamp or a sequence) and the id
    must be unique.

    Example:
        ```python
        from prefect_llmops.blocks import TraceSource

        source = TraceSource.load("BLOCK_NAME")
        config = source.config()  # an llmops.ingest.pull.SourceConfig
        ```
    """

    _logo_url = LOGO_URL
    _documentation_url = DOCUMENTATION_URL
    _block_type_name = "LLMOps Trace Source"
    _description = "An application's SQL table of LLM calls, pulled incrementally into the llmops store."

    url: SecretStr = Field(
        title="Database URL",
        description="SQLAlchemy URL of the application's database, e.g. postgresql+psycopg://reader:PASSWORD@app-db/app.",
    )
    table: str = Field(description="Table or view holding one row per LLM call; `schema.table` is accepted.")
    column_map: dict[str, str] = Field(
        default_factory=dict,
        title="Column map",
        description='Trace field -> source column, for columns not named like the field, e.g. {"trace_id": "call_id"}.',
    )
    cursor_column: str | None = Field(
        default=None,
        description="Column that only grows (timestamp or sequence). Empty: the column mapped to `timestamp`.",
    )
    id_column: str | None = Field(
        default=None,
        description="Unique column that orders rows sharing a cursor value. Empty: the column mapped to `trace_id`.",
    )
    watermark_name: str | None = Field(
        default=None,
        description="Key under which the store remembers how far it has read. Empty: this block's name.",
    )
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1, le=100_000, description="Rows read and committed per transaction.")
    connect_timeout_seconds: int = Field(
        default=10, ge=1, description="Give up on one connection attempt to the application's database after this."
    )
    connect_attempts: int = Field(
        default=3, ge=1, le=10, description="Attempts per read, with backoff, before the pull gives up on the source."
    )

    def config(self) -> SourceConfig:
        """The pull's configuration; the watermark is keyed by this block's name unless set."""
        return SourceConfig(
            url=self.url,
            table=self.table,
            column_map=self.column_map,
            cursor_column=self.cursor_column,
            id_column=self.id_column,
            name=self.watermark_name or self._block_document_name,
            batch_size=self.batch_size,
            connect_timeout_seconds=self.connect_timeout_seconds,
            connect_attempts=self.connect_attempts,
        )
