"""Trace drift: is a group's day unusual compared with how much whole days normally vary?

Not whether its thousands of calls differ from the reference's thousands of calls, a question
that ordinary day-to-day variation answers "yes" to most nights. A day-level statistic (the
day's p95, its mean output tokens, its error count; ``llmops.drift.trace_metrics``) is compared
with that same statistic on the reference days (default the 14 before). Continuous metrics get a
Student-t prediction of the day: level from the reference days, plus a weekend offset on a
weekend (weekdays and weekends apart when there are enough of the checked day's kind, else all
days alike), spread = the between-day variation + the day's own sampling noise (without it the
spread is read conservatively, see ``_conservative_prediction``). The between-day variation and
the weekend offset are read from a longer window (``spread_days``, default 56), each fortnight
about its own level: two weeks give the t 12 degrees of freedom and a weekend's level four
days, too few for a +30 % latency day to stand out reliably from a day's usual ±5 %. Rates get a
beta-binomial predictive, which adds the reference days' extra-binomial variation
(overdispersion) to the binomial noise of the count. A finding needs all of: enough calls that
day and enough usable reference days; a Benjamini–Hochberg adjusted p-value within the false
discovery rate over every test of the night (all groups × metrics: one correction, so more
groups do not mean more false alarms per finding); and a practical effect (default ≥ 10 %
relative, 0.5 points for a rate, 0.05 for a score; a rate also needs 5 events that day, or
usually, so 0 → 2 errors on a quiet day is no alert). Reference days that were far off
themselves (an earlier incident) are left out, so an old incident neither hides nor mimics a new one.
Latency is tested as p50, p95, latency per output token and TTFT apart, or (``combined_latency``)
as one test of a weighted mean of the logs of several latency and TTFT quantiles and latency per
output token, each weighted by how little it varies between days.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta
from typing import Any

import numpy as np
from pydantic import BaseModel, Field
from scipy import stats

from llmops.drift.history import DayStats, TraceGroup
from llmops.drift.trace_metrics import (
    ALTERNATIVES,
    CONTINUOUS_METRICS,
    ERROR_RATE,
    LATENCY,
    LATENCY_COMPONENTS,
    SEPARATE_LATENCY_METRICS,
    ContinuousMetric,
    Estimate,
    RateMetric,
    finish_reason_metric,
    finish_reasons_to_test,
)
from llmops.stats import (
    Alternative,
    Prediction,
    benjamini_hochberg,
    benjamini_hochberg_cutoff,
    beta_binomial_predictive,
    binomial_overdispersion,
    count_p_value,
    regression_day_prediction_test,
    robust_z_scores,
    t_critical,
)


class TraceDriftConfig(BaseModel):
    """How trace drift decides; the defaults are the ones the decision-quality benchmark measures.

    Example:
        >>> TraceDriftConfig(reference_days=28).min_reference_days
        7
    """

    reference_days: int = Field(14, ge=3, description="Days before the checked day that form the reference.")
    spread_days: int = Field(
        56, ge=3, description="Days before the checked day whose day-to-day variation sets the spread (at least the reference)."
    )
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
    combined_latency: bool = Field(
        False, description="One combined latency test instead of p50, p95, per output token and TTFT tested apart."
    )

    @property
    def window_days(self) -> int:
        """Days of history before the checked day that a night reads: the reference and the spread's."""
        return max(self.reference_days, self.spread_days)


@dataclass(frozen=True)
class DriftFinding:
    """One test of one metric of one group on one day, with everything behind its verdict.

    Attributes:
        group: The group tested.
        metric: The metric's name (``latency_p95``, ``error_rate``, ``finish_reason:max_tokens``…).
        day: The checked day.
        value: The day's value (ms, tokens, USD, a score, or a rate as a fraction).
        reference_value: The value the reference days predicted; ``reference_spread`` how much days vary.
        relative_change: ``value / reference_value − 1`` (None when the reference value is 0).
        statistic: The test statistic (t, or the day's count for a rate), named by ``statistic_name``.
        threshold: The statistic the night's Benjamini–Hochberg cutoff needed.
        p_value: The test's p-value; ``adjusted_p_value`` after the night's correction.
        reference_days: Reference days the test used; ``calls`` the day's calls (or scores).
        drifted: Adjusted p within the false discovery rate and a practical effect.
        summary: The finding in words.

    Example:
        ```python
        report = assess_trace_drift(history, day)
        for finding in report.findings:
            print(f"{finding.group.label}: {finding.summary} (adjusted p {finding.adjusted_p_value:.2g})")
        ```
    """

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
        """Plain JSON-ready values (``--json``, the ``drift_reports`` table).

        Returns:
            The fields, with the group as a dict and the day in ISO format.
        """
        return {**asdict(self), "group": self.group._asdict(), "day": self.day.isoformat()}


