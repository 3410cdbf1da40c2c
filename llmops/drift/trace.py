"""Drift statistics on production traces.

Trace drift asks of each group (environment × feature × prompt × model) whether one day is
unusual *compared with how much whole days normally vary* — not whether its thousands of calls
differ from the reference's thousands of calls, a question that ordinary day-to-day variation
answers "yes" to most nights. A day-level statistic (the day's p95, its mean output tokens, its
error count) is compared with that same statistic on the reference days (default the 14 before):

- continuous metrics (latency p50/p95, latency per output token, time to first token, tokens,
  cost per request on the log scale; feedback and eval score as they are): a Student-t
  prediction of the day from the reference days. Level from the same kind of day (weekday with
  weekdays, weekend with weekends when there are enough, else all days); spread = the
  between-day variation estimated over all reference days + the day's own sampling noise,
  known from its calls (t-digest quantile density, or sums of squares when the rollups have
  them; without them the spread is read conservatively, see ``_conservative_prediction``);
- rates (errors, each finish reason's share): a beta-binomial predictive, which adds the
  reference days' extra-binomial variation (overdispersion) to the binomial noise of the count.

A finding needs all of: enough calls that day and enough usable reference days; a
Benjamini–Hochberg adjusted p-value within the false discovery rate over every test of the night
(all groups × metrics: one correction, so more groups do not mean more false alarms per
finding); and a practical effect (default ≥ 10 % relative, 0.5 points for a rate, 0.05 for a
score; a rate also needs 5 events that day, or usually, so 0 → 2 errors on a quiet day is no
alert). Reference days that were far off themselves (an earlier incident) are left out, so an
old incident neither hides nor mimics a new one.

``baseline_drift`` is the per-call test of popular drift tools (KS and normalised Wasserstein),
kept for the side-by-side comparison in the benchmark.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any, Literal, NamedTuple

import numpy as np
from fastdigest import TDigest
from numpy.typing import ArrayLike
from pydantic import BaseModel, Field
from scipy import stats

from llmops.stats import (
    Alternative,
    Prediction,
    benjamini_hochberg,
    benjamini_hochberg_cutoff,
    beta_binomial_predictive,
    binomial_overdispersion,
    count_p_value,
    day_prediction_test,
    robust_z_scores,
    t_critical,
)
from llmops.store.models import pico_to_usd
from llmops.store.rollups import SQUARE_SUM_COLUMNS

WEEKEND_DAYS = frozenset({5, 6})


class TraceGroup(NamedTuple):
    """What one drift series is about: the rollup key without its day."""

    environment: str
    feature: str
    prompt_name: str
    prompt_version: str
    model: str

    @property
    def label(self) -> str:
        """``environment/feature/prompt@version/model``: the group in one line of an alert."""
        prompt = f"{self.prompt_name}@{self.prompt_version}" if self.prompt_name else self.prompt_version or "-"
        return f"{self.environment}/{self.feature or '-'}/{prompt}/{self.model}"


@dataclass(frozen=True)
class DayStats:
    """One group's day, as the daily rollups (plus a count of finish reasons) describe it.

    Sums rather than means, so rollup rows map onto it field by field. ``input_tokens`` counts
    cached prompt tokens too: the prompt's size, not the cache's luck. The optional sums of
    squares let a day's own sampling noise be known (a weekend's few calls are noisier than a
    weekday's many); without them that noise is folded into the day-to-day spread.
    """

    day: date
    calls: int
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    priced_calls: int = 0
    latency: TDigest | None = None
    ttft: TDigest | None = None
    feedback_sum: float = 0.0
    feedback_count: int = 0
    eval_score_sum: float = 0.0
    eval_score_count: int = 0
    finish_reasons: Mapping[str, int] = field(default_factory=dict)
    input_tokens_sq_sum: float | None = None
    output_tokens_sq_sum: float | None = None
    cost_usd_sq_sum: float | None = None
    feedback_sq_sum: float | None = None
    eval_score_sq_sum: float | None = None

    @classmethod
    def from_rollup(cls, row: Any, finish_reasons: Mapping[str, int] | None = None) -> DayStats:
        """From a ``trace_rollups`` row (attributes named as its columns) and that day's
        ``finish_reason`` counts for the same key. Sums of squares are NULL on rows older than
        migration 0008 (until ``llmops db rebuild-rollups``): such days are tested without them."""
        return cls(
            day=row.day,
            calls=row.requests,
            errors=row.errors,
            input_tokens=row.input_tokens + row.cache_read_input_tokens + row.cache_creation_input_tokens,
            output_tokens=row.output_tokens,
            cost_usd=float(pico_to_usd(row.cost_picodollars)),
            priced_calls=row.requests - row.unpriced,
            latency=TDigest.from_bytes(row.latency_sketch) if row.latency_sketch is not None else None,
            ttft=TDigest.from_bytes(row.ttft_sketch) if row.ttft_sketch is not None else None,
            feedback_sum=row.feedback_sum,
            feedback_count=row.feedback_count,
            eval_score_sum=row.eval_score_sum,
            eval_score_count=row.eval_score_count,
            finish_reasons=dict(finish_reasons or {}),
            **{name: getattr(row, name, None) for name in SQUARE_SUM_COLUMNS},
        )

    @property
    def is_weekend(self) -> bool:
        return self.day.weekday() in WEEKEND_DAYS

    @property
    def successful_calls(self) -> int:
        return self.calls - self.errors


QUANTILE_BANDWIDTH = 0.025
"""Half-width in probability of the difference quotient that estimates the density at a quantile."""


class _Estimate(NamedTuple):
    """A day's statistic on the scale it is tested on, with its sampling variance if known."""

    value: float
    variance: float | None
    count: int


