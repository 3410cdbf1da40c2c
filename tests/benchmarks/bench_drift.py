"""Decision quality of trace drift (issue 6): false alarms on ordinary days and power on days
with an injected change, for ``llmops.drift.trace`` and for Evidently-style per-call defaults
(``tests.benchmarks.baseline``).

The simulated application has weekly seasonality (weekends: 40 % of the traffic, fewer long
requests) and the day-to-day variation real traffic has: a day-level latency factor (lognormal
sd 0.05), a share of long requests that moves by a few points, a small day-level token factor,
an error rate that itself varies between days around 1 %. Each evaluated day is checked against
the days before it (the 14-day reference, and the 56 days the default reads the spread from);
each changed day is the same day (same draws) with one change injected.

A second generator of days, written apart from the first (``simulate_shifting_day``), has a
different day-to-day structure: three kinds of request whose mix wanders from day to day and
by weekday, an autocorrelated, heavy-tailed day effect on latency, load that slows busy days, and
timeouts among the errors. The latency table compares, on both generators and the same days,
the method before issue 15 (spread from the 14 reference days alone, p50, p95, per output token
and TTFT tested apart), the default (the same tests, spread and weekend offset from 56 days) and
the combined latency test.

Floors: ≥ 95 % power on each change, ≤ 5 % false alarms for ``llmops.drift.trace``; latency +30 %
caught on ≥ 98 % of days.
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
LATENCY_METRICS = ("latency", "latency_p50", "latency_p95", "latency_per_output_token", "ttft_p50")
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
    Change("latency +30 %", "latency_p95", LATENCY_METRICS, "latency_ms", latency_factor=1.3),
    Change("output tokens +50 %", "output_tokens", OUTPUT_LENGTH_METRICS, "output_tokens", output_factor=1.5),
    Change("error rate 1 % -> 5 %", "error_rate", ("error_rate",), "is_error", extra_error_rate=0.04),
)
NO_CHANGE = Change("none", "", (), "")
LATENCY_CHANGES = (CHANGES[0], replace(CHANGES[0], name="latency +15 %", latency_factor=1.15))
REFERENCE_DAYS = int(os.environ.get("BENCH_DRIFT_REFERENCE_DAYS", "14"))


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


KINDS = ("chat", "rag", "agent")
KIND_SHARES = {False: np.array([0.55, 0.30, 0.15]), True: np.array([0.75, 0.15, 0.10])}  # weekday, weekend
KIND_INPUT = np.array([600.0, 6000.0, 2500.0])
KIND_OUTPUT = np.array([120.0, 350.0, 900.0])
KIND_TTFT = np.array([450.0, 1100.0, 700.0])
KIND_MS_PER_TOKEN = np.array([12.0, 13.0, 16.0])
DAY_EFFECT_MEMORY = 0.6
"""AR(1) coefficient of the day effect on latency: a slow day tends to follow a slow day."""
DAY_EFFECT_SCALE = 0.035
TIMEOUT_MS = 30_000.0


def _day_effects(days: int) -> tuple[np.ndarray, np.ndarray]:
    """The shifting generator's day-level drivers: an AR(1) latency effect with Student-t (3 df)
    innovations, and a request mix that wanders as a random walk in log-shares."""
    rng = np.random.default_rng([SEED, 7, days])
    innovations = DAY_EFFECT_SCALE * rng.standard_t(3, days)
    latency = np.zeros(days)
    for index in range(1, days):
        latency[index] = DAY_EFFECT_MEMORY * latency[index - 1] + innovations[index]
    mix_walk = np.cumsum(rng.normal(0, 0.04, (days, len(KINDS))), axis=0)
    return latency, mix_walk


def simulate_shifting_day(index: int, effects: tuple[np.ndarray, np.ndarray], change: Change = NO_CHANGE) -> DayStats:
    """A day of the second generator; the same ``index`` draws the same day whatever the change."""
    rng = np.random.default_rng([SEED, 11, index])
    day = FIRST_DAY + timedelta(days=index)
    weekend = day.weekday() >= 5
    latency_effect, mix_walk = effects
    calls = round((450 if weekend else 1200 * (1.15 if day.weekday() == 0 else 1.0)) * np.exp(rng.normal(0, 0.1)))
    shares = KIND_SHARES[weekend] * np.exp(mix_walk[index] + rng.normal(0, 0.08, len(KINDS)))
    kind = rng.choice(len(KINDS), calls, p=shares / shares.sum())
    slowdown = np.exp(latency_effect[index]) * (calls / 1000) ** 0.05 * change.latency_factor
    input_tokens = np.round(KIND_INPUT[kind] * rng.lognormal(0, 0.5, calls))
    output_tokens = np.round(np.minimum(KIND_OUTPUT[kind] * rng.lognormal(0, 0.6, calls), MAX_TOKENS))
    ttft = KIND_TTFT[kind] * rng.lognormal(0, 0.35, calls) * slowdown
    latency = ttft + output_tokens * KIND_MS_PER_TOKEN[kind] * rng.lognormal(0, 0.2, calls) * slowdown
    failed = rng.random(calls) < 0.012 * np.exp(rng.normal(0, 0.3))
    timed_out = failed & (rng.random(calls) < 0.3)
    latency = np.where(failed, np.where(timed_out, TIMEOUT_MS, 200 * rng.lognormal(0, 0.5, calls)), latency)
    ok = ~failed
    inputs, outputs = input_tokens[ok], output_tokens[ok]
    cost = (inputs * 3 + outputs * 15) / 1e6
    reasons = np.where(outputs >= MAX_TOKENS, "max_tokens", "end_turn")
    names, counts = np.unique(reasons, return_counts=True)
    return DayStats(
        day=day,
        calls=calls,
        errors=int(failed.sum()),
        input_tokens=int(inputs.sum()),
        output_tokens=int(outputs.sum()),
        cost_usd=float(cost.sum()),
        priced_calls=calls,
        latency=TDigest.from_values(latency, max_centroids=300),
        ttft=TDigest.from_values(ttft[ok], max_centroids=300),
        finish_reasons=dict(zip(names.tolist(), counts.tolist(), strict=True)),
        input_tokens_sq_sum=float(np.sum(inputs**2)),
        output_tokens_sq_sum=float(np.sum(outputs**2)),
        cost_usd_sq_sum=float(np.sum(cost**2)),
    )


@dataclass
class Verdicts:
    """What each detector said about one checked day."""

    ours: set[str]
    before: set[str]
    combined_latency: set[str]
    ours_without_square_sums: set[str]
    ks: set[str]
    wasserstein: set[str]


def flagged_metrics(days: list[DayStats], config: TraceDriftConfig) -> set[str]:
    return {finding.metric for finding in assess_trace_drift({GROUP: days}, days[-1].day, config).findings}


def before(config: TraceDriftConfig) -> TraceDriftConfig:
    """The method before issue 15: the spread from the reference days alone, latency tests apart."""
    return config.model_copy(update={"spread_days": config.reference_days, "combined_latency": False})


def combined(config: TraceDriftConfig) -> TraceDriftConfig:
    """The combined latency test, measured beside the default (p50, p95, per output token, TTFT apart)."""
    return config.model_copy(update={"combined_latency": True})


def check(day: SimulatedDay, window: list[SimulatedDay], config: TraceDriftConfig) -> Verdicts:
    days = [d.stats for d in window] + [day.stats]
    without = [replace(d, **dict.fromkeys(SQUARE_SUM_COLUMNS)) for d in days]
    reference = window[-config.reference_days :]
    pooled = {column: np.concatenate([d.columns[column] for d in reference]) for column in BASELINE_COLUMNS}
    baseline = baseline_drift(pooled, day.columns)
    return Verdicts(
        ours=flagged_metrics(days, config),
        before=flagged_metrics(days, before(config)),
        combined_latency=flagged_metrics(days, combined(config)),
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
    Detector("(before: 14-day)", lambda v: v.before, True),
    Detector("(combined latency)", lambda v: v.combined_latency, True),
    Detector("(no sq. sums)", lambda v: v.ours_without_square_sums, True),
    Detector("KS p<0.05", lambda v: v.ks, False),
    Detector("Wasserstein>=0.1", lambda v: v.wasserstein, False),
)


def rate(verdicts: list[Verdicts], flagged: Callable[[Verdicts], bool]) -> str:
    return f"{100 * sum(map(flagged, verdicts)) / len(verdicts):5.1f} %"


METHODS = ("before", "default", "combined")
"""The latency table's columns on each generator: the method before issue 15, the default, the combined test."""


