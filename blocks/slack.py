"""Slack delivery of digests and alerts as a Prefect Block."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from llmops.report.slack import SlackConfig
from prefect_llmops.blocks.catalog import DOCUMENTATION_URL, LOGO_URL


class SlackDigest(Block):
    """Where the daily digest and the alerts go: a bot token and channel, or an incoming webhook.

    With a bot token the chart is posted into the digest's thread; a webhook sends the
    message only. Empty fields fall back to SLACK_BOT_TOKEN, SLACK_CHANNEL, SLACK_WEBHOOK_URL
    and SLACK_API_URL; with none of them the messages wait in the outbox.

    Example:
        ```python
        from prefect_llmops.blocks import SlackDigest

        slack = SlackDigest.load("BLOCK_NAME")
        config = slack.config()  # an llmops.report.slack.SlackConfig for deliver_pending / enqueue_alert
        ```
    """

    _logo_url = LOGO_URL
    _documentation_url = DOCUMENTATION_URL
    _block_type_name = "LLMOps Slack Digest"
    _description = "Slack bot token and channel (or webhook) for the daily LLM cost/quality digest and alerts."

    bot_token: SecretStr | None = Field(
        default=None,
        title="Bot token",
        description="Bot User OAuth token (xoxb-…) with chat:write and files:write. Empty: SLACK_BOT_TOKEN.",
    )
    channel: str | None = Field(
        default=None,
        description="Channel name or id the bot posts to, e.g. #llm-ops (invite the bot there). Empty: SLACK_CHANNEL.",
    )
    webhook_url: SecretStr | None = Field(
        default=None,
        title="Webhook URL",
        description="Incoming webhook, used when there is no bot token; sends no chart. Empty: SLACK_WEBHOOK_URL.",
    )
    base_url: str | None = Field(
        default=None,
        title="Base URL",
        description="Slack Web API base URL, for a Slack-compatible server. Empty: SLACK_API_URL, else https://slack.com/api/.",
    )
    timeout_seconds: int = Field(default=15, ge=1, le=300, description="Timeout of one HTTP request to Slack.")
    max_retry_after_seconds: int = Field(
        default=60,
        ge=1,
        le=900,
        description="Longest Retry-After waited for on a 429; beyond it the message stays pending for the next run.",
    )

    def config(self) -> SlackConfig:
        """The delivery settings: this block's fields, the environment for those left empty."""
        return SlackConfig.from_env(
            bot_token=self.bot_token,
            channel=self.channel,
            webhook_url=self.webhook_url,
            base_url=self.base_url,
            timeout_seconds=self.timeout_seconds,
            max_retry_after_seconds=self.max_retry_after_seconds,
        )