def _log_mean(total: float, count: int, square_sum: float | None) -> _Estimate | None:
    """log of a per-call mean; its variance is the squared coefficient of variation over n."""
    if count <= 0 or total <= 0:
        return None
    mean = total / count
    variance = None if square_sum is None else max(0.0, square_sum / count - mean**2) / (count * mean**2)
    return _Estimate(math.log(mean), variance, count)


def _plain_mean(total: float, count: int, square_sum: float | None) -> _Estimate | None:
    if count <= 0:
        return None
    mean = total / count
    variance = None if square_sum is None else max(0.0, square_sum / count - mean**2) / count
    return _Estimate(mean, variance, count)


def _log_quantile(digest: TDigest | None, quantile: float) -> _Estimate | None:
    """log of a quantile; its variance p(1−p) / (n·f(q)²) on the log scale, with the density f
    read off the sketch by a difference quotient."""
    if digest is None or digest.n_values == 0:
        return None
    value = digest.quantile(quantile)
    if value <= 0:
        return None
    count = int(digest.n_values)
    above = digest.quantile(min(1.0, quantile + QUANTILE_BANDWIDTH))
    width = above - digest.quantile(max(0.0, quantile - QUANTILE_BANDWIDTH))
    quantile_sd = width / (2 * QUANTILE_BANDWIDTH) * math.sqrt(quantile * (1 - quantile) / count)
    return _Estimate(math.log(value), (quantile_sd / value) ** 2, count)


def _log_latency_per_output_token(day: DayStats) -> _Estimate | None:
    """Mean latency over mean output tokens: the model's speed, nearly blind to a day's mix of
    short and long answers, which moves p50 and p95 by themselves."""
    digest = day.latency
    tokens = _log_mean(day.output_tokens, day.successful_calls, day.output_tokens_sq_sum)
    if digest is None or digest.n_values == 0 or digest.mean() <= 0 or tokens is None:
        return None
    count = int(digest.n_values)
    latency_variance = digest.var() / (count * digest.mean() ** 2)
    variance = None if tokens.variance is None else latency_variance + tokens.variance
    return _Estimate(math.log(digest.mean()) - tokens.value, variance, count)


class TraceDriftConfig(BaseModel):
    """How trace drift decides; the defaults are the ones the decision-quality benchmark measures."""

    reference_days: int = Field(14, ge=3, description="Days before the checked day that form the reference.")
    min_reference_days: int = Field(7, ge=3, description="Usable reference days a test needs.")
    min_same_kind_days: int = Field(4, ge=2, description="Weekdays (or weekend days) needed to compare like with like.")
    min_calls: int = Field(100, ge=1, description="Calls a day needs for its latency, tokens, cost and rates to count.")
    min_scores: int = Field(30, ge=1, description="Feedback or eval scores a day needs for their mean to count.")
    min_relative_change: float = Field(0.10, ge=0, description="Smallest relative change worth an alert.")
    min_rate_change: float = Field(0.005, ge=0, description="Smallest change of a rate (absolute) worth an alert.")
    min_events: int = Field(
        5, ge=1, description="Events (errors, a finish reason) a rate needs that day, or usually, before it can alert."
    )
    min_score_change: float = Field(0.05, ge=0, description="Smallest change of mean feedback or eval score.")
    false_discovery_rate: float = Field(0.05, gt=0, lt=1, description="Benjamini–Hochberg level over all the night's tests.")
    reference_outlier_z: float = Field(5.0, gt=0, description="Robust z beyond which a reference day is left out.")
    reference_outlier_p: float = Field(1e-6, gt=0, description="Binomial p below which a reference day's rate is left out.")


