"""The digest's details go into its thread, once, through the real slack_sdk and a local Slack-compatible server."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, delete, select

from llmops.report.slack import OUTBOX, SlackConfig, deliver_pending, enqueue_digest, render_digest
from llmops.store.engine import get_engine
from tests.e2e.slack_server import SlackServer
from tests.unit.test_digest_lead import _slow_chat
from tests.unit.test_digest_render import make_digest

pytestmark = pytest.mark.e2e
CHANNEL = "#llm-ops"


@pytest.fixture
def engine() -> Engine:
    engine = get_engine()
    with engine.begin() as connection:
        connection.execute(delete(OUTBOX))
    return engine


def test_details_are_posted_in_the_thread_once(engine: Engine, slack: SlackServer) -> None:
    config = SlackConfig(bot_token=SecretStr(slack.state.token), channel=CHANNEL, base_url=slack.api_url)
    digest = make_digest(drift=_slow_chat(), drift_total=8, findings=[])
    enqueue_digest(engine, digest, config, render_digest(digest, with_chart=False))

    assert deliver_pending(engine, config).ok
    main, reply = slack.state.messages
    assert "thread_ts" not in main and reply["thread_ts"] == main["ts"]
    assert "latency_p95 +63% vs the usual" in str(reply["blocks"]) and "latency_p95 +63%" not in str(main["blocks"])
    with engine.connect() as connection:
        payload = connection.execute(select(OUTBOX.c.payload)).scalar_one()
    assert payload["thread"]["thread_ts"] == main["ts"]
    assert deliver_pending(engine, config).sent == [] and len(slack.state.messages) == 2  # a rerun posts nothing


def test_a_webhook_carries_the_details_after_the_message(engine: Engine, slack: SlackServer) -> None:
    config = SlackConfig(webhook_url=SecretStr(slack.webhook_url))
    digest = make_digest(drift=_slow_chat(), drift_total=8, findings=[])
    message = render_digest(digest, with_chart=False)
    enqueue_digest(engine, digest, config, message)
    assert deliver_pending(engine, config).ok
    (sent,) = slack.state.messages
    assert sent["blocks"][: len(message.blocks)] == message.blocks and len(sent["blocks"]) > len(message.blocks)
    assert len(sent["blocks"]) <= 50 and "latency_p95 +63% vs the usual" in str(sent["blocks"])
