"""What the end-to-end tests share: a local Slack-compatible server per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.slack_server import SlackServer


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    """A Slack-compatible server on a free port (the Web API and a webhook), stopped after the test."""
    with SlackServer() as server:
        yield server
