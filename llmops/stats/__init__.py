"""Statistical primitives shared by rollout gates, A/B reports and drift detection.

Each verdict the product gives (a failed gate, a winner, a drift alert) rests on one of these,
so they are thin, tested wrappers around scipy rather than home-made distributions.

- ``comparisons``: two arms compared (A/B reports, rollout gates): intervals of rates, means,
  quantiles and their differences or ratios, widened by the design effect of repeat users.
- ``sequential``: always-valid tests for a gate asked at every look (mixture SPRT, confidence
  sequences).
- ``reference``: a new observation against reference data (nightly drift): a day against its
  reference days, answers against a pinned reference, and false-discovery control.
- ``repeated``: a reference's draws against repeated later draws (pinned drift over nights):
  a permutation test per look and the level each look spends.

Every name is importable from ``llmops.stats`` itself.
"""

from llmops.stats.comparisons import (
    Interval,
    Statistic,
    bootstrap_ratio,
    design_effect,
    mean_interval,
    newcombe_difference,
    p95,
    quantile_interval,
    ratio_of_means_interval,
    two_proportion_p_value,
    welch_difference,
    welch_variance,
    wilson_interval,
)
from llmops.stats.deferred import stats as scipy_stats
from llmops.stats.reference import (
    Alternative,
    Prediction,
    benjamini_hochberg,
    benjamini_hochberg_cutoff,
    beta_binomial_predictive,
    binomial_overdispersion,
    count_p_value,
    day_prediction_test,
    mcnemar_p_value,
    regression_day_prediction_test,
    robust_z_scores,
    signed_rank_p_value,
    t_critical,
)
from llmops.stats.repeated import reference_excess_p_value, spent_level
from llmops.stats.sequential import HARM_MULTIPLES, SequentialTest, SequentialVerdict, mixture_interval, sprt

__all__ = [
    "HARM_MULTIPLES",
    "Alternative",
    "Interval",
    "Prediction",
    "SequentialTest",
    "SequentialVerdict",
    "Statistic",
    "benjamini_hochberg",
    "benjamini_hochberg_cutoff",
    "beta_binomial_predictive",
    "binomial_overdispersion",
    "bootstrap_ratio",
    "count_p_value",
    "day_prediction_test",
    "design_effect",
    "mcnemar_p_value",
    "mean_interval",
    "mixture_interval",
    "newcombe_difference",
    "p95",
    "quantile_interval",
    "ratio_of_means_interval",
    "reference_excess_p_value",
    "regression_day_prediction_test",
    "robust_z_scores",
    "scipy_stats",
    "signed_rank_p_value",
    "spent_level",
    "sprt",
    "t_critical",
    "two_proportion_p_value",
    "welch_difference",
    "welch_variance",
    "wilson_interval",
]
