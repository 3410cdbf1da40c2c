"""The daily-digest flow and the send-alert task under the Prefect test harness."""

from __future__ import annotations

from datetime import date

import pytest
from prefect import flow
from prefect.artifacts import Artifact
from pydantic import SecretStr
from sqlalchemy import Engine, select

from llmops import settings
from llmops.demo import generate_traces
from llmops.report.slack import OUTBOX
from llmops.store.engine import get_engine
from llmops.store.writer import write_traces
from prefect_llmops.blocks.slack import SlackDigest
from prefect_llmops.flows.daily_digest import ARTIFACT_KEY, DigestNotDelivered, daily_digest
from prefect_llmops.tasks.digest import send_alert
from tests.e2e.slack_server import SlackServer

DAY = date(2026, 11, 26)


@pytest.fixture(autouse=True)
def no_slack_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (settings.SLACK_BOT_TOKEN, settings.SLACK_CHANNEL, settings.SLACK_WEBHOOK_URL, settings.SLACK_API_URL):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def engine() -> Engine:
    engine = get_engine()
    write_traces(engine, list(generate_traces(days=8, end_day=DAY, calls_per_weekday=30)))
    return engine


def outbox(engine: Engine) -> list[dict]:
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(select(OUTBOX).order_by(OUTBOX.c.id)).mappings()]


def test_without_slack_the_digest_is_an_artifact_and_waits_in_the_outbox(engine: Engine) -> None:
    report = daily_digest(day=DAY)
    assert report.ok and report.pending == [f"digest:{DAY}:outbox"]
    rows = outbox(engine)
    assert len(rows) == 1 and rows[0]["status"] == "pending" and rows[0]["kind"] == "digest"
    artifact = Artifact.get(ARTIFACT_KEY)
    assert artifact is not None and "# LLM cost & quality — Thu 26 Nov 2026" in artifact.data
    assert f"Outbox `digest:{DAY}:outbox`: pending" in artifact.data
    assert "![Preview of the Slack message](data:image/png;base64," in artifact.data  # the Block Kit, drawn
    assert (settings.home() / "digests" / f"digest-{DAY}-outbox.png").read_bytes().startswith(b"\x89PNG")


def test_delivery_fails_the_run_while_slack_is_down_and_a_rerun_sends_once(engine: Engine) -> None:
    token = "xoxb-flow-test-secret"
    down = SlackServer(token=token).start()
    down.stop()
    SlackDigest(bot_token=SecretStr(token), channel="#llm-ops", base_url=down.api_url).save("digest-test", overwrite=True)
    state = daily_digest(day=DAY, slack_block="digest-test", return_state=True)
    assert state.is_failed()
    with pytest.raises(DigestNotDelivered) as failure:
        state.result()
    assert token not in str(failure.value)
    assert outbox(engine)[0]["status"] == "pending"

    with SlackServer(token=token) as slack:
        SlackDigest(bot_token=SecretStr(token), channel="#llm-ops", base_url=slack.api_url).save("digest-test", overwrite=True)
        first = daily_digest(day=DAY, slack_block="digest-test")
        again = daily_digest(day=DAY, slack_block="digest-test")
        assert first.sent == [f"digest:{DAY}:#llm-ops"] and again.sent == []
        assert len(slack.calls("chat.postMessage")) == 1 and len(slack.calls("files.completeUploadExternal")) == 1
    assert "sent by an earlier run" in Artifact.get(ARTIFACT_KEY).data


def test_alert_task_links_the_flow_run(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_UI_URL", "http://127.0.0.1:4200")
    with SlackServer() as slack:
        monkeypatch.setenv(settings.SLACK_BOT_TOKEN, slack.state.token)
        monkeypatch.setenv(settings.SLACK_CHANNEL, "#llm-alerts")
        monkeypatch.setenv(settings.SLACK_API_URL, slack.api_url)

        @flow(name="alerting-test")
        def alerting() -> str:
            from prefect.runtime import flow_run

            send_alert("promotion", "support-chat 2.4.0 to production", "canary passed every gate", "info")
            return flow_run.id

        run_id = alerting()
        blocks = str(slack.state.messages[0]["blocks"])
    assert f"/runs/flow-run/{run_id}|Open the Prefect flow run>" in blocks
    assert outbox(engine)[0]["status"] == "sent"
