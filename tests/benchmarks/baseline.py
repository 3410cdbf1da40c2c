"""The per-call drift test of popular drift tools (Evidently-style defaults), for side-by-side comparison.

``llmops.drift.trace`` judges a day against how much whole days vary; popular drift tools test
each column's raw per-call values against a pooled reference (two-sample KS, normalised
Wasserstein distance), which ordinary day-to-day variation trips most nights. This is that
baseline, kept out of the core because only ``bench_drift`` (and its unit test) compare with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats


@dataclass(frozen=True)
class BaselineColumnResult:
    """The per-call test of popular drift tools on one column (for comparison, not for alerts)."""

    column: str
    ks_statistic: float
    ks_p_value: float
    wasserstein_normed: float
    ks_drift: bool
    wasserstein_drift: bool


def baseline_drift(
    reference: Mapping[str, ArrayLike],
    current: Mapping[str, ArrayLike],
    ks_alpha: float = 0.05,
    wasserstein_threshold: float = 0.1,
) -> list[BaselineColumnResult]:
    """Evidently-style defaults on the raw per-call values of each column.

    Args:
        reference: Each column's reference values (e.g. the 14 days before, pooled).
        current: The same columns' values of the checked day.
        ks_alpha: A column drifts by KS when the two-sample KS p-value is below it.
        wasserstein_threshold: A column drifts by Wasserstein when the distance, normalised by the
            reference's standard deviation, reaches it.

    Returns:
        One result per column of ``reference``.

    Example:
        >>> rng = np.random.default_rng(9)
        >>> result = baseline_drift({"latency_ms": rng.lognormal(7, 0.5, 12_000)}, {"latency_ms": rng.lognormal(7.1, 0.5, 900)})
        >>> result[0].ks_drift, result[0].wasserstein_drift
        (True, True)
    """
    results = []
    for column, reference_values in reference.items():
        ref = np.asarray(reference_values, float)
        cur = np.asarray(current[column], float)
        ks = stats.ks_2samp(ref, cur)
        distance = stats.wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001)
        results.append(
            BaselineColumnResult(
                column=column,
                ks_statistic=float(ks.statistic),
                ks_p_value=float(ks.pvalue),
                wasserstein_normed=float(distance),
                ks_drift=bool(ks.pvalue < ks_alpha),
                wasserstein_drift=bool(distance >= wasserstein_threshold),
            )
        )
    return results
