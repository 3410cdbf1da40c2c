"""The simulator through the official anthropic SDK, as applications and the flows use it."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import anthropic
import httpx
import pytest

from llmops.sim import SimConfig, SimServer

pytestmark = pytest.mark.e2e

SONNET = "claude-3-5-sonnet-20241022"
POLICY_PROMPT = "You are Acme Corp's support assistant. Follow the refund policy."
QUESTION = [{"role": "user", "content": "I want a refund for my blender."}]
NO_FAULTS = {
    "error_rate_429": 0.0,
    "error_rate_529": 0.0,
    "error_rate_500": 0.0,
    "hang_rate": 0.0,
    "seed": 7,
    "provider_updated_models": [],
    "batch_delay_seconds": 0.1,
}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    config = SimConfig(latency_median_ms=1, ttft_ms=1, retry_after_seconds=0.01, **NO_FAULTS)
    with SimServer(config) as server:
        yield server


@pytest.fixture(autouse=True)
def fault_free(sim: SimServer) -> None:
    sim.configure(**NO_FAULTS)
    sim.reset_stats()


@pytest.fixture
def client(sim: SimServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=sim.base_url, api_key="sim", max_retries=0)


def wait_until_ended(client: anthropic.Anthropic, batch_id: str) -> anthropic.types.messages.MessageBatch:
    for _ in range(500):
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
        time.sleep(0.02)
    raise AssertionError(f"batch {batch_id} never ended")


def test_create_answers_an_alias_under_its_dated_id(client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.create(
        model="claude-3-5-sonnet-latest", max_tokens=512, system=POLICY_PROMPT, messages=QUESTION
    )
    message = raw.parse()
    assert raw.headers["request-id"].startswith("req_")
    assert message.id.startswith("msg_") and message.model == SONNET
    assert message.stop_reason == "end_turn" and "refund" in message.content[0].text
    tokens = client.messages.count_tokens(model=SONNET, system=POLICY_PROMPT, messages=QUESTION)
    assert message.usage.input_tokens == tokens.input_tokens > 0
    assert message.usage.output_tokens > 0


def test_stream_events_arrive_in_order_and_match_the_plain_answer(client: anthropic.Anthropic) -> None:
    plain = client.messages.create(model=SONNET, max_tokens=512, system=POLICY_PROMPT, messages=QUESTION)
    events = list(client.messages.create(model=SONNET, max_tokens=512, system=POLICY_PROMPT, messages=QUESTION, stream=True))
    kinds = [event.type for event in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    deltas = [event.delta.text for event in events if event.type == "content_block_delta"]
    assert len(deltas) > 3
    assert "".join(deltas) == plain.content[0].text
    message_delta = events[-2]
    assert message_delta.delta.stop_reason == "end_turn"
    assert message_delta.usage.output_tokens == plain.usage.output_tokens


def test_stream_helper_gives_text_and_final_message(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="claude-3-5-haiku-latest", max_tokens=8, messages=QUESTION) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert final.content[0].text == text
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 8
    assert final.model == "claude-3-5-haiku-20241022"


def test_async_client(sim: SimServer) -> None:
    async def ask() -> anthropic.types.Message:
        async with anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="sim") as client:
            return await client.messages.create(
                model=SONNET,
                max_tokens=64,
                messages=QUESTION,
                stop_sequences=["order number"],
                system="Always ask for the order number before you look up an order.",
            )

    message = asyncio.run(ask())
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "order number"


def test_cache_control_prefix_is_written_then_read(client: anthropic.Anthropic) -> None:
    system = [{"type": "text", "text": "Acme policy handbook. " * 300, "cache_control": {"type": "ephemeral"}}]
    first = client.messages.create(model=SONNET, max_tokens=64, system=system, messages=QUESTION)
    second = client.messages.create(model=SONNET, max_tokens=64, system=system, messages=QUESTION)
    total = client.messages.count_tokens(model=SONNET, system=system, messages=QUESTION).input_tokens
    assert first.usage.cache_creation_input_tokens > 0 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens + second.usage.cache_read_input_tokens == total


def test_batch_results_by_custom_id(client: anthropic.Anthropic) -> None:
    params = {"model": SONNET, "max_tokens": 512, "system": POLICY_PROMPT, "messages": QUESTION}
    batch = client.messages.batches.create(
        requests=[
            {"custom_id": "good", "params": params},
            {"custom_id": "unknown-model", "params": {**params, "model": "claude-9"}},
        ]
    )
    assert batch.processing_status == "in_progress" and batch.request_counts.processing == 2
    ended = wait_until_ended(client, batch.id)
    assert ended.request_counts.succeeded == 1 and ended.request_counts.errored == 1
    assert ended.results_url and ended.results_url.startswith("http://")
    results = {line.custom_id: line.result for line in client.messages.batches.results(batch.id)}
    direct = client.messages.create(**params)
    assert results["good"].type == "succeeded"
    assert results["good"].message.content[0].text == direct.content[0].text
    assert results["good"].message.usage.service_tier == "batch"
    assert results["unknown-model"].type == "errored"
    assert results["unknown-model"].error.error.type == "not_found_error"


def test_batch_cancel_list_and_delete(sim: SimServer, client: anthropic.Anthropic) -> None:
    sim.configure(batch_delay_seconds=60)
    request = {"custom_id": "a", "params": {"model": SONNET, "max_tokens": 16, "messages": QUESTION}}
    created = [client.messages.batches.create(requests=[request]) for _ in range(3)]
    canceling = client.messages.batches.cancel(created[0].id)
    assert canceling.processing_status == "canceling"
    ended = wait_until_ended(client, created[0].id)
    assert ended.request_counts.canceled == 1
    assert [line.result.type for line in client.messages.batches.results(created[0].id)] == ["canceled"]

    first_page = client.messages.batches.list(limit=2)
    assert [batch.id for batch in first_page.data] == [created[2].id, created[1].id]
    assert first_page.has_more
    every_id = [batch.id for batch in client.messages.batches.list(limit=2)]
    assert every_id[:3] == [created[2].id, created[1].id, created[0].id]

    with pytest.raises(anthropic.BadRequestError, match="cancel it"):
        client.messages.batches.delete(created[1].id)
    assert client.messages.batches.delete(created[0].id).type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(created[0].id)
    for batch in created[1:]:
        client.messages.batches.cancel(batch.id)


def test_rate_limit_carries_retry_after_and_retries_recover(sim: SimServer, client: anthropic.Anthropic) -> None:
    sim.configure(error_rate_429=1.0)
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model=SONNET, max_tokens=16, messages=QUESTION)
    assert caught.value.response.headers["retry-after"] == "0.01"
    assert caught.value.body["error"]["type"] == "rate_limit_error"

    sim.configure(error_rate_429=0.5, seed=3)
    patient = anthropic.Anthropic(base_url=sim.base_url, api_key="sim", max_retries=10)
    for _ in range(4):
        assert patient.messages.create(model=SONNET, max_tokens=16, messages=QUESTION).content
    counts = sim.stats()["by_endpoint"]["POST /v1/messages"]
    assert counts["200"] == 4 and counts["429"] >= 2


@pytest.mark.parametrize(
    ("rate", "status", "error_class"),
    [("error_rate_529", 529, anthropic.OverloadedError), ("error_rate_500", 500, anthropic.InternalServerError)],
)
def test_server_errors(sim: SimServer, client: anthropic.Anthropic, rate: str, status: int, error_class: type[Exception]) -> None:
    sim.configure(**{rate: 1.0})
    with pytest.raises(error_class) as caught:
        client.messages.create(model=SONNET, max_tokens=16, messages=QUESTION)
    assert caught.value.status_code == status


def test_hang_makes_the_client_time_out(sim: SimServer) -> None:
    sim.configure(hang_rate=1.0, hang_seconds=30)
    impatient = anthropic.Anthropic(base_url=sim.base_url, api_key="sim", max_retries=0, timeout=0.3)
    with pytest.raises(anthropic.APITimeoutError):
        impatient.messages.create(model=SONNET, max_tokens=16, messages=QUESTION)
    assert sim.stats()["faults"] == {"hang": 1}


def test_missing_key_is_401_and_bearer_is_accepted(sim: SimServer) -> None:
    body = {"model": SONNET, "max_tokens": 16, "messages": QUESTION}
    anonymous = httpx.post(f"{sim.base_url}/v1/messages", json=body)
    assert anonymous.status_code == 401
    assert anonymous.json()["type"] == "error"
    assert anonymous.json()["error"]["type"] == "authentication_error"
    assert anonymous.headers["request-id"]
    bearer = httpx.post(f"{sim.base_url}/v1/messages", json=body, headers={"Authorization": "Bearer sim"})
    assert bearer.status_code == 200


def test_invalid_requests_get_specific_errors(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError, match="claude-9"):
        client.messages.create(model="claude-9", max_tokens=16, messages=QUESTION)
    with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
        client.messages.create(model=SONNET, max_tokens=0, messages=QUESTION)
    with pytest.raises(anthropic.BadRequestError, match="messages"):
        client.messages.create(model=SONNET, max_tokens=16, messages=[])


def test_provider_update_at_runtime_changes_answers_but_not_the_model_id(sim: SimServer, client: anthropic.Anthropic) -> None:
    before = client.messages.create(model=SONNET, max_tokens=512, system=POLICY_PROMPT, messages=QUESTION)
    update = httpx.post(f"{sim.base_url}/_sim/config", json={"provider_updated_models": ["claude-3-5-sonnet-latest"]})
    assert update.json()["provider_updated_models"] == [SONNET]
    after = client.messages.create(model=SONNET, max_tokens=512, system=POLICY_PROMPT, messages=QUESTION)
    assert after.model == before.model == SONNET
    assert after.content[0].text != before.content[0].text


def test_admin_config_rejects_invalid_updates_and_stats_count_requests(sim: SimServer, client: anthropic.Anthropic) -> None:
    rejected = httpx.post(f"{sim.base_url}/_sim/config", json={"error_rate_429": 2})
    assert rejected.status_code == 400 and "error_rate_429" in rejected.json()["error"]["message"]
    unknown = httpx.post(f"{sim.base_url}/_sim/config", json={"latency": 5})
    assert unknown.status_code == 400 and "latency" in unknown.json()["error"]["message"]
    assert httpx.get(f"{sim.base_url}/_sim/config").json()["error_rate_429"] == 0.0

    client.messages.count_tokens(model=SONNET, messages=QUESTION)
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="claude-9", max_tokens=16, messages=QUESTION)
    stats = httpx.get(f"{sim.base_url}/_sim/stats").json()
    assert stats["by_endpoint"] == {"POST /v1/messages/count_tokens": {"200": 1}, "POST /v1/messages": {"404": 1}}
    assert httpx.post(f"{sim.base_url}/_sim/stats/reset").json()["total_requests"] == 0
    assert httpx.get(f"{sim.base_url}/health").json() == {"status": "ok"}


def test_stop_releases_hung_requests_and_leaves_no_thread() -> None:
    server = SimServer(SimConfig(hang_rate=1.0, hang_seconds=600)).start()
    client = anthropic.Anthropic(base_url=server.base_url, api_key="sim", max_retries=0)
    outcomes: list[object] = []

    def call_and_record() -> None:
        try:
            outcomes.append(client.messages.count_tokens(model=SONNET, messages=QUESTION))
        except anthropic.APIError as error:
            outcomes.append(error)

    caller = threading.Thread(target=call_and_record)
    caller.start()
    while not server.stats()["faults"]:
        time.sleep(0.01)
    thread_name = f"llmops-sim:{server.port}"
    server.stop()
    caller.join()
    assert len(outcomes) == 1
    assert thread_name not in [thread.name for thread in threading.enumerate()]


def test_cli_serves_until_terminated() -> None:
    program = "import typer; from cli.sim import sim; typer.run(sim)"
    command = [sys.executable, "-c", program, "--port", "0", "--seed", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first_line = process.stdout.readline() if process.stdout else ""
        url = first_line.rsplit(" ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:"), first_line + (process.stderr.read() if process.stderr else "")
        assert httpx.get(f"{url}/health").json() == {"status": "ok"}
        assert httpx.get(f"{url}/_sim/config").json()["seed"] == 1
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    assert process.returncode == 0