Direction = Literal["up", "down", "both"]
_ALTERNATIVES: dict[Direction, Alternative] = {"up": "greater", "down": "less", "both": "two-sided"}


@dataclass(frozen=True)
class _ContinuousMetric:
    """A day-level number, tested on the log scale (``log``: changes are relative) or as it is."""

    name: str
    label: str
    unit: Literal["ms", "tokens", "usd", "score"]
    direction: Direction
    log: bool
    estimate: Callable[[DayStats], _Estimate | None]
    uses_scores: bool = False


CONTINUOUS_METRICS: tuple[_ContinuousMetric, ...] = (
    _ContinuousMetric("latency_p50", "p50 latency", "ms", "up", True, lambda d: _log_quantile(d.latency, 0.5)),
    _ContinuousMetric("latency_p95", "p95 latency", "ms", "up", True, lambda d: _log_quantile(d.latency, 0.95)),
    _ContinuousMetric(
        "latency_per_output_token", "latency per output token", "ms", "up", True, _log_latency_per_output_token
    ),
    _ContinuousMetric("ttft_p50", "median time to first token", "ms", "up", True, lambda d: _log_quantile(d.ttft, 0.5)),
    _ContinuousMetric(
        "input_tokens", "input tokens per call", "tokens", "both", True,
        lambda d: _log_mean(d.input_tokens, d.successful_calls, d.input_tokens_sq_sum),
    ),
    _ContinuousMetric(
        "output_tokens", "output tokens per call", "tokens", "both", True,
        lambda d: _log_mean(d.output_tokens, d.successful_calls, d.output_tokens_sq_sum),
    ),
    _ContinuousMetric(
        "cost_per_request", "cost per request", "usd", "up", True,
        lambda d: _log_mean(d.cost_usd, d.priced_calls, d.cost_usd_sq_sum),
    ),
    _ContinuousMetric(
        "user_feedback", "user feedback", "score", "down", False,
        lambda d: _plain_mean(d.feedback_sum, d.feedback_count, d.feedback_sq_sum), uses_scores=True,
    ),
    _ContinuousMetric(
        "eval_score", "automated eval score", "score", "down", False,
        lambda d: _plain_mean(d.eval_score_sum, d.eval_score_count, d.eval_score_sq_sum), uses_scores=True,
    ),
)  # fmt: skip
"""Latency, cost and errors alert only when they get worse, scores only when they drop; token
counts either way (a prompt that suddenly sends half the context is as suspect as double)."""


@dataclass(frozen=True)
class _RateMetric:
    """A count out of a day's trials, e.g. errors out of calls."""

    name: str
    label: str
    direction: Direction
    counts: Callable[[DayStats], tuple[int, int]]


ERROR_RATE = _RateMetric("error_rate", "error rate", "up", lambda d: (d.errors, d.calls))


def _finish_reason_metric(reason: str) -> _RateMetric:
    return _RateMetric(
        f"finish_reason:{reason}",
        f"share of calls ending in {reason}",
        "both",
        lambda d: (d.finish_reasons.get(reason, 0), sum(d.finish_reasons.values())),
    )


