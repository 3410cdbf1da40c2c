"""What trace drift measures of a group's day: each metric, the scale it is tested on, its sampling noise.

A metric is read off one ``DayStats`` as a day-level number: continuous ones (latency quantiles,
latency per output token and TTFT, tested apart or (``combined_latency``) as one latency test,
tokens and cost per call on the log scale, so a change is relative;
feedback and eval scores as they are) come with the variance of that number as a sample of the
day's calls when the rollups allow it (t-digest quantile density, sums of squares), because
``llmops.drift.trace`` adds that noise to the between-day spread; rates (errors, each finish
reason's share) are counts out of the day's calls. Each metric also says which way is bad: only
that direction alerts. Kept apart from the tests so the catalogue reads as one list.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from fastdigest import TDigest

from llmops.drift.history import DayStats
from llmops.stats import Alternative

QUANTILE_BANDWIDTH = 0.025
"""Half-width in probability of the difference quotient that estimates the density at a quantile."""

Direction = Literal["up", "down", "both"]
ALTERNATIVES: dict[Direction, Alternative] = {"up": "greater", "down": "less", "both": "two-sided"}
"""The test's alternative for each direction that alerts."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """A day's statistic on the scale it is tested on, with its sampling variance if known.

    Attributes:
        value: The statistic (its log for a log-scale metric).
        variance: Its variance as an estimate from the day's calls; None when the rollups cannot tell.
        count: The values it is computed from (calls, scores).

    Example:
        >>> Estimate(value=0.5, variance=None, count=120).count
        120
    """

    value: float
    variance: float | None
    count: int


def log_mean(total: float, count: int, square_sum: float | None) -> Estimate | None:
    """The log of a per-call mean; its variance is the squared coefficient of variation over n.

    Args:
        total: Sum of the values.
        count: How many values.
        square_sum: Sum of their squares, None when unknown.

    Returns:
        The estimate, or None without values (or a total of 0: no log).

    Example:
        >>> round(log_mean(200.0, 2, 20_000.0).value, 4), log_mean(200.0, 2, 20_000.0).variance
        (4.6052, 0.0)
    """
    if count <= 0 or total <= 0:
        return None
    mean = total / count
    variance = None if square_sum is None else max(0.0, square_sum / count - mean**2) / (count * mean**2)
    return Estimate(math.log(mean), variance, count)


def plain_mean(total: float, count: int, square_sum: float | None) -> Estimate | None:
    """A per-call mean as it is (scores), with the variance of a mean.

    Args:
        total: Sum of the values.
        count: How many values.
        square_sum: Sum of their squares, None when unknown.

    Returns:
        The estimate, or None without values.

    Example:
        >>> plain_mean(3.0, 4, 3.0)
        Estimate(value=0.75, variance=0.046875, count=4)
    """
    if count <= 0:
        return None
    mean = total / count
    variance = None if square_sum is None else max(0.0, square_sum / count - mean**2) / count
    return Estimate(mean, variance, count)


def log_quantile(digest: TDigest | None, quantile: float) -> Estimate | None:
    """The log of a quantile, with its variance p(1−p) / (n·f(q)²) on the log scale.

    The density f at the quantile is read off the sketch by a difference quotient
    (``QUANTILE_BANDWIDTH`` either side).

    Args:
        digest: The day's sketch (latency, time to first token), None when there is none.
        quantile: Which quantile, e.g. 0.95.

    Returns:
        The estimate, or None for an empty sketch or a quantile ≤ 0.

    Example:
        >>> from fastdigest import TDigest
        >>> log_quantile(TDigest.from_values([100.0] * 50 + [300.0] * 50), 0.5).count
        100
    """
    if digest is None or digest.n_values == 0:
        return None
    value = digest.quantile(quantile)
    if value <= 0:
        return None
    count = int(digest.n_values)
    above = digest.quantile(min(1.0, quantile + QUANTILE_BANDWIDTH))
    width = above - digest.quantile(max(0.0, quantile - QUANTILE_BANDWIDTH))
    quantile_sd = width / (2 * QUANTILE_BANDWIDTH) * math.sqrt(quantile * (1 - quantile) / count)
    return Estimate(math.log(value), (quantile_sd / value) ** 2, count)


def log_latency_per_output_token(day: DayStats) -> Estimate | None:
    """The log of mean latency over mean output tokens: the model's speed.

    Nearly blind to a day's mix of short and long answers, which moves p50 and p95 by themselves.

    Args:
        day: The group's day.

    Returns:
        The estimate, or None without latencies or output tokens.

    Example:
        >>> from datetime import date
        >>> from fastdigest import TDigest
        >>> day = DayStats(date(2025, 3, 19), calls=2, output_tokens=200, latency=TDigest.from_values([1000.0, 3000.0]))
        >>> round(math.exp(log_latency_per_output_token(day).value), 1)  # ms per token
        20.0
    """
    digest = day.latency
    tokens = log_mean(day.output_tokens, day.successful_calls, day.output_tokens_sq_sum)
    if digest is None or digest.n_values == 0 or digest.mean() <= 0 or tokens is None:
        return None
    count = int(digest.n_values)
    latency_variance = digest.var() / (count * digest.mean() ** 2)
    variance = None if tokens.variance is None else latency_variance + tokens.variance
    return Estimate(math.log(digest.mean()) - tokens.value, variance, count)


@dataclass(frozen=True)
class ContinuousMetric:
    """A day-level number, tested on the log scale (``log``: changes are relative) or as it is.

    Attributes:
        name: The metric's name in findings (``latency_p95``).
        label: How an alert names it (``p95 latency``).
        unit: How its values are written.
        direction: Which way alerts.
        log: Tested on the log scale.
        estimate: Reads it off a day.
        uses_scores: Counted in scores (feedback, eval), not calls, for the minimum a day needs.

    Example:
        >>> [metric.name for metric in CONTINUOUS_METRICS if metric.uses_scores]
        ['user_feedback', 'eval_score']
    """

    name: str
    label: str
    unit: Literal["ms", "tokens", "usd", "score"]
    direction: Direction
    log: bool
    estimate: Callable[[DayStats], Estimate | None]
    uses_scores: bool = False


LATENCY = "latency"
"""The name of the combined latency test in findings."""
LATENCY_COMPONENTS: tuple[ContinuousMetric, ...] = (
    ContinuousMetric("latency_p50", "p50 latency", "ms", "up", True, lambda d: log_quantile(d.latency, 0.5)),
    ContinuousMetric("latency_p75", "p75 latency", "ms", "up", True, lambda d: log_quantile(d.latency, 0.75)),
    ContinuousMetric("latency_p90", "p90 latency", "ms", "up", True, lambda d: log_quantile(d.latency, 0.9)),
    ContinuousMetric("latency_p95", "p95 latency", "ms", "up", True, lambda d: log_quantile(d.latency, 0.95)),
    ContinuousMetric("latency_per_output_token", "latency per output token", "ms", "up", True, log_latency_per_output_token),
    ContinuousMetric("ttft_p50", "TTFT p50", "ms", "up", True, lambda d: log_quantile(d.ttft, 0.5)),
    ContinuousMetric("ttft_p90", "TTFT p90", "ms", "up", True, lambda d: log_quantile(d.ttft, 0.9)),
)
"""What "latency went up" is read from, each on the log scale: with ``combined_latency``,
``llmops.drift.trace`` combines them into one test. Not the default: a day-level latency factor
moves them all together, and four separate tests that all reject raise the night's
Benjamini–Hochberg cutoff, which one combined test cannot (``bench_drift`` measures both). The
rollups keep one latency and one TTFT sketch per
group and day, not one per kind of request: latency per output token and TTFT are the parts that
a day's mix of short and long answers hardly moves."""
SEPARATE_LATENCY_METRICS = ("latency_p50", "latency_p95", "latency_per_output_token", "ttft_p50")
"""The latency metrics tested one by one when the combined test is switched off (the method before it)."""

