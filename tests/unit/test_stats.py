"""Known answers for the statistical primitives every verdict rests on."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from llmops.stats import (
    benjamini_hochberg,
    benjamini_hochberg_cutoff,
    beta_binomial_predictive,
    binomial_overdispersion,
    bootstrap_ratio,
    day_prediction_test,
    design_effect,
    mcnemar_p_value,
    mean_interval,
    newcombe_difference,
    p95,
    quantile_interval,
    ratio_of_means_interval,
    robust_z_scores,
    signed_rank_p_value,
    welch_difference,
    wilson_interval,
)


def test_wilson_interval_matches_the_textbook_value() -> None:
    # 5 of 100 at 95 %: centre (p + z²/2n)/(1 + z²/n) ± z/(1 + z²/n)·√(p(1−p)/n + z²/4n²)
    low, high = wilson_interval(5, 100)
    assert low == pytest.approx(0.02154, abs=1e-5)
    assert high == pytest.approx(0.11175, abs=1e-5)


def test_wilson_interval_is_not_degenerate_at_zero_events() -> None:
    low, high = wilson_interval(0, 50)
    assert low == pytest.approx(0.0, abs=1e-12)
    assert 0.05 < high < 0.10


def test_newcombe_difference_matches_newcombe_1998_method_10() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, table II: 56/70 − 48/80 → 0.0524 to 0.3339
    low, high = newcombe_difference(48, 80, 56, 70)
    assert low == pytest.approx(0.0524, abs=1e-4)
    assert high == pytest.approx(0.3339, abs=1e-4)


def test_benjamini_hochberg_adjusts_like_the_hand_computation() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 → ×4/1, ×4/2, ×4/3, ×4/4 = 0.02, 0.02, 0.04, 0.04
    adjusted = benjamini_hochberg([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.02, 0.04, 0.04, 0.02])


def test_benjamini_hochberg_cutoff_is_the_largest_passing_step() -> None:
    p_values = [0.01, 0.04, 0.03, 0.005]
    assert benjamini_hochberg_cutoff(p_values, 0.05) == pytest.approx(0.05)  # all four pass
    assert benjamini_hochberg_cutoff(p_values, 0.03) == pytest.approx(0.015)  # 0.005 ≤ .0075, 0.01 ≤ .015
    assert benjamini_hochberg_cutoff([0.5, 0.9], 0.05) == pytest.approx(0.025)  # none: the first step


def test_bootstrap_ratio_of_p95_covers_the_true_ratio_and_is_reproducible() -> None:
    rng = np.random.default_rng(11)
    control = rng.lognormal(7.0, 0.5, 3_000)
    candidate = rng.lognormal(7.0, 0.5, 3_000) * 1.2  # true p95 ratio: exactly 1.2
    interval = bootstrap_ratio(control, candidate, p95, resamples=1_000, seed=3)
    assert interval.contains(1.2)
    assert interval.low > 1.0
    assert bootstrap_ratio(control, candidate, p95, resamples=1_000, seed=3) == interval


def test_ratio_of_means_interval_covers_the_true_ratio() -> None:
    rng = np.random.default_rng(5)
    control = rng.lognormal(-5.0, 0.7, 2_000)
    candidate = rng.lognormal(-5.0, 0.7, 2_000) * 1.1
    interval = ratio_of_means_interval(control, candidate)
    assert interval.contains(1.1)
    assert interval.high / interval.low < 1.15


def test_welch_difference_agrees_with_a_hand_computation() -> None:
    control, candidate = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 3.0, 4.0, 5.0, 6.0])
    interval, p_value = welch_difference(control, candidate)
    variance = np.var(candidate, ddof=1) / 5 + np.var(control, ddof=1) / 4
    df = variance**2 / ((np.var(candidate, ddof=1) / 5) ** 2 / 4 + (np.var(control, ddof=1) / 4) ** 2 / 3)
    half_width = stats.t.ppf(0.975, df) * np.sqrt(variance)
    assert interval.low == pytest.approx(1.5 - half_width)
    assert interval.high == pytest.approx(1.5 + half_width)
    assert 0.1 < p_value < 0.3


def test_one_arm_intervals_cover_their_estimates() -> None:
    rng = np.random.default_rng(2)
    values = rng.normal(0.86, 0.08, 500)
    assert mean_interval(values).contains(0.86)
    latencies = rng.lognormal(7.0, 0.5, 2_000)
    true_p95 = float(np.exp(7.0 + 0.5 * stats.norm.ppf(0.95)))
    assert quantile_interval(latencies, 0.95).contains(true_p95)


def test_robust_z_scores_ignore_the_outlier_they_measure() -> None:
    scores = robust_z_scores([1.0, 2.0, 3.0, 4.0, 100.0])
    # median 3, MAD 1 → scale 1.4826
    assert scores[-1] == pytest.approx(97 / 1.4826, rel=1e-4)
    assert scores[2] == 0.0


def test_binomial_overdispersion_separates_pure_binomial_from_day_effects() -> None:
    rng = np.random.default_rng(8)
    trials = np.full(30, 2_000)
    plain = rng.binomial(trials, 0.02)
    varying = rng.binomial(trials, 0.02 * rng.lognormal(0, 0.5, 30))
    assert binomial_overdispersion(plain, trials) < 0.001
    assert binomial_overdispersion(varying, trials) > 0.002


def test_beta_binomial_predictive_widens_with_overdispersion() -> None:
    counts, trials = np.full(14, 10), np.full(14, 1_000)
    binomial_like = beta_binomial_predictive(counts, trials, 1_000, overdispersion=0.0)
    assert binomial_like.mean() == pytest.approx(10.0, rel=0.01)
    assert binomial_like.std() == pytest.approx(np.sqrt(1_000 * 0.01 * 0.99), rel=0.05)
    overdispersed = beta_binomial_predictive(counts, trials, 1_000, overdispersion=0.005)
    assert overdispersed.sf(24) > 10 * binomial_like.sf(24)


def test_day_prediction_without_sampling_noise_is_the_classical_t_prediction() -> None:
    reference = [10.0, 12.0, 11.0, 13.0, 9.0]  # mean 11, sd √2.5
    prediction = day_prediction_test(16.0, 0.0, reference, [0.0] * 5, [0] * 5, [True] * 5, "greater")
    t = 5 / (np.sqrt(2.5) * np.sqrt(1 + 1 / 5))
    assert prediction.t == pytest.approx(t)
    assert prediction.df == 4
    assert prediction.p_value == pytest.approx(stats.t.sf(t, 4))


def test_day_prediction_accounts_for_the_days_own_noise() -> None:
    reference = [10.0, 12.0, 11.0, 13.0, 9.0]
    quiet = day_prediction_test(16.0, 0.0, reference, [0.0] * 5, [0] * 5, [True] * 5, "greater")
    noisy = day_prediction_test(16.0, 4.0, reference, [0.0] * 5, [0] * 5, [True] * 5, "greater")
    assert noisy.p_value > quiet.p_value


def test_day_prediction_compares_with_the_days_of_its_own_kind() -> None:
    weekdays, weekends = [100.0, 102.0, 98.0, 101.0, 99.0], [60.0, 61.0, 59.0, 60.0]
    kinds = [0] * 5 + [1] * 4
    weekend_mask = [False] * 5 + [True] * 4
    prediction = day_prediction_test(60.5, 0.0, weekdays + weekends, [0.0] * 9, kinds, weekend_mask, "two-sided")
    assert prediction.location == pytest.approx(60.0)
    assert prediction.df == 7
    assert prediction.p_value > 0.5


def test_signed_rank_p_value_ignores_identical_pairs() -> None:
    shifted = np.linspace(0.05, 0.3, 20)
    assert signed_rank_p_value(np.zeros(40), "greater") == 1.0
    with_ties = signed_rank_p_value(np.concatenate([shifted, np.zeros(20)]), "greater")
    assert with_ties == pytest.approx(signed_rank_p_value(shifted, "greater"))
    assert with_ties < 1e-4
    assert signed_rank_p_value(-shifted, "greater") > 0.99
    symmetric = np.concatenate([shifted, -shifted])
    assert signed_rank_p_value(symmetric, "two-sided") == pytest.approx(1.0)


def test_mcnemar_p_value_is_the_exact_binomial_of_the_changed_pairs() -> None:
    assert mcnemar_p_value(0, 0) == 1.0
    assert mcnemar_p_value(9, 0) == pytest.approx(0.5**9)
    assert mcnemar_p_value(2, 0) == pytest.approx(0.25)  # two new refusals out of 40 prove nothing
    assert mcnemar_p_value(3, 3) > 0.5


def test_design_effect_is_one_plus_cluster_size_minus_one_times_the_correlation() -> None:
    rng = np.random.default_rng(4)
    users = np.repeat(np.arange(400), 5)  # 400 users, 5 calls each
    correlated = rng.normal(0, 1, 400)[users] + rng.normal(0, 1, users.size)  # intra-user correlation 0.5
    assert design_effect(correlated, users) == pytest.approx(1 + 4 * 0.5, rel=0.15)
    assert design_effect(rng.normal(0, 1, users.size), users) == pytest.approx(1.0, abs=0.2)
    assert design_effect(correlated, None) == 1.0
    assert design_effect(correlated, np.arange(users.size)) == 1.0  # every call its own user


def test_welch_difference_agrees_with_scipy_and_widens_by_the_design_effects() -> None:
    rng = np.random.default_rng(5)
    control, candidate = rng.normal(0, 1, 300), rng.normal(0.2, 2, 200)
    interval, p_value = welch_difference(control, candidate)
    expected = stats.ttest_ind(candidate, control, equal_var=False)
    assert interval == pytest.approx(tuple(expected.confidence_interval()), rel=1e-9)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-9)
    wider, wider_p = welch_difference(control, candidate, design_effects=(4.0, 4.0))
    assert wider.high - wider.low == pytest.approx(2 * (interval.high - interval.low), rel=0.05)
    assert wider_p > p_value