@dataclass(frozen=True)
class DriftFinding:
    """One test of one metric of one group on one day, with everything behind its verdict."""

    group: TraceGroup
    metric: str
    day: date
    value: float
    reference_value: float
    reference_spread: float
    relative_change: float | None
    statistic: float
    statistic_name: str
    threshold: float
    p_value: float
    adjusted_p_value: float
    reference_days: int
    calls: int
    drifted: bool
    summary: str

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (``--json``, the ``drift_reports`` table)."""
        return {**asdict(self), "group": self.group._asdict(), "day": self.day.isoformat()}


@dataclass(frozen=True)
class SkippedCheck:
    """A metric that was not tested, and why (too few calls, too little history)."""

    group: TraceGroup
    metric: str
    reason: str


@dataclass
class TraceDriftReport:
    """Every test of one night: ``findings`` are the drifted ones."""

    day: date
    tests: list[DriftFinding]
    skipped: list[SkippedCheck]

    @property
    def findings(self) -> list[DriftFinding]:
        return [test for test in self.tests if test.drifted]


@dataclass(frozen=True)
class _Test:
    """A test before the night's correction: what the finding will say."""

    group: TraceGroup
    metric: str
    label: str
    unit: str
    value: float
    reference_value: float
    reference_spread: float
    p_value: float
    statistic: float
    statistic_name: str
    critical: Callable[[float], float]
    reference_days: int
    calls: int
    large_enough: bool
    trials: int | None = None


def _reference(series: Iterable[DayStats], day: date, config: TraceDriftConfig) -> tuple[DayStats | None, list[DayStats]]:
    first = day - timedelta(days=config.reference_days)
    target, reference = None, []
    for stats_of_day in series:
        if stats_of_day.day == day:
            target = stats_of_day
        elif first <= stats_of_day.day < day:
            reference.append(stats_of_day)
    return target, sorted(reference, key=lambda d: d.day)


def _same_kind(target: DayStats, reference: Sequence[DayStats], config: TraceDriftConfig) -> list[bool]:
    """Which reference days set the expected level: same kind of day when there are enough."""
    same = [d.is_weekend == target.is_weekend for d in reference]
    return same if sum(same) >= config.min_same_kind_days else [True] * len(reference)


def _kind_residuals(values: np.ndarray, kinds: np.ndarray, centre: Callable[[np.ndarray], Any]) -> np.ndarray:
    """Each value less the centre of its kind of day (weekday or weekend)."""
    residuals = np.empty_like(values)
    for kind in np.unique(kinds):
        members = kinds == kind
        residuals[members] = values[members] - centre(values[members])
    return residuals


def _too_few_days(group: TraceGroup, metric: str, usable: int, config: TraceDriftConfig) -> SkippedCheck:
    return SkippedCheck(group, metric, f"{usable} usable reference days, fewer than {config.min_reference_days}")


def _conservative_prediction(
    today: _Estimate,
    values: np.ndarray,
    counts: np.ndarray,
    kinds: np.ndarray,
    same: np.ndarray,
    alternative: Alternative,
) -> Prediction:
    """When the days' own sampling noise is unknown, the less alarming of two readings of the
    reference's spread: all between-day variation (the same for every day) or all sampling noise
    (shrinking with a day's calls). A quiet weekend is then never judged by busy weekdays' spread."""
    between_days = day_prediction_test(today.value, 0.0, values, np.zeros(values.size), kinds, same, alternative)
    residuals = _kind_residuals(values, kinds, np.mean)
    leverage = 1 - 1 / np.array([np.sum(kinds == kind) for kind in kinds])
    per_call = float(np.sum(residuals**2) / np.sum(leverage / counts))
    sampling = day_prediction_test(today.value, per_call / today.count, values, per_call / counts, kinds, same, alternative)
    return max(between_days, sampling, key=lambda prediction: prediction.p_value)


