"""Cost of a call from its usage, with genai-prices' price data.

Two facts shape this module:
- Anthropic's ``usage.input_tokens`` EXCLUDES cache reads and writes; genai-prices expects
  ``input_tokens`` to include them. We add them back before asking.
- A full genai-prices calculation costs ~0.15 ms. Prices are linear in token counts below a
  model's first tier threshold, so per (model, day, batch) we ask genai-prices once for the
  price of one million tokens of each kind and multiply; rows at or above a tier threshold
  get the full calculation.

An unknown model is never priced at 0: it gets ``cost=None`` and ``cost_source="unknown_model"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import lru_cache

from genai_prices import Usage, calc_price
from genai_prices.types import TieredPrices

from llmops.money import PICO, usd_to_pico

COST_PROVIDED = "provided"
COST_COMPUTED = "computed"
COST_UNKNOWN_MODEL = "unknown_model"
"""The ``cost_source`` of a stored trace: kept as given, computed here, or unpriced."""

# Anthropic's Message Batches API bills every model at half price; genai-prices carries that
# as a price variant for some models only, so the discount is applied here when it is not.
ANTHROPIC_BATCH_DISCOUNT = Decimal("0.5")
MTOK = 1_000_000


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Usage in Anthropic's convention: ``input_tokens`` without the cached ones.

    Example:
        >>> TokenUsage(input_tokens=100, output_tokens=10, cache_read_input_tokens=1000).total_input()
        1100
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    def total_input(self) -> int:
        """Every input token: uncached, cache reads and cache writes."""
        return self.input_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens

    def for_genai_prices(self) -> Usage:
        """The same usage in genai-prices' convention, whose ``input_tokens`` include the cached ones."""
        return Usage(
            input_tokens=self.total_input(),
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cache_read_input_tokens,
            cache_write_tokens=self.cache_creation_input_tokens,
        )


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per token of each kind, valid for inputs below ``tier_threshold`` tokens."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    tier_threshold: int | None
    batch_multiplier: Decimal

    def picodollars_per_token(self) -> tuple[int, int, int, int] | None:
        """The four rates in integer picodollars, when they are exact integers (almost always)."""
        exact = []
        for rate in (self.input, self.output, self.cache_read, self.cache_write):
            pico = rate * self.batch_multiplier * PICO
            if pico != pico.to_integral_value():
                return None
            exact.append(int(pico))
        return exact[0], exact[1], exact[2], exact[3]

    def cost(self, usage: TokenUsage) -> Decimal:
        """Cost in USD of ``usage`` at these rates (valid below ``tier_threshold`` input tokens)."""
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_read_input_tokens * self.cache_read
            + usage.cache_creation_input_tokens * self.cache_write
        ) * self.batch_multiplier


def _price_context(is_batch: bool) -> dict[str, str] | None:
    return {"processing": "batch"} if is_batch else None


def _at(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=UTC)


def _full_price(model: str, usage: TokenUsage, day: date, is_batch: bool) -> Decimal:
    """genai-prices' own calculation, with the batch discount applied where it lacks one."""
    result = calc_price(usage.for_genai_prices(), model, genai_request_timestamp=_at(day), price_context=_price_context(is_batch))
    return result.total_price * _batch_multiplier(model, day, is_batch)


@lru_cache(maxsize=4096)
def _batch_multiplier(model: str, day: date, is_batch: bool) -> Decimal:
    if not is_batch:
        return Decimal(1)
    probe = TokenUsage(input_tokens=1000, output_tokens=1000)  # below any tier threshold
    standard = calc_price(probe.for_genai_prices(), model, genai_request_timestamp=_at(day)).total_price
    batch = calc_price(probe.for_genai_prices(), model, genai_request_timestamp=_at(day), price_context=_price_context(True))
    if batch.total_price < standard or batch.provider.id != "anthropic":
        return Decimal(1)
    return ANTHROPIC_BATCH_DISCOUNT