@dataclass(frozen=True)
class SkippedCheck:
    """A metric that was not tested, and why (too few calls, too little history).

    Example:
        >>> SkippedCheck(TraceGroup("dev", "", "", "", "m"), "eval_score", "0 values that day, fewer than 30").reason
        '0 values that day, fewer than 30'
    """

    group: TraceGroup
    metric: str
    reason: str


@dataclass
class TraceDriftReport:
    """Every test of one night: ``findings`` are the drifted ones.

    Attributes:
        day: The checked day.
        tests: Every test of every group, drifted or not, in the order they ran.
        skipped: The metrics not tested, and why.

    Example:
        ```python
        report = assess_trace_drift(history, day)
        print(f"{len(report.findings)} of {len(report.tests)} tests drifted, {len(report.skipped)} skipped")
        ```
    """

    day: date
    tests: list[DriftFinding]
    skipped: list[SkippedCheck]

    @property
    def findings(self) -> list[DriftFinding]:
        """The drifted tests, in the order they ran."""
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
    level_days: int
    """The days the expected value is the mean of; ``spread_days`` the days the spread is read from."""
    spread_days: int
    trials: int | None = None
    parts: tuple[_Test, ...] = ()
    """The combined latency test's components, each tested alone: what its summary says moved."""


def _window(series: Iterable[DayStats], day: date, config: TraceDriftConfig) -> tuple[DayStats | None, list[DayStats]]:
    """The checked day (None without traffic) and the days of its window (``window_days``), oldest first."""
    first = day - timedelta(days=config.window_days)
    target, window = None, []
    for stats_of_day in series:
        if stats_of_day.day == day:
            target = stats_of_day
        elif first <= stats_of_day.day < day:
            window.append(stats_of_day)
    return target, sorted(window, key=lambda d: d.day)


