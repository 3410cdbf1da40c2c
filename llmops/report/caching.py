"""The digest's caching estimate: what a response cache would have saved on one day.

The only part of the digest read from the traces rather than the rollups, because repeats
are only visible per call. One day of traces is grouped in SQL through the timestamp index,
so the cost is one indexed scan of a day, whatever the month's traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Connection, func, select

from llmops.days import day_bounds
from llmops.money import pico_to_usd
from llmops.store.models import Trace

CACHING_METHOD = (
    "Calls of the day with the same model, system prompt hash, user message length and total input "
    "tokens are counted as repeats that a response cache keyed on (system prompt, input) would have "
    "answered; the store keeps no hash of the input itself, so this is an upper bound."
)


@dataclass(frozen=True)
class CachingEstimate:
    """Repeated (system prompt, input) calls of the day and what a response cache would have saved.

    Attributes:
        repeated_requests: Calls beyond the first of each group of identical-looking calls.
        savings_usd: Their cost (each group's average cost per call times its repeats).
        method: How repeats are recognised, for the reader (an upper bound).

    Example:
        >>> CachingEstimate(repeated_requests=2, savings_usd=0.6).savings_usd
        0.6
    """

    repeated_requests: int
    savings_usd: float
    method: str = CACHING_METHOD


def caching_estimate(connection: Connection, day: date, zone: ZoneInfo, environment: str | None) -> CachingEstimate:
    """Count the day's repeated calls and what answering them from a cache would have saved.

    Only successful, priced calls with a system prompt hash and a user message length count;
    see ``CACHING_METHOD`` for what makes two calls "the same".

    Args:
        connection: A connection to the store.
        day: The local calendar day.
        zone: The timezone that cuts the day.
        environment: Only this environment's calls, or None for all.

    Returns:
        The number of repeated calls and the dollars they cost, rounded to micro-dollars.

    Example:
        ```python
        with engine.connect() as connection:
            estimate = caching_estimate(connection, date(2026, 11, 26), ZoneInfo("UTC"), None)
        print(estimate.repeated_requests, estimate.savings_usd)
        ```
    """
    start, end = day_bounds(day, zone)
    total_input = Trace.input_tokens + Trace.cache_read_input_tokens + Trace.cache_creation_input_tokens
    query = (
        select(func.count().label("n"), func.sum(Trace.cost_usd, type_=BigInteger).label("pico"))
        .where(
            Trace.timestamp >= start,
            Trace.timestamp < end,
            Trace.status == "ok",
            Trace.system_prompt_hash.is_not(None),
            Trace.user_message_length.is_not(None),
            Trace.cost_usd.is_not(None),
        )
        .group_by(Trace.model, Trace.system_prompt_hash, Trace.user_message_length, total_input)
        .having(func.count() > 1)
    )
    if environment:
        query = query.where(Trace.environment == environment)
    repeated, saved = 0, Decimal(0)
    for n, pico in connection.execute(query):
        repeated += n - 1
        saved += pico_to_usd(int(pico or 0)) * (n - 1) / n
    return CachingEstimate(repeated, float(round(saved, 6)))
