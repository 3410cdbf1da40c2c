"""Sending the outbox to Slack: where messages go, the clients and their retries, and a flush that loses nothing.

``SlackConfig`` says where messages go: a bot token and channel (the Web API, which can also
upload the chart) or an incoming webhook. ``deliver_pending`` sends the pending rows
addressed there, oldest first. A sender leases a row before it sends (two flushes never send
the same message), records the message's ``ts`` the moment Slack accepts it and only then
uploads the chart into that thread, so a rerun after any failure finishes the job without
posting the message twice. Rate limits are waited out up to a cap, server and connection
errors retried; a failure leaves the row pending, until it is permanent or has used up
``MAX_ATTEMPTS``. Tokens and webhook URLs are kept as ``SecretStr`` and scrubbed from every
error that is stored or logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr
from slack_sdk import WebClient, WebhookClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from sqlalchemy import Engine, select, update

from llmops import settings
from llmops.report.formatting import clip
from llmops.store.tables import OUTBOX

DEFAULT_API_URL = "https://slack.com/api/"
NO_CHANNEL = "outbox"
"""The address of messages queued while no Slack destination is configured."""
WEBHOOK_CHANNEL = "webhook"
"""The address of messages for the configured incoming webhook."""
MAX_ERROR_CHARS = 500
MAX_WEBHOOK_BLOCKS = 50
"""Slack's block limit for one message: a webhook's message and its details together stay within it."""
MAX_ATTEMPTS = 8
"""Sends of one message before it is marked failed (configuration errors are retried until then)."""
LEASE = timedelta(minutes=10)
"""How long a sender owns a row; a sender that died mid-send frees it after this."""
PERMANENT_ERRORS = frozenset(
    {"invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text", "invalid_arguments", "too_many_attachments"}
)
"""Slack errors about the message itself: sending it again cannot succeed."""

logger = logging.getLogger(__name__)
sdk_logger = logging.getLogger(f"{__name__}.sdk")
sdk_logger.setLevel(logging.INFO)  # slack_sdk's DEBUG lines carry the webhook URL: never emit them


# --- where messages go -------------------------------------------------------------------


@dataclass(frozen=True)
class SlackConfig:
    """Where messages go: a bot token and channel (Web API, with the chart), or a webhook (no chart).

    With neither, messages are still stored, addressed to ``NO_CHANNEL``, and wait there.

    Attributes:
        bot_token: A bot token (``xoxb-…``) with ``chat:write`` and ``files:write``.
        channel: The channel the bot posts to.
        webhook_url: An incoming webhook, used when there is no bot token and channel.
        base_url: The Web API's address, for a Slack-compatible server; default ``DEFAULT_API_URL``.
        timeout_seconds: Per HTTP request.
        max_retry_after_seconds: The longest rate-limit wait honoured; longer waits leave the message pending.

    Example:
        >>> SlackConfig(bot_token=SecretStr("xoxb-1"), channel="#llm-ops").destination
        '#llm-ops'
        >>> SlackConfig(webhook_url=SecretStr("https://hooks.slack.com/services/T/B/x")).destination
        'webhook'
    """

    bot_token: SecretStr | None = None
    channel: str | None = None
    webhook_url: SecretStr | None = None
    base_url: str | None = None
    timeout_seconds: int = 15
    max_retry_after_seconds: int = 60

    @classmethod
    def from_env(cls, **overrides: Any) -> SlackConfig:
        """Read ``SLACK_BOT_TOKEN``, ``SLACK_CHANNEL``, ``SLACK_WEBHOOK_URL`` and ``SLACK_API_URL``.

        Args:
            **overrides: Fields to set instead (a Prefect block's values); None leaves the environment's.

        Returns:
            The configuration.

        Example:
            >>> SlackConfig.from_env(channel="#alerts", timeout_seconds=None).channel
            '#alerts'
        """
        token, webhook = settings.env(settings.SLACK_BOT_TOKEN), settings.env(settings.SLACK_WEBHOOK_URL)
        values: dict[str, Any] = {
            "bot_token": SecretStr(token) if token else None,
            "channel": settings.env(settings.SLACK_CHANNEL),
            "webhook_url": SecretStr(webhook) if webhook else None,
            "base_url": settings.env(settings.SLACK_API_URL),
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    @property
    def uses_bot(self) -> bool:
        """Whether messages go through the Web API (a bot token and a channel are set)."""
        return self.bot_token is not None and bool(self.channel)

    @property
    def configured(self) -> bool:
        """Whether any Slack destination is set."""
        return self.uses_bot or self.webhook_url is not None

    @property
    def destination(self) -> str:
        """The outbox address: the channel, ``webhook``, or ``outbox`` when nothing is configured."""
        if self.uses_bot and self.channel:  # uses_bot implies a channel; the test narrows its type
            return self.channel
        if self.webhook_url is not None:
            return WEBHOOK_CHANNEL
        return self.channel or NO_CHANNEL

    @property
    def api_url(self) -> str:
        """The Web API's address, ending in ``/``."""
        base = self.base_url or DEFAULT_API_URL
        return base if base.endswith("/") else base + "/"

    def secrets(self) -> list[str]:
        """The token and webhook URL in clear, to scrub from errors."""
        values = [secret.get_secret_value() for secret in (self.bot_token, self.webhook_url) if secret is not None]
        return [value for value in values if value]


# --- clients -----------------------------------------------------------------------------


class CappedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Retry a 429 after its ``Retry-After``, unless Slack asks for longer than ``cap_seconds``.

    A longer wait would hold the flow; the message stays pending for the next run instead.

    Args:
        max_retry_count: Retries of one request.
        cap_seconds: The longest ``Retry-After`` waited out.

    Example:
        >>> CappedRateLimitRetryHandler(max_retry_count=3, cap_seconds=60).cap_seconds
        60
    """

    def __init__(self, max_retry_count: int, cap_seconds: int) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.cap_seconds = cap_seconds

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        retry_after = next((values for key, values in response.headers.items() if key.lower() == "retry-after"), None)
        if retry_after is None:
            return True
        try:
            return int(retry_after[0]) <= self.cap_seconds
        except ValueError:
            return False


def retry_handlers(config: SlackConfig) -> list[RetryHandler]:
    """The retries of every Slack request: 429 after Retry-After (capped), 5xx with backoff, connection errors.

    Args:
        config: Gives the rate-limit cap.

    Returns:
        slack_sdk retry handlers, for ``WebClient`` and ``WebhookClient``.

    Example:
        >>> [type(handler).__name__ for handler in retry_handlers(SlackConfig())]
        ['ConnectionErrorRetryHandler', 'CappedRateLimitRetryHandler', 'ServerErrorRetryHandler']
    """
    return [
        ConnectionErrorRetryHandler(max_retry_count=2),
        CappedRateLimitRetryHandler(max_retry_count=3, cap_seconds=config.max_retry_after_seconds),
        ServerErrorRetryHandler(max_retry_count=2),
    ]


def web_client(config: SlackConfig) -> WebClient:
    """A Web API client with the bot token, the retries, and a logger that never prints secrets.

    Args:
        config: A configuration with a bot token.

    Returns:
        The client.

    Raises:
        ValueError: When there is no bot token.

    Example:
        >>> web_client(SlackConfig(bot_token=SecretStr("xoxb-1"))).base_url
        'https://slack.com/api/'
    """
    if config.bot_token is None:
        raise ValueError(f"no Slack bot token: set {settings.SLACK_BOT_TOKEN} or the SlackDigest block's bot_token")
    return WebClient(
        token=config.bot_token.get_secret_value(),
        base_url=config.api_url,
        timeout=config.timeout_seconds,
        retry_handlers=retry_handlers(config),
        logger=sdk_logger,
    )


def webhook_client(config: SlackConfig) -> WebhookClient:
    """An incoming-webhook client with the retries, and a logger that never prints the URL.

    Args:
        config: A configuration with a webhook URL.

    Returns:
        The client.

    Raises:
        ValueError: When there is no webhook URL.

    Example:
        >>> webhook_client(SlackConfig(webhook_url=SecretStr("https://hooks.example/T/B/x"))).timeout
        15
    """
    if config.webhook_url is None:
        raise ValueError(f"no Slack webhook URL: set {settings.SLACK_WEBHOOK_URL} or the block's webhook_url")
    return WebhookClient(
        url=config.webhook_url.get_secret_value(),
        timeout=config.timeout_seconds,
        retry_handlers=retry_handlers(config),
        logger=sdk_logger,
    )


# --- errors ------------------------------------------------------------------------------


class DeliveryError(Exception):
    """A send that did not go through; its message carries no secret.

    Args:
        message: What failed, already scrubbed.
        permanent: Whether sending the same message again cannot succeed.
    """

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def scrub(text: str, secrets: Sequence[str]) -> str:
    """Remove every secret from ``text`` (and a webhook URL's path, which is its secret part).

    Args:
        text: An error message or anything else about to be stored or logged.
        secrets: The token and webhook URL in clear.

    Returns:
        The text with each secret as ``***``, clipped to ``MAX_ERROR_CHARS``.

    Example:
        >>> scrub("POST https://hooks.slack.com/services/T1/B2/abcdefgh failed", ["https://hooks.slack.com/services/T1/B2/abcdefgh"])
        'POST *** failed'
    """
    for secret in secrets:
        text = text.replace(secret, "***")
        path = secret.split("://", 1)[-1].partition("/")[2]
        if len(path) >= 8:
            text = text.replace(path, "***")
    return clip(text, MAX_ERROR_CHARS)


def _describe(step: str, exc: Exception, secrets: Sequence[str]) -> DeliveryError:
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, SlackApiError):
        error = str(exc.response.get("error", "unknown_error")) if isinstance(exc.response.data, dict) else "unknown_error"
        return DeliveryError(
            scrub(f"{step}: Slack answered {exc.response.status_code} {error}", secrets), permanent=error in PERMANENT_ERRORS
        )
    return DeliveryError(scrub(f"{step}: {type(exc).__name__}: {exc}", secrets))


# --- the sender's side of the outbox -------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def claim(engine: Engine, row_id: int) -> bool:
    """Lease a pending outbox row for ``LEASE`` and count the attempt, unless another sender holds it.

    Args:
        engine: The store.
        row_id: The outbox row.

    Returns:
        Whether this caller now holds the row (False: not pending, or leased by someone else).

    Example:
        ```python
        if claim(engine, entry.id):
            ...  # send it, then mark it sent or pending again
        ```
    """
    now = _now()
    with engine.begin() as connection:
        claimed = connection.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == row_id, OUTBOX.c.status == "pending")
            .where(OUTBOX.c.claimed_until.is_(None) | (OUTBOX.c.claimed_until < now))
            .values(claimed_until=now + LEASE, attempts=OUTBOX.c.attempts + 1)
        ).rowcount
    return claimed == 1


def _set(engine: Engine, row_id: int, **values: Any) -> None:
    with engine.begin() as connection:
        connection.execute(update(OUTBOX).where(OUTBOX.c.id == row_id).values(**values))


def _pending(engine: Engine, destination: str, limit: int) -> list[Any]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(OUTBOX.c.id, OUTBOX.c.dedupe_key, OUTBOX.c.attempts)
                .where(OUTBOX.c.status == "pending", OUTBOX.c.channel == destination)
                .order_by(OUTBOX.c.created_at, OUTBOX.c.id)
                .limit(limit)
            )
        )


def _reload(engine: Engine, row_id: int) -> Any:
    with engine.connect() as connection:
        return connection.execute(select(OUTBOX).where(OUTBOX.c.id == row_id)).one()


def _send_with_bot(engine: Engine, client: WebClient, row: Any, secrets: Sequence[str]) -> None:
    """Post the message unless it is already in Slack, then its details and the chart into its thread.

    The details reply is recorded in the row's payload (``thread_ts``) once Slack took it, so a
    retried flush posts it once.
    """
    payload = row.payload
    channel_id, ts = row.slack_channel_id, row.slack_ts
    if ts is None:
        try:
            response = client.chat_postMessage(
                channel=row.channel, text=payload["text"], blocks=payload["blocks"], unfurl_links=False, unfurl_media=False
            )
        except Exception as exc:
            raise _describe("chat.postMessage", exc, secrets) from None
        channel_id, ts = response["channel"], response["ts"]
        _set(engine, row.id, slack_channel_id=channel_id, slack_ts=ts)
    thread = payload.get("thread")
    if thread and not thread.get("thread_ts"):
        try:
            client.chat_postMessage(
                channel=channel_id,
                thread_ts=ts,
                text=thread["text"],
                blocks=thread["blocks"],
                unfurl_links=False,
                unfurl_media=False,
            )
        except Exception as exc:
            raise _describe("chat.postMessage (thread)", exc, secrets) from None
        payload = {**payload, "thread": {**thread, "thread_ts": ts}}
        _set(engine, row.id, payload=payload)
    chart = payload.get("chart")
    if chart and row.chart_png and row.chart_file_id is None:
        try:
            upload = client.files_upload_v2(
                channel=channel_id,
                thread_ts=ts,
                content=row.chart_png,
                filename=chart["filename"],
                title=chart["title"],
                alt_txt=chart["title"],
            )
        except Exception as exc:
            raise _describe("files_upload_v2", exc, secrets) from None
        _set(engine, row.id, chart_file_id=upload["file"]["id"])


def _send_with_webhook(client: WebhookClient, row: Any, secrets: Sequence[str]) -> None:
    try:
        thread = row.payload.get("thread") or {}  # a webhook cannot reply in a thread: the details follow the message
        blocks = (row.payload["blocks"] + thread.get("blocks", []))[:MAX_WEBHOOK_BLOCKS]
        response = client.send(text=row.payload["text"], blocks=blocks, unfurl_links=False)
    except Exception as exc:
        raise _describe("webhook", exc, secrets) from None
    body = (response.body or "").strip()
    if response.status_code != 200 or body != "ok":  # Slack answers "ok"; some errors come with a 200
        raise DeliveryError(
            scrub(f"webhook: HTTP {response.status_code} {body[:100]}", secrets), permanent=body in PERMANENT_ERRORS
        )


@dataclass
class DeliveryReport:
    """What one flush of the outbox did, by dedupe key.

    Attributes:
        destination: Where the flush sent to.
        sent: Messages Slack accepted.
        pending: Messages left for the next flush (or waiting for a destination).
        failed: Messages given up on.
        errors: The scrubbed errors, in order.

    Example:
        >>> DeliveryReport("#llm-ops", sent=["digest:2026-11-26:#llm-ops"]).summary()
        '1 sent, 0 pending, 0 failed to #llm-ops'
    """

    destination: str
    sent: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every send went through."""
        return not self.errors

    def summary(self) -> str:
        """One line: counts by outcome, and the last error."""
        text = f"{len(self.sent)} sent, {len(self.pending)} pending, {len(self.failed)} failed to {self.destination}"
        return text + (f"; last error: {self.errors[-1]}" if self.errors else "")


def deliver_pending(
    engine: Engine,
    config: SlackConfig,
    *,
    client: WebClient | None = None,
    webhook: WebhookClient | None = None,
    limit: int = 100,
) -> DeliveryReport:
    """Send every pending message addressed to ``config``'s destination, oldest first.

    Without a configured destination nothing is sent: the messages wait in the outbox. A row
    another sender holds is skipped; a failure leaves it pending (failed once it is permanent
    or after ``MAX_ATTEMPTS``) with the scrubbed error in ``last_error``. Never raises for a
    failed send.

    Args:
        engine: The store.
        config: Where to send.
        client: A Web API client to use instead of one built from ``config``.
        webhook: A webhook client to use instead of one built from ``config``.
        limit: The most messages sent in one flush.

    Returns:
        What was sent, left pending and given up on.

    Raises:
        ValueError: When the destination needs a client that ``config`` cannot build.

    Example:
        ```python
        report = deliver_pending(engine, SlackConfig.from_env())
        print(report.summary())  # 1 sent, 0 pending, 0 failed to #llm-ops
        ```
    """
    report = DeliveryReport(config.destination)
    rows = _pending(engine, config.destination, limit)
    if not config.configured:
        report.pending = [row.dedupe_key for row in rows]
        return report
    secrets = config.secrets()
    send: Callable[[Any], None]
    if config.uses_bot:
        bot = client or web_client(config)
        send = lambda row: _send_with_bot(engine, bot, row, secrets)  # noqa: E731
    else:
        hook = webhook or webhook_client(config)
        send = lambda row: _send_with_webhook(hook, row, secrets)  # noqa: E731
    for row in rows:
        if not claim(engine, row.id):
            continue
        try:
            send(_reload(engine, row.id))
        except DeliveryError as error:
            attempts = row.attempts + 1
            status = "failed" if error.permanent or attempts >= MAX_ATTEMPTS else "pending"
            _set(engine, row.id, status=status, last_error=str(error), claimed_until=None)
            (report.failed if status == "failed" else report.pending).append(row.dedupe_key)
            report.errors.append(str(error))
            logger.warning("Slack delivery of %s to %s: %s (%s)", row.dedupe_key, config.destination, error, status)
            continue
        _set(engine, row.id, status="sent", sent_at=_now(), last_error=None, claimed_until=None)
        report.sent.append(row.dedupe_key)
        logger.info("sent %s to %s", row.dedupe_key, config.destination)
    return report