def _stretches(days: Sequence[DayStats], day: date, config: TraceDriftConfig) -> np.ndarray:
    """Which stretch of ``reference_days`` before ``day`` each day falls in; 0 is the reference window."""
    return np.array([((day - d.day).days - 1) // config.reference_days for d in days], int)


def _compares_kinds(target: DayStats, reference: Sequence[DayStats], config: TraceDriftConfig) -> bool:
    """Whether the reference has enough days of the checked day's kind (weekday, weekend) to set its level alone."""
    return sum(d.is_weekend == target.is_weekend for d in reference) >= config.min_same_kind_days


def _same_kind(target: DayStats, reference: Sequence[DayStats], config: TraceDriftConfig) -> list[bool]:
    """Which reference days set the expected level: same kind of day when there are enough."""
    by_kind = _compares_kinds(target, reference, config)
    return [not by_kind or d.is_weekend == target.is_weekend for d in reference]


def _cells(days: Sequence[DayStats], stretches: np.ndarray) -> np.ndarray:
    """Days of one stretch and one kind: whose median an outlier day is far from."""
    return 2 * stretches + np.array([d.is_weekend for d in days], int)


def _design(days: Sequence[DayStats], stretches: np.ndarray, by_kind: bool) -> np.ndarray:
    """What a day's expected value is made of: its stretch's level (levels drift over weeks, so
    the spread is read about each stretch's own) and, when kinds are compared apart, a weekend
    offset all stretches share (the weekly rhythm holds), so a weekend's level reads its
    fortnight's weekdays too, not its four weekend days alone."""
    levels = np.equal.outer(stretches, np.arange(stretches.max() + 1)).astype(float)
    return np.column_stack([levels, [d.is_weekend for d in days]]) if by_kind else levels


def _cell_residuals(values: np.ndarray, cells: np.ndarray, centre: Callable[[np.ndarray], Any]) -> np.ndarray:
    """Each value less the centre of its cell's values."""
    residuals = np.empty_like(values)
    for cell in np.unique(cells):
        members = cells == cell
        residuals[members] = values[members] - centre(values[members])
    return residuals


def _too_few_days(group: TraceGroup, metric: str, usable: int, config: TraceDriftConfig) -> SkippedCheck:
    """The skip of a metric with too few usable reference days."""
    return SkippedCheck(group, metric, f"{usable} usable reference days, fewer than {config.min_reference_days}")


def _conservative_prediction(
    today: Estimate,
    values: np.ndarray,
    counts: np.ndarray,
    design: np.ndarray,
    day_row: np.ndarray,
    alternative: Alternative,
) -> Prediction:
    """When the days' own sampling noise is unknown, the less alarming of two readings of the
    reference's spread: all between-day variation (the same for every day) or all sampling noise
    (shrinking with a day's calls). A quiet weekend is then never judged by busy weekdays' spread."""
    zeros = np.zeros(values.size)
    between_days = regression_day_prediction_test(today.value, 0.0, values, zeros, design, day_row, alternative)
    pseudo_inverse = np.linalg.pinv(design)
    residuals = values - design @ (pseudo_inverse @ values)
    leverage = np.einsum("ij,ji->i", design, pseudo_inverse)
    per_call = float(np.sum(residuals**2) / np.sum((1 - leverage) / counts))
    sampling = regression_day_prediction_test(
        today.value, per_call / today.count, values, per_call / counts, design, day_row, alternative
    )
    return max(between_days, sampling, key=lambda prediction: prediction.p_value)


def _test_continuous(
    metric: ContinuousMetric,
    group: TraceGroup,
    target: DayStats,
    window: Sequence[DayStats],
    config: TraceDriftConfig,
) -> _Test | SkippedCheck:
    """A continuous metric's day-prediction t-test, on the window's days left after outliers: the
    expected value is the reference window's level (plus the weekend offset on a weekend), the
    between-day spread is read from every day of the window (``spread_days``) about its own
    stretch's level, so that the t's degrees of freedom, and with them the power, are not those
    of two weeks, and a weekend is not judged by the mean of four weekend days."""
    minimum = config.min_scores if metric.uses_scores else config.min_calls
    today = metric.estimate(target)
    if today is None or today.count < minimum:
        return SkippedCheck(group, metric.name, f"{today.count if today else 0} values that day, fewer than {minimum}")
    usable = [(d, estimate) for d in window if (estimate := metric.estimate(d)) is not None and estimate.count >= minimum]
    if len(usable) >= 2:
        values = np.array([estimate.value for _, estimate in usable])
        cells = _cells([d for d, _ in usable], _stretches([d for d, _ in usable], target.day, config))
        keep = np.abs(robust_z_scores(_cell_residuals(values, cells, np.median))) <= config.reference_outlier_z
        usable = [pair for pair, kept in zip(usable, keep, strict=True) if kept]
    days = [d for d, _ in usable]
    stretches = _stretches(days, target.day, config)
    reference = [d for d, stretch in zip(days, stretches, strict=True) if stretch == 0]
    if len(reference) < config.min_reference_days:
        return _too_few_days(group, metric.name, len(reference), config)
    estimates = [estimate for _, estimate in usable]
    values = np.array([estimate.value for estimate in estimates])
    design = _design([*days, target], np.append(stretches, 0), _compares_kinds(target, reference, config))
    model, day_row = design[:-1], design[-1]
    alternative = ALTERNATIVES[metric.direction]
    if today.variance is not None and all(estimate.variance is not None for estimate in estimates):
        variances = np.array([estimate.variance for estimate in estimates], float)
        prediction = regression_day_prediction_test(today.value, today.variance, values, variances, model, day_row, alternative)
    else:
        counts = np.array([estimate.count for estimate in estimates], float)
        prediction = _conservative_prediction(today, values, counts, model, day_row, alternative)
    back = math.exp if metric.log else float
    value, typical = back(today.value), back(prediction.location)
    spread = typical * math.expm1(prediction.day_sd) if metric.log else prediction.day_sd
    change = value / typical - 1 if metric.log else value - typical
    floor = config.min_relative_change if metric.log else config.min_score_change
    sign = {"up": 1.0, "down": -1.0, "both": math.copysign(1.0, prediction.t)}[metric.direction]
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
        reference_days=len(reference),
        calls=today.count,
        large_enough=abs(change) >= floor,
        level_days=len(reference),
        spread_days=len(days),
    )


def _combined_latency(weights: Mapping[str, float]) -> ContinuousMetric:
    """The weighted mean of the components' logs as one metric (a weighted geometric mean, in ms).

    Its sampling variance sums the components' weighted variances as if their errors were
    independent: they are positively correlated (read off the same calls), but the per-token
    variance, which has the largest weight, ignores the latency–tokens covariance and overstates."""
    components = [metric for metric in LATENCY_COMPONENTS if metric.name in weights]

    def estimate(day: DayStats) -> Estimate | None:
        estimates = [metric.estimate(day) for metric in components]
        if any(estimate is None for estimate in estimates):
            return None
        known = [estimate for estimate in estimates if estimate is not None]
        weighted = [weights[metric.name] for metric in components]
        value = sum(weight * estimate.value for weight, estimate in zip(weighted, known, strict=True))
        count = min(estimate.count for estimate in known)
        if any(estimate.variance is None for estimate in known):
            return Estimate(value, None, count)
        variance = sum(weight**2 * (estimate.variance or 0.0) for weight, estimate in zip(weighted, known, strict=True))
        return Estimate(value, variance, count)

    return ContinuousMetric(LATENCY, "latency", "ms", "up", True, estimate)


def _test_latency(
    group: TraceGroup, target: DayStats, window: Sequence[DayStats], config: TraceDriftConfig
) -> _Test | SkippedCheck:
    """One test of "latency went up": quantiles of latency and TTFT and latency per output token,
    each tested alone first (its day-to-day spread, after outlier days), then weighted by the
    inverse of that spread squared and combined into one day-level statistic tested like any
    other metric. Its spread comes from the combined values of the window's days themselves,
    so the components' correlation is accounted for without being estimated."""
    checks = [_test_continuous(metric, group, target, window, config) for metric in LATENCY_COMPONENTS]
    parts = [check for check in checks if isinstance(check, _Test)]
    if not parts:  # the p50's check says why: too few calls that day, or too few usable reference days
        return SkippedCheck(group, LATENCY, checks[0].reason) if isinstance(checks[0], SkippedCheck) else checks[0]
    inverse_variances = {part.metric: max(math.log1p(part.reference_spread / part.reference_value), 1e-9) ** -2 for part in parts}
    total = sum(inverse_variances.values())
    combined = _test_continuous(
        _combined_latency({name: weight / total for name, weight in inverse_variances.items()}),
        group, target, window, config,
    )  # fmt: skip
    return combined if isinstance(combined, SkippedCheck) else replace(combined, parts=tuple(parts))


def _latency_checks(
    group: TraceGroup, target: DayStats, window: Sequence[DayStats], config: TraceDriftConfig
) -> list[_Test | SkippedCheck]:
    """The combined latency test, or (``combined_latency`` off) the separate ones it replaces."""
    if config.combined_latency:
        return [_test_latency(group, target, window, config)]
    separate = [metric for metric in LATENCY_COMPONENTS if metric.name in SEPARATE_LATENCY_METRICS]
    return [_test_continuous(metric, group, target, window, config) for metric in separate]


def _rate_outliers(counts: np.ndarray, trials: np.ndarray, config: TraceDriftConfig) -> np.ndarray:
    """Reference days whose rate is implausible given all the other days (an earlier incident)."""
    others_rate = (counts.sum() - counts + 0.5) / (trials.sum() - trials + 1.0)
    binomial = stats.binom(trials, others_rate)
    p_values = 2 * np.minimum(binomial.sf(counts - 1), binomial.cdf(counts))
    return p_values >= config.reference_outlier_p


def _test_rate(
    metric: RateMetric, group: TraceGroup, target: DayStats, reference: Sequence[DayStats], config: TraceDriftConfig
) -> _Test | SkippedCheck:
    """A rate's beta-binomial predictive test, on the reference days left after outliers."""
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
    alternative = ALTERNATIVES[metric.direction]
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
        level_days=int(same.sum()),
        spread_days=len(usable),
        trials=trials,
    )


