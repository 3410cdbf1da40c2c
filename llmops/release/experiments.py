"""Canary-vs-control gates and A/B reports from the traces of each arm.

A gate fails only when the confidence interval of the change lies *entirely* beyond the
tolerance: noise alone never fails a gate, and a real regression larger than the tolerance
fails it once enough traffic has been seen. Below the minimum samples the verdict is
"not_enough_data", which a rollout reads as "wait", never as "pass".

Both arms run at the same time, so the day's own ups and downs (a slow provider hour, a busy
Monday) hit both alike and cancel in the comparison. What remains is per-call noise and, since
a sticky split puts each user wholly in one arm, the differences between users: each interval
is widened by its sample's design effect over users (``llmops.stats.design_effect``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from itertools import combinations
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from llmops import settings
from llmops.stats import (
    Interval,
    bootstrap_ratio,
    design_effect,
    mean_interval,
    mixture_interval,
    newcombe_difference,
    p95,
    quantile_interval,
    ratio_of_means_interval,
    scipy_stats,
    sprt,
    two_proportion_p_value,
    welch_difference,
    welch_variance,
    wilson_interval,
)
from llmops.text import markdown_escape

GateVerdict = Literal["pass", "fail", "undecided", "not_enough_data"]
GateMethod = Literal["sequential", "fixed"]
CORE_METRICS = ("error_rate", "p95_latency_ms", "cost_per_request_usd")
"""The metrics a pass waits for; feedback, eval scores and outcomes are too sparse to hold a step."""
ABVerdict = Literal["winner", "no_difference", "not_enough_data"]


@dataclass
class ArmSample:
    """Per-call observations of one arm (a prompt version) over a window.

    ``users`` holds, per sample (``errors``, ``latencies_ms``, ``costs``, ``feedback``,
    ``eval_scores``, ``outcome:NAME``), who made each call, in the same order. A user's calls are
    alike and a sticky split keeps each user in one arm, so the intervals widen by each sample's
    design effect; a sample without users is taken as independent calls. ``history`` holds, per
    sample, the caller's own average before the rollout (NaN for a new user): it narrows the
    intervals (``with_history``).

    Example:
        >>> arm = ArmSample()
        >>> arm.add("errors", False, "user-1")
        >>> arm.add("outcome:escalated", True, "user-1")
        >>> arm.errors, arm.outcomes, arm.users
        ([False], {'escalated': [1.0]}, {'errors': ['user-1'], 'outcome:escalated': ['user-1']})
    """

    errors: list[bool] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    costs: list[float] = field(default_factory=list)
    feedback: list[float] = field(default_factory=list)
    eval_scores: list[float] = field(default_factory=list)
    outcomes: dict[str, list[float]] = field(default_factory=dict)
    users: dict[str, list[str]] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)

    def add(self, sample: str, value: float | bool, user: str) -> None:
        """Record one call's ``value`` of ``sample`` (a field name, or ``outcome:NAME``), made by ``user``."""
        if sample.startswith("outcome:"):
            self.outcomes.setdefault(sample.removeprefix("outcome:"), []).append(float(value))
        else:
            getattr(self, sample).append(value)
        self.users.setdefault(sample, []).append(user)


class OutcomeTolerance(BaseModel):
    """How a named trace-metadata outcome is judged (``escalated``: lower is better).

    Example:
        >>> Tolerances(outcomes={"escalated": OutcomeTolerance(higher_is_better=False, max_worsening=0.02)}).outcome("escalated")
        OutcomeTolerance(higher_is_better=False, max_worsening=0.02)
    """

    # the promote-prompt form shows this line, not the whole docstring
    model_config = ConfigDict(
        json_schema_extra={"description": "How a named trace-metadata outcome is judged (``escalated``: lower is better)."}
    )

    higher_is_better: bool = True
    max_worsening: float = Field(0.05, ge=0, description="Largest allowed change for the worse (absolute).")