CONTINUOUS_METRICS: tuple[ContinuousMetric, ...] = (
    ContinuousMetric(
        "input_tokens", "input tokens per call", "tokens", "both", True,
        lambda d: log_mean(d.input_tokens, d.successful_calls, d.input_tokens_sq_sum),
    ),
    ContinuousMetric(
        "output_tokens", "output tokens per call", "tokens", "both", True,
        lambda d: log_mean(d.output_tokens, d.successful_calls, d.output_tokens_sq_sum),
    ),
    ContinuousMetric(
        "cost_per_request", "cost per request", "usd", "up", True,
        lambda d: log_mean(d.cost_usd, d.priced_calls, d.cost_usd_sq_sum),
    ),
    ContinuousMetric(
        "user_feedback", "user feedback", "score", "down", False,
        lambda d: plain_mean(d.feedback_sum, d.feedback_count, d.feedback_sq_sum), uses_scores=True,
    ),
    ContinuousMetric(
        "eval_score", "automated eval score", "score", "down", False,
        lambda d: plain_mean(d.eval_score_sum, d.eval_score_count, d.eval_score_sq_sum), uses_scores=True,
    ),
)  # fmt: skip
"""Latency, cost and errors alert only when they get worse, scores only when they drop; token
counts either way (a prompt that suddenly sends half the context is as suspect as double)."""