def _number(value: float, unit: str) -> str:
    """A value for a summary: dollars to the cent (or 1/100 cent), others to a sensible precision."""
    if unit == "usd":
        return f"{value:,.4f}" if abs(value) < 1 else f"{value:,.2f}"
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:,.1f}"


def _evidence(test: _Test, threshold: float, crossed: bool) -> str:
    """The evidence against the boundary the night's correction set, and the days behind it:
    "t 4.1 beyond boundary 2.7 (usual from 10 days, spread from 54)"."""
    if test.unit == "rate":
        statistic, boundary = f"count {test.statistic:,.0f}", f"{threshold:,.0f}"
    else:
        statistic, boundary = f"{'combined ' if test.parts else ''}t {test.statistic:.1f}", f"{threshold:.1f}"
    relation = "beyond" if crossed else "within"
    days = f"usual from {test.level_days} days, spread from {test.spread_days}"
    return f"{statistic} {relation} boundary {boundary} ({days})"


def _summary(test: _Test, threshold: float, crossed: bool) -> str:
    """The finding in words, then its evidence: "p95 latency 2,140 ms, +34 % vs the usual 1,600 ±
    90 ms; t 4.1 beyond boundary 2.7 (…)"; for the combined latency test, what moved: "latency
    +31 % (p50 latency +28 %, p95 latency +35 %, …); combined t 4.1 beyond boundary 2.7 (…)"."""
    return f"{_change(test)}; {_evidence(test, threshold, crossed)}"


