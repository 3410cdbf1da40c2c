"""Pricing: genai-prices' numbers, Anthropic's token convention, batch discount, unknown models."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price

from llmops.pricing import TokenUsage, price_call

NOV_2025 = datetime(2025, 11, 15, tzinfo=UTC)


def test_seed_reference_prices() -> None:
    usage = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert price_call("claude-3-5-sonnet-20241022", usage, NOV_2025) == Decimal(18)
    assert price_call("claude-3-haiku-20240307", usage, NOV_2025) == Decimal("1.5")


def test_cache_tokens_are_priced_at_cache_rates_on_top_of_uncached_input() -> None:
    # Anthropic reports input_tokens WITHOUT cache reads/writes.
    usage = TokenUsage(input_tokens=1000, output_tokens=0, cache_read_input_tokens=10_000, cache_creation_input_tokens=2000)
    expected = Decimal("1000") * 3 / 10**6 + Decimal("10000") * Decimal("0.3") / 10**6 + Decimal(2000) * Decimal("3.75") / 10**6
    assert price_call("claude-3-5-sonnet-20241022", usage, NOV_2025) == expected


def test_batch_calls_cost_half() -> None:
    usage = TokenUsage(input_tokens=5000, output_tokens=700)
    for model in ("claude-3-5-sonnet-20241022", "claude-sonnet-4-5-20250929"):
        full = price_call(model, usage, NOV_2025)
        assert price_call(model, usage, NOV_2025, is_batch=True) == full / 2


def test_unknown_model_is_none_not_zero() -> None:
    assert price_call("acme-llm-unreleased", TokenUsage(100, 100), NOV_2025) is None


@pytest.mark.parametrize("model", ["claude-3-5-sonnet-20241022", "claude-sonnet-4-5-20250929", "claude-3-haiku-20240307"])
def test_fast_path_equals_genai_prices_full_calculation_including_tiers(model: str) -> None:
    rng = random.Random(7)
    for _ in range(200):
        usage = TokenUsage(
            rng.randint(0, 400_000), rng.randint(0, 8000), rng.choice([0, rng.randint(0, 300_000)]), rng.randint(0, 9000)
        )
        reference = calc_price(
            Usage(
                input_tokens=usage.total_input(),
                output_tokens=usage.output_tokens,
                cache_read_tokens=usage.cache_read_input_tokens,
                cache_write_tokens=usage.cache_creation_input_tokens,
            ),
            model,
            genai_request_timestamp=NOV_2025,
        ).total_price
        assert price_call(model, usage, NOV_2025) == reference
