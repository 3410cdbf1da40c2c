"""Delivery through the real slack_sdk against a local Slack-compatible server.

Covers the message with its chart in the thread, 429 with Retry-After, a 500, a server that
is down, ok:false, a failed chart upload, webhooks, alerts, and reruns that send nothing new.
"""

from __future__ import annotations

import logging
from datetime import date

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select

from llmops.demo import generate_traces
from llmops.report.digest import compute_digest
from llmops.report.slack import OUTBOX, SlackConfig, deliver_pending, enqueue_alert, enqueue_digest, render_digest
from llmops.store.engine import get_engine
from llmops.store.writer import write_traces
from tests.e2e.slack_server import WEBHOOK_PATH, SlackServer

pytestmark = pytest.mark.e2e
DAY = date(2026, 11, 26)
CHANNEL = "#llm-ops"


@pytest.fixture
def engine() -> Engine:
    engine = get_engine()
    write_traces(engine, list(generate_traces(days=8, end_day=DAY, calls_per_weekday=30)))
    return engine


def bot(server: SlackServer, **changes: object) -> SlackConfig:
    values: dict[str, object] = {"bot_token": SecretStr(server.state.token), "channel": CHANNEL, "base_url": server.api_url}
    values.update(changes)
    return SlackConfig(**values)  # type: ignore[arg-type]


def queue_digest(engine: Engine, config: SlackConfig) -> None:
    enqueue_digest(engine, compute_digest(engine, DAY), config)


def row(engine: Engine) -> dict:
    with engine.connect() as connection:
        return dict(connection.execute(select(OUTBOX)).mappings().one())


