"""Is the candidate worse than the baseline? Paired comparison of two eval runs, per metric.

Both runs answered the same examples, so each example is its own control: the statistic is
the mean of the per-example differences (candidate − baseline, repeats averaged first), with a
seeded percentile-bootstrap interval over examples. A judge's noise or a non-deterministic
answer widens the interval instead of producing a verdict; only an interval that lies
entirely beyond the tolerance is a ``regression`` or an ``improvement``. The verdict is
``inconclusive`` whenever the comparison cannot carry one: a run that is not complete (an
outage is never a regression), runs on different dataset contents, or too few pairs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from sqlalchemy import Engine

from llmops.evals.store import RunRecord, example_scores, get_run
from llmops.stats import Interval, scipy_stats

Verdict = Literal["regression", "improvement", "no_difference", "inconclusive"]
"""What a comparison concludes; only an interval wholly beyond the tolerance is a regression or an improvement."""
VERDICT_ORDER: tuple[Verdict, ...] = ("regression", "inconclusive", "improvement", "no_difference")
"""How verdicts combine (metrics of a comparison, datasets of a gate): any regression makes it one, and so on."""


def interval_text(interval: Interval) -> str:
    """An interval as every verdict shows it: signed, three decimals.

    Example:
        >>> interval_text(Interval(-0.21, -0.09))
        '[-0.210, -0.090]'
    """
    return f"[{interval.low:+.3f}, {interval.high:+.3f}]"


@dataclass(frozen=True)
class VerdictPolicy:
    """How sure to be and how large a change must be before it counts.

    Args:
        tolerance: The smallest change in mean score that matters (scores are in [0, 1]).
        confidence: The bootstrap interval's confidence level.
        min_pairs: Fewer paired examples than this make a metric ``inconclusive``.
        resamples: Bootstrap resamples.
        seed: The bootstrap's seed, so comparing the same two runs twice gives the same verdict.

    Example:
        >>> strict = VerdictPolicy(tolerance=0.01, confidence=0.99)
        >>> strict.min_pairs
        10
    """

    tolerance: float = 0.02
    """Scores are in [0, 1]: 0.02 = two points of mean score."""
    confidence: float = 0.95
    min_pairs: int = 10
    resamples: int = 5000
    seed: int = 0
    """The bootstrap's seed: comparing the same two runs twice gives the same verdict."""


@dataclass(frozen=True)
class MetricComparison:
    """One metric of a comparison: the paired means, their difference and its interval, the verdict."""

    metric: str
    verdict: Verdict
    pairs: int
    baseline_mean: float | None
    candidate_mean: float | None
    delta: float | None
    """Mean paired difference, candidate − baseline."""
    interval: Interval | None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (artifacts, ``--json``)."""
        return {
            "metric": self.metric,
            "verdict": self.verdict,
            "pairs": self.pairs,
            "baseline": self.baseline_mean,
            "candidate": self.candidate_mean,
            "delta": self.delta,
            "interval": list(self.interval) if self.interval else None,
            "note": self.note,
        }


@dataclass(frozen=True)
class Comparison:
    """A candidate run against a baseline run: the overall verdict and one line per metric.

    Made by ``compare_runs``; ``reason`` says in one line what decided the verdict.
    """

    baseline: RunRecord
    candidate: RunRecord
    verdict: Verdict
    reason: str
    metrics: list[MetricComparison] = field(default_factory=list)

    @property
    def regressions(self) -> list[MetricComparison]:
        """The metrics that regressed."""
        return [metric for metric in self.metrics if metric.verdict == "regression"]

    def regression_changes(self) -> list[str]:
        """``judge Δ -0.150 [-0.210, -0.090]`` for each metric that regressed."""
        return [
            f"{m.metric} Δ {m.delta:+.3f} {interval_text(m.interval)}"
            for m in self.regressions if m.delta is not None and m.interval is not None
        ]  # fmt: skip

    def rows(self) -> list[dict[str, Any]]:
        """One table row per metric (artifacts, the CLI)."""
        return [
            {
                "metric": m.metric,
                "baseline": m.baseline_mean,
                "candidate": m.candidate_mean,
                "delta": m.delta,
                "interval": interval_text(m.interval) if m.interval else None,
                "pairs": m.pairs,
                "verdict": m.verdict,
            }
            for m in self.metrics
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (artifacts, ``--json``), with the runs by id."""
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "baseline_run": self.baseline.id,
            "candidate_run": self.candidate.id,
            "baseline": f"{self.baseline.prompt_name} {self.baseline.prompt_version}",
            "candidate": f"{self.candidate.prompt_name} {self.candidate.prompt_version}",
            "metrics": [metric.to_dict() for metric in self.metrics],
        }


def paired_difference(differences: np.ndarray, policy: VerdictPolicy) -> Interval:
    """Percentile-bootstrap interval of the mean of paired differences (examples resampled)."""
    if np.ptp(differences) == 0:
        mean = float(differences[0])
        return Interval(mean, mean)
    result = scipy_stats.bootstrap(
        (differences,), np.mean, n_resamples=policy.resamples, confidence_level=policy.confidence,
        method="percentile", vectorized=True, rng=np.random.default_rng(policy.seed),
    )  # fmt: skip
    return Interval(float(result.confidence_interval.low), float(result.confidence_interval.high))