@dataclass(frozen=True)
class RateMetric:
    """A count out of a day's trials, e.g. errors out of calls.

    Attributes:
        name: The metric's name in findings (``error_rate``, ``finish_reason:max_tokens``).
        label: How an alert names it.
        direction: Which way alerts.
        counts: ``(count, trials)`` of a day.

    Example:
        >>> from datetime import date
        >>> ERROR_RATE.counts(DayStats(date(2025, 3, 19), calls=900, errors=9))
        (9, 900)
    """

    name: str
    label: str
    direction: Direction
    counts: Callable[[DayStats], tuple[int, int]]


ERROR_RATE = RateMetric("error_rate", "error rate", "up", lambda d: (d.errors, d.calls))
"""Failed calls out of all calls: alerts when it rises."""


def finish_reason_metric(reason: str) -> RateMetric:
    """The share of a day's finished calls that ended in ``reason``; either direction alerts.

    Args:
        reason: A finish reason (``max_tokens``, ``stop_sequence``…).

    Returns:
        Its rate metric, named ``finish_reason:<reason>``.

    Example:
        >>> from datetime import date
        >>> metric = finish_reason_metric("max_tokens")
        >>> metric.name, metric.counts(DayStats(date(2025, 3, 19), 10, finish_reasons={"end_turn": 8, "max_tokens": 2}))
        ('finish_reason:max_tokens', (2, 10))
    """
    return RateMetric(
        f"finish_reason:{reason}",
        f"share of calls ending in {reason}",
        "both",
        lambda d: (d.finish_reasons.get(reason, 0), sum(d.finish_reasons.values())),
    )


def finish_reasons_to_test(target: DayStats, reference: Sequence[DayStats]) -> list[str]:
    """Every finish reason seen, but the reference's commonest (its share is the others' complement).

    Args:
        target: The checked day.
        reference: The days it is compared with.

    Returns:
        The reasons to test, sorted.

    Example:
        >>> from datetime import date
        >>> usual = DayStats(date(2025, 3, 18), 10, finish_reasons={"end_turn": 9, "max_tokens": 1})
        >>> finish_reasons_to_test(DayStats(date(2025, 3, 19), 10, finish_reasons={"refusal": 1}), [usual])
        ['max_tokens', 'refusal']
    """
    totals: dict[str, int] = {}
    for day_stats in reference:
        for reason, count in day_stats.finish_reasons.items():
            totals[reason] = totals.get(reason, 0) + count
    commonest = max(totals, key=totals.__getitem__) if totals else None
    return sorted((set(totals) | set(target.finish_reasons)) - {commonest})