class Tolerances(BaseModel):
    """What a candidate may cost relative to control before a gate fails, and how sure to be.

    Every field's description says its unit; the promote-prompt form shows them as help text.

    Example:
        >>> tolerances = Tolerances(max_cost_increase=0.2, min_samples_per_arm=1000)
        >>> tolerances.max_cost_increase, tolerances.outcome("resolved").max_worsening
        (0.2, 0.05)
    """

    # the promote-prompt form shows this line, not the whole docstring
    model_config = ConfigDict(
        json_schema_extra={
            "description": "What a candidate may cost relative to control before a gate fails, and how sure to be."
        }
    )

    max_error_rate_increase: float = Field(0.01, ge=0, description="Absolute: 0.01 = one percentage point.")
    max_p95_latency_increase: float = Field(0.15, ge=0, description="Relative: 0.15 = +15 %.")
    max_cost_increase: float = Field(0.10, ge=0, description="Relative cost per request: 0.10 = +10 %.")
    max_feedback_drop: float = Field(0.05, ge=0, description="Mean user feedback (−1..1), absolute.")
    max_eval_score_drop: float = Field(0.05, ge=0, description="Mean automated eval score (0..1), absolute.")
    outcomes: dict[str, OutcomeTolerance] = Field(
        default_factory=dict, description="Named metadata outcomes; unlisted ones are higher-is-better, 0.05."
    )
    min_samples_per_arm: int = Field(300, ge=2, description="Calls per arm before errors, latency and cost are judged.")
    min_scores_per_arm: int = Field(30, ge=2, description="Feedback, eval scores or outcome values per arm.")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Two-sided level of every interval.")
    method: GateMethod = Field(
        "sequential",
        description="sequential: judged at every look, fails as soon as harm is shown, passes early once no harm is shown; "
        "fixed: one interval at the step's minimum traffic (the gate of 0.2.0).",
    )
    false_failure_rate: float = Field(
        0.01, gt=0, lt=0.5, description="Sequential: the chance an unchanged candidate ever fails, over all metrics and looks."
    )
    missed_harm_rate: float = Field(
        0.05, gt=0, lt=0.5, description="Sequential: the chance a candidate one tolerance worse passes a step early."
    )
    min_users_for_early_pass: int = Field(
        50, ge=1, description="Sequential: distinct candidate users a step must have served before it passes early."
    )
    history_days: int = Field(
        7, ge=0, le=90, description="Days of each user's calls before the rollout that narrow the intervals (CUPED); 0: off."
    )

    def outcome(self, name: str) -> OutcomeTolerance:
        """How the outcome ``name`` is judged: as listed, else higher-is-better within 0.05."""
        return self.outcomes.get(name, OutcomeTolerance())


TolerancePreset = Literal["strict", "default", "lenient"]
TOLERANCE_PRESETS: dict[str, Tolerances] = {
    "strict": Tolerances(
        max_error_rate_increase=0.005, max_p95_latency_increase=0.10, max_cost_increase=0.05,
        max_feedback_drop=0.03, max_eval_score_drop=0.03,
    ),
    "default": Tolerances(),
    "lenient": Tolerances(
        max_error_rate_increase=0.02, max_p95_latency_increase=0.25, max_cost_increase=0.20,
        max_feedback_drop=0.10, max_eval_score_drop=0.10,
    ),
}  # fmt: skip
"""What the promote form's "tolerances" choice means: strict for a user-facing change that must
not cost anything, lenient for a change that trades some latency or cost for quality."""


Scale = Literal["difference", "ratio"]


@dataclass(frozen=True)
class _Metric:
    """One compared quantity: how to read it off an arm and how to compare two arms."""

    name: str
    label: str
    sample: str
    """The ``ArmSample`` list it reads: a field name, or ``outcome:NAME``."""
    kind: Literal["proportion", "p95", "mean_ratio", "mean_difference"]
    higher_is_worse: bool
    tolerance: float
    uses_scores: bool

    def values(self, arm: ArmSample) -> Sequence[float]:
        if self.sample.startswith("outcome:"):
            return arm.outcomes.get(self.sample.removeprefix("outcome:"), [])
        return getattr(arm, self.sample)

    def users(self, arm: ArmSample) -> list[str] | None:
        users = arm.users.get(self.sample)
        return users if users is not None and len(users) == len(self.values(arm)) else None

    def history(self, arm: ArmSample) -> np.ndarray | None:
        history = arm.history.get(self.sample)
        return np.asarray(history, float) if history is not None and len(history) == len(self.values(arm)) else None

    @property
    def scale(self) -> Scale:
        return "ratio" if self.kind in ("p95", "mean_ratio") else "difference"

    @property
    def harm(self) -> float:
        """The tolerance on the sequential test's scale: the log of a ratio, else the difference."""
        return math.log1p(self.tolerance) if self.scale == "ratio" else self.tolerance

    def tolerance_text(self) -> str:
        worse = "+" if self.higher_is_worse else "−"
        if self.scale == "ratio":
            return f"at most {worse}{self.tolerance:.0%}"
        if self.kind == "proportion":
            return f"at most {worse}{self.tolerance * 100:.1f} points"
        return f"at most {worse}{self.tolerance:g}"


def _metrics(tolerances: Tolerances, outcome_names: Iterable[str]) -> list[_Metric]:
    t = tolerances
    metrics = [
        _Metric("error_rate", "error rate", "errors", "proportion", True, t.max_error_rate_increase, False),
        _Metric("p95_latency_ms", "p95 latency", "latencies_ms", "p95", True, t.max_p95_latency_increase, False),
        _Metric("cost_per_request_usd", "cost per request", "costs", "mean_ratio", True, t.max_cost_increase, False),
        _Metric("user_feedback", "user feedback", "feedback", "mean_difference", False, t.max_feedback_drop, True),
        _Metric("eval_score", "automated eval score", "eval_scores", "mean_difference", False, t.max_eval_score_drop, True),
    ]  # fmt: skip
    for name in sorted(outcome_names):
        outcome = tolerances.outcome(name)
        metrics.append(
            _Metric(
                f"outcome:{name}",
                name,
                f"outcome:{name}",
                "mean_difference",
                not outcome.higher_is_better,
                outcome.max_worsening,
                True,
            )  # fmt: skip
        )
    return metrics


