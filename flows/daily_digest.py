"""The ``daily-digest`` flow: yesterday's cost and quality, to Slack, with the 30-day chart in thread."""

from __future__ import annotations

from datetime import date

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from llmops.report.digest import DEFAULT_TOP_FEATURES
from llmops.report.slack import DeliveryReport
from llmops.text import markdown_code, markdown_escape
from prefect_llmops.blocks.slack import SlackDigest
from prefect_llmops.blocks.store import TraceStore
from prefect_llmops.tasks.digest import compute_digest_task, deliver_outbox, queue_digest

ARTIFACT_KEY = "daily-digest"


class DigestNotDelivered(RuntimeError):
    """Slack did not take every message; they stay pending and the next run sends them."""


def _status(key: str, stored_status: str, report: DeliveryReport) -> str:
    for label, keys in (("sent now", report.sent), ("failed", report.failed), ("pending", report.pending)):
        if key in keys:
            return label
    return f"{stored_status} by an earlier run"


@flow(
    name="daily-digest",
    description="Yesterday's LLM cost and quality digest to Slack, chart in the thread (daily; by hand to resend or backfill a day).",
)
def daily_digest(
    day: date | None = None,
    slack_block: str | None = None,
    store_block: str | None = None,
    environment: str | None = None,
    top_features: int = DEFAULT_TOP_FEATURES,
) -> DeliveryReport:
    """Digest of ``day`` (default: yesterday in LLMOPS_TIMEZONE) to the SlackDigest block ``slack_block``.

    Without a block the SLACK_* variables apply; without those the digest stays in the outbox.
    The message is always published as a markdown artifact. Reruns send nothing twice; a run
    that could not deliver fails after storing, so the UI shows it, and the next run sends it.
    """
    slack = SlackDigest.load(slack_block) if slack_block else None
    store = TraceStore.load(store_block) if store_block else None
    digest = compute_digest_task(day, environment, store, top_features)
    entry, markdown = queue_digest(digest, slack, store)
    report = deliver_outbox(slack, store)
    status = _status(entry.dedupe_key, entry.status, report)
    create_markdown_artifact(
        key=ARTIFACT_KEY,
        markdown=(
            f"{markdown}\n\n---\nOutbox {markdown_code(entry.dedupe_key)}: {markdown_escape(status)}. "
            f"Delivery: {markdown_escape(report.summary())}"
        ),
        description=f"LLM cost & quality digest of {digest.day}",
    )
    if not report.ok:
        raise DigestNotDelivered(f"Slack delivery incomplete, kept in the outbox: {report.summary()}")
    return report