def _test_continuous(
    metric: _ContinuousMetric,
    group: TraceGroup,
    target: DayStats,
    reference: Sequence[DayStats],
    config: TraceDriftConfig,
) -> _Test | SkippedCheck:
    minimum = config.min_scores if metric.uses_scores else config.min_calls
    today = metric.estimate(target)
    if today is None or today.count < minimum:
        return SkippedCheck(group, metric.name, f"{today.count if today else 0} values that day, fewer than {minimum}")
    usable = [(d, estimate) for d in reference if (estimate := metric.estimate(d)) is not None and estimate.count >= minimum]
    if len(usable) >= 2:
        values = np.array([estimate.value for _, estimate in usable])
        weekend = np.array([d.is_weekend for d, _ in usable])
        keep = np.abs(robust_z_scores(_kind_residuals(values, weekend, np.median))) <= config.reference_outlier_z
        usable = [pair for pair, kept in zip(usable, keep, strict=True) if kept]
    if len(usable) < config.min_reference_days:
        return _too_few_days(group, metric.name, len(usable), config)
    days = [d for d, _ in usable]
    estimates = [estimate for _, estimate in usable]
    values = np.array([estimate.value for estimate in estimates])
    same = np.array(_same_kind(target, days, config))
    kinds = np.array([d.is_weekend for d in days]) if not same.all() else np.zeros(len(days), bool)
    alternative = _ALTERNATIVES[metric.direction]
    if today.variance is not None and all(estimate.variance is not None for estimate in estimates):
        variances = np.array([estimate.variance for estimate in estimates], float)
        prediction = day_prediction_test(today.value, today.variance, values, variances, kinds, same, alternative)
    else:
        counts = np.array([estimate.count for estimate in estimates], float)
        prediction = _conservative_prediction(today, values, counts, kinds, same, alternative)
    back = math.exp if metric.log else float
    value, typical = back(today.value), back(prediction.location)
    spread = typical * math.expm1(prediction.day_sd) if metric.log else prediction.day_sd
    change = value / typical - 1 if metric.log else value - typical
    floor = config.min_relative_change if metric.log else config.min_score_change
    sign = -1.0 if metric.direction == "down" else math.copysign(1.0, prediction.t)
    df = prediction.df
    return _Test(
        group=group,
        metric=metric.name,
        label=metric.label,
        unit=metric.unit,
        value=value,
        reference_value=typical,
        reference_spread=spread,
        p_value=prediction.p_value,
        statistic=prediction.t,
        statistic_name=f"t ({'log scale, ' if metric.log else ''}day prediction, {df} df)",
        critical=lambda cutoff: sign * t_critical(cutoff, df, alternative),
        reference_days=len(days),
        calls=today.count,
        large_enough=abs(change) >= floor,
    )


def _rate_outliers(counts: np.ndarray, trials: np.ndarray, config: TraceDriftConfig) -> np.ndarray:
    """Reference days whose rate is implausible given all the other days (an earlier incident)."""
    others_rate = (counts.sum() - counts + 0.5) / (trials.sum() - trials + 1.0)
    binomial = stats.binom(trials, others_rate)
    p_values = 2 * np.minimum(binomial.sf(counts - 1), binomial.cdf(counts))
    return p_values >= config.reference_outlier_p


def _test_rate(
    metric: _RateMetric, group: TraceGroup, target: DayStats, reference: Sequence[DayStats], config: TraceDriftConfig
) -> _Test | SkippedCheck:
    count, trials = metric.counts(target)
    if trials < config.min_calls:
        return SkippedCheck(group, metric.name, f"{trials} calls that day, fewer than {config.min_calls}")
    usable = [d for d in reference if metric.counts(d)[1] >= config.min_calls]
    if len(usable) >= 2:
        counts, totals = (np.array(column, float) for column in zip(*map(metric.counts, usable), strict=True))
        keep = _rate_outliers(counts, totals, config)
        usable = [d for d, kept in zip(usable, keep, strict=True) if kept]
    if len(usable) < config.min_reference_days:
        return _too_few_days(group, metric.name, len(usable), config)
    all_counts, all_totals = (np.array(column, float) for column in zip(*map(metric.counts, usable), strict=True))
    same = np.array(_same_kind(target, usable, config))
    counts, totals = all_counts[same], all_totals[same]
    predictive = beta_binomial_predictive(counts, totals, trials, binomial_overdispersion(all_counts, all_totals))
    alternative = _ALTERNATIVES[metric.direction]
    p = count_p_value(predictive, count, alternative)
    typical = float(counts.sum() / totals.sum())
    rate = count / trials
    below = metric.direction == "down" or (metric.direction == "both" and rate < typical)

    def critical(cutoff: float) -> float:
        tail = cutoff / 2 if alternative == "two-sided" else cutoff
        return float(predictive.ppf(tail) - 1 if below else predictive.isf(tail) + 1)

    return _Test(
        group=group,
        metric=metric.name,
        label=metric.label,
        unit="rate",
        value=rate,
        reference_value=typical,
        reference_spread=float(np.std(counts / totals, ddof=1)) if counts.size > 1 else 0.0,
        p_value=p,
        statistic=float(count),
        statistic_name=f"count of {trials} (beta-binomial predictive)",
        critical=critical,
        reference_days=len(usable),
        calls=trials,
        large_enough=abs(rate - typical) >= config.min_rate_change and max(count, typical * trials) >= config.min_events,
        trials=trials,
    )