@dataclass(frozen=True)
class _Estimate:
    control: float
    candidate: float
    interval: Interval
    p_value: float | None
    change: float
    """On the sequential scale: the difference, or the log of the ratio."""
    variance: float
    null_variance: float
    """The change's variance were the arms alike (a rate's pooled variance)."""
    harm_variance: float
    """Its variance were the candidate one tolerance worse."""


def _design_effect(metric: _Metric, values: np.ndarray, users: Sequence[str] | None) -> float:
    """A p95 varies with the share of calls above it (Woodruff), a mean or rate with the values."""
    if metric.kind == "p95":
        return design_effect(values > np.quantile(values, 0.95), users)
    return design_effect(values, users)


def _effective(events: int, calls: int, effect: float) -> tuple[int, int]:
    """Counts that carry the same information as ``events``/``calls`` of clustered calls (Rao–Scott)."""
    trials = max(1, round(calls / effect))
    return min(trials, round(events / effect)), trials


def _widened(interval: Interval, point: float, effect: float) -> Interval:
    """The interval of a positive quantity (a ratio, a p95) widened by ``sqrt(effect)`` around its
    point on the log scale."""
    if effect == 1.0 or point <= 0 or interval.low <= 0:
        return interval
    factor = math.sqrt(effect)
    return Interval(point * (interval.low / point) ** factor, point * (interval.high / point) ** factor)


MIN_CALLS_WITH_HISTORY = 30
"""Calls per arm whose user has a history before it is used (fewer: no adjustment)."""


