"""Two arms compared: intervals and tests behind A/B reports and rollout gates.

A candidate prompt version against the control: the difference or ratio of their rates,
means and latency quantiles, with intervals that stay honest for rare events (Wilson,
Newcombe), for heavy tails (order statistics, bootstrap) and for users who make many calls
(the design effect). Thin, tested wrappers around scipy rather than home-made distributions.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from llmops.stats.deferred import stats


class Interval(NamedTuple):
    """A confidence or prediction interval."""

    low: float
    high: float

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the interval, ends included.

        Example:
            >>> Interval(0.9, 1.1).contains(1.0)
            True
        """
        return self.low <= value <= self.high


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval of a proportion: sane at 0 or 1 successes, unlike the Wald interval.

    Args:
        successes: Events counted (errors, thumbs-up).
        trials: Calls they are counted among (at least 1).
        confidence: Coverage of the interval.

    Returns:
        The interval of the rate.

    Example:
        >>> [round(bound, 3) for bound in wilson_interval(0, 50)]
        [0.0, 0.071]
    """
    result = stats.binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    return Interval(float(result.low), float(result.high))


def newcombe_difference(
    control_successes: int,
    control_trials: int,
    candidate_successes: int,
    candidate_trials: int,
    confidence: float = 0.95,
) -> Interval:
    """Newcombe's hybrid score interval of ``candidate rate − control rate`` (his method 10).

    It combines the two Wilson intervals, so it keeps good coverage for rare events such as
    a 1 % error rate, where the plain normal-approximation interval is too narrow.

    Args:
        control_successes: Events in the control arm.
        control_trials: Calls in the control arm.
        candidate_successes: Events in the candidate arm.
        candidate_trials: Calls in the candidate arm.
        confidence: Coverage of the interval.

    Returns:
        The interval of the difference of rates (positive: the candidate's rate is higher).

    Example:
        >>> [round(bound, 3) for bound in newcombe_difference(10, 1000, 25, 1000)]
        [0.003, 0.028]
    """
    control_rate = control_successes / control_trials
    candidate_rate = candidate_successes / candidate_trials
    control_ci = wilson_interval(control_successes, control_trials, confidence)
    candidate_ci = wilson_interval(candidate_successes, candidate_trials, confidence)
    difference = candidate_rate - control_rate
    below = np.hypot(candidate_rate - candidate_ci.low, control_ci.high - control_rate)
    above = np.hypot(candidate_ci.high - candidate_rate, control_rate - control_ci.low)
    return Interval(float(difference - below), float(difference + above))


def design_effect(values: ArrayLike, clusters: Sequence[Hashable] | None) -> float:
    """How much more a mean of ``values`` varies than independent calls would (≥ 1): calls of one
    user are alike, and a sticky split puts whole users in one arm. The cluster-robust variance
    of the mean over the independent one (Kish's design effect); ``n / deff`` calls carry the
    information. For a quantile, pass the indicator of exceeding it (Woodruff). 1 without clusters.

    Args:
        values: One value per call.
        clusters: The cluster (user) of each call; None for independent calls.

    Returns:
        The design effect, at least 1.

    Example:
        >>> design_effect([1, 1, 0, 0], ["u1", "u1", "u2", "u2"]), design_effect([1, 1, 0, 0], None)
        (3.0, 1.0)
    """
    array = np.asarray(values, float)
    if clusters is None or array.size < 2:
        return 1.0
    codes = np.unique(np.asarray(clusters, object).astype(str), return_inverse=True)[1]
    groups = int(codes.max()) + 1
    spread = float(array.var(ddof=1))
    if groups < 2 or groups == array.size or spread == 0:
        return 1.0
    totals = np.bincount(codes, weights=array - array.mean(), minlength=groups)
    robust = groups / (groups - 1) * float(np.sum(totals**2)) / array.size**2
    return max(1.0, robust / (spread / array.size))


def two_proportion_p_value(control_successes: int, control_trials: int, candidate_successes: int, candidate_trials: int) -> float:
    """Fisher's exact test of equal proportions: exact for the few events of a short window.

    Args:
        control_successes: Events in the control arm.
        control_trials: Calls in the control arm.
        candidate_successes: Events in the candidate arm.
        candidate_trials: Calls in the candidate arm.

    Returns:
        The two-sided p-value.

    Example:
        >>> round(two_proportion_p_value(10, 1000, 25, 1000), 4)
        0.0157
    """
    table = [
        [candidate_successes, candidate_trials - candidate_successes],
        [control_successes, control_trials - control_successes],
    ]
    return float(stats.fisher_exact(table).pvalue)


def welch_variance(
    candidate: NDArray[np.float64], control: NDArray[np.float64], design_effects: tuple[float, float], relative: bool
) -> tuple[float, float]:
    """The variance of ``mean(candidate) − mean(control)`` (of their logs, when ``relative``: the
    delta method) and its Welch–Satterthwaite degrees of freedom, each arm's variance times its
    design effect (control's, candidate's) and its size divided by it.

    Example:
        >>> variance, df = welch_variance(np.array([3.0, 4.0, 5.0, 6.0]), np.array([1.0, 2.0, 3.0, 4.0]), (1.0, 1.0), False)
        >>> round(variance, 3), round(df, 1)
        (0.833, 6.0)
    """
    parts, sizes = [], []
    for values, effect in ((candidate, design_effects[1]), (control, design_effects[0])):
        part = float(np.var(values, ddof=1)) * effect / values.size
        parts.append(part / float(np.mean(values)) ** 2 if relative else part)
        sizes.append(values.size / effect)
    variance = sum(parts)
    if variance == 0:
        return 0.0, float("inf")
    return variance, variance**2 / sum(part**2 / max(size - 1, 1.0) for part, size in zip(parts, sizes, strict=True))


def welch_difference(
    control: ArrayLike, candidate: ArrayLike, confidence: float = 0.95, design_effects: tuple[float, float] = (1.0, 1.0)
) -> tuple[Interval, float]:
    """Interval of ``mean(candidate) − mean(control)`` and its p-value, unequal variances allowed
    (each arm's variance times its ``design_effects``: control's, candidate's).

    Args:
        control: The control arm's values.
        candidate: The candidate arm's values.
        confidence: Coverage of the interval.
        design_effects: ``(control's, candidate's)``, from ``design_effect``.

    Returns:
        ``(interval, two-sided p-value)`` of Welch's t-test.

    Example:
        >>> interval, p_value = welch_difference([1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 5.0, 6.0])
        >>> [round(bound, 2) for bound in interval], round(p_value, 3)
        ([-0.23, 4.23], 0.071)
    """
    control_values, candidate_values = np.asarray(control, float), np.asarray(candidate, float)
    difference = float(candidate_values.mean() - control_values.mean())
    variance, df = welch_variance(candidate_values, control_values, design_effects, relative=False)
    if variance == 0:
        return Interval(difference, difference), 1.0 if difference == 0 else 0.0
    scale = float(np.sqrt(variance))
    half_width = float(stats.t.ppf(0.5 + confidence / 2, df)) * scale
    p_value = float(2 * stats.t.sf(abs(difference) / scale, df))
    return Interval(difference - half_width, difference + half_width), p_value


def mean_interval(values: ArrayLike, confidence: float = 0.95) -> Interval:
    """Student-t interval of a mean (one arm's cost per request, feedback, outcome).

    Args:
        values: The sample.
        confidence: Coverage of the interval.

    Returns:
        The interval; a single point when the values do not vary (or there is one).

    Example:
        >>> [round(bound, 2) for bound in mean_interval([1.0, 2.0, 3.0, 4.0])]
        [0.45, 4.55]
    """
    array = np.asarray(values, float)
    if array.size < 2 or np.ptp(array) == 0:
        mean = float(array.mean())
        return Interval(mean, mean)
    interval = stats.ttest_1samp(array, 0.0).confidence_interval(confidence_level=confidence)
    return Interval(float(interval.low), float(interval.high))


def quantile_interval(values: ArrayLike, quantile: float, confidence: float = 0.95) -> Interval:
    """Distribution-free interval of a quantile from order statistics (latency is heavy-tailed).

    Args:
        values: The sample.
        quantile: Which quantile, in (0, 1), e.g. 0.95.
        confidence: Coverage of the interval.

    Returns:
        The interval; an unbounded end is clipped to the sample's minimum or maximum.

    Example:
        >>> quantile_interval(list(range(1, 101)), 0.5)
        Interval(low=40.0, high=61.0)
    """
    array = np.asarray(values, float)
    point = float(np.quantile(array, quantile))
    result = stats.quantile_test(array, q=point, p=quantile)
    interval = result.confidence_interval(confidence_level=confidence)
    low = float(interval.low) if np.isfinite(interval.low) else float(array.min())
    high = float(interval.high) if np.isfinite(interval.high) else float(array.max())
    return Interval(low, high)


Statistic = Callable[[NDArray[np.float64], int], NDArray[np.float64]]
"""A vectorised statistic of one sample: ``statistic(values, axis)`` (e.g. a p95 or a mean)."""


def bootstrap_ratio(
    control: ArrayLike,
    candidate: ArrayLike,
    statistic: Statistic,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of ``statistic(candidate) / statistic(control)``.

    The arms are resampled independently (they are different calls). Seeded, so a gate
    evaluated twice on the same traces gives the same verdict.

    Args:
        control: The control arm's values.
        candidate: The candidate arm's values.
        statistic: A vectorised statistic such as ``p95``.
        confidence: Coverage of the interval.
        resamples: Bootstrap resamples.
        seed: Seed of the resampling.

    Returns:
        The interval of the ratio (1 means no change).

    Example:
        >>> bootstrap_ratio([1.0, 2.0, 3.0] * 30, [2.0, 4.0, 6.0] * 30, p95, resamples=200)
        Interval(low=2.0, high=2.0)
    """

    def ratio(candidate_values: NDArray[np.float64], control_values: NDArray[np.float64], axis: int) -> NDArray:
        return statistic(candidate_values, axis) / statistic(control_values, axis)

    result = stats.bootstrap(
        (np.asarray(candidate, float), np.asarray(control, float)),
        ratio,
        n_resamples=resamples,
        batch=max(1, min(resamples, 2_000_000 // max(1, np.size(candidate) + np.size(control)))),
        vectorized=True,
        paired=False,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return Interval(float(result.confidence_interval.low), float(result.confidence_interval.high))


def p95(values: NDArray[np.float64], axis: int = -1) -> NDArray[np.float64]:
    """The 95th percentile along ``axis`` (a ``Statistic``).

    Example:
        >>> float(p95(np.arange(1.0, 101.0)))
        95.05
    """
    return np.quantile(values, 0.95, axis=axis)


def ratio_of_means_interval(
    control: ArrayLike, candidate: ArrayLike, confidence: float = 0.95, design_effects: tuple[float, float] = (1.0, 1.0)
) -> Interval:
    """Interval of ``mean(candidate) / mean(control)`` by the delta method on the log ratio, with
    Welch–Satterthwaite degrees of freedom: a relative tolerance ("cost +10 %") is a statement
    about this ratio, and at hundreds of calls per arm its log is close to normal. Each arm's
    variance is multiplied by its design effect (control's, candidate's).

    Args:
        control: The control arm's values (positive mean).
        candidate: The candidate arm's values (positive mean).
        confidence: Coverage of the interval.
        design_effects: ``(control's, candidate's)``, from ``design_effect``.

    Returns:
        The interval of the ratio of means (1.1 is "+10 %").

    Example:
        >>> interval = ratio_of_means_interval([1.0, 1.1, 0.9, 1.0] * 25, [1.1, 1.2, 1.0, 1.1] * 25)
        >>> [round(bound, 2) for bound in interval]
        [1.08, 1.12]
    """
    candidate_values, control_values = np.asarray(candidate, float), np.asarray(control, float)
    log_ratio = float(np.log(candidate_values.mean() / control_values.mean()))
    variance, df = welch_variance(candidate_values, control_values, design_effects, relative=True)
    if variance == 0:
        return Interval(float(np.exp(log_ratio)), float(np.exp(log_ratio)))
    half_width = float(stats.t.ppf(0.5 + confidence / 2, df)) * np.sqrt(variance)
    return Interval(float(np.exp(log_ratio - half_width)), float(np.exp(log_ratio + half_width)))
