"""The ``ingest-traces`` flow: pull new LLM calls from the application's table into the store."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact

from llmops.ingest.pull import PullReport
from prefect_llmops.blocks.source import TraceSource
from prefect_llmops.blocks.store import TraceStore
from prefect_llmops.flows.artifact_keys import artifact_key
from prefect_llmops.tasks.ingest import pull_source


def source_artifact_key(source_block: str) -> str:
    """One artifact history per source."""
    return artifact_key("ingest-traces", source_block)


@flow(
    name="ingest-traces",
    description="Pull new LLM calls from the application's table, priced, with rollups (every 15 min; by hand to catch up at once).",
)
def ingest_traces(source_block: str = "app-traces", store_block: str | None = None, max_rows: int | None = None) -> PullReport:
    """Pull from the TraceSource block ``source_block`` into ``store_block`` (default: the configured store).

    Publishes the counts and the new watermark as a table artifact, so the UI shows what each run took.
    """
    source = TraceSource.load(source_block)
    store = TraceStore.load(store_block) if store_block else None
    report = pull_source(source, store, max_rows)
    create_table_artifact(
        key=source_artifact_key(source_block),
        table=[
            {
                "source": report.source,
                "pulled": report.pulled,
                "inserted": report.inserted,
                "duplicates": report.duplicates,
                "rejected": report.rejected,
                "unpriced": report.unpriced,
                "watermark": report.watermark_text(),
            }
        ],
        description=f"Trace pull from `{source_block}`: {report.summary()}",
    )
    return report
