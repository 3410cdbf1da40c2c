"""The tracing wrapper against the real SDK and a real local Anthropic-compatible server."""

from __future__ import annotations

import asyncio
import gc
import hashlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import anthropic
import pytest
import pytest_asyncio

from llmops.records import TraceRecord
from llmops.sim import SimConfig, SimServer
from llmops.tracing import TracedClient, TraceRecorder, trace_anthropic, trace_context

pytestmark = pytest.mark.e2e

MODEL = "claude-3-5-sonnet-20241022"
SYSTEM = "You are a customer support assistant for Acme Corp."
QUESTION = "Where is my order #1234?"
CLIENT_DEFAULTS = {
    "feature": "chat_response",
    "prompt_name": "support",
    "prompt_version": "2.3.1",
    "environment": "production",
}
BASELINE = {"error_rate_429": 0.0, "error_rate_529": 0.0, "error_rate_500": 0.0, "hang_rate": 0.0}


def request(**overrides: object) -> dict[str, object]:
    return {
        "model": MODEL,
        "max_tokens": 64,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": QUESTION}],
        **overrides,
    }


class ListSink:
    def __init__(self) -> None:
        self.records: list[TraceRecord] = []

    def __call__(self, records: list[TraceRecord]) -> None:
        self.records.extend(records)


class Traces:
    """The recorder a test's client writes to, and what reached its sink."""

    def __init__(self) -> None:
        self.sink = ListSink()
        self.recorder = TraceRecorder(self.sink)

    def flushed(self) -> list[TraceRecord]:
        assert self.recorder.flush(timeout=10)
        return self.sink.records

    def only(self) -> TraceRecord:
        records = self.flushed()
        assert len(records) == 1, records
        return records[0]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(latency_median_ms=0, ttft_ms=20, retry_after_seconds=0, seed=7)) as server:
        yield server


@pytest.fixture(autouse=True)
def healthy_sim(sim: SimServer) -> Iterator[None]:
    yield
    sim.configure(**BASELINE)


@pytest.fixture
def traces() -> Iterator[Traces]:
    made = Traces()
    yield made
    made.recorder.close()


@pytest.fixture
def client(sim: SimServer, traces: Traces) -> Iterator[anthropic.Anthropic]:
    raw = anthropic.Anthropic(base_url=sim.base_url, api_key="sim", max_retries=0)
    yield trace_anthropic(raw, recorder=traces.recorder, **CLIENT_DEFAULTS)
    raw.close()


@pytest_asyncio.fixture
async def async_client(sim: SimServer, traces: Traces) -> AsyncIterator[anthropic.AsyncAnthropic]:
    raw = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="sim", max_retries=0)
    yield trace_anthropic(raw, recorder=traces.recorder, **CLIENT_DEFAULTS)
    await raw.close()


def assert_client_defaults(record: TraceRecord) -> None:
    assert (record.feature, record.prompt_name, record.prompt_version, record.environment) == tuple(CLIENT_DEFAULTS.values())


def assert_matches_message(record: TraceRecord, message: anthropic.types.Message) -> None:
    """The trace carries the response's id, model, usage and stop reason."""
    assert record.trace_id == message.id
    assert record.model == MODEL
    assert record.response_model == message.model
    assert record.input_tokens == message.usage.input_tokens
    assert record.output_tokens == message.usage.output_tokens
    assert record.cache_read_input_tokens == (message.usage.cache_read_input_tokens or 0)
    assert record.cache_creation_input_tokens == (message.usage.cache_creation_input_tokens or 0)
    assert record.finish_reason == message.stop_reason
    assert record.status == "ok" and record.error_type is None


def test_plain_create_is_recorded_as_one_trace(client: anthropic.Anthropic, traces: Traces) -> None:
    before = datetime.now(UTC)
    message = client.messages.create(**request())

    record = traces.only()
    assert_matches_message(record, message)
    assert message.usage.output_tokens > 0 and record.finish_reason is not None
    assert before <= record.timestamp <= datetime.now(UTC)
    assert record.latency_ms is not None and record.latency_ms > 0
    assert record.ttft_ms is None
    assert_client_defaults(record)
    assert record.user_message_length == len(QUESTION)
    assert record.system_prompt_hash == hashlib.sha256(SYSTEM.encode()).hexdigest()[:16]
    assert record.cost_usd is None and record.is_batch is False