def _change(test: _Test) -> str:
    """What moved, against the usual value and spread: "p95 latency 2,140 ms, +34 % vs the usual 1,600 ± 90 ms"."""
    if test.parts:
        moves = ", ".join(f"{part.label} {(part.value / part.reference_value - 1) * 100:+.0f} %" for part in test.parts)
        return f"{test.label} {(test.value / test.reference_value - 1) * 100:+.0f} % ({moves})"
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
    """Test every group with traffic on ``day`` against its reference window.

    One Benjamini–Hochberg correction covers the night's many tests (all groups × metrics), so
    more groups do not mean more false alarms per finding.

    Args:
        history: Each group's days; days outside ``day`` and its window (``config.window_days``)
            are ignored, and a group without ``day`` is not tested.
        day: The checked day.
        config: Thresholds; the defaults when None.

    Returns:
        Every test (drifted or not) and every skipped check.

    Example:
        ```python
        history = load_history(engine, day, TraceDriftConfig().window_days)
        report = assess_trace_drift(history, day)
        drifted = {(f.group.label, f.metric) for f in report.findings}
        ```
    """
    config = config or TraceDriftConfig()
    pending: list[_Test] = []
    skipped: list[SkippedCheck] = []
    for group, series in history.items():
        target, window = _window(series, day, config)
        if target is None:
            continue
        reference = [d for d, stretch in zip(window, _stretches(window, day, config), strict=True) if stretch == 0]
        checks = _latency_checks(group, target, window, config)
        checks += [_test_continuous(metric, group, target, window, config) for metric in CONTINUOUS_METRICS]
        rate_metrics = [ERROR_RATE, *map(finish_reason_metric, finish_reasons_to_test(target, reference))]
        checks += [_test_rate(metric, group, target, reference, config) for metric in rate_metrics]
        for check in checks:
            if isinstance(check, SkippedCheck):
                skipped.append(check)
            else:
                pending.append(check)
    p_values = [test.p_value for test in pending]
    adjusted = benjamini_hochberg(p_values)
    cutoff = benjamini_hochberg_cutoff(p_values, config.false_discovery_rate) if pending else 0.0
    thresholds = [test.critical(cutoff) for test in pending]
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
            threshold=threshold,
            p_value=test.p_value,
            adjusted_p_value=float(adjusted_p),
            reference_days=test.reference_days,
            calls=test.calls,
            drifted=bool(adjusted_p <= config.false_discovery_rate and test.large_enough),
            summary=_summary(test, threshold, crossed=test.p_value <= cutoff),
        )
        for test, adjusted_p, threshold in zip(pending, adjusted, thresholds, strict=True)
    ]
    return TraceDriftReport(day=day, tests=tests, skipped=skipped)


def detect_trace_drift(
    history: Mapping[TraceGroup, Iterable[DayStats]], day: date, config: TraceDriftConfig | None = None
) -> list[DriftFinding]:
    """The drifted metrics of ``day``: what an alert reports (empty on an ordinary day).

    Args:
        history: Each group's days, as for ``assess_trace_drift``.
        day: The checked day.
        config: Thresholds; the defaults when None.

    Returns:
        ``assess_trace_drift(history, day, config).findings``.

    Example:
        ```python
        for finding in detect_trace_drift(history, day):
            print(finding.group.label, finding.summary)
        ```
    """
    return assess_trace_drift(history, day, config).findings
