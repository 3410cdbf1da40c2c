"""The Blocks save to and load from Prefect by name, and never show their secrets."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL
from pydantic import ValidationError

from llmops import settings
from llmops.store.engine import get_engine
from prefect_llmops.blocks import AnthropicModel, TraceSource, TraceStore

PASSWORD = "pw-3c9b71d0"
API_KEY = "sk-ant-test-5f0e2a"


def _shown_in_ui(slug: str, name: str) -> dict[str, object]:
    """The block document as the UI and API show it (secrets not included)."""
    with get_client(sync_client=True) as client:
        return client.read_block_document_by_name(name, slug, include_secrets=False).data


def test_trace_source_round_trips_by_name_and_masks_its_url() -> None:
    url = f"postgresql+psycopg://reader:{PASSWORD}@app-db:5432/app"
    TraceSource(url=url, table="app.llm_calls", column_map={"trace_id": "call_id"}, batch_size=500).save(
        "source-roundtrip", overwrite=True
    )

    loaded = Block.load("llmops-trace-source/source-roundtrip")
    config = loaded.config()

    assert isinstance(loaded, TraceSource)
    assert config.url.get_secret_value() == url
    assert (config.table, config.column_map, config.batch_size) == ("app.llm_calls", {"trace_id": "call_id"}, 500)
    assert config.watermark_name == "source-roundtrip"
    assert PASSWORD not in repr(loaded) and PASSWORD not in str(loaded)
    assert PASSWORD not in str(_shown_in_ui("llmops-trace-source", "source-roundtrip"))


def test_trace_store_without_url_is_the_configured_store_and_with_one_masks_it() -> None:
    TraceStore().save("store-default", overwrite=True)
    TraceStore(database_url=f"postgresql+psycopg://llmops:{PASSWORD}@db/llmops").save("store-pg", overwrite=True)

    default_engine = TraceStore.load("store-default").get_engine()
    remote = TraceStore.load("store-pg")

    assert default_engine is get_engine(settings.database_url())
    assert remote.database_url is not None and PASSWORD in remote.database_url.get_secret_value()
    assert PASSWORD not in repr(remote)
    assert PASSWORD not in str(_shown_in_ui("llmops-trace-store", "store-pg"))


def test_anthropic_model_round_trips_and_builds_a_configured_client() -> None:
    AnthropicModel(
        model="claude-3-5-sonnet-20241022",
        api_key=API_KEY,
        base_url="http://127.0.0.1:8765",
        max_retries=4,
        timeout_seconds=30,
    ).save("model-roundtrip", overwrite=True)

    block = AnthropicModel.load("model-roundtrip")
    client = block.client()

    assert block.model == "claude-3-5-sonnet-20241022"
    assert (client.api_key, str(client.base_url).rstrip("/"), client.max_retries) == (
        API_KEY,
        "http://127.0.0.1:8765",
        4,
    )
    assert client.timeout == 30
    assert API_KEY not in repr(block)
    assert API_KEY not in str(_shown_in_ui("llmops-anthropic-model", "model-roundtrip"))


def test_anthropic_model_key_falls_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    block = AnthropicModel(model="claude-3-haiku-20240307")

    monkeypatch.setenv(settings.ANTHROPIC_API_KEY, API_KEY)
    assert block.client().api_key == API_KEY

    monkeypatch.delenv(settings.ANTHROPIC_API_KEY)
    with pytest.raises(ValueError, match="set api_key on this block or the ANTHROPIC_API_KEY variable"):
        block.client()


@pytest.mark.parametrize("alias", ["claude-3-5-sonnet-latest", "claude-sonnet-4-5", "claude-3-5-sonnet"])
def test_anthropic_model_refuses_aliases(alias: str) -> None:
    with pytest.raises(ValidationError, match="not a dated snapshot id"):
        AnthropicModel(model=alias)


def test_block_load_by_slug_works_in_a_process_that_never_imports_blocks() -> None:
    """The ``prefect.collections`` entry point registers the classes, as a worker process needs."""
    TraceSource(url="sqlite:///app.db", table="llm_calls").save("source-entry-point", overwrite=True)
    script = (
        "from prefect.blocks.core import Block; "
        "block = Block.load('llmops-trace-source/source-entry-point'); "
        "print(type(block).__module__, block.config().table)"
    )
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}

    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["prefect_llmops.blocks.source", "llm_calls"]
