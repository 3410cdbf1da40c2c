"""Repeated draws against a reference: is the reference's place among them still a matter of chance?

A pinned reference answers each example once or twice; every night answers it again. While the
model is unchanged, each example's draws (the reference's and the nights') are exchangeable, so
which of them are the reference's is a uniformly random choice, whatever an example's own
spread, ties and point masses. ``reference_excess_p_value`` tests that by permutation, example
by example: a share of examples that dropped far below their own draws shows, however few, and
an example that always answers the same adds nothing. The nights share the reference, so
their p-values are not independent and cannot be multiplied as e-values; each look instead
tests every night so far at once, at its own share of the level (``spent_level``), so the chance
that an unchanged model alarms at any look of a round is at most the level (a union bound).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

PERMUTATIONS = 20_000
"""Random choices a p-value is estimated from by default: p-values down to 1/20,001 resolve."""
CHUNK = 2_000
"""Reassignments drawn at once (memory: chunk × examples × draws)."""


def reference_excess_p_value(draws: ArrayLike, reference_draws: int, *, permutations: int = PERMUTATIONS, seed: int = 0) -> float:
    """Permutation p-value that the reference's draws score higher than their examples' other draws by chance.

    The statistic is the sum over examples of the mean of the reference's draws; under the null
    each example's reference draws are a uniformly random choice of its row. Estimated from
    random choices, counted as ``(1 + as large) / (1 + permutations)``, which is a valid p-value
    however many are drawn.

    Args:
        draws: One row per example, one column per draw; the first ``reference_draws`` columns
            are the reference's, the others later draws (higher is better: similarity, score).
        reference_draws: How many columns are the reference's (at least one other is needed).
        permutations: Random choices drawn; the smallest p-value is ``1 / (1 + permutations)``.
        seed: The random reassignments' seed (the same data give the same p-value).

    Returns:
        The one-sided p-value; small when later draws fell below the reference's.

    Raises:
        ValueError: When there is no later draw.

    Example:
        >>> rows = [[1.0, 1.0], [0.9, 0.9]] * 10 + [[1.0, 0.3]] * 8  # 8 of 28 examples fell, the rest did not move
        >>> reference_excess_p_value(rows, 1) < 0.01, reference_excess_p_value([[1.0, 1.0]] * 28, 1)
        (True, 1.0)
    """
    values = np.asarray(draws, np.float64)
    examples, columns = values.shape
    if columns <= reference_draws:
        raise ValueError(f"{columns} draws per example, of which {reference_draws} are the reference's: nothing to compare")
    observed = values[:, :reference_draws].mean(axis=1).sum()
    tolerance = 1e-9 * max(1.0, float(np.abs(values).sum()))
    rng = np.random.default_rng(seed)
    as_large = 0
    for start in range(0, permutations, CHUNK):
        size = min(CHUNK, permutations - start)
        chosen = rng.random((size, examples, columns)).argsort(axis=-1)[..., :reference_draws]
        permuted = np.take_along_axis(np.broadcast_to(values, (size, examples, columns)), chosen, axis=-1)
        as_large += int(np.sum(permuted.mean(axis=-1).sum(axis=-1) >= observed - tolerance))
    return (1 + as_large) / (1 + permutations)


def spent_level(level: float, look: int, looks: int) -> float:
    """The share of ``level`` spent on one look of a round of at most ``looks``: the looks' levels sum to ``level``.

    Look k before the last gets ``level / (k (k + 1))``, so the first looks, where a full change
    shows, get most; the last gets what is left, ``level / looks``.

    Args:
        level: The chance allowed of any false alarm in the round.
        look: Which look (1 for the first).
        looks: The round's looks.

    Returns:
        The level of this look.

    Raises:
        ValueError: When ``look`` is not within ``1..looks``.

    Example:
        >>> [round(spent_level(0.01, k, 3), 5) for k in (1, 2, 3)]
        [0.005, 0.00167, 0.00333]
    """
    if not 1 <= look <= looks:
        raise ValueError(f"look {look} is not one of 1..{looks}")
    return level / looks if look == looks else level / (look * (look + 1))