def test_digest_is_posted_and_its_chart_uploaded_into_the_thread(engine: Engine, slack: SlackServer) -> None:
    config = bot(slack)
    queue_digest(engine, config)
    report = deliver_pending(engine, config)

    assert report.ok and report.sent == [f"digest:{DAY}:{CHANNEL}"]
    assert [call.endpoint for call in slack.state.requests] == [
        "chat.postMessage",
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    posted = slack.state.messages[0]
    assert posted["channel"] == CHANNEL and posted["blocks"][0]["type"] == "header" and posted["text"]
    completed = slack.state.completed[0]
    assert completed["thread_ts"] == posted["ts"] and completed["channel_id"] == "C0DIGEST"
    assert next(iter(slack.state.uploads.values())).startswith(b"\x89PNG")
    stored = row(engine)
    assert stored["status"] == "sent" and stored["slack_ts"] == posted["ts"] and stored["chart_file_id"]
    assert stored["attempts"] == 1 and stored["last_error"] is None


def test_rerun_sends_nothing_new(engine: Engine, slack: SlackServer) -> None:
    config = bot(slack)
    for _ in range(3):
        queue_digest(engine, config)
        deliver_pending(engine, config)
    assert len(slack.calls("chat.postMessage")) == 1 and len(slack.calls("upload")) == 1


def test_rate_limit_waits_for_retry_after(engine: Engine, slack: SlackServer) -> None:
    config = bot(slack)
    queue_digest(engine, config)
    slack.fail("chat.postMessage", status=429, retry_after=1)
    report = deliver_pending(engine, config)
    first, second = slack.calls("chat.postMessage")
    assert report.ok and (first.answered, second.answered) == (429, 200)
    assert second.at - first.at >= 1.0  # Retry-After honoured (a lower bound, not a performance figure)
    assert len(slack.state.messages) == 1


def test_retry_after_beyond_the_cap_leaves_it_pending(engine: Engine, slack: SlackServer) -> None:
    config = bot(slack, max_retry_after_seconds=5)
    queue_digest(engine, config)
    slack.fail("chat.postMessage", status=429, retry_after=3600)
    report = deliver_pending(engine, config)
    assert not report.ok and len(slack.calls("chat.postMessage")) == 1
    assert row(engine)["status"] == "pending" and "answered 429" in row(engine)["last_error"]


def test_server_error_then_success(engine: Engine, slack: SlackServer) -> None:
    config = bot(slack)
    queue_digest(engine, config)
    slack.fail("chat.postMessage", status=500)
    report = deliver_pending(engine, config)
    assert report.ok and [call.answered for call in slack.calls("chat.postMessage")] == [500, 200]
    assert row(engine)["status"] == "sent"


def test_server_down_keeps_it_pending_and_the_next_run_sends_it(engine: Engine) -> None:
    down = SlackServer().start()
    config = bot(down)
    down.stop()  # nothing listens on its port any more
    queue_digest(engine, config)
    report = deliver_pending(engine, config)
    stored = row(engine)
    assert not report.ok and report.pending == [f"digest:{DAY}:{CHANNEL}"]
    assert stored["status"] == "pending" and stored["slack_ts"] is None
    assert "chat.postMessage" in stored["last_error"] and down.state.token not in stored["last_error"]

    with SlackServer(token=down.state.token) as back:
        report = deliver_pending(engine, bot(back))
        assert report.ok and len(back.state.messages) == 1 and len(back.state.uploads) == 1
    assert row(engine)["status"] == "sent" and row(engine)["attempts"] == 2


def test_ok_false_is_kept_with_the_error_and_no_secret(engine: Engine, slack: SlackServer) -> None:
    config = bot(slack)
    queue_digest(engine, config)
    slack.fail("chat.postMessage", error="channel_not_found")
    report = deliver_pending(engine, config)
    stored = row(engine)
    assert stored["status"] == "pending"  # fixable by configuration: the next run tries again
    assert stored["last_error"] == "chat.postMessage: Slack answered 200 channel_not_found"
    assert report.errors == [stored["last_error"]]

    slack.fail("chat.postMessage", error="invalid_blocks")
    deliver_pending(engine, config)
    assert row(engine)["status"] == "failed" and "invalid_blocks" in row(engine)["last_error"]
    assert deliver_pending(engine, config).sent == []  # a failed message is not retried


def test_wrong_token_is_reported_without_the_token(engine: Engine, slack: SlackServer) -> None:
    config = bot(slack, bot_token=SecretStr("xoxb-wrong-secret-token"))
    queue_digest(engine, config)
    report = deliver_pending(engine, config)
    assert "invalid_auth" in report.errors[0] and "xoxb-wrong-secret-token" not in report.errors[0]


def test_failed_chart_upload_is_retried_without_posting_again(engine: Engine, slack: SlackServer) -> None:
    config = bot(slack)
    queue_digest(engine, config)
    slack.fail("upload", status=500)
    assert not deliver_pending(engine, config).ok
    stored = row(engine)
    assert stored["status"] == "pending" and stored["slack_ts"] and stored["chart_file_id"] is None

    assert deliver_pending(engine, config).ok
    assert len(slack.calls("chat.postMessage")) == 1
    assert slack.state.completed[-1]["thread_ts"] == stored["slack_ts"]
    assert row(engine)["status"] == "sent"


def test_webhook_delivery_without_chart_and_without_leaking_its_url(engine: Engine, slack: SlackServer) -> None:
    config = SlackConfig(webhook_url=SecretStr(slack.webhook_url))
    queue_digest(engine, config)
    slack.fail("webhook", status=500, times=3)  # beyond the retries: stays pending
    report = deliver_pending(engine, config)
    assert not report.ok and WEBHOOK_PATH not in report.errors[0] and "webhook-secret-path" not in row(engine)["last_error"]

    slack.fail("webhook", error="no_service")  # Slack's error in a 200 body is an error too
    assert not deliver_pending(engine, config).ok and row(engine)["last_error"] == "webhook: HTTP 200 no_service"

    report = deliver_pending(engine, config)
    assert report.ok and slack.state.messages[-1]["via"] == "webhook" and slack.state.messages[-1]["blocks"]
    assert not slack.calls("upload") and row(engine)["status"] == "sent"


def test_alert_goes_out_at_once_with_the_flow_run_link(engine: Engine, slack: SlackServer) -> None:
    config = bot(slack, channel="#llm-alerts")
    link = "http://127.0.0.1:4200/runs/flow-run/42"
    for _ in range(2):  # a retried task alerts once
        entry = enqueue_alert(
            "rollback",
            "support-chat back to 2.3.1",
            "gate failed: p95 +40%",
            link,
            severity="critical",
            engine=engine,
            config=config,
        )
    assert entry.status == "sent"
    assert len(slack.state.messages) == 1
    assert f"<{link}|Open the Prefect flow run>" in str(slack.state.messages[0]["blocks"])


def test_secrets_never_reach_the_logs(engine: Engine, slack: SlackServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token_config = bot(slack)
    queue_digest(engine, token_config)
    slack.fail("chat.postMessage", error="not_in_channel")
    deliver_pending(engine, token_config)
    deliver_pending(engine, token_config)
    webhook_config = SlackConfig(webhook_url=SecretStr(slack.webhook_url))
    queue_digest(engine, webhook_config)
    slack.fail("webhook", error="invalid_token")
    deliver_pending(engine, webhook_config)
    assert caplog.records
    for secret in (slack.state.token, "webhook-secret-path"):
        assert secret not in caplog.text
        with engine.connect() as connection:
            errors = [error for (error,) in connection.execute(select(OUTBOX.c.last_error)) if error]
            payloads = [str(payload) for (payload,) in connection.execute(select(OUTBOX.c.payload))]
        assert not any(secret in text for text in errors + payloads)


def test_without_slack_the_digest_waits_in_the_outbox(engine: Engine) -> None:
    config = SlackConfig()
    queue_digest(engine, config)
    report = deliver_pending(engine, config)
    assert report.ok and report.pending == [f"digest:{DAY}:outbox"] and row(engine)["status"] == "pending"
    assert render_digest(compute_digest(engine, DAY), with_chart=False).plain.startswith("LLM cost & quality")
