"""The projected saving of a shorter prompt, from the prompt's own traces on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from llmops.compression.savings import WINDOW_DAYS, project, recent_traffic
from llmops.records import TraceRecord
from llmops.store.writer import write_traces
from tests.factories import trace

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SONNET = "claude-3-5-sonnet-20241022"
SONNET_PER_TOKEN = {"input": Decimal(3) / 10**6, "cache_read": Decimal("0.3") / 10**6, "cache_write": Decimal("3.75") / 10**6}


def calls(count: int, *, days_ago: float = 1, **overrides: object) -> list[TraceRecord]:
    fields: dict[str, object] = {"prompt_name": "help-center", "prompt_version": "1.0.0", "model": SONNET, **overrides}
    return [trace(timestamp=NOW - timedelta(days=days_ago, minutes=index), **fields) for index in range(count)]


def test_each_call_saves_at_the_price_it_paid_for_its_prompt(store: Engine) -> None:
    write_traces(store, [
        *calls(100, input_tokens=2_400),
        *calls(300, input_tokens=100, cache_read_input_tokens=2_300),
        *calls(20, input_tokens=100, cache_creation_input_tokens=2_300),
        *calls(5, input_tokens=2_400, is_batch=True),
        *calls(7, model="acme-ft-support-v1"),
        *calls(50, days_ago=WINDOW_DAYS + 2),  # too old
        *calls(40, prompt_version="0.9.0"),  # another version
        *calls(9, status="error", error_type="overloaded_error", input_tokens=0, output_tokens=0),  # never reached the model
    ])  # fmt: skip

    traffic = recent_traffic(store, "help-center", "1.0.0", SONNET, now=NOW)
    projection = project(traffic, tokens_saved=1_000)

    paid = 100 * SONNET_PER_TOKEN["input"] + 300 * SONNET_PER_TOKEN["cache_read"] + 20 * SONNET_PER_TOKEN["cache_write"]
    batch = 5 * SONNET_PER_TOKEN["input"] / 2
    assert projection.calls == 432
    assert projection.usd_per_month == ((paid + batch) * 1_000).quantize(Decimal("0.01"))
    assert projection.usd_per_month_if_uncached == ((425 - 5) * SONNET_PER_TOKEN["input"] * 1_000 + batch * 1_000).quantize(
        Decimal("0.01")
    )
    assert projection.unpriced_calls == 7
    assert projection.cache_read_share == pytest.approx(300 / 432)
    summary = projection.summary()
    assert (
        "69% of the calls read the prompt from the cache" in summary and "7 calls on models genai-prices cannot price" in summary
    )


def test_time_to_first_token_is_estimated_from_uncached_calls_with_an_interval(store: Engine) -> None:
    rng = random.Random(11)
    sizes = [rng.randint(200, 8_000) for _ in range(400)]
    write_traces(store, [
        *(trace(timestamp=NOW - timedelta(hours=index + 1), model=SONNET, input_tokens=size, ttft_ms=400 + 0.05 * size + rng.gauss(0, 30))
          for index, size in enumerate(sizes)),
        *calls(50, input_tokens=100, cache_read_input_tokens=2_300, ttft_ms=5_000.0),  # cached calls are not on the line
    ])  # fmt: skip

    traffic = recent_traffic(store, "help-center", "1.0.0", SONNET, now=NOW)
    assert traffic.ttft is not None and traffic.ttft.calls == 400
    assert traffic.ttft.low < 0.05 < traffic.ttft.high and traffic.ttft.high - traffic.ttft.low < 0.01
    estimate, low, high = project(traffic, tokens_saved=1_000).ttft_ms or (0, 0, 0)
    assert low < 50 < high and estimate == pytest.approx(50, abs=5)


def test_a_version_without_traffic_projects_nothing_and_says_why(store: Engine) -> None:
    projection = project(recent_traffic(store, "help-center", "1.0.0", SONNET, now=NOW), tokens_saved=800)
    assert projection.usd_per_month == 0 and projection.ttft_ms is None
    assert projection.summary() == "800 tokens fewer per call; no saving projected: the version had no calls in the last 30 days"
