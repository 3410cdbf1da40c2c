"""Slack in one import: rendering, the outbox and delivery, re-exported for the layers above the core.

Tasks, flows, the command line, blocks and the demo import Slack's side of reporting from
here; the code lives by idea in ``formatting`` (escaping, clipping, numbers), ``render``
(digests and alerts as Block Kit, markdown and plain text), ``chart`` (the cost chart),
``outbox`` (queuing messages once) and ``delivery`` (configuration, clients, sending).
"""

from __future__ import annotations

from llmops.report.chart import chart_spikes, render_chart
from llmops.report.delivery import (
    NO_CHANNEL,
    WEBHOOK_CHANNEL,
    CappedRateLimitRetryHandler,
    DeliveryError,
    DeliveryReport,
    SlackConfig,
    deliver_pending,
    retry_handlers,
    scrub,
    web_client,
    webhook_client,
)
from llmops.report.formatting import clip, escape
from llmops.report.outbox import OutboxEntry, digest_key, enqueue, enqueue_alert, enqueue_digest
from llmops.report.render import (
    MAX_BLOCKS,
    RenderedMessage,
    Section,
    digest_header,
    digest_sections,
    digest_summary,
    flow_run_url,
    render_alert,
    render_digest,
    to_blocks,
    to_markdown,
    to_plain,
)
from llmops.store.tables import ALERTS, OUTBOX

__all__ = [
    "ALERTS",
    "MAX_BLOCKS",
    "NO_CHANNEL",
    "OUTBOX",
    "WEBHOOK_CHANNEL",
    "CappedRateLimitRetryHandler",
    "DeliveryError",
    "DeliveryReport",
    "OutboxEntry",
    "RenderedMessage",
    "Section",
    "SlackConfig",
    "chart_spikes",
    "clip",
    "deliver_pending",
    "digest_header",
    "digest_key",
    "digest_sections",
    "digest_summary",
    "enqueue",
    "enqueue_alert",
    "enqueue_digest",
    "escape",
    "flow_run_url",
    "render_alert",
    "render_chart",
    "render_digest",
    "retry_handlers",
    "scrub",
    "to_blocks",
    "to_markdown",
    "to_plain",
    "web_client",
    "webhook_client",
]