def classify(interval: Interval, tolerance: float) -> Verdict:
    """``regression`` or ``improvement`` when the whole interval lies beyond ``tolerance``, else ``no_difference``."""
    if interval.high < -tolerance:
        return "regression"
    if interval.low > tolerance:
        return "improvement"
    return "no_difference"


def compare_scores(
    baseline: Mapping[str, Mapping[str, float]],
    candidate: Mapping[str, Mapping[str, float]],
    policy: VerdictPolicy | None = None,
) -> list[MetricComparison]:
    """Per metric, the paired comparison of two runs' per-example scores.

    Only examples scored on a metric in both runs are paired; each pair's difference is
    candidate − baseline, and the bootstrap interval of their mean decides the verdict.

    Args:
        baseline: ``{example_id: {metric: score}}`` of the baseline run (repeats averaged).
        candidate: The same for the candidate run.
        policy: Tolerance, confidence and minimum pairs; ``VerdictPolicy()`` when None.

    Returns:
        One comparison per metric present in either run, sorted by metric.

    Example:
        >>> baseline = {f"ex-{i}": {"judge": 0.75} for i in range(12)}
        >>> candidate = {f"ex-{i}": {"judge": 0.5} for i in range(12)}
        >>> [(m.metric, m.verdict, m.delta) for m in compare_scores(baseline, candidate)]
        [('judge', 'regression', -0.25)]
    """
    policy = policy or VerdictPolicy()
    metrics = sorted({metric for scores in (*baseline.values(), *candidate.values()) for metric in scores})
    compared: list[MetricComparison] = []
    for metric in metrics:
        shared = sorted(
            example for example in baseline.keys() & candidate.keys()
            if metric in baseline[example] and metric in candidate[example]
        )  # fmt: skip
        before = np.array([baseline[example][metric] for example in shared], float)
        after = np.array([candidate[example][metric] for example in shared], float)
        if len(shared) < policy.min_pairs:
            compared.append(MetricComparison(
                metric, "inconclusive", len(shared),
                float(before.mean()) if len(shared) else None, float(after.mean()) if len(shared) else None,
                float((after - before).mean()) if len(shared) else None, None,
                f"{len(shared)} paired examples; at least {policy.min_pairs} needed",
            ))  # fmt: skip
            continue
        differences = after - before
        interval = paired_difference(differences, policy)
        compared.append(MetricComparison(
            metric, classify(interval, policy.tolerance), len(shared), float(before.mean()), float(after.mean()),
            float(differences.mean()), interval,
        ))  # fmt: skip
    return compared


def combined_verdict(verdicts: list[Verdict]) -> Verdict:
    """The verdict of several (metrics, datasets): any regression makes it one, then inconclusive, and so on.

    Args:
        verdicts: The verdicts to combine; none gives ``inconclusive``.

    Returns:
        The first of ``VERDICT_ORDER`` among them.

    Example:
        >>> combined_verdict(["no_difference", "improvement", "inconclusive"])
        'inconclusive'
    """
    return next((verdict for verdict in VERDICT_ORDER if verdict in verdicts), "inconclusive")


def _not_comparable(baseline: RunRecord, candidate: RunRecord) -> str | None:
    for run in (baseline, candidate):
        if run.status != "complete":
            return f"run {run.id} is {run.status}" + (f" ({run.status_reason})" if run.status_reason else "")
    if baseline.dataset_hash != candidate.dataset_hash:
        return (
            f"the runs saw different dataset contents ({baseline.dataset_name} {baseline.dataset_hash[:12]} vs "
            f"{candidate.dataset_name} {candidate.dataset_hash[:12]})"
        )
    return None


def compare_runs(engine: Engine, baseline_run_id: int, candidate_run_id: int, policy: VerdictPolicy | None = None) -> Comparison:
    """The verdict on a candidate run against a baseline run, metric by metric.

    ``inconclusive`` without comparing scores when either run is not complete (an outage is
    never a regression) or the runs saw different dataset contents.

    Args:
        engine: The store.
        baseline_run_id: The run to compare against (the serving version's).
        candidate_run_id: The run being judged.
        policy: Tolerance, confidence and minimum pairs; ``VerdictPolicy()`` when None.

    Returns:
        The overall verdict, its reason, and one comparison per metric.

    Raises:
        RunNotFound: If either run does not exist.

    Example:
        ```python
        comparison = compare_runs(get_engine(), baseline_run_id=41, candidate_run_id=42)
        comparison.verdict, comparison.regression_changes()  # ('regression', ['judge Δ -0.150 [-0.210, -0.090]'])
        ```
    """
    policy = policy or VerdictPolicy()
    baseline, candidate = get_run(engine, baseline_run_id), get_run(engine, candidate_run_id)
    problem = _not_comparable(baseline, candidate)
    if problem:
        return Comparison(baseline, candidate, "inconclusive", problem)
    metrics = compare_scores(example_scores(engine, baseline.id), example_scores(engine, candidate.id), policy)
    verdict = combined_verdict([metric.verdict for metric in metrics])
    worst = {"regression": "regressed on", "improvement": "improved on", "inconclusive": "too few pairs for"}
    named = [metric.metric for metric in metrics if metric.verdict == verdict]
    reason = (
        f"{worst[verdict]} {', '.join(named)} (tolerance ±{policy.tolerance:g}, {policy.confidence:.0%} interval)"
        if verdict in worst else f"no metric moved beyond ±{policy.tolerance:g}"
    )  # fmt: skip
    return Comparison(baseline, candidate, verdict, reason, metrics)
