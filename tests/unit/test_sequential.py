"""Always-valid tests: however often they are looked at, an unchanged candidate fails at most
at their level, and the confidence sequence covers the truth at every look at once."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmops.stats import mixture_interval, sprt

LOOKS = 40
PATHS = 4_000


def gaussian_paths(change: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Running means of unit-variance calls over ``LOOKS`` looks of 100 calls, and their variances."""
    rng = np.random.default_rng(seed)
    calls = np.arange(1, LOOKS + 1) * 100
    sums = rng.normal(change * 100, 10.0, (PATHS, LOOKS)).cumsum(axis=1)
    return sums / calls, 1.0 / calls


def first_verdicts(change: float, harm: float, seed: int) -> list[str]:
    means, variances = gaussian_paths(change, seed)
    verdicts = []
    for path in means:
        verdict = "undecided"
        for estimate, variance in zip(path, variances, strict=True):
            verdict = sprt(
                float(estimate), float(variance), float(variance), harm=harm, false_failure=0.01, missed_harm=0.05
            ).verdict
            if verdict != "undecided":
                break
        verdicts.append(verdict)
    return verdicts


def test_looking_forty_times_fails_an_unchanged_candidate_at_most_at_the_level() -> None:
    verdicts = first_verdicts(change=0.0, harm=0.1, seed=1)
    assert verdicts.count("fail") / PATHS <= 0.01
    assert verdicts.count("pass") / PATHS > 0.9  # and it says so: 4,000 calls show no harm of 0.1 SD


def test_a_candidate_one_tolerance_worse_rarely_passes_and_a_worse_one_fails() -> None:
    at_tolerance = first_verdicts(change=0.1, harm=0.1, seed=2)
    assert at_tolerance.count("pass") / PATHS <= 0.05
    twice = first_verdicts(change=0.2, harm=0.1, seed=3)
    assert twice.count("fail") / PATHS > 0.95


def test_a_better_candidate_never_fails() -> None:
    assert "fail" not in first_verdicts(change=-0.05, harm=0.1, seed=4)


def test_the_confidence_sequence_covers_the_truth_at_every_look_at_once() -> None:
    means, variances = gaussian_paths(0.3, seed=5)
    missed = 0
    for path in means:
        intervals = [mixture_interval(float(m), float(v), scale=0.1) for m, v in zip(path, variances, strict=True)]
        missed += any(not interval.contains(0.3) for interval in intervals)
    assert missed / PATHS <= 0.05


def test_the_verdict_explains_itself_and_projects_the_traffic_left() -> None:
    undecided = sprt(0.004, 1e-5, 1e-5, harm=0.01, false_failure=0.01, missed_harm=0.05)
    assert undecided.verdict == "undecided"
    assert undecided.explain() == "evidence of harm 0.12 of 100; of no harm 2.7 of 20"
    remaining = undecided.calls_to_verdict(2_000)
    assert remaining is not None
    # after that many more calls at the same estimate, the early pass is reached
    later = sprt(0.004, 1e-5 * 2_000 / (2_000 + remaining), 1e-5 * 2_000 / (2_000 + remaining), harm=0.01,
                 false_failure=0.01, missed_harm=0.05)  # fmt: skip
    assert later.verdict == "pass"
    assert math.isclose(later.safety_evidence, 20, rel_tol=0.01)


def test_nonsense_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="harm and variances must be positive"):
        sprt(0.0, 0.0, 1.0, harm=0.1, false_failure=0.01, missed_harm=0.05)