def _finish_reasons_to_test(target: DayStats, reference: Sequence[DayStats]) -> list[str]:
    """Every reason seen, but the reference's commonest (its share is the others' complement)."""
    totals: dict[str, int] = {}
    for day_stats in reference:
        for reason, count in day_stats.finish_reasons.items():
            totals[reason] = totals.get(reason, 0) + count
    commonest = max(totals, key=totals.__getitem__) if totals else None
    return sorted((set(totals) | set(target.finish_reasons)) - {commonest})


def _number(value: float, unit: str) -> str:
    if unit == "usd":
        return f"{value:,.4f}" if abs(value) < 1 else f"{value:,.2f}"
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:,.1f}"


def _summary(test: _Test) -> str:
    """The finding in words: "p95 latency 2,140 ms, +34 % vs the usual 1,600 ± 90 ms"."""
    if test.unit == "rate":
        usual = f"{test.reference_value * 100:.1f} ± {test.reference_spread * 100:.1f} %"
        points = (test.value - test.reference_value) * 100
        count = round(test.value * (test.trials or 0))
        value = f"{test.value * 100:.1f} % ({count:,} of {test.trials:,})"
        return f"{test.label} {value}, {points:+.1f} points vs the usual {usual}"
    if test.unit == "score":
        usual = f"{test.reference_value:.2f} ± {test.reference_spread:.2f}"
        return f"{test.label} {test.value:.2f}, {test.value - test.reference_value:+.2f} vs the usual {usual}"
    prefix, suffix = ("$", "") if test.unit == "usd" else ("", " ms" if test.unit == "ms" else "")
    change = (test.value / test.reference_value - 1) * 100
    value = f"{prefix}{_number(test.value, test.unit)}{suffix}"
    usual = f"{prefix}{_number(test.reference_value, test.unit)} ± {_number(test.reference_spread, test.unit)}{suffix}"
    return f"{test.label} {value}, {change:+.0f} % vs the usual {usual}"


def assess_trace_drift(
    history: Mapping[TraceGroup, Iterable[DayStats]], day: date, config: TraceDriftConfig | None = None
) -> TraceDriftReport:
    """Test every group with traffic on ``day`` against its reference window; correct for the
    night's many tests with Benjamini–Hochberg over all groups × metrics."""
    config = config or TraceDriftConfig()
    pending: list[_Test] = []
    skipped: list[SkippedCheck] = []
    for group, series in history.items():
        target, reference = _reference(series, day, config)
        if target is None:
            continue
        checks = [_test_continuous(metric, group, target, reference, config) for metric in CONTINUOUS_METRICS]
        rate_metrics = [ERROR_RATE, *map(_finish_reason_metric, _finish_reasons_to_test(target, reference))]
        checks += [_test_rate(metric, group, target, reference, config) for metric in rate_metrics]
        for check in checks:
            (skipped if isinstance(check, SkippedCheck) else pending).append(check)
    p_values = [test.p_value for test in pending]
    adjusted = benjamini_hochberg(p_values)
    cutoff = benjamini_hochberg_cutoff(p_values, config.false_discovery_rate) if pending else 0.0
    tests = [
        DriftFinding(
            group=test.group,
            metric=test.metric,
            day=day,
            value=test.value,
            reference_value=test.reference_value,
            reference_spread=test.reference_spread,
            relative_change=test.value / test.reference_value - 1 if test.reference_value else None,
            statistic=test.statistic,
            statistic_name=test.statistic_name,
            threshold=test.critical(cutoff),
            p_value=test.p_value,
            adjusted_p_value=float(adjusted_p),
            reference_days=test.reference_days,
            calls=test.calls,
            drifted=bool(adjusted_p <= config.false_discovery_rate and test.large_enough),
            summary=_summary(test),
        )
        for test, adjusted_p in zip(pending, adjusted, strict=True)
    ]
    return TraceDriftReport(day=day, tests=tests, skipped=skipped)


def detect_trace_drift(
    history: Mapping[TraceGroup, Iterable[DayStats]], day: date, config: TraceDriftConfig | None = None
) -> list[DriftFinding]:
    """The drifted metrics of ``day``: what an alert reports (empty on an ordinary day)."""
    return assess_trace_drift(history, day, config).findings


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
    """Evidently-style defaults: two-sample KS (p < 0.05) and Wasserstein distance normalised
    by the reference's standard deviation (≥ 0.1) on raw per-call values of each column."""
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
