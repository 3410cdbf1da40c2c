"""Chaos: which requests fail, stall or run slow, drawn from one seeded RNG.

With a fixed ``seed`` and requests arriving in the same order, the same requests fail,
so a chaos experiment or a test is reproducible.
"""

from __future__ import annotations

import enum
import math
import random

from llmops.sim.config import SimConfig
from llmops.sim.protocol import ApiError


class Fault(enum.Enum):
    """What can happen to a request instead of (or before) its answer; the value names it in stats."""

    HANG = "hang"
    RATE_LIMIT = "429"
    OVERLOADED = "529"
    API_ERROR = "500"


class FaultInjector:
    """Draws faults and latencies for the current configuration, from one RNG seeded by ``config.seed``.

    Example:
        >>> injector = FaultInjector(SimConfig(error_rate_529=1.0, seed=1))
        >>> injector.draw(), injector.error_for(Fault.OVERLOADED).status
        (<Fault.OVERLOADED: '529'>, 529)
    """

    def __init__(self, config: SimConfig):
        self.config = config
        self._rng = random.Random(config.seed)

    def reconfigure(self, config: SimConfig, reseed: bool) -> None:
        """Adopt new settings; ``reseed`` restarts the fault sequence from the config's seed."""
        self.config = config
        if reseed:
            self._rng = random.Random(config.seed)

    def draw(self) -> Fault | None:
        """One uniform draw against the stacked rates: at most one fault per request."""
        config = self.config
        bands = (
            (Fault.HANG, config.hang_rate),
            (Fault.RATE_LIMIT, config.error_rate_429),
            (Fault.OVERLOADED, config.error_rate_529),
            (Fault.API_ERROR, config.error_rate_500),
        )
        if not any(rate for _, rate in bands):
            return None
        point = self._rng.random()
        for fault, rate in bands:
            if point < rate:
                return fault
            point -= rate
        return None

    def error_for(self, fault: Fault) -> ApiError:
        """The API error a fault is answered with (a hang is not an error)."""
        if fault is Fault.RATE_LIMIT:
            retry_after = self.config.retry_after_seconds
            return ApiError(
                429,
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit (simulated).",
                headers={"retry-after": f"{retry_after:g}"},
            )
        if fault is Fault.OVERLOADED:
            return ApiError(529, "overloaded_error", "Overloaded (simulated).")
        return ApiError(500, "api_error", "Internal server error (simulated).")

    def latency_seconds(self, model_id: str) -> float:
        """Response time: lognormal around the median, scaled for the model."""
        config = self.config
        median = config.latency_median_ms * config.latency_multiplier(model_id) / 1000
        if median <= 0:
            return 0.0
        return median * math.exp(config.latency_sigma * self._rng.gauss(0.0, 1.0))

    def ttft_seconds(self, model_id: str) -> float:
        """Time to the first text delta of a stream, scaled for the model (not drawn)."""
        return self.config.ttft_ms * self.config.latency_multiplier(model_id) / 1000