def test_stream_true_records_usage_and_time_to_first_token(client: anthropic.Anthropic, traces: Traces) -> None:
    system_blocks = [{"type": "text", "text": "You are a customer "}, {"type": "text", "text": "support assistant."}]
    conversation = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": [{"type": "text", "text": "My order "}, {"type": "text", "text": "is late."}]},
    ]
    events = list(client.messages.create(**request(system=system_blocks, messages=conversation), stream=True))

    start = next(e for e in events if e.type == "message_start")
    delta = next(e for e in events if e.type == "message_delta")
    record = traces.only()
    assert record.trace_id == start.message.id
    assert record.response_model == start.message.model
    assert record.input_tokens == start.message.usage.input_tokens
    assert record.output_tokens == delta.usage.output_tokens > 0
    assert record.finish_reason == delta.delta.stop_reason is not None
    assert record.ttft_ms is not None and record.latency_ms is not None
    assert 0 < record.ttft_ms <= record.latency_ms
    assert record.user_message_length == len("My order is late.")
    assert record.system_prompt_hash == hashlib.sha256(b"You are a customer support assistant.").hexdigest()[:16]


def test_stream_helper_is_recorded_as_one_trace(client: anthropic.Anthropic, traces: Traces) -> None:
    with client.messages.stream(**request()) as stream:
        text = "".join(stream.text_stream)
        message = stream.get_final_message()

    assert text
    record = traces.only()
    assert_matches_message(record, message)
    assert record.ttft_ms is not None and record.latency_ms is not None
    assert record.ttft_ms <= record.latency_ms
    assert_client_defaults(record)


@pytest.mark.asyncio
async def test_async_create_is_recorded(async_client: anthropic.AsyncAnthropic, traces: Traces) -> None:
    message = await async_client.messages.create(**request())

    record = traces.only()
    assert_matches_message(record, message)
    assert_client_defaults(record)


@pytest.mark.asyncio
async def test_async_stream_true_is_recorded(async_client: anthropic.AsyncAnthropic, traces: Traces) -> None:
    stream = await async_client.messages.create(**request(), stream=True)
    events = [event async for event in stream]

    start = next(e for e in events if e.type == "message_start")
    delta = next(e for e in events if e.type == "message_delta")
    record = traces.only()
    assert record.trace_id == start.message.id
    assert record.output_tokens == delta.usage.output_tokens
    assert record.finish_reason == delta.delta.stop_reason
    assert record.ttft_ms is not None and record.latency_ms is not None
    assert record.ttft_ms <= record.latency_ms


@pytest.mark.asyncio
async def test_async_stream_helper_is_recorded(async_client: anthropic.AsyncAnthropic, traces: Traces) -> None:
    async with async_client.messages.stream(**request()) as stream:
        message = await stream.get_final_message()

    record = traces.only()
    assert_matches_message(record, message)
    assert record.ttft_ms is not None


def test_an_api_error_is_recorded_and_reraised_unchanged(sim: SimServer, client: anthropic.Anthropic, traces: Traces) -> None:
    sim.configure(error_rate_529=1.0)

    with pytest.raises(anthropic.OverloadedError) as caught:
        client.messages.create(**request())

    assert caught.value.status_code == 529
    record = traces.only()
    assert (record.status, record.error_type) == ("error", "OverloadedError")
    assert record.trace_id.startswith("trace_")
    assert record.model == MODEL and record.finish_reason is None and record.output_tokens == 0
    assert record.latency_ms is not None
    assert_client_defaults(record)


def test_the_sdks_retries_are_one_trace(sim: SimServer, client: anthropic.Anthropic, traces: Traces) -> None:
    sim.configure(error_rate_429=1.0)

    with pytest.raises(anthropic.RateLimitError):
        client.with_options(max_retries=1).messages.create(**request())

    record = traces.only()
    assert (record.status, record.error_type) == ("error", "RateLimitError")


def test_a_timeout_is_recorded(sim: SimServer, client: anthropic.Anthropic, traces: Traces) -> None:
    sim.configure(hang_rate=1.0, hang_seconds=2)

    with pytest.raises(anthropic.APITimeoutError):
        client.with_options(timeout=0.2).messages.create(**request())

    record = traces.only()
    assert (record.status, record.error_type) == ("error", "APITimeoutError")


def test_an_abandoned_stream_is_recorded_once(client: anthropic.Anthropic, traces: Traces) -> None:
    stream = client.messages.create(**request(), stream=True)
    for _event in stream:
        break
    del stream
    gc.collect()

    record = traces.only()
    assert (record.status, record.finish_reason) == ("ok", None)
    assert record.trace_id.startswith("msg_")
    assert record.latency_ms is not None