def latency_table(first: dict[str, list[Verdicts]], config: TraceDriftConfig) -> None:
    """False alarms and latency power of the method before issue 15, the default and the combined
    latency test, on both generators: the same checked days for every method."""
    window = config.window_days
    effects = _day_effects(window + EVALUATED_DAYS)
    ordinary = [simulate_shifting_day(index, effects) for index in range(window + EVALUATED_DAYS)]
    configs = (before(config), config, combined(config))
    second: dict[str, list[tuple[set[str], ...]]] = {NO_CHANGE.name: [], **{c.name: [] for c in LATENCY_CHANGES}}
    for index in range(window, window + EVALUATED_DAYS):
        for change in (NO_CHANGE, *LATENCY_CHANGES):
            day = ordinary[index] if change is NO_CHANGE else simulate_shifting_day(index, effects, change)
            days = [*ordinary[index - window : index], day]
            second[change.name].append(tuple(flagged_metrics(days, method) for method in configs))
    first_flags = {name: [(v.before, v.ours, v.combined_latency) for v in verdicts] for name, verdicts in first.items()}
    latency = set(LATENCY_METRICS)
    print(f"\nlatency, {EVALUATED_DAYS} checked days per generator (power: a latency metric flagged on the changed day);")
    print(f"before: spread from the {config.reference_days} reference days, p50, p95, per output token and TTFT apart;")
    print(
        f"default: the same tests, spread and weekend offset from {config.window_days} days "
        f"(level still from the {config.reference_days});"
    )
    print("combined: the default's spread, one combined latency test")
    print(f"{'':26}" + "".join(f"{f'{generator}: {method}':>18}" for generator in ("first", "second") for method in METHODS))
    rows: list[tuple[str, str, Callable[[set[str]], bool]]] = [
        ("false alarms (any flag)", NO_CHANGE.name, lambda flags: bool(flags)),
        ("false alarms (latency)", NO_CHANGE.name, lambda flags: bool(flags & latency)),
        *((f"power: {change.name}", change.name, lambda flags: bool(flags & latency)) for change in LATENCY_CHANGES),
    ]
    for label, name, flagged in rows:
        cells = [
            f"{100 * np.mean([flagged(flags[method]) for flags in verdicts[name]]):5.1f} %"
            for verdicts in (first_flags, second)
            for method in range(len(METHODS))
        ]
        print(f"{label:26}" + "".join(f"{cell:>18}" for cell in cells))


