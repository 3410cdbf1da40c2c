"""A new observation against reference data: the tests behind nightly drift findings.

A day's metric against the reference days (a prediction test with day-to-day variation, a
beta-binomial for counts, robust z-scores), a serving version's answers against its pinned
reference (paired signed-rank and McNemar tests), and the Benjamini–Hochberg control of false
discoveries over a night's many checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from llmops.stats.deferred import stats

Alternative = Literal["greater", "less", "two-sided"]
"""Which deviation counts: above the expectation, below it, or either."""


def benjamini_hochberg(p_values: Sequence[float]) -> NDArray[np.float64]:
    """Benjamini–Hochberg adjusted p-values: compare each with the false discovery rate wanted.

    Args:
        p_values: One p-value per test of a family (a night's drift checks).

    Returns:
        The adjusted p-values, in the same order.

    Example:
        >>> benjamini_hochberg([0.01, 0.02, 0.03, 0.5]).round(3).tolist()
        [0.04, 0.04, 0.04, 0.5]
    """
    if not p_values:
        return np.array([], float)
    return stats.false_discovery_control(np.asarray(p_values, float), method="bh")


def benjamini_hochberg_cutoff(p_values: Sequence[float], rate: float) -> float:
    """The raw p-value at or below which BH rejects at ``rate`` (``rate/m`` when nothing is
    rejected), so that a finding can state the threshold its statistic was held to.

    Args:
        p_values: The family's raw p-values (at least one).
        rate: The false discovery rate.

    Returns:
        The cutoff on raw p-values.

    Example:
        >>> round(benjamini_hochberg_cutoff([0.01, 0.02, 0.03, 0.5], 0.05), 4), benjamini_hochberg_cutoff([0.2, 0.5], 0.05)
        (0.0375, 0.025)
    """
    ordered = np.sort(np.asarray(p_values, float))
    count = ordered.size
    passing = np.nonzero(ordered <= rate * np.arange(1, count + 1) / count)[0]
    rejected = int(passing[-1]) + 1 if passing.size else 1
    return rate * rejected / count


def robust_z_scores(values: ArrayLike) -> NDArray[np.float64]:
    """``(x − median) / (1.4826·MAD)`` of each value among all of them: how unusual each is,
    unmoved by the odd one out. Infinite for a value off a set that otherwise does not vary.

    Args:
        values: The values compared with each other (one per day, say).

    Returns:
        One score per value.

    Example:
        >>> robust_z_scores([10.0, 11.0, 9.0, 10.0, 30.0]).round(2).tolist()
        [0.0, 0.67, -0.67, 0.0, 13.49]
    """
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
    twice the smaller of the two.

    Args:
        distribution: The count's distribution, e.g. ``beta_binomial_predictive``'s.
        observed: The count seen.
        alternative: Which deviation counts.

    Returns:
        The p-value.

    Example:
        >>> round(count_p_value(stats.poisson(2.0), 7, "greater"), 4)
        0.0045
    """
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

    Args:
        value: The new day's statistic.
        value_variance: Its own sampling variance (0 when unknown).
        reference: The reference days' values.
        reference_variances: Their sampling variances.
        kinds: Each reference day's kind (weekday, weekend), each with its own level.
        location_mask: The reference days whose mean is the expected value (those of the new day's kind).
        alternative: Which deviation counts.

    Returns:
        The expected value, a typical day's spread, t, its degrees of freedom and the p-value.

    Example:
        >>> prediction = day_prediction_test(30.0, 0.0, [10.0, 11.0, 9.0, 10.0, 12.0, 8.0], [0.0] * 6,
        ...                                  ["weekday"] * 6, [True] * 6, "greater")
        >>> prediction.location, round(prediction.t, 2), prediction.df, prediction.p_value < 0.001
        (10.0, 13.09, 5, True)
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


def regression_day_prediction_test(
    value: float,
    value_variance: float,
    reference: ArrayLike,
    reference_variances: ArrayLike,
    design: ArrayLike,
    day_row: ArrayLike,
    alternative: Alternative,
) -> Prediction:
    """``day_prediction_test`` with the levels of a linear model: a new day's statistic against
    the prediction ``day_row · β`` of a least-squares fit of the reference days.

    Each reference day's value = its design row · β + a between-day effect (variance τ²) + its
    own sampling noise (variance v). The model lets levels be shared where they are stable and
    apart where they drift: one level per fortnight plus one weekend offset for all of them, say,
    so that a weekend's level uses the fortnight's weekdays too. τ² is the method-of-moments
    estimate ``(RSS − Σ v·(1 − leverage)) / df``, df = days − rank; the prediction's spread adds
    τ², the day's own v and the variance of the fitted prediction (each reference day's weight in
    it squared, times its τ² + v), and Student's t with df degrees of freedom covers the
    uncertainty of τ². ``Prediction.day_sd`` is how much such a day varies: √(τ² + v of the day).

    Args:
        value: The new day's statistic.
        value_variance: Its own sampling variance (0 when unknown).
        reference: The reference days' values.
        reference_variances: Their sampling variances.
        design: One row per reference day (indicators of its levels and offsets).
        day_row: The new day's row.
        alternative: Which deviation counts.

    Returns:
        The predicted value, a typical day's spread, t, its degrees of freedom and the p-value.

    Example:
        >>> weeks = [[1, 0, 0], [1, 0, 0], [1, 0, 1], [0, 1, 0], [0, 1, 0], [0, 1, 1]]  # two levels, one weekend offset
        >>> values = [10.0, 11.0, 8.0, 12.0, 13.0, 10.0]
        >>> prediction = regression_day_prediction_test(12.5, 0.0, values, [0.0] * 6, weeks, [0, 1, 1], "greater")
        >>> round(prediction.location, 2), prediction.df, round(prediction.t, 2)
        (10.0, 3, 3.35)
    """
    values = np.asarray(reference, float)
    variances = np.asarray(reference_variances, float)
    matrix = np.asarray(design, float)
    row = np.asarray(day_row, float)
    pseudo_inverse = np.linalg.pinv(matrix)
    weights = row @ pseudo_inverse  # each reference day's weight in the prediction
    residuals = values - matrix @ (pseudo_inverse @ values)
    leverage = np.einsum("ij,ji->i", matrix, pseudo_inverse)
    df = values.size - int(np.linalg.matrix_rank(matrix))
    between = max(0.0, float(np.sum(residuals**2) - np.sum(variances * (1 - leverage))) / df)
    location = float(weights @ values)
    location_variance = float(np.sum(weights**2 * (between + variances)))
    spread = float(np.sqrt(between + value_variance + location_variance))
    if spread == 0:
        t = 0.0 if value == location else float(np.copysign(np.inf, value - location))
    else:
        t = (value - location) / spread
    p_value = _combine_tails(float(stats.t.sf(t, df)), float(stats.t.cdf(t, df)), alternative)
    return Prediction(location, float(np.sqrt(between + value_variance)), float(t), df, p_value)


def t_critical(cutoff: float, df: int, alternative: Alternative) -> float:
    """The |t| a prediction test needs to reach p ≤ ``cutoff``.

    Example:
        >>> round(t_critical(0.05, 10, "two-sided"), 3)
        2.228
    """
    return float(stats.t(df).isf(cutoff / 2 if alternative == "two-sided" else cutoff))


def binomial_overdispersion(successes: ArrayLike, trials: ArrayLike) -> float:
    """Intra-class correlation ρ of daily counts (ANOVA estimator), clipped to [0, 1).

    ρ = 0 is pure binomial noise; ρ > 0 is the extra day-to-day variation of the true rate
    (an upstream hiccup one day, a different mix of users the next).

    Args:
        successes: Each day's count.
        trials: Each day's calls.

    Returns:
        ρ in [0, 0.999]; 0 with fewer than two days.

    Example:
        >>> binomial_overdispersion([10, 10, 10], [100, 100, 100]), round(binomial_overdispersion([1, 10, 30], [100, 100, 100]), 3)
        (0.0, 0.167)
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

    Args:
        reference_successes: Each reference day's count.
        reference_trials: Each reference day's calls.
        trials: The new day's calls.
        overdispersion: ρ of the reference days.

    Returns:
        A frozen ``scipy.stats.betabinom`` for ``count_p_value``.

    Example:
        >>> round(float(beta_binomial_predictive([10, 12, 8], [1000, 1000, 1000], 1000, 0.0).mean()), 2)
        10.16
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

    Args:
        differences: One difference per pair (tonight's score − the reference's).
        alternative: Which direction counts.

    Returns:
        The p-value.

    Example:
        >>> signed_rank_p_value([0, 0, 0], "greater"), round(signed_rank_p_value([1, 2, 3, 4, 5, 6, -1], "greater"), 4)
        (1.0, 0.0234)
    """
    array = np.asarray(differences, float)
    nonzero = array[array != 0]
    if nonzero.size == 0:
        return 1.0
    return float(stats.wilcoxon(nonzero, alternative=alternative).pvalue)


def mcnemar_p_value(gained: int, lost: int, alternative: Alternative = "greater") -> float:
    """Exact McNemar p-value of paired yes/no outcomes: of the pairs that changed, did more turn
    yes (``gained``) than no (``lost``) than a fair coin would give?

    Args:
        gained: Pairs that went from no to yes.
        lost: Pairs that went from yes to no.
        alternative: Which direction counts.

    Returns:
        The p-value; 1 when no pair changed.

    Example:
        >>> mcnemar_p_value(0, 0), round(mcnemar_p_value(8, 1), 4)
        (1.0, 0.0195)
    """
    changed = gained + lost
    if changed == 0:
        return 1.0
    return float(stats.binomtest(gained, changed, 0.5, alternative=alternative).pvalue)
