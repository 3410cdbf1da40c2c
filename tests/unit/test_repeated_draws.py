"""A reference's draws against repeated later draws: an unchanged source alarms no more often than
the round's level however often it is looked at, though every look shares the reference, and a
shift of a minority of examples shows."""

from __future__ import annotations

import numpy as np
import pytest

from llmops.stats import reference_excess_p_value, spent_level

EXAMPLES = 30


def unchanged_draws(rng: np.random.Generator, examples: int, draws: int) -> np.ndarray:
    """Each example's own distribution: a point mass at 1.0 (the same answer again) with its own
    probability, else a spread of its own; every draw independent, the reference's included."""
    repeat = rng.uniform(0.2, 0.9, size=(examples, 1))
    spread = rng.uniform(0.02, 0.3, size=(examples, 1))
    return np.where(rng.random((examples, draws)) < repeat, 1.0, 1.0 - rng.uniform(0, 1, (examples, draws)) * spread)


def test_the_looks_of_a_round_spend_exactly_the_level() -> None:
    assert sum(spent_level(0.01, look, 7) for look in range(1, 8)) == pytest.approx(0.01)
    assert spent_level(0.01, 1, 7) > spent_level(0.01, 2, 7) > spent_level(0.01, 6, 7)
    with pytest.raises(ValueError, match="look 8 is not one of 1..7"):
        spent_level(0.01, 8, 7)


def test_an_unchanged_source_alarms_within_the_level_at_any_look_of_a_round() -> None:
    """Every look reuses the first column, the way every night reuses the reference's re-run; a
    point mass there (the re-run repeating the reference) is what makes naive accumulation drift."""
    rng = np.random.default_rng(20261206)
    level, looks, rounds = 0.2, 4, 300
    alarmed = 0
    for index in range(rounds):
        draws = unchanged_draws(rng, EXAMPLES, 1 + looks)
        alarmed += any(
            reference_excess_p_value(draws[:, : 1 + look], 1, permutations=400, seed=index) <= spent_level(level, look, looks)
            for look in range(1, looks + 1)
        )
    assert alarmed / rounds <= level + 2 * np.sqrt(level * (1 - level) / rounds)


def test_a_quarter_of_examples_falling_shows_within_three_looks() -> None:
    rng = np.random.default_rng(7)
    draws = unchanged_draws(rng, EXAMPLES, 4)
    fallen = rng.random((EXAMPLES, 3)) < 0.25  # each later draw reached by the change with chance 1/4
    draws[:, 1:] = np.where(fallen, draws[:, 1:] - 0.5, draws[:, 1:])
    p_values = [reference_excess_p_value(draws[:, : 1 + look], 1) for look in (1, 2, 3)]
    assert p_values[2] <= spent_level(0.01, 3, 7) and p_values[2] < p_values[0]


def test_a_reference_of_two_draws_and_identical_rows() -> None:
    """Rows that never change add nothing; the reference's two draws are chosen as a pair."""
    steady = [[0.8, 0.8, 0.8]] * 20
    assert reference_excess_p_value(steady, 2) == 1.0
    fallen = steady + [[1.0, 1.0, 0.25]] * 6
    assert reference_excess_p_value(fallen, 2) < 0.01 < reference_excess_p_value(fallen, 1)
    with pytest.raises(ValueError, match="nothing to compare"):
        reference_excess_p_value(steady, 3)
