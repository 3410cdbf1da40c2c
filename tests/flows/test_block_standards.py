"""Prefect's own standard test suite for Blocks, over every Block of the collection: a description,
a documentation link, a code example in the catalog's ``x = Block.load("BLOCK_NAME")`` form,
every field described, and a square logo.

Nothing here reaches the internet: the logo's public address (this repository's docs/logo.png)
is answered from the checkout's copy of that file, as a mirror would.
"""

from __future__ import annotations

import io
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite

from prefect_llmops.blocks import AnthropicModel, LinguaModel, SlackDigest, TraceSource, TraceStore
from prefect_llmops.blocks.catalog import LOGO_URL

REPO = Path(__file__).resolve().parents[2]
LOGO_FILE = REPO / "docs" / "logo.png"


class _ProjectFiles(urllib.request.BaseHandler):
    """Answers the repository's raw-file URLs from the checkout; everything else is offline."""

    handler_order = 100  # before urllib's own HTTPS handler

    def https_open(self, request: urllib.request.Request) -> urllib.response.addinfourl:
        if request.full_url != LOGO_URL:
            raise urllib.error.URLError(f"offline: {request.full_url}")
        headers = Message()
        headers["Content-Type"] = "image/png"
        response = urllib.response.addinfourl(io.BytesIO(LOGO_FILE.read_bytes()), headers, request.full_url, 200)
        response.msg = "OK"  # what urllib's response processors read
        return response


@pytest.fixture(autouse=True)
def project_files_online() -> Iterator[None]:
    urllib.request.install_opener(urllib.request.build_opener(_ProjectFiles()))
    yield
    urllib.request.install_opener(None)  # type: ignore[arg-type]  # None restores urllib's default opener


def test_the_logo_address_is_this_repositorys_logo_file() -> None:
    assert LOGO_URL.endswith("/main/docs/logo.png") and LOGO_FILE.is_file()


class TestTraceStore(BlockStandardTestSuite):
    @pytest.fixture
    def block(self) -> type[Block]:
        return TraceStore


class TestTraceSource(BlockStandardTestSuite):
    @pytest.fixture
    def block(self) -> type[Block]:
        return TraceSource


class TestAnthropicModel(BlockStandardTestSuite):
    @pytest.fixture
    def block(self) -> type[Block]:
        return AnthropicModel


class TestSlackDigest(BlockStandardTestSuite):
    @pytest.fixture
    def block(self) -> type[Block]:
        return SlackDigest


class TestLinguaModel(BlockStandardTestSuite):
    @pytest.fixture
    def block(self) -> type[Block]:
        return LinguaModel
