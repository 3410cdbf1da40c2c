"""The digest and alerts as Prefect tasks: compute from the store, queue in the outbox, send.

Computing retries (a store restarting); sending does not: slack_sdk already retries 429,
5xx and connection errors inside the call, and whatever is still unsent stays pending in
the outbox for the next run, which is safer than a task retry that could hold the flow.
"""

from __future__ import annotations

from datetime import date

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from llmops import settings
from llmops.report.digest import DEFAULT_TOP_FEATURES, Digest, compute_digest
from llmops.report.preview import preview_markdown, render_preview, save_preview
from llmops.report.slack import (
    DeliveryReport,
    OutboxEntry,
    SlackConfig,
    deliver_pending,
    enqueue_alert,
    enqueue_digest,
    render_digest,
)
from prefect_llmops.blocks.slack import SlackDigest
from prefect_llmops.blocks.store import TraceStore
from prefect_llmops.tasks.common import STORE, flow_run_page, store_engine

PREVIEW_DIR = "digests"
"""Where under ``LLMOPS_HOME`` the digest's previews are written."""


def slack_config(slack: SlackDigest | None) -> SlackConfig:
    """The block's settings, or the SLACK_* variables without one."""
    return slack.config() if slack is not None else SlackConfig.from_env()


def current_flow_run_link() -> str | None:
    """This flow run's page in the Prefect UI, when the UI address is known."""
    return flow_run_page(flow_run.id)


@task(name="compute-digest", **STORE.options(), cache_policy=NO_CACHE)
def compute_digest_task(
    day: date | None, environment: str | None, store: TraceStore | None = None, top_features: int = DEFAULT_TOP_FEATURES
) -> Digest:
    """The day's numbers from the rollups."""
    return compute_digest(store_engine(store), day, environment=environment, top_features=top_features)


@task(name="queue-digest", cache_policy=NO_CACHE)
def queue_digest(digest: Digest, slack: SlackDigest | None = None, store: TraceStore | None = None) -> tuple[OutboxEntry, str]:
    """Render the message and chart and store them in the outbox (once per day and channel).

    Returns the outbox entry and the message as markdown, for the run's artifact, followed by a
    PNG preview of the Block Kit (inline when small; the file under ``LLMOPS_HOME/digests``).
    """
    message = render_digest(digest)
    config = slack_config(slack)
    entry = enqueue_digest(store_engine(store), digest, config, message)
    logger = get_run_logger()
    logger.info("digest %s: %s", entry.dedupe_key, "queued" if entry.created else f"already queued ({entry.status})")
    try:
        png = render_preview(message.blocks, message.thread_blocks)
        path = save_preview(png, settings.home() / PREVIEW_DIR, digest.day, config.destination)
    except Exception as exc:  # a preview is a convenience: never fail the digest for it
        logger.warning("digest preview not drawn: %s", exc)
        return entry, message.markdown
    return entry, f"{message.markdown}\n\n---\n{preview_markdown(png, path)}"


@task(name="deliver-outbox", cache_policy=NO_CACHE)
def deliver_outbox(slack: SlackDigest | None = None, store: TraceStore | None = None) -> DeliveryReport:
    """Send every pending message for the configured destination; errors stay in the outbox."""
    config = slack_config(slack)
    report = deliver_pending(store_engine(store), config)
    logger = get_run_logger()
    if not config.configured:
        logger.info("Slack is not configured: %d message(s) wait in the outbox", len(report.pending))
    else:
        logger.info("Slack: %s", report.summary())
    return report


@task(name="send-alert", cache_policy=NO_CACHE)
def send_alert(
    kind: str,
    title: str,
    details: str,
    severity: str = "warning",
    slack: SlackDigest | None = None,
    store: TraceStore | None = None,
) -> OutboxEntry:
    """Alert Slack now (regression verdict, failed gate, rollback, promotion), linking this flow run.

    Queued in the outbox first; if Slack is down it stays pending and the next delivery sends it.
    """
    return enqueue_alert(
        kind, title, details, current_flow_run_link(), severity=severity, engine=store_engine(store), config=slack_config(slack)
    )
