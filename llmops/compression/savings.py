"""What a shorter system prompt would save, projected from the prompt's own recent traffic.

Fewer prompt tokens save money on every call, but not the same on every call: a system prompt
served from the provider's prompt cache is billed at the cache-read price (a tenth of the input
price on Anthropic's models), so compressing a cached prompt saves far less than the token
count suggests. The projection therefore prices each call's saved tokens at what that call
actually paid for its prompt: the input price, the cache-read price or the cache-write price,
from genai-prices at today's rates (batch calls at the batch discount).

Time to first token falls too, because the model reads fewer tokens before it answers. That
is estimated, not measured: a least-squares line of TTFT against input tokens over the
model's uncached calls in the same window, applied to the tokens saved, with its 95 %
interval. Calls that read the prompt from the cache barely gain time and are counted as zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from scipy import stats as scipy_stats
from sqlalchemy import Engine, and_, case, func, select

from llmops.pricing import rates_for
from llmops.store.engine import read_only
from llmops.store.tables import TRACES

WINDOW_DAYS = 30
"""The traffic window; 30 days of calls are what "per month" means."""
TTFT_SAMPLE = 20_000
"""The most recent uncached calls of the model that the TTFT line is fitted on."""
MIN_TTFT_CALLS = 30


@dataclass(frozen=True, slots=True)
class ModelTraffic:
    """One model's calls of the prompt version in the window, by how each call paid for its prompt."""

    model: str
    is_batch: bool
    calls: int
    cache_read_calls: int
    cache_write_calls: int

    @property
    def uncached_calls(self) -> int:
        """Calls that paid the full input price for the prompt."""
        return self.calls - self.cache_read_calls - self.cache_write_calls


@dataclass(frozen=True, slots=True)
class TtftLine:
    """TTFT against input tokens on uncached calls: milliseconds per token, with a 95 % interval."""

    ms_per_token: float
    low: float
    high: float
    calls: int


@dataclass(frozen=True, slots=True)
class Traffic:
    """The prompt version's calls over the window, and the TTFT line of its model."""

    prompt_name: str
    version: str
    since: datetime
    until: datetime
    models: tuple[ModelTraffic, ...]
    ttft: TtftLine | None

    @property
    def calls(self) -> int:
        """Calls of the version in the window, all models."""
        return sum(model.calls for model in self.models)

    @property
    def cache_read_share(self) -> float:
        """The share of calls that read the prompt from the cache."""
        return sum(model.cache_read_calls for model in self.models) / self.calls if self.calls else 0.0


@dataclass(frozen=True, slots=True)
class Projection:
    """The saving of ``tokens_saved`` fewer prompt tokens on every call of ``traffic``, per month."""

    tokens_saved: int
    calls: int
    usd_per_month: Decimal
    usd_per_month_if_uncached: Decimal
    """What the same tokens would save if no call read the prompt from the cache."""
    cache_read_share: float
    unpriced_calls: int
    """Calls on models genai-prices cannot price, left out of the figures."""
    ttft_ms: tuple[float, float, float] | None
    """Estimated TTFT saved on an uncached call: (estimate, low, high) of the 95 % interval."""
    uncached_share: float

    def summary(self) -> str:
        """One paragraph a person can act on, naming what the figure leaves out."""
        if not self.calls:
            return (
                f"{self.tokens_saved:,} tokens fewer per call; no saving projected: the version had no calls "
                f"in the last {WINDOW_DAYS} days"
            )
        text = (
            f"${self.usd_per_month:,.2f}/month at the last {WINDOW_DAYS} days' {self.calls:,} calls "
            f"({self.tokens_saved:,} tokens fewer per call)"
        )
        if self.cache_read_share >= 0.05:
            text += (
                f"; {self.cache_read_share:.0%} of the calls read the prompt from the cache at the cache-read price, "
                f"so this is far less than the ${self.usd_per_month_if_uncached:,.2f} the same tokens would save uncached"
            )
        if self.unpriced_calls:
            text += f"; {self.unpriced_calls:,} calls on models genai-prices cannot price are not counted"
        if self.ttft_ms is not None:
            estimate, low, high = self.ttft_ms
            text += (
                f"; time to first token: an estimated {estimate:,.0f} ms less (95 % interval {low:,.0f} to {high:,.0f} ms) "
                f"on the {self.uncached_share:.0%} of calls that do not read it from the cache"
            )
        return text