@lru_cache(maxsize=4096)
def rates_for(model: str, day: date, is_batch: bool) -> Rates | None:
    """Per-token rates for ``model`` on ``day``, or None when genai-prices does not know it.

    Cached: genai-prices is asked once per model, day and batch flag.

    Args:
        model: A model id.
        day: The UTC day whose prices apply (prices change over time).
        is_batch: Message Batches pricing (half price on Anthropic).

    Returns:
        USD per token of each kind, the first tier threshold, and the batch multiplier.

    Example:
        >>> rates_for("claude-3-5-sonnet-20241022", date(2025, 11, 15), False).output
        Decimal('0.000015')
    """
    try:
        calc = calc_price(
            TokenUsage(input_tokens=1).for_genai_prices(),
            model,
            genai_request_timestamp=_at(day),
            price_context=_price_context(is_batch),
        )
    except LookupError:
        return None
    prices = calc.model_price
    thresholds = [tier.start for value in vars(prices).values() if isinstance(value, TieredPrices) for tier in value.tiers]
    return Rates(
        input=_base_rate(prices, "input_mtok"),
        output=_base_rate(prices, "output_mtok"),
        cache_read=_base_rate(prices, "cache_read_mtok", fallback=prices.input_mtok),
        cache_write=_base_rate(prices, "cache_write_mtok", fallback=prices.input_mtok),
        tier_threshold=min(thresholds) if thresholds else None,
        batch_multiplier=_batch_multiplier(model, day, is_batch),
    )


def _base_rate(prices: object, key: str, fallback: object = None) -> Decimal:
    """The below-first-tier price of ``key`` per token."""
    value = getattr(prices, key, None)
    if value is None:
        value = fallback
    if value is None:
        return Decimal(0)
    if isinstance(value, TieredPrices):
        value = value.base
    return Decimal(str(value)) / MTOK


def price_call(model: str, usage: TokenUsage, when: datetime, is_batch: bool = False) -> Decimal | None:
    """Cost in USD of one call, or None for a model genai-prices does not know.

    Args:
        model: The model id as requested.
        usage: Tokens in Anthropic's convention (uncached input apart from cache reads and writes).
        when: When the call was made; a naive time is taken as UTC.
        is_batch: Made through the Message Batches API.

    Returns:
        The cost (never 0 for an unknown model: None).

    Example:
        >>> price_call("claude-3-5-sonnet-20241022", TokenUsage(1200, 300), datetime(2025, 11, 15, tzinfo=UTC))
        Decimal('0.00810000')
        >>> price_call("acme-ft-support-v1", TokenUsage(1200, 300), datetime(2025, 11, 15)) is None
        True
    """
    day = when.astimezone(UTC).date() if when.tzinfo else when.date()
    rates = rates_for(model, day, is_batch)
    if rates is None:
        return None
    if rates.tier_threshold is not None and usage.total_input() >= rates.tier_threshold:
        return _full_price(model, usage, day, is_batch)
    return rates.cost(usage)


@lru_cache(maxsize=4096)
def _pico_rates(model: str, day: date, is_batch: bool) -> tuple[Rates, tuple[int, int, int, int] | None] | None:
    rates = rates_for(model, day, is_batch)
    return None if rates is None else (rates, rates.picodollars_per_token())


def price_picodollars(
    model: str,
    input_tokens: int,
    output_tokens: int,
    cache_read_input_tokens: int,
    cache_creation_input_tokens: int,
    day: date,
    is_batch: bool,
) -> int | None:
    """``price_call`` in integer picodollars, for the ingest hot path (no Decimal per row).

    Args:
        model: The model id as requested.
        input_tokens: Uncached input tokens.
        output_tokens: Output tokens.
        cache_read_input_tokens: Input tokens read from the prompt cache.
        cache_creation_input_tokens: Input tokens written to the prompt cache.
        day: The call's UTC day.
        is_batch: Made through the Message Batches API.

    Returns:
        The cost in picodollars (1e-12 USD), or None for an unknown model.

    Example:
        >>> price_picodollars("claude-3-5-sonnet-20241022", 1200, 300, 0, 0, date(2025, 11, 15), is_batch=True)
        4050000000
    """
    found = _pico_rates(model, day, is_batch)
    if found is None:
        return None
    rates, pico = found
    below_tiers = (
        rates.tier_threshold is None
        or input_tokens + cache_read_input_tokens + cache_creation_input_tokens < rates.tier_threshold
    )
    if pico is not None and below_tiers:
        return (
            input_tokens * pico[0]
            + output_tokens * pico[1]
            + cache_read_input_tokens * pico[2]
            + cache_creation_input_tokens * pico[3]
        )
    usage = TokenUsage(input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens)
    cost = rates.cost(usage) if below_tiers else _full_price(model, usage, day, is_batch)
    return usd_to_pico(cost)


def is_known_model(model: str) -> bool:
    """Whether genai-prices can price ``model`` today (prompt validation warns when it cannot).

    Example:
        >>> is_known_model("claude-3-5-sonnet-20241022"), is_known_model("acme-ft-support-v1")
        (True, False)
    """
    return rates_for(model, datetime.now(UTC).date(), False) is not None
