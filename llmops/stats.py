"""Statistical primitives shared by rollout gates, A/B reports and drift detection.

Each verdict the product gives (a failed gate, a winner, a drift alert) rests on one of these,
so they are thin, tested wrappers around scipy rather than home-made distributions.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

Alternative = Literal["greater", "less", "two-sided"]
"""Which deviation counts: above the expectation, below it, or either."""


class Interval(NamedTuple):
    """A confidence or prediction interval."""

    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval of a proportion: sane at 0 or 1 successes, unlike the Wald interval."""
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
    information. For a quantile, pass the indicator of exceeding it (Woodruff). 1 without clusters."""
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
    """Fisher's exact test of equal proportions: exact for the few events of a short window."""
    table = [
        [candidate_successes, candidate_trials - candidate_successes],
        [control_successes, control_trials - control_successes],
    ]
    return float(stats.fisher_exact(table).pvalue)


def _welch_variance(
    candidate: NDArray[np.float64], control: NDArray[np.float64], design_effects: tuple[float, float], relative: bool
) -> tuple[float, float]:
    """The variance of ``mean(candidate) − mean(control)`` (of their logs, when ``relative``: the
    delta method) and its Welch–Satterthwaite degrees of freedom, each arm's variance times its
    design effect (control's, candidate's) and its size divided by it."""
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
    (each arm's variance times its ``design_effects``: control's, candidate's)."""
    control_values, candidate_values = np.asarray(control, float), np.asarray(candidate, float)
    difference = float(candidate_values.mean() - control_values.mean())
    variance, df = _welch_variance(candidate_values, control_values, design_effects, relative=False)
    if variance == 0:
        return Interval(difference, difference), 1.0 if difference == 0 else 0.0
    scale = float(np.sqrt(variance))
    half_width = float(stats.t.ppf(0.5 + confidence / 2, df)) * scale
    p_value = float(2 * stats.t.sf(abs(difference) / scale, df))
    return Interval(difference - half_width, difference + half_width), p_value


def mean_interval(values: ArrayLike, confidence: float = 0.95) -> Interval:
    """Student-t interval of a mean (one arm's cost per request, feedback, outcome)."""
    array = np.asarray(values, float)
    if array.size < 2 or np.ptp(array) == 0:
        mean = float(array.mean())
        return Interval(mean, mean)
    interval = stats.ttest_1samp(array, 0.0).confidence_interval(confidence_level=confidence)
    return Interval(float(interval.low), float(interval.high))


def quantile_interval(values: ArrayLike, quantile: float, confidence: float = 0.95) -> Interval:
    """Distribution-free interval of a quantile from order statistics (latency is heavy-tailed)."""
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
    """The 95th percentile along ``axis`` (a ``Statistic``)."""
    return np.quantile(values, 0.95, axis=axis)


def ratio_of_means_interval(
    control: ArrayLike, candidate: ArrayLike, confidence: float = 0.95, design_effects: tuple[float, float] = (1.0, 1.0)
) -> Interval:
    """Interval of ``mean(candidate) / mean(control)`` by the delta method on the log ratio, with
    Welch–Satterthwaite degrees of freedom: a relative tolerance ("cost +10 %") is a statement
    about this ratio, and at hundreds of calls per arm its log is close to normal. Each arm's
    variance is multiplied by its design effect (control's, candidate's)."""
    candidate_values, control_values = np.asarray(candidate, float), np.asarray(control, float)
    log_ratio = float(np.log(candidate_values.mean() / control_values.mean()))
    variance, df = _welch_variance(candidate_values, control_values, design_effects, relative=True)
    if variance == 0:
        return Interval(float(np.exp(log_ratio)), float(np.exp(log_ratio)))
    half_width = float(stats.t.ppf(0.5 + confidence / 2, df)) * np.sqrt(variance)
    return Interval(float(np.exp(log_ratio - half_width)), float(np.exp(log_ratio + half_width)))


def benjamini_hochberg(p_values: Sequence[float]) -> NDArray[np.float64]:
    """Benjamini–Hochberg adjusted p-values: compare each with the false discovery rate wanted."""
    if not p_values:
        return np.array([], float)
    return stats.false_discovery_control(np.asarray(p_values, float), method="bh")


def benjamini_hochberg_cutoff(p_values: Sequence[float], rate: float) -> float:
    """The raw p-value at or below which BH rejects at ``rate`` (``rate/m`` when nothing is
    rejected), so that a finding can state the threshold its statistic was held to."""
    ordered = np.sort(np.asarray(p_values, float))
    count = ordered.size
    passing = np.nonzero(ordered <= rate * np.arange(1, count + 1) / count)[0]
    rejected = int(passing[-1]) + 1 if passing.size else 1
    return rate * rejected / count


def robust_z_scores(values: ArrayLike) -> NDArray[np.float64]:
    """``(x − median) / (1.4826·MAD)`` of each value among all of them: how unusual each is,
    unmoved by the odd one out. Infinite for a value off a set that otherwise does not vary."""
    array = np.asarray(values, float)
    deviations = array - np.median(array)
    scale = float(stats.median_abs_deviation(array, scale="normal"))
    if scale == 0:
        return np.where(deviations == 0, 0.0, np.copysign(np.inf, deviations))
    return deviations / scale


def _combine_tails(upper: float, lower: float, alternative: Alternative) -> float:
    if alternative == "greater":
        return upper
    if alternative == "less":
        return lower
    return min(1.0, 2 * min(upper, lower))


def count_p_value(distribution: stats.rv_discrete, observed: int, alternative: Alternative) -> float:
    """P-value of a count under a frozen discrete distribution: ``P(X ≥ k)``, ``P(X ≤ k)``, or
    twice the smaller of the two."""
    return _combine_tails(float(distribution.sf(observed - 1)), float(distribution.cdf(observed)), alternative)


class Prediction(NamedTuple):
    """A new day's value against the reference days: where it was expected, how far it lies."""

    location: float
    day_sd: float
    """Standard deviation of a typical reference day around the location (between-day + sampling)."""
    t: float
    df: int
    p_value: float


def day_prediction_test(
    value: float,
    value_variance: float,
    reference: ArrayLike,
    reference_variances: ArrayLike,
    kinds: ArrayLike,
    location_mask: ArrayLike,
    alternative: Alternative,
) -> Prediction:
    """Whether a new day's statistic belongs with the reference days' values of it.

    Each day's value = its kind's level + a between-day effect (variance τ²) + its own sampling
    noise (variance v, known from that day's calls; 0 when unknown). τ² is the method-of-moments
    estimate from the residuals about each kind's mean, so a quiet weekend with few calls is
    judged with its larger own noise, not the busy weekdays'. The expected value is the mean of
    the ``location_mask`` days; the prediction spread adds τ², the day's own v and the
    uncertainty of that mean, and Student's t with ``n − kinds`` degrees of freedom covers the
    uncertainty of a spread estimated from few days. With every v = 0 this is the classical
    t prediction interval ``(x − mean) / (s·√(1 + 1/n))``.
    """
    values = np.asarray(reference, float)
    variances = np.asarray(reference_variances, float)
    kind_of_day = np.asarray(kinds)
    mask = np.asarray(location_mask, bool)
    residual_squares = 0.0
    expected_sampling = 0.0
    for kind in np.unique(kind_of_day):
        members = kind_of_day == kind
        residual_squares += float(np.sum((values[members] - values[members].mean()) ** 2))
        expected_sampling += float(np.sum(variances[members]) * (1 - 1 / members.sum()))
    df = values.size - np.unique(kind_of_day).size
    between = max(0.0, (residual_squares - expected_sampling) / df)
    location = float(values[mask].mean())
    location_variance = float(np.sum(between + variances[mask])) / mask.sum() ** 2
    spread = float(np.sqrt(between + value_variance + location_variance))
    if spread == 0:
        t = 0.0 if value == location else float(np.copysign(np.inf, value - location))
    else:
        t = (value - location) / spread
    day_sd = float(np.sqrt(between + variances[mask].mean()))
    p_value = _combine_tails(float(stats.t.sf(t, df)), float(stats.t.cdf(t, df)), alternative)
    return Prediction(location, day_sd, float(t), int(df), p_value)


def t_critical(cutoff: float, df: int, alternative: Alternative) -> float:
    """The |t| a prediction test needs to reach p ≤ ``cutoff``."""
    return float(stats.t(df).isf(cutoff / 2 if alternative == "two-sided" else cutoff))


def binomial_overdispersion(successes: ArrayLike, trials: ArrayLike) -> float:
    """Intra-class correlation ρ of daily counts (ANOVA estimator), clipped to [0, 1).

    ρ = 0 is pure binomial noise; ρ > 0 is the extra day-to-day variation of the true rate
    (an upstream hiccup one day, a different mix of users the next).
    """
    k = np.asarray(successes, float)
    n = np.asarray(trials, float)
    days, total = k.size, n.sum()
    if days < 2 or total <= days:
        return 0.0
    rate = k.sum() / total
    rates = k / n
    between = float(np.sum(n * (rates - rate) ** 2) / (days - 1))
    within = float(np.sum(n * rates * (1 - rates)) / (total - days))
    mean_size = (total - np.sum(n**2) / total) / (days - 1)
    denominator = between + (mean_size - 1) * within
    if denominator <= 0:
        return 0.0
    return float(np.clip((between - within) / denominator, 0.0, 0.999))


def beta_binomial_predictive(
    reference_successes: ArrayLike, reference_trials: ArrayLike, trials: int, overdispersion: float
) -> stats.rv_discrete:
    """Distribution of a new day's count out of ``trials``, given reference days' counts.

    Beta-binomial: binomial noise, plus the between-day variation of the rate
    (``overdispersion``, ρ of ``binomial_overdispersion``), plus the uncertainty of the reference
    rate itself (a Jeffreys-style half event keeps a reference with none from declaring any
    event impossible).
    """
    k = np.asarray(reference_successes, float)
    n = np.asarray(reference_trials, float)
    total = float(n.sum())
    rate = (k.sum() + 0.5) / (total + 1.0)
    mean_size = total / k.size
    variance_share = overdispersion + (1 + (mean_size - 1) * overdispersion) / (total + 1.0)
    concentration = 1 / variance_share - 1
    return stats.betabinom(trials, rate * concentration, (1 - rate) * concentration)


def signed_rank_p_value(differences: ArrayLike, alternative: Alternative) -> float:
    """Wilcoxon signed-rank p-value that the paired ``differences`` centre above (or below) 0.

    Ties at 0 (an example answered identically both times) carry no evidence either way and are
    dropped; with none left the p-value is 1.
    """
    array = np.asarray(differences, float)
    nonzero = array[array != 0]
    if nonzero.size == 0:
        return 1.0
    return float(stats.wilcoxon(nonzero, alternative=alternative).pvalue)


def mcnemar_p_value(gained: int, lost: int, alternative: Alternative = "greater") -> float:
    """Exact McNemar p-value of paired yes/no outcomes: of the pairs that changed, did more turn
    yes (``gained``) than no (``lost``) than a fair coin would give?"""
    changed = gained + lost
    if changed == 0:
        return 1.0
    return float(stats.binomtest(gained, changed, 0.5, alternative=alternative).pvalue)
