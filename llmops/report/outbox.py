"""Putting messages in the outbox: the digest once per day and channel, an alert once per finding.

Every Slack message is stored in the ``outbox`` table before anything is sent, under a dedupe
key, so a rerun or a retried task never queues it twice; ``llmops.report.delivery`` sends what
is pending. A digest rerun after late traces refreshes the stored content as long as nothing
of it has reached Slack. An alert is also recorded in the ``alerts`` table (what fired, when,
how bad, where to look) and, when Slack is configured, sent at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select, update

from llmops.report.delivery import SlackConfig, deliver_pending
from llmops.report.digest_data import Digest
from llmops.report.formatting import clip
from llmops.report.render import RenderedMessage, render_alert, render_digest
from llmops.store.engine import dialect_insert, get_engine
from llmops.store.outbox_models import ALERT_SEVERITIES, OUTBOX_KINDS
from llmops.store.tables import ALERTS, OUTBOX

MAX_KIND_CHARS = 64
MAX_TITLE_CHARS = 300


@dataclass(frozen=True)
class OutboxEntry:
    """A stored message: its row, whether this call created it, and its status.

    Attributes:
        id: The outbox row.
        dedupe_key: The key it is stored under.
        created: Whether this call stored it (False: it was already there).
        status: ``pending``, ``sent`` or ``failed``.

    Example:
        >>> OutboxEntry(1, "digest:2026-11-26:#llm-ops", created=True, status="pending").created
        True
    """

    id: int
    dedupe_key: str
    created: bool
    status: str


def enqueue(
    engine: Engine, kind: str, dedupe_key: str, channel: str, message: RenderedMessage, *, refresh: bool = False
) -> OutboxEntry:
    """Store a message once per ``dedupe_key``, pending until it is delivered.

    Args:
        engine: The store.
        kind: ``digest`` or ``alert``.
        dedupe_key: What makes two messages the same one.
        channel: The destination it is addressed to (``SlackConfig.destination``).
        message: The rendered message.
        refresh: Replace the content of a stored message that nothing has been sent of yet
            (a rerun after late traces), never one already (partly) in Slack.

    Returns:
        The stored row, and whether this call created it.

    Raises:
        ValueError: When ``kind`` is not an outbox kind.

    Example:
        ```python
        entry = enqueue(engine, "alert", "alert:gate:1", "#llm-ops", render_alert("gate", "failed", "", None, "warning"))
        ```
    """
    if kind not in OUTBOX_KINDS:
        raise ValueError(f"outbox kind must be one of {', '.join(OUTBOX_KINDS)}, got {kind!r}")
    row = {
        "kind": kind,
        "dedupe_key": dedupe_key,
        "channel": channel,
        "payload": message.payload(),
        "chart_png": message.chart_png,
        "status": "pending",
        "attempts": 0,
        "created_at": datetime.now(UTC),
    }
    with engine.begin() as connection:
        inserted = (
            connection.execute(
                dialect_insert(connection, OUTBOX)
                .on_conflict_do_nothing(index_elements=["dedupe_key"])
                .values(row)
                .returning(OUTBOX.c.id)
            ).scalar()
            is not None
        )
        if not inserted and refresh:
            connection.execute(
                update(OUTBOX)
                .where(OUTBOX.c.dedupe_key == dedupe_key, OUTBOX.c.status == "pending", OUTBOX.c.slack_ts.is_(None))
                .where(OUTBOX.c.claimed_until.is_(None) | (OUTBOX.c.claimed_until < datetime.now(UTC)))
                .values(payload=row["payload"], chart_png=row["chart_png"])
            )
        stored = connection.execute(select(OUTBOX.c.id, OUTBOX.c.status).where(OUTBOX.c.dedupe_key == dedupe_key)).one()
    return OutboxEntry(stored.id, dedupe_key, inserted, stored.status)


def digest_key(digest: Digest, destination: str) -> str:
    """The dedupe key of a digest: one per day, environment and destination.

    Args:
        digest: The digest.
        destination: Where it goes (``SlackConfig.destination``).

    Returns:
        ``digest:{day}[:{environment}]:{destination}``.

    Example:
        ```python
        digest_key(digest, "#llm-ops")  # 'digest:2026-11-26:#llm-ops'
        ```
    """
    scope = f":{digest.environment}" if digest.environment else ""
    return f"digest:{digest.day.isoformat()}{scope}:{destination}"


def enqueue_digest(engine: Engine, digest: Digest, config: SlackConfig, message: RenderedMessage | None = None) -> OutboxEntry:
    """Queue the day's digest for the configured destination, once per (day, channel).

    A rerun refreshes the stored message while nothing of it has been sent.

    Args:
        engine: The store.
        digest: The day's numbers.
        config: Gives the destination.
        message: The rendered digest; rendered here (with the chart) when None.

    Returns:
        The stored row.

    Example:
        ```python
        entry = enqueue_digest(engine, compute_digest(engine), SlackConfig.from_env())
        deliver_pending(engine, SlackConfig.from_env())
        ```
    """
    message = message or render_digest(digest)
    return enqueue(engine, "digest", digest_key(digest, config.destination), config.destination, message, refresh=True)


def enqueue_alert(
    kind: str,
    title: str,
    details: str,
    link: str | None = None,
    *,
    severity: str = "warning",
    engine: Engine | None = None,
    config: SlackConfig | None = None,
    deliver: bool = True,
) -> OutboxEntry:
    """Record an alert (regression verdict, failed gate, rollback, promotion) and queue its message.

    The same (kind, title, details, link) is stored and sent once, so a retried task does not
    alert twice. With ``deliver`` the outbox is flushed at once when Slack is configured; a
    failed send stays pending for the next flush and never raises here.

    Args:
        kind: What fired, e.g. ``eval_regression``.
        title: One line on what happened.
        details: The details, one fact per line.
        link: The flow run's page in the Prefect UI (``flow_run_url``), or None.
        severity: ``info``, ``warning`` or ``critical``.
        engine: The store; default the configured one.
        config: Where to send; default ``SlackConfig.from_env()``.
        deliver: Whether to flush the outbox now.

    Returns:
        The stored message.

    Raises:
        ValueError: When ``severity`` is not one of the three.

    Example:
        ```python
        enqueue_alert(
            "eval_regression",
            "support-chat@2.4.0 regressed",
            "faithfulness -0.08 [-0.12, -0.04]",
            flow_run_url(flow_run_id),
            severity="critical",
        )
        ```
    """
    if severity not in ALERT_SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(ALERT_SEVERITIES)}, got {severity!r}")
    engine = engine or get_engine()
    config = config or SlackConfig.from_env()
    fingerprint = hashlib.sha256("\x1f".join((kind, title, details, link or "")).encode()).hexdigest()[:24]
    dedupe_key = f"alert:{clip(kind, MAX_KIND_CHARS)}:{fingerprint}:{config.destination}"
    with engine.begin() as connection:
        connection.execute(
            dialect_insert(connection, ALERTS)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .values(
                kind=kind,
                severity=severity,
                title=clip(title, MAX_TITLE_CHARS),
                details=details,
                link=link,
                dedupe_key=dedupe_key,
                fired_at=datetime.now(UTC),
            )
        )
    entry = enqueue(engine, "alert", dedupe_key, config.destination, render_alert(kind, title, details, link, severity))
    if deliver and config.configured:
        deliver_pending(engine, config)
    return entry
