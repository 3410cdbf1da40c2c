"""Decision quality of trace drift (issue 6): false alarms on ordinary days and power on days
with an injected change, for ``llmops.drift.trace`` and for Evidently-style per-call defaults
(``tests.benchmarks.baseline``).

The simulated application has weekly seasonality (weekends: 40 % of the traffic, fewer long
requests) and the day-to-day variation real traffic has: a day-level latency factor (lognormal
sd 0.05), a share of long requests that moves by a few points, a small day-level token factor,
an error rate that itself varies between days around 1 %. Each evaluated day is checked against
the 14 days before it; each changed day is the same day (same draws) with one change injected.

Floors: ≥ 95 % power on each change, ≤ 5 % false alarms for ``llmops.drift.trace``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta

import numpy as np
from fastdigest import TDigest

from llmops.drift.history import DayStats, TraceGroup
from llmops.drift.trace import TraceDriftConfig, assess_trace_drift
from llmops.store.rollups import SQUARE_SUM_COLUMNS
from tests.benchmarks.baseline import baseline_drift

EVALUATED_DAYS = int(os.environ.get("BENCH_DRIFT_DAYS", "300"))
SEED = 2025
FIRST_DAY = date(2025, 1, 6)  # a Monday
CALLS_PER_WEEKDAY = 900
WEEKEND_SHARE = 0.4
MAX_TOKENS = 2048
GROUP = TraceGroup("production", "chat_response", "support-chat", "2.3.1", "claude-3-5-sonnet-20241022")
BASELINE_COLUMNS = ("latency_ms", "ttft_ms", "input_tokens", "output_tokens", "cost_usd", "is_error")
LATENCY_METRICS = ("latency_p50", "latency_p95", "latency_per_output_token", "ttft_p50")
OUTPUT_LENGTH_METRICS = ("output_tokens", "finish_reason:max_tokens")


@dataclass(frozen=True)
class Change:
    """What is injected into a day, and which metrics (and baseline column) report it."""

    name: str
    metric: str
    family: tuple[str, ...]
    column: str
    latency_factor: float = 1.0
    output_factor: float = 1.0
    extra_error_rate: float = 0.0


CHANGES = (
    Change("p95 latency +30 %", "latency_p95", LATENCY_METRICS, "latency_ms", latency_factor=1.3),
    Change("output tokens +50 %", "output_tokens", OUTPUT_LENGTH_METRICS, "output_tokens", output_factor=1.5),
    Change("error rate 1 % -> 5 %", "error_rate", ("error_rate",), "is_error", extra_error_rate=0.04),
)
NO_CHANGE = Change("none", "", (), "")


@dataclass
class SimulatedDay:
    stats: DayStats
    columns: dict[str, np.ndarray]


def simulate_day(index: int, change: Change = NO_CHANGE) -> SimulatedDay:
    """One day of calls; the same ``index`` draws the same day whatever the change."""
    rng = np.random.default_rng([SEED, index])
    day = FIRST_DAY + timedelta(days=index)
    weekend = day.weekday() >= 5
    calls = round(CALLS_PER_WEEKDAY * (WEEKEND_SHARE if weekend else 1.0) * np.exp(rng.normal(0, 0.05)))
    long_share = np.clip((0.22 if weekend else 0.30) + rng.normal(0, 0.03), 0.05, 0.95)
    latency_factor = np.exp(rng.normal(0, 0.05)) * change.latency_factor
    token_factor = np.exp(rng.normal(0, 0.03))
    error_rate = 0.01 * np.exp(rng.normal(0, 0.25)) + change.extra_error_rate  # a new failure on top of the usual

    long = rng.random(calls) < long_share
    failed = rng.random(calls) < error_rate
    input_tokens = np.where(long, 3500 * np.exp(rng.normal(0, 0.8, calls)), 800 * np.exp(rng.normal(0, 0.6, calls)))
    wanted = np.where(long, 600 * np.exp(rng.normal(0, 0.5, calls)), 150 * np.exp(rng.normal(0, 0.45, calls)))
    wanted = wanted * token_factor * change.output_factor
    input_tokens = np.round(input_tokens * token_factor)
    output_tokens = np.round(np.minimum(wanted, MAX_TOKENS))
    ttft = 600 * np.exp(rng.normal(0, 0.3, calls)) * (1 + input_tokens / 100_000) * latency_factor
    generation = output_tokens * 14.0 * np.exp(rng.normal(0, 0.15, calls)) * latency_factor
    latency = np.where(failed, 300 * np.exp(rng.normal(0, 0.4, calls)), ttft + generation)
    stop_sequence = rng.random(calls) < 0.003
    rated = (rng.random(calls) < 0.05) & ~failed
    thumbs = np.where(rng.random(calls) < 0.8, 1.0, -1.0)
    scored = (rng.random(calls) < 0.2) & ~failed
    scores = np.clip(rng.normal(0.86, 0.08, calls), 0, 1)

    input_tokens[failed] = 0
    output_tokens[failed] = 0
    cost = (input_tokens * 3 + output_tokens * 15) / 1e6
    reasons = np.where(wanted >= MAX_TOKENS, "max_tokens", np.where(stop_sequence, "stop_sequence", "end_turn"))[~failed]
    names, counts = np.unique(reasons, return_counts=True)
    ok = ~failed
    stats = DayStats(
        day=day,
        calls=calls,
        errors=int(failed.sum()),
        input_tokens=int(input_tokens.sum()),
        output_tokens=int(output_tokens.sum()),
        cost_usd=float(cost.sum()),
        priced_calls=calls,
        latency=TDigest.from_values(latency, max_centroids=300),
        ttft=TDigest.from_values(ttft[ok], max_centroids=300),
        feedback_sum=float(thumbs[rated].sum()),
        feedback_count=int(rated.sum()),
        eval_score_sum=float(scores[scored].sum()),
        eval_score_count=int(scored.sum()),
        finish_reasons=dict(zip(names.tolist(), counts.tolist(), strict=True)),
        input_tokens_sq_sum=float(np.sum(input_tokens**2)),
        output_tokens_sq_sum=float(np.sum(output_tokens**2)),
        cost_usd_sq_sum=float(np.sum(cost**2)),
        feedback_sq_sum=float(np.sum(thumbs[rated] ** 2)),
        eval_score_sq_sum=float(np.sum(scores[scored] ** 2)),
    )
    columns = {
        "latency_ms": latency,
        "ttft_ms": ttft[~failed],
        "input_tokens": input_tokens[~failed],
        "output_tokens": output_tokens[~failed],
        "cost_usd": cost,
        "is_error": failed.astype(float),
    }
    return SimulatedDay(stats, columns)


@dataclass
class Verdicts:
    """What each detector said about one checked day."""

    ours: set[str]
    ours_without_square_sums: set[str]
    ks: set[str]
    wasserstein: set[str]


def flagged_metrics(days: list[DayStats], config: TraceDriftConfig) -> set[str]:
    return {finding.metric for finding in assess_trace_drift({GROUP: days}, days[-1].day, config).findings}


def check(day: SimulatedDay, reference: list[SimulatedDay], config: TraceDriftConfig) -> Verdicts:
    days = [d.stats for d in reference] + [day.stats]
    without = [replace(d, **dict.fromkeys(SQUARE_SUM_COLUMNS)) for d in days]
    pooled = {column: np.concatenate([d.columns[column] for d in reference]) for column in BASELINE_COLUMNS}
    baseline = baseline_drift(pooled, day.columns)
    return Verdicts(
        ours=flagged_metrics(days, config),
        ours_without_square_sums=flagged_metrics(without, config),
        ks={result.column for result in baseline if result.ks_drift},
        wasserstein={result.column for result in baseline if result.wasserstein_drift},
    )


@dataclass(frozen=True)
class Detector:
    name: str
    flags: Callable[[Verdicts], set[str]]
    reports_metrics: bool
    """True: flags are ``llmops.drift.trace`` metric names; False: baseline column names."""

    def catches(self, change: Change) -> set[str]:
        return set(change.family) if self.reports_metrics else {change.column}


DETECTORS = (
    Detector("llmops.drift.trace", lambda v: v.ours, True),
    Detector("(no sq. sums)", lambda v: v.ours_without_square_sums, True),
    Detector("KS p<0.05", lambda v: v.ks, False),
    Detector("Wasserstein>=0.1", lambda v: v.wasserstein, False),
)


def rate(verdicts: list[Verdicts], flagged: Callable[[Verdicts], bool]) -> str:
    return f"{100 * sum(map(flagged, verdicts)) / len(verdicts):5.1f} %"


def main() -> None:
    config = TraceDriftConfig()
    window = config.reference_days
    ordinary = [simulate_day(index) for index in range(window + EVALUATED_DAYS)]
    results: dict[str, list[Verdicts]] = {NO_CHANGE.name: [], **{change.name: [] for change in CHANGES}}
    for index in range(window, window + EVALUATED_DAYS):
        reference = ordinary[index - window : index]
        results[NO_CHANGE.name].append(check(ordinary[index], reference, config))
        for change in CHANGES:
            results[change.name].append(check(simulate_day(index, change), reference, config))

    weekends = sum(day.stats.is_weekend for day in ordinary[window:])
    print(
        f"{EVALUATED_DAYS} checked days ({weekends} weekend days), ~{CALLS_PER_WEEKDAY} calls per weekday, {window}-day reference"
    )
    print(f"{'':34}" + "".join(f"{detector.name:>18}" for detector in DETECTORS))
    calm = results[NO_CHANGE.name]
    cells = [rate(calm, lambda v, d=detector: bool(d.flags(v))) for detector in DETECTORS]
    print(f"{'false alarms (any flag)':34}" + "".join(f"{cell:>18}" for cell in cells))
    for change in CHANGES:
        days = results[change.name]
        cells = [rate(days, lambda v, d=detector: bool(d.flags(v) & d.catches(change))) for detector in DETECTORS]
        print(f"{'power: ' + change.name:34}" + "".join(f"{cell:>18}" for cell in cells))
    print("power counts a changed day when a metric of the change is flagged (latency: p50, p95, latency per")
    print("output token or TTFT; output length: tokens per call or max_tokens share; baselines: the changed")
    print("column); false alarms count a flag of any metric. (no sq. sums): rollups without sums of squares.")
    for change in CHANGES:
        days = results[change.name]
        itself = rate(days, lambda v, c=change: c.metric in v.ours)
        print(
            f"llmops.drift on {change.name}: {change.metric} itself flagged {itself}, "
            f"day flagged {rate(days, lambda v: bool(v.ours))}"
        )
    alarms = Counter(metric for verdict in calm for metric in verdict.ours)
    print(f"llmops.drift.trace false alarms by metric: {dict(alarms.most_common()) or 'none'}")


if __name__ == "__main__":
    main()