def test_a_stream_helper_left_early_is_recorded_once(client: anthropic.Anthropic, traces: Traces) -> None:
    with client.messages.stream(**request()) as stream:
        for _event in stream:
            break
    del stream
    gc.collect()

    record = traces.only()
    assert (record.status, record.finish_reason) == ("ok", None)


def test_trace_context_overrides_client_defaults(client: anthropic.Anthropic, traces: Traces) -> None:
    with trace_context(feature="code_review", user_id="u-42", session_id="s-1", tags=["beta"], metadata={"ticket": 7}):
        client.messages.create(**request())
        with trace_context(prompt_version="2.4.0", tags=["canary"], metadata={"ticket": 8}):
            client.messages.create(**request())
    client.messages.create(**request())

    outer, inner, after = traces.flushed()
    assert (outer.feature, outer.prompt_name, outer.prompt_version) == ("code_review", "support", "2.3.1")
    assert (outer.user_id, outer.session_id, outer.tags, outer.metadata) == ("u-42", "s-1", ["beta"], {"ticket": 7})
    assert (inner.feature, inner.prompt_version, inner.user_id) == ("code_review", "2.4.0", "u-42")
    assert (inner.tags, inner.metadata) == (["beta", "canary"], {"ticket": 8})
    assert_client_defaults(after)
    assert (after.user_id, after.session_id, after.tags, after.metadata) == (None, None, [], {})


@pytest.mark.asyncio
async def test_trace_context_follows_each_asyncio_task(async_client: anthropic.AsyncAnthropic, traces: Traces) -> None:
    async def answer(user: str) -> str:
        with trace_context(user_id=user):
            message = await async_client.messages.create(**request())
        return message.id

    ids = await asyncio.gather(*(answer(f"user-{i}") for i in range(4)))

    users = {record.trace_id: record.user_id for record in traces.flushed()}
    assert users == {message_id: f"user-{i}" for i, message_id in enumerate(ids)}


def test_a_sink_that_always_raises_never_fails_a_call(sim: SimServer) -> None:
    def broken_sink(records: list[TraceRecord]) -> None:
        raise ConnectionError("store is down")

    recorder = TraceRecorder(broken_sink, retry_delays=())
    raw = anthropic.Anthropic(base_url=sim.base_url, api_key="sim", max_retries=0)
    client = trace_anthropic(raw, recorder=recorder)
    try:
        client.messages.create(**request())
        list(client.messages.create(**request(), stream=True))
        with client.messages.stream(**request()) as stream:
            stream.until_done()
        assert recorder.flush(timeout=10)
        assert recorder.stats.dropped_sink_error == 3 and recorder.stats.written == 0
    finally:
        recorder.close()
        raw.close()


def test_the_rest_of_the_client_passes_through_untraced(client: anthropic.Anthropic, traces: Traces) -> None:
    assert client.api_key == "sim"
    count = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    assert count.input_tokens > 0
    assert traces.flushed() == []

    faster = client.with_options(timeout=30)
    assert isinstance(faster, TracedClient) and faster.timeout == 30
    faster.messages.create(**request())
    assert len(traces.flushed()) == 1


def test_wrapping_twice_is_refused(client: anthropic.Anthropic) -> None:
    with pytest.raises(TypeError, match="already traced"):
        trace_anthropic(client)


def test_the_default_sink_writes_to_the_store(sim: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("llmops.store.writer", reason="the store writer is not there yet")
    from sqlalchemy import select

    from llmops.store.engine import dispose_engines, get_engine
    from llmops.store.models import Trace

    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path))
    monkeypatch.delenv("LLMOPS_DATABASE_URL", raising=False)
    recorder = TraceRecorder()
    raw = anthropic.Anthropic(base_url=sim.base_url, api_key="sim", max_retries=0)
    client = trace_anthropic(raw, recorder=recorder, **CLIENT_DEFAULTS)
    try:
        with trace_context(user_id="u-42"):
            message = client.messages.create(**request())
        assert recorder.close(timeout=30)
        assert recorder.stats.written == 1, recorder.stats

        with get_engine().connect() as connection:
            row = connection.execute(select(Trace).where(Trace.trace_id == message.id)).one()
        assert (row.feature, row.prompt_version, row.model) == ("chat_response", "2.3.1", MODEL)
        assert (row.input_tokens, row.output_tokens) == (message.usage.input_tokens, message.usage.output_tokens)
        assert row.user_id is not None and row.user_id != "u-42"
    finally:
        raw.close()
        dispose_engines()
