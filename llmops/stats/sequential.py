"""Always-valid verdicts: tests a rollout may look at after every run without crying wolf.

``advance-rollouts`` asks the trace gate every few minutes. A fixed-horizon interval asked that
often fails an identical candidate far more often than its level says, so the old gate waited
for a fixed window and judged once. The tests here are likelihood-ratio martingales on the
Gaussian approximation of an estimate (a difference or log-ratio of two arms, its variance
widened by the users' design effect): by Ville's inequality the chance that one *ever* crosses
its boundary when its null hypothesis holds is at most its level, however often it is looked at.

- ``sprt``: a mixture sequential probability ratio test of "no change" against "harm of one
  tolerance or more" (the mixture puts equal weight on 1, 2 and 4 tolerances, so a gross
  regression is caught sooner than a marginal one), and Wald's test of "harm of one tolerance"
  against "no change" for the early pass. Fail when the evidence for harm reaches ``1/α``, pass
  when the evidence against it reaches ``1/β``.
- ``mixture_interval``: Robbins' normal-mixture confidence sequence (the mSPRT of Johari et al.,
  *Always valid inference*, 2022): an interval that covers the true change at every look at once.

Both are closed forms of a few lines on numpy. The packages that implement them were weighed
and left: ``confseq`` is a C++ extension that needs Boost to build and has had no release since
2023; ``savvi`` pulls in cvxpy, fits row by row in Python, and knows nothing of users who make
many calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from llmops.stats.comparisons import Interval

HARM_MULTIPLES = (1.0, 2.0, 4.0)
"""The mixture's alternatives, in tolerances: equal weight on each."""

SequentialVerdict = Literal["fail", "pass", "undecided"]


@dataclass(frozen=True, slots=True)
class SequentialTest:
    """The evidence of one metric so far, and what it takes to decide.

    ``estimate`` and ``harm`` are on the test's scale, oriented so that a positive change is
    worse (a rise in error rate, a fall in feedback; the log of a latency or cost ratio).
    ``harm_evidence`` is the likelihood ratio of harm against no change, ``safety_evidence`` the
    ratio of no change against harm of one tolerance; the verdict falls when one reaches its
    threshold.

    Example:
        >>> test = sprt(0.012, 1e-5, 1.5e-5, harm=0.01, false_failure=0.01, missed_harm=0.05)
        >>> test.verdict, test.explain()
        ('fail', 'evidence of harm 384 crossed 100')
    """

    estimate: float
    harm: float
    harm_evidence: float
    safety_evidence: float
    fail_threshold: float
    pass_threshold: float
    verdict: SequentialVerdict
    information: float
    """``1 / variance`` of the estimate: grows with the calls seen, which is how ``calls_to_verdict`` projects."""

    def calls_to_verdict(self, calls: int) -> int | None:
        """Further calls until a verdict if the change stays at its estimate (Wald's approximation).

        The log-evidence drifts towards the nearer threshold linearly in the information, which
        grows in proportion to the calls. None once decided, or when the estimate sits where
        neither side gains (exactly half a tolerance).

        Args:
            calls: The calls seen so far (both arms).

        Returns:
            The expected further calls, or None.

        Example:
            >>> sprt(0.004, 1e-5, 1e-5, harm=0.01, false_failure=0.01, missed_harm=0.05).calls_to_verdict(2_000)
            3992
        """
        if self.verdict != "undecided" or calls <= 0 or self.information <= 0:
            return None
        per_call = self.information / calls
        towards_harm = self.harm * (self.estimate - self.harm / 2)  # log-evidence gained per unit of information
        if towards_harm > 0:
            remaining = (math.log(self.fail_threshold) - _log_mixture(self.estimate, self.harm, self.information)) / towards_harm
        elif towards_harm < 0:
            remaining = (math.log(self.pass_threshold) - math.log(self.safety_evidence)) / -towards_harm
        else:
            return None
        return max(1, math.ceil(remaining / per_call))

    def explain(self) -> str:
        """One line: the evidence, the threshold it crossed or the way still to go.

        Example:
            >>> sprt(0.004, 1e-5, 1e-5, harm=0.01, false_failure=0.01, missed_harm=0.05).explain()
            'evidence of harm 0.12 of 100; of no harm 2.7 of 20'
        """
        harm, safety = _ratio(self.harm_evidence), _ratio(self.safety_evidence)
        if self.verdict == "fail":
            return f"evidence of harm {harm} crossed {self.fail_threshold:g}"
        if self.verdict == "pass":
            return f"evidence of no harm {safety} crossed {self.pass_threshold:g}"
        return f"evidence of harm {harm} of {self.fail_threshold:g}; of no harm {safety} of {self.pass_threshold:g}"