def main() -> None:
    config = TraceDriftConfig(reference_days=REFERENCE_DAYS)
    window = config.window_days
    ordinary = [simulate_day(index) for index in range(window + EVALUATED_DAYS)]
    results: dict[str, list[Verdicts]] = {NO_CHANGE.name: [], **{change.name: [] for change in CHANGES}}
    for index in range(window, window + EVALUATED_DAYS):
        earlier = ordinary[index - window : index]
        results[NO_CHANGE.name].append(check(ordinary[index], earlier, config))
        for change in (*CHANGES, LATENCY_CHANGES[1]):
            results.setdefault(change.name, []).append(check(simulate_day(index, change), earlier, config))

    weekends = sum(day.stats.is_weekend for day in ordinary[window:])
    print(
        f"{EVALUATED_DAYS} checked days ({weekends} weekend days), ~{CALLS_PER_WEEKDAY} calls per weekday, "
        f"{config.reference_days}-day reference, spread from {window} days"
    )
    print(f"{'':34}" + "".join(f"{detector.name:>18}" for detector in DETECTORS))
    calm = results[NO_CHANGE.name]
    cells = [rate(calm, lambda v, d=detector: bool(d.flags(v))) for detector in DETECTORS]
    print(f"{'false alarms (any flag)':34}" + "".join(f"{cell:>18}" for cell in cells))
    for change in CHANGES:
        days = results[change.name]
        cells = [rate(days, lambda v, d=detector: bool(d.flags(v) & d.catches(change))) for detector in DETECTORS]
        print(f"{'power: ' + change.name:34}" + "".join(f"{cell:>18}" for cell in cells))
    print("power counts a changed day when a metric of the change is flagged (latency: the combined test, p50,")
    print("p95, latency per output token or TTFT; output length: tokens per call or max_tokens share; baselines:")
    print("the changed column); false alarms count a flag of any metric. (no sq. sums): rollups without sums of")
    print("squares; (before: 14-day): the spread from the reference days alone, the method before issue 15;")
    print("(combined latency): the combined latency test instead of the separate ones.")
    for change in CHANGES:
        days = results[change.name]
        itself = rate(days, lambda v, c=change: c.metric in v.ours)
        print(
            f"llmops.drift on {change.name}: {change.metric} itself flagged {itself}, "
            f"day flagged {rate(days, lambda v: bool(v.ours))}"
        )
    alarms = Counter(metric for verdict in calm for metric in verdict.ours)
    print(f"llmops.drift.trace false alarms by metric: {dict(alarms.most_common()) or 'none'}")
    latency_table(results, config)


if __name__ == "__main__":
    main()