def _adjusted(
    control: np.ndarray, candidate: np.ndarray, history: tuple[np.ndarray | None, np.ndarray | None], log: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Both arms less what each caller's history predicts (CUPED): ``y − θ (x − x̄)``.

    ``θ`` and ``x̄`` are pooled over both arms, so the adjustment is the same function of the
    history in each and moves neither arm's expected value; what it removes is the difference
    between users, the bulk of the variance in a sticky split. A call whose user has no history
    is left as it is. The users stay the clusters of the adjusted values. With ``log`` the logs
    of the values are adjusted (a latency's spread is multiplicative); without enough history
    the arms come back as they are.
    """
    if history[0] is None or history[1] is None:
        return control, candidate
    known = (np.isfinite(history[0]), np.isfinite(history[1]))
    if min(int(known[0].sum()), int(known[1].sum())) < MIN_CALLS_WITH_HISTORY:
        return control, candidate
    x = np.concatenate([history[0][known[0]], history[1][known[1]]])
    spread = float(x.var())
    if spread == 0:
        return control, candidate
    values = (np.log(np.maximum(control, 1e-9)), np.log(np.maximum(candidate, 1e-9))) if log else (control, candidate)
    y = np.concatenate([values[0][known[0]], values[1][known[1]]])
    theta, centre = float(np.mean((x - x.mean()) * (y - y.mean()))) / spread, float(x.mean())

    def adjust(arm: np.ndarray, covariate: np.ndarray, has: np.ndarray) -> np.ndarray:
        adjusted = np.where(has, arm - theta * (np.where(has, covariate, centre) - centre), arm)
        return np.exp(adjusted) if log else adjusted

    return adjust(values[0], history[0], known[0]), adjust(values[1], history[1], known[1])


def _log_p95_variance(values: np.ndarray, confidence: float, effect: float) -> float:
    """Variance of the log of a p95, from its distribution-free interval, times the design effect."""
    interval = quantile_interval(values, 0.95, confidence)
    width = math.log(interval.high / interval.low) if interval.low > 0 else 0.0
    spread = width / (2 * float(scipy_stats.norm.ppf(0.5 + confidence / 2)))
    return max(spread * spread, 1e-12) * effect


def _proportion_estimate(
    metric: _Metric, control: np.ndarray, candidate: np.ndarray, confidence: float, effects: tuple[float, float]
) -> _Estimate:
    control_counts = _effective(int(control.sum()), control.size, effects[0])
    candidate_counts = _effective(int(candidate.sum()), candidate.size, effects[1])
    rates = float(control.mean()), float(candidate.mean())
    spread = (effects[0] / control.size, effects[1] / candidate.size)
    pooled = float(control.sum() + candidate.sum() + 0.5) / (control.size + candidate.size + 1)  # never 0: a clean start
    harmed = min(max(rates[0] + (metric.tolerance if metric.higher_is_worse else -metric.tolerance), 1e-6), 1 - 1e-6)
    return _Estimate(
        rates[0],
        rates[1],
        newcombe_difference(*control_counts, *candidate_counts, confidence),
        two_proportion_p_value(*control_counts, *candidate_counts),
        change=rates[1] - rates[0],
        variance=rates[0] * (1 - rates[0]) * spread[0] + rates[1] * (1 - rates[1]) * spread[1],
        null_variance=pooled * (1 - pooled) * (spread[0] + spread[1]),
        harm_variance=rates[0] * (1 - rates[0]) * spread[0] + harmed * (1 - harmed) * spread[1],
    )


def _estimate(
    metric: _Metric,
    control: np.ndarray,
    candidate: np.ndarray,
    confidence: float,
    users: tuple[Sequence[str] | None, Sequence[str] | None] = (None, None),
    history: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
    bootstrap: bool = True,
) -> _Estimate:
    """The metric's values, interval and variances, adjusted for the callers' history when given.

    ``bootstrap`` False skips the p95's bootstrap interval (the sequential gate draws its own).
    """
    if metric.kind == "proportion":
        effects = (_design_effect(metric, control, users[0]), _design_effect(metric, candidate, users[1]))
        return _proportion_estimate(metric, control, candidate, confidence, effects)
    raw = float(control.mean()), float(candidate.mean())
    adjusted = _adjusted(control, candidate, history, log=metric.kind == "p95")
    effects = (_design_effect(metric, adjusted[0], users[0]), _design_effect(metric, adjusted[1], users[1]))
    if metric.kind == "mean_difference":
        interval, p_value = welch_difference(*adjusted, confidence, effects)
        variance = welch_variance(adjusted[1], adjusted[0], effects, relative=False)[0]
        change = float(adjusted[1].mean() - adjusted[0].mean())
        return _Estimate(*raw, interval, p_value, change, variance, variance, variance)
    if metric.kind == "mean_ratio":
        interval = ratio_of_means_interval(*adjusted, confidence, effects)
        p_value = welch_difference(*adjusted, confidence, effects)[1]
        variance = welch_variance(adjusted[1], adjusted[0], effects, relative=True)[0]
        change = math.log(max(float(adjusted[1].mean()), 1e-12) / max(float(adjusted[0].mean()), 1e-12))
        return _Estimate(*raw, interval, p_value, change, variance, variance, variance)
    point = float(p95(adjusted[1]) / p95(adjusted[0]))
    interval = Interval(point, point)
    if bootstrap:
        resamples, seed = settings.gate_bootstrap_resamples(), settings.gate_seed()
        # the bootstrap resamples calls; each arm's share of the variance goes as 1/n
        effect = (effects[0] / control.size + effects[1] / candidate.size) / (1 / control.size + 1 / candidate.size)
        interval = _widened(bootstrap_ratio(*adjusted, p95, confidence, resamples, seed), point, effect)
    variance = _log_p95_variance(adjusted[0], confidence, effects[0]) + _log_p95_variance(adjusted[1], confidence, effects[1])
    raw_p95 = float(p95(control)), float(p95(candidate))
    return _Estimate(*raw_p95, interval, None, math.log(point), variance, variance, variance)


@dataclass(frozen=True)
class MetricComparison:
    """Candidate against control on one metric, with the interval its verdict rests on.

    ``ci_low``/``ci_high`` bound ``candidate − control`` when ``scale`` is "difference" and
    ``candidate / control`` when it is "ratio". The values and the interval are None while
    either arm has too few samples (verdict ``not_enough_data``).

    Example:
        ```python
        error_rate = compare_arms(control, candidate)[0]
        error_rate.metric, error_rate.ci_low, error_rate.ci_high, error_rate.verdict  # ("error_rate", 0.051, 0.105, "fail")
        ```
    """

    metric: str
    label: str
    control_value: float | None
    candidate_value: float | None
    difference: float | None
    relative_difference: float | None
    scale: Scale
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    control_n: int
    candidate_n: int
    tolerance: str
    verdict: GateVerdict
    evidence: str | None = None
    """Sequential: the evidence so far against its thresholds, in words."""
    calls_to_verdict: int | None = None
    """Sequential, undecided: further calls (both arms) to a verdict if the change holds at its estimate."""

    def as_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready: a row of the trace gate's table."""
        return asdict(self)


def _beyond_tolerance(metric: _Metric, interval: Interval) -> bool:
    """Whether the whole interval lies on the worse side of the metric's tolerance."""
    no_change = 1.0 if metric.scale == "ratio" else 0.0
    if metric.higher_is_worse:
        return interval.low > no_change + metric.tolerance
    return interval.high < no_change - metric.tolerance


def _sequential(
    metric: _Metric, estimate: _Estimate, calls: int, tolerances: Tolerances, levels: tuple[float, float]
) -> tuple[GateVerdict, Interval, str, int | None]:
    """The sequential verdict of one metric, its always-valid interval and the evidence in words.

    ``levels`` are this metric's false-failure and interval levels. A zero tolerance has no harm
    to test against: it fails when the interval lies wholly on the worse side, and never passes
    early. Values that do not vary at all (a fixed price) are judged by their exact change.
    """
    sign = 1.0 if metric.higher_is_worse else -1.0
    scale = metric.harm if metric.harm > 0 else math.sqrt(estimate.variance)
    interval = mixture_interval(estimate.change, estimate.variance, scale, 1 - levels[1])
    if metric.scale == "ratio":
        interval = Interval(math.exp(interval.low), math.exp(interval.high))
    if estimate.null_variance <= 0 or estimate.harm_variance <= 0:  # neither arm varies: the change is exact
        verdict: GateVerdict = "fail" if _beyond_tolerance(metric, interval) else "pass"
        return verdict, interval, "no spread in either arm: the change is exact", None
    if metric.harm == 0:
        verdict = "fail" if _beyond_tolerance(metric, interval) else "undecided"
        return verdict, interval, "no tolerance: fails when the always-valid interval excludes no change", None
    test = sprt(
        sign * estimate.change, estimate.null_variance, estimate.harm_variance,
        harm=metric.harm, false_failure=levels[0], missed_harm=tolerances.missed_harm_rate,
    )  # fmt: skip
    return test.verdict, interval, test.explain(), test.calls_to_verdict(calls)


def _compare(
    metric: _Metric,
    control: ArmSample,
    candidate: ArmSample,
    tolerances: Tolerances,
    confidence: float,
    false_failure: float | None = None,
) -> MetricComparison:
    """One metric compared: by the fixed interval, or sequentially when ``false_failure`` (its level) is given."""
    control_values = np.asarray(metric.values(control), float)
    candidate_values = np.asarray(metric.values(candidate), float)
    minimum = tolerances.min_scores_per_arm if metric.uses_scores else tolerances.min_samples_per_arm
    enough = min(control_values.size, candidate_values.size) >= minimum
    users = (metric.users(control), metric.users(candidate))
    history = (metric.history(control), metric.history(candidate))
    sequential = false_failure is not None
    estimate = None
    if enough:
        estimate = _estimate(metric, control_values, candidate_values, confidence, users, history, not sequential)
    verdict: GateVerdict = "not_enough_data"
    evidence, calls_to_verdict = None, None
    interval = None if estimate is None else estimate.interval
    if estimate is not None and false_failure is not None:
        calls = len(control.errors) + len(candidate.errors)
        verdict, interval, evidence, calls_to_verdict = _sequential(
            metric, estimate, calls, tolerances, (false_failure, 1 - confidence)
        )
    elif estimate is not None:
        verdict = "fail" if _beyond_tolerance(metric, estimate.interval) else "pass"
    difference = None if estimate is None else estimate.candidate - estimate.control
    relative = None if estimate is None or estimate.control == 0 else estimate.candidate / estimate.control - 1
    return MetricComparison(
        metric=metric.name,
        label=metric.label,
        control_value=None if estimate is None else estimate.control,
        candidate_value=None if estimate is None else estimate.candidate,
        difference=difference,
        relative_difference=relative,
        scale=metric.scale,
        ci_low=None if interval is None else interval.low,
        ci_high=None if interval is None else interval.high,
        p_value=None if estimate is None else estimate.p_value,
        control_n=int(control_values.size),
        candidate_n=int(candidate_values.size),
        tolerance=metric.tolerance_text(),
        verdict=verdict,
        evidence=evidence,
        calls_to_verdict=calls_to_verdict,
    )


def compare_arms(control: ArmSample, candidate: ArmSample, tolerances: Tolerances | None = None) -> list[MetricComparison]:
    """The canary gate: every metric of ``candidate`` against ``control`` within ``tolerances``.

    The gate as a whole fails if any comparison fails (see ``gate_verdict``). Sequentially (the
    default ``tolerances.method``) each metric is tested at level ``false_failure_rate`` divided
    by the number of metrics, so an unchanged candidate fails anywhere, at any look, at most that
    often; a metric may also pass early, once no harm of one tolerance is shown.

    Args:
        control: The arm the candidate is compared with (the baseline version).
        candidate: The arm under test.
        tolerances: How much worse it may be, and how sure to be; the defaults when None.

    Returns:
        One comparison per metric: error rate, p95 latency, cost per request, user feedback,
        eval score, then each metadata outcome either arm has, by name.

    Example:
        >>> control = ArmSample(errors=[False] * 400)
        >>> candidate = ArmSample(errors=[False] * 370 + [True] * 30)
        >>> [(comparison.metric, comparison.verdict) for comparison in compare_arms(control, candidate)][:2]
        [('error_rate', 'fail'), ('p95_latency_ms', 'not_enough_data')]
    """
    tolerances = tolerances or Tolerances()
    names = set(control.outcomes) | set(candidate.outcomes)
    metrics = _metrics(tolerances, names)
    level = tolerances.false_failure_rate / len(metrics) if tolerances.method == "sequential" else None
    return [_compare(metric, control, candidate, tolerances, tolerances.confidence, level) for metric in metrics]


def gate_verdict(comparisons: Sequence[MetricComparison]) -> GateVerdict:
    """Fail if any metric failed; otherwise wait while the core metrics lack data; pass when
    every core metric passed; else undecided (sequential: neither harm nor its absence shown yet).

    Feedback, eval scores and outcomes are sparse: their lack of data or of a decision never
    holds a rollout.

    Args:
        comparisons: ``compare_arms``'s comparisons.

    Returns:
        ``fail``, ``not_enough_data`` (error rate, p95 latency or cost not judged yet),
        ``undecided`` or ``pass``.

    Example:
        >>> gate_verdict(compare_arms(ArmSample(errors=[False] * 400), ArmSample(errors=[False] * 370 + [True] * 30)))
        'fail'
    """
    if any(comparison.verdict == "fail" for comparison in comparisons):
        return "fail"
    verdicts = {comparison.verdict for comparison in comparisons if comparison.metric in CORE_METRICS}
    if "not_enough_data" in verdicts:
        return "not_enough_data"
    return "undecided" if "undecided" in verdicts else "pass"


@dataclass(frozen=True)
class VersionSummary:
    """One version's value of one metric with its own confidence interval; None values when ``n`` is 0.

    Example:
        ```python
        summary = report.metrics[0].summaries["1.3.0"]
        summary.value, summary.ci_low, summary.ci_high, summary.n
        ```
    """

    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int


def _summary(metric: _Metric, values: np.ndarray, users: Sequence[str] | None, confidence: float) -> VersionSummary:
    """One version's value with its interval, as wide as its users' design effect makes it."""
    if values.size == 0:
        return VersionSummary(None, None, None, 0)
    effect = _design_effect(metric, values, users)
    if metric.kind == "proportion":
        interval = wilson_interval(*_effective(int(values.sum()), values.size, effect), confidence)
        return VersionSummary(float(values.mean()), interval.low, interval.high, int(values.size))
    if metric.kind == "p95":
        point = float(np.quantile(values, 0.95))
        interval = _widened(quantile_interval(values, 0.95, confidence), point, effect)
        return VersionSummary(point, interval.low, interval.high, int(values.size))
    mean, interval, factor = float(values.mean()), mean_interval(values, confidence), math.sqrt(effect)
    return VersionSummary(mean, mean - (mean - interval.low) * factor, mean + (interval.high - mean) * factor, int(values.size))


@dataclass(frozen=True)
class ABMetric:
    """One metric across all versions, and which version (if any) is better than every other.

    Example:
        ```python
        for metric in ab_report(arms).metrics:
            print(metric.label, metric.verdict, metric.winner)
        ```
    """

    metric: str
    label: str
    higher_is_better: bool
    summaries: dict[str, VersionSummary]
    verdict: ABVerdict
    winner: str | None
    comparisons: list[tuple[str, str, MetricComparison]]
    """Each pair (control, candidate) with its interval at the Bonferroni-adjusted level."""

    def as_dict(self) -> dict[str, Any]:
        """The metric, its per-version summaries and its pairwise comparisons, JSON-ready."""
        return {
            "metric": self.metric,
            "label": self.label,
            "higher_is_better": self.higher_is_better,
            "verdict": self.verdict,
            "winner": self.winner,
            "versions": {version: vars(summary) for version, summary in self.summaries.items()},
            "comparisons": [
                {"control": first, "candidate": second, **comparison.as_dict()} for first, second, comparison in self.comparisons
            ],
        }


@dataclass(frozen=True)
class ABReport:
    """Per version outcomes with intervals, and a verdict per metric.

    Example:
        ```python
        report = ab_report({"1.2.0": control, "1.3.0": candidate})
        create_markdown_artifact(report.to_markdown())
        ```
    """

    versions: list[str]
    metrics: list[ABMetric]
    confidence: float
    method: GateMethod = "fixed"

    def as_dict(self) -> dict[str, Any]:
        """The report, JSON-ready (``llmops ab report --json``)."""
        metrics = [metric.as_dict() for metric in self.metrics]
        return {"versions": self.versions, "confidence": self.confidence, "method": self.method, "metrics": metrics}

    def rows(self) -> list[dict[str, Any]]:
        """One row per metric for a terminal table: per version its value with the interval, and n.

        Example:
            ```python
            ab_report({"1.2.0": control, "1.3.0": candidate}).rows()[0]
            # {'metric': 'error rate', '1.2.0': '0.40 % [0.21 %, 0.77 %]', '1.2.0 n': 1200, ..., 'verdict': 'no difference'}
            ```
        """
        verdicts = {"winner": "{} wins", "no_difference": "no difference", "not_enough_data": "not enough data yet"}
        rows: list[dict[str, Any]] = []
        for metric in self.metrics:
            row: dict[str, Any] = {"metric": metric.label}
            for version in self.versions:
                summary = metric.summaries[version]
                row[version] = _interval_cell(metric, summary)
                row[f"{version} n"] = summary.n
            row["verdict"] = verdicts[metric.verdict].format(metric.winner)
            rows.append(row)
        return rows

    def to_markdown(self) -> str:
        """A table per metric row and version column, then the verdicts, for a Prefect artifact."""
        md = markdown_escape  # versions and outcome names come from traces
        header = "| metric | " + " | ".join(md(version) for version in self.versions) + " | verdict |"
        lines = [
            f"## A/B report ({self.confidence:.0%} intervals)",
            "",
            header,
            "|" + "---|" * (len(self.versions) + 2),
        ]
        for metric in self.metrics:
            cells = [_markdown_cell(metric, metric.summaries[version]) for version in self.versions]
            verdict = {
                "winner": f"**{md(metric.winner)}** wins",
                "no_difference": "no difference",
                "not_enough_data": "not enough data yet",
            }[metric.verdict]
            lines.append(f"| {md(metric.label)} | " + " | ".join(cells) + f" | {verdict} |")
        lines += ["", "A winner is better than every other version, with intervals adjusted for all metrics and pairs."]
        if self.method == "sequential":
            lines[-1] += " They are confidence sequences: valid however often the report is read while the split runs."
        return "\n".join(lines) + "\n"


def _format_value(metric: str, value: float) -> str:
    if metric == "error_rate":
        return f"{value * 100:.2f} %"
    if metric == "p95_latency_ms":
        return f"{value:,.0f} ms"
    if metric == "cost_per_request_usd":
        return f"${value:.5f}"
    return f"{value:.3f}"


def _interval_cell(metric: ABMetric, summary: VersionSummary) -> str | None:
    if summary.value is None or summary.ci_low is None or summary.ci_high is None:
        return None
    value = _format_value(metric.metric, summary.value)
    return f"{value} [{_format_value(metric.metric, summary.ci_low)}, {_format_value(metric.metric, summary.ci_high)}]"


def _markdown_cell(metric: ABMetric, summary: VersionSummary) -> str:
    if summary.value is None or summary.ci_low is None or summary.ci_high is None:
        return "–"
    value = _format_value(metric.metric, summary.value)
    low, high = _format_value(metric.metric, summary.ci_low), _format_value(metric.metric, summary.ci_high)
    return f"{value} ({low} – {high}; n={summary.n:,})"


def _better(metric: _Metric, comparison: MetricComparison) -> Literal["candidate", "control", None]:
    """Which arm the interval shows to be better, if it excludes no change."""
    if comparison.ci_low is None or comparison.ci_high is None:
        return None
    null = 1.0 if comparison.scale == "ratio" else 0.0
    if comparison.ci_low > null:
        return "control" if metric.higher_is_worse else "candidate"
    if comparison.ci_high < null:
        return "candidate" if metric.higher_is_worse else "control"
    return None


def _ab_verdict(
    metric: _Metric, versions: Sequence[str], comparisons: Sequence[tuple[str, str, MetricComparison]]
) -> tuple[ABVerdict, str | None]:
    if len(versions) < 2 or any(comparison.verdict == "not_enough_data" for _, _, comparison in comparisons):
        return "not_enough_data", None
    wins: Counter[str] = Counter()
    for control, candidate, comparison in comparisons:
        better = _better(metric, comparison)
        if better is not None:
            wins[candidate if better == "candidate" else control] += 1
    leaders = [version for version in versions if wins[version] == len(versions) - 1]
    return ("winner", leaders[0]) if leaders else ("no_difference", None)


def ab_report(arms: Mapping[str, ArmSample], tolerances: Tolerances | None = None) -> ABReport:
    """Compare every version with every other on every metric.

    A version is the winner of a metric when it is better than each other version. The pairwise
    intervals are at a Bonferroni-adjusted level over all metrics and pairs, so that identical
    versions show a false winner anywhere in the report at most 1 − ``confidence`` of the time
    (per-version summaries stay at the nominal level). Sequentially (the default method) they are
    confidence sequences, so that bound holds however often the report is read during the split. "not_enough_data" while any version is
    below the minimum samples.

    Args:
        arms: Per version, its samples; the report keeps their order.
        tolerances: The minimum samples, confidence and bootstrap settings; the defaults when None.

    Returns:
        The report: per metric, each version's summary, the pairwise comparisons and the verdict.

    Example:
        >>> report = ab_report({"1.2.0": ArmSample(errors=[False] * 400), "1.3.0": ArmSample(errors=[False] * 370 + [True] * 30)})
        >>> report.metrics[0].metric, report.metrics[0].verdict, report.metrics[0].winner
        ('error_rate', 'winner', '1.2.0')
    """
    tolerances = tolerances or Tolerances()
    versions = list(arms)
    pairs = list(combinations(versions, 2))
    names = set().union(*(arm.outcomes for arm in arms.values()))
    metrics = _metrics(tolerances, names)
    confidence = 1 - (1 - tolerances.confidence) / max(1, len(pairs) * len(metrics))
    always_valid = 1 - confidence if tolerances.method == "sequential" else None  # a report read at every run
    report_metrics = []
    for metric in metrics:
        summaries = {
            version: _summary(metric, np.asarray(metric.values(arm), float), metric.users(arm), tolerances.confidence)
            for version, arm in arms.items()
        }
        comparisons = [(a, b, _compare(metric, arms[a], arms[b], tolerances, confidence, always_valid)) for a, b in pairs]
        verdict, winner = _ab_verdict(metric, versions, comparisons)
        report_metrics.append(
            ABMetric(metric.name, metric.label, not metric.higher_is_worse, summaries, verdict, winner, comparisons)
        )
    return ABReport(versions, report_metrics, tolerances.confidence, tolerances.method)


def _field(row: Any, name: str) -> Any:
    return row.get(name) if isinstance(row, Mapping) else getattr(row, name, None)


def _number(value: Any) -> float | None:
    """A metadata outcome as a number: booleans count as 0/1; anything else non-numeric is skipped."""
    if isinstance(value, bool | int | float) and not (isinstance(value, float) and math.isnan(value)):
        return float(value)
    return None


UserHistory = Mapping[str, Mapping[str, float]]
"""Per user, their averages before a rollout by ``ArmSample`` sample name (``errors``: the error
share, ``latencies_ms``: the log of the mean latency, ``costs``, ``feedback``, ``eval_scores``)."""


def with_history(arm: ArmSample, history: UserHistory) -> ArmSample:
    """``arm`` with each call's user history attached (NaN for a user without one).

    Args:
        arm: The arm, with its users.
        history: Per user, their averages before the rollout.

    Returns:
        A copy of the arm whose ``history`` is filled for each sample that has users.

    Example:
        >>> arm = ArmSample(costs=[0.002, 0.004], users={"costs": ["u1", "u2"]})
        >>> with_history(arm, {"u1": {"costs": 0.0021}}).history
        {'costs': [0.0021, nan]}
    """
    filled = {sample: [history.get(user, {}).get(sample, math.nan) for user in users] for sample, users in arm.users.items()}
    return replace(arm, history=filled)


def arm_samples_from_traces(rows: Iterable[Any], outcomes: Sequence[str] = ()) -> dict[str, ArmSample]:
    """Per prompt version, the samples the gates and reports need from trace rows.

    Latency and cost come from successful calls: errors are judged by the error rate, and their
    instant, free failures would flatter both. A call without a user counts as its own user.

    Args:
        rows: Trace rows: dicts or objects with TraceRecord's field names (``metadata`` for the
            metadata).
        outcomes: Numeric outcomes to read from the metadata; booleans count as 0/1.

    Returns:
        Per prompt version, its arm.

    Example:
        >>> rows = [
        ...     {"prompt_version": "1.3.0", "user_id": "u1", "status": "ok", "latency_ms": 820, "cost_usd": 0.002},
        ...     {"prompt_version": "1.3.0", "user_id": "u2", "status": "error", "metadata": {"escalated": True}},
        ... ]
        >>> arm = arm_samples_from_traces(rows, ["escalated"])["1.3.0"]
        >>> arm.errors, arm.latencies_ms, arm.outcomes
        ([False, True], [820.0], {'escalated': [1.0]})
    """
    arms: dict[str, ArmSample] = {}
    for index, row in enumerate(rows):
        arm = arms.setdefault(_field(row, "prompt_version") or "", ArmSample())
        user = _field(row, "user_id") or f"call-{index}"  # an anonymous call is its own user
        failed = _field(row, "status") == "error"
        arm.add("errors", failed, user)
        latency, cost = _field(row, "latency_ms"), _field(row, "cost_usd")
        if not failed and latency is not None:
            arm.add("latencies_ms", float(latency), user)
        if not failed and cost is not None:
            arm.add("costs", float(cost), user)
        if (feedback := _field(row, "user_feedback")) is not None:
            arm.add("feedback", float(feedback), user)
        if (score := _field(row, "automated_eval_score")) is not None:
            arm.add("eval_scores", float(score), user)
        metadata = _field(row, "metadata") or {}
        for name in outcomes:
            if (value := _number(metadata.get(name))) is not None:
                arm.add(f"outcome:{name}", value, user)
    return arms