def recent_traffic(engine: Engine, prompt_name: str, version: str, model: str, *, now: datetime | None = None) -> Traffic:
    """The version's calls of the last ``WINDOW_DAYS`` days by model and cache use, and ``model``'s TTFT line.

    Args:
        engine: The store.
        prompt_name: The prompt.
        version: The version whose traffic a compression would replace.
        model: The pinned model, whose uncached calls the TTFT line is fitted on.
        now: The window's end; None is now.

    Returns:
        Successful calls by model, batch flag and cache use, and the TTFT line (None with too few calls).

    Example:
        ```python
        traffic = recent_traffic(get_engine(), "help-center", "1.0.0", "claude-3-5-haiku-20241022")
        print(traffic.calls, f"{traffic.cache_read_share:.0%} read from the cache")
        ```
    """
    until = now or datetime.now(UTC)
    since = until - timedelta(days=WINDOW_DAYS)
    in_window = and_(TRACES.c.timestamp >= since, TRACES.c.timestamp < until, TRACES.c.status == "ok")
    counted = (
        select(
            TRACES.c.model, TRACES.c.is_batch, func.count(),
            func.sum(case((TRACES.c.cache_read_input_tokens > 0, 1), else_=0)),
            func.sum(case((and_(TRACES.c.cache_read_input_tokens == 0, TRACES.c.cache_creation_input_tokens > 0), 1), else_=0)),
        )
        .where(in_window, TRACES.c.prompt_name == prompt_name, TRACES.c.prompt_version == version)
        .group_by(TRACES.c.model, TRACES.c.is_batch)
        .order_by(TRACES.c.model, TRACES.c.is_batch)
    )  # fmt: skip
    sample = (
        select(TRACES.c.input_tokens, TRACES.c.ttft_ms)
        .where(
            in_window, TRACES.c.model == model, TRACES.c.ttft_ms.is_not(None),
            TRACES.c.cache_read_input_tokens == 0, TRACES.c.cache_creation_input_tokens == 0,
        )
        .order_by(TRACES.c.timestamp.desc())
        .limit(TTFT_SAMPLE)
    )  # fmt: skip
    with read_only(engine).connect() as connection:
        models = tuple(
            ModelTraffic(row[0], bool(row[1]), int(row[2]), int(row[3] or 0), int(row[4] or 0))
            for row in connection.execute(counted)
        )
        points = connection.execute(sample).all()
    return Traffic(prompt_name, version, since, until, models, ttft_line(points))


def ttft_line(points: Sequence[Sequence[Any]]) -> TtftLine | None:
    """Least squares of TTFT on input tokens, or None with too few calls or no spread in their size.

    Args:
        points: ``(input_tokens, ttft_ms)`` of uncached calls.

    Returns:
        The slope in ms per token with its 95 % interval; None below ``MIN_TTFT_CALLS`` calls.
    """
    xs = [float(point[0]) for point in points]
    ys = [float(point[1]) for point in points]
    if len(xs) < MIN_TTFT_CALLS or max(xs) == min(xs):
        return None
    fit = scipy_stats.linregress(xs, ys)
    margin = float(scipy_stats.t.ppf(0.975, len(xs) - 2)) * float(fit.stderr)
    return TtftLine(float(fit.slope), float(fit.slope) - margin, float(fit.slope) + margin, len(xs))


def project(traffic: Traffic, tokens_saved: int, day: date | None = None) -> Projection:
    """Price ``tokens_saved`` fewer tokens on each call at what that call paid for its prompt.

    Args:
        traffic: The version's recent calls (``recent_traffic``).
        tokens_saved: Prompt tokens fewer per call, in the pinned model's count.
        day: Whose prices apply; None is the window's last day.

    Returns:
        Dollars per month (to the cent), the same if uncached, and the TTFT estimate.

    Example:
        >>> from datetime import UTC
        >>> calls = ModelTraffic("claude-3-5-sonnet-20241022", False, calls=10_000, cache_read_calls=5_000, cache_write_calls=0)
        >>> traffic = Traffic("help-center", "1.0.0", datetime(2025, 10, 16, tzinfo=UTC), datetime(2025, 11, 15, tzinfo=UTC),
        ...                   (calls,), ttft=None)
        >>> projection = project(traffic, tokens_saved=500)
        >>> projection.usd_per_month, projection.usd_per_month_if_uncached
        (Decimal('8.25'), Decimal('15.00'))
    """
    day = day or traffic.until.date()
    saved = Decimal(max(0, tokens_saved))
    usd = uncached_usd = Decimal(0)
    unpriced = 0
    for group in traffic.models:
        rates = rates_for(group.model, day, group.is_batch)
        if rates is None:
            unpriced += group.calls
            continue
        per_token = (
            group.uncached_calls * rates.input
            + group.cache_read_calls * rates.cache_read
            + group.cache_write_calls * rates.cache_write
        )  # fmt: skip
        usd += saved * per_token * rates.batch_multiplier
        uncached_usd += saved * group.calls * rates.input * rates.batch_multiplier
    calls = traffic.calls
    uncached_share = sum(group.uncached_calls for group in traffic.models) / calls if calls else 0.0
    ttft = None
    if traffic.ttft is not None and tokens_saved > 0:
        line = traffic.ttft
        ttft = (line.ms_per_token * tokens_saved, line.low * tokens_saved, line.high * tokens_saved)
    return Projection(
        tokens_saved=max(0, tokens_saved), calls=calls, usd_per_month=usd.quantize(Decimal("0.01")),
        usd_per_month_if_uncached=uncached_usd.quantize(Decimal("0.01")), cache_read_share=traffic.cache_read_share,
        unpriced_calls=unpriced, ttft_ms=ttft, uncached_share=uncached_share,
    )  # fmt: skip