def _ratio(value: float) -> str:
    if value >= 1e6:
        return "over a million"
    return f"{value:.2g}" if value < 10 else f"{value:,.0f}"


def _log_mixture(estimate: float, harm: float, information: float) -> float:
    """Log of the mixture likelihood ratio: harm of k tolerances (k in ``HARM_MULTIPLES``) against none."""
    logs = [k * harm * information * (estimate - k * harm / 2) for k in HARM_MULTIPLES]
    return float(np.logaddexp.reduce(logs) - math.log(len(logs)))


def sprt(
    estimate: float,
    null_variance: float,
    harm_variance: float,
    *,
    harm: float,
    false_failure: float,
    missed_harm: float,
) -> SequentialTest:
    """The sequential test of one metric at one look.

    Failing needs the mixture likelihood ratio of harm against no change to reach
    ``1/false_failure``; passing early needs the likelihood ratio of no change against harm of
    one tolerance to reach ``1/missed_harm``. Each ratio is a martingale under the hypothesis it
    is tested against, so the chance of ever failing a candidate no worse than control is at most
    ``false_failure``, and of ever passing one a tolerance worse at most ``missed_harm``.

    Args:
        estimate: The change, positive when worse (difference, or log-ratio).
        null_variance: The estimate's variance were the arms alike (a rate's pooled variance).
        harm_variance: Its variance were the candidate one tolerance worse.
        harm: The tolerance on the estimate's scale (> 0).
        false_failure: The test's level α.
        missed_harm: The early pass's level β.

    Returns:
        The evidence, the thresholds and the verdict.

    Example:
        >>> sprt(-0.001, 1e-5, 1.5e-5, harm=0.01, false_failure=0.01, missed_harm=0.05).verdict
        'pass'
    """
    if harm <= 0 or null_variance <= 0 or harm_variance <= 0:
        raise ValueError(f"harm and variances must be positive, got {harm}, {null_variance}, {harm_variance}")
    information = 1 / null_variance
    log_harm = _log_mixture(estimate, harm, information)
    log_safety = harm / harm_variance * (harm / 2 - estimate)
    fail_threshold, pass_threshold = 1 / false_failure, 1 / missed_harm
    verdict: SequentialVerdict = "undecided"
    if log_harm >= math.log(fail_threshold):
        verdict = "fail"
    elif log_safety >= math.log(pass_threshold):
        verdict = "pass"
    return SequentialTest(
        estimate=estimate,
        harm=harm,
        harm_evidence=math.exp(min(log_harm, 700.0)),
        safety_evidence=math.exp(min(log_safety, 700.0)),
        fail_threshold=fail_threshold,
        pass_threshold=pass_threshold,
        verdict=verdict,
        information=information,
    )


def mixture_interval(estimate: float, variance: float, scale: float, confidence: float = 0.95) -> Interval:
    """Robbins' normal-mixture confidence sequence for a change: valid at every look at once.

    With a normal mixing distribution of standard deviation ``scale`` over the change, the
    mixture likelihood ratio stays below ``1/α`` for every change inside the interval. It is
    narrowest when the variance is near ``scale²``; choose the change worth detecting.

    Args:
        estimate: The change (difference, or log-ratio).
        variance: Its variance.
        scale: The mixing distribution's standard deviation (> 0).
        confidence: 1 − α.

    Returns:
        The interval of the change.

    Example:
        >>> [round(bound, 4) for bound in mixture_interval(0.02, 1e-5, 0.01)]
        [0.0104, 0.0296]
    """
    if variance <= 0:
        return Interval(estimate, estimate)
    mixing = scale * scale
    radius = math.sqrt(
        variance * (variance + mixing) / mixing * (math.log((variance + mixing) / variance) - 2 * math.log(1 - confidence))
    )
    return Interval(estimate - radius, estimate + radius)
