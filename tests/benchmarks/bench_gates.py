"""Decision quality of the canary gate (issue 3): how often an identical candidate fails, and
how often a real regression (error rate +2 points, p95 latency +30 %) is caught, over one step
window of a 25 % canary.

The simulated traffic has the noise a real step window has: sticky assignment by user, with a
few heavy users and users who differ in how long their requests are (so the canary's mix is
not the control's mix), hour-to-hour latency and error-rate swings shared by both arms, and the
per-call spread of latency, cost, feedback and eval scores. Each arm says which user made each
call, as ``arm_samples_from_traces`` does from the traces. Tolerances are the defaults: error
rate +1 point, p95 +15 %, cost +10 %, feedback and eval score −0.05.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from llmops.release.experiments import ArmSample, Tolerances, ab_report, compare_arms, gate_verdict

TRIALS = int(os.environ.get("BENCH_GATES_TRIALS", "60"))
WINDOWS = (8_000, 20_000)
"""Calls in the step window (both arms)."""
AB_WINDOW = 8_000
"""The A/B report is measured on the smaller window (where false winners are likeliest)."""
CANARY_SHARE = 0.25
USERS = 4_000
HOURS = 24


@dataclass(frozen=True)
class Scenario:
    name: str
    extra_error_rate: float = 0.0
    latency_factor: float = 1.0


SCENARIOS = (
    Scenario("identical candidate"),
    Scenario("error rate +2 points", extra_error_rate=0.02),
    Scenario("p95 latency +30 %", latency_factor=1.3),
)


def simulate_window(calls: int, scenario: Scenario, seed: int) -> tuple[ArmSample, ArmSample]:
    """One step window: control and canary calls from the same users' population and hours."""
    rng = np.random.default_rng(seed)
    activity = rng.lognormal(0, 1.2, USERS)
    long_share = rng.beta(3, 7, USERS)  # users differ: some mostly ask long questions
    in_canary = rng.random(USERS) < CANARY_SHARE
    hour_latency = np.exp(rng.normal(0, 0.05, HOURS))
    hour_errors = 0.01 * np.exp(rng.normal(0, 0.3, HOURS))

    user = rng.choice(USERS, size=calls, p=activity / activity.sum())
    hour = rng.integers(0, HOURS, calls)
    canary = in_canary[user]
    long = rng.random(calls) < long_share[user]
    output_tokens = np.where(long, 600 * np.exp(rng.normal(0, 0.5, calls)), 150 * np.exp(rng.normal(0, 0.45, calls)))
    output_tokens = np.minimum(np.round(output_tokens), 2048)
    input_tokens = np.where(long, 3500 * np.exp(rng.normal(0, 0.8, calls)), 800 * np.exp(rng.normal(0, 0.6, calls)))
    latency = 600 * np.exp(rng.normal(0, 0.3, calls)) + output_tokens * 14 * np.exp(rng.normal(0, 0.15, calls))
    latency *= hour_latency[hour] * np.where(canary, scenario.latency_factor, 1.0)
    failed = rng.random(calls) < hour_errors[hour] + np.where(canary, scenario.extra_error_rate, 0.0)
    cost = (np.round(input_tokens) * 3 + output_tokens * 15) / 1e6
    rated = (rng.random(calls) < 0.05) & ~failed
    thumbs = np.where(rng.random(calls) < 0.8, 1.0, -1.0)
    scored = (rng.random(calls) < 0.2) & ~failed
    scores = np.clip(rng.normal(0.86, 0.08, calls), 0, 1)

    users = user.astype(str)

    def arm(members: np.ndarray) -> ArmSample:
        ok, feedback, evaluated = members & ~failed, members & rated, members & scored
        return ArmSample(
            errors=failed[members].tolist(),
            latencies_ms=latency[ok].tolist(),
            costs=cost[ok].tolist(),
            feedback=thumbs[feedback].tolist(),
            eval_scores=scores[evaluated].tolist(),
            users={"errors": users[members].tolist(), "latencies_ms": users[ok].tolist(), "costs": users[ok].tolist(),
                   "feedback": users[feedback].tolist(), "eval_scores": users[evaluated].tolist()},
        )  # fmt: skip

    return arm(~canary), arm(canary)


def run_trial(job: tuple[int, Scenario, int]) -> tuple[str, set[str]]:
    calls, scenario, seed = job
    control, candidate = simulate_window(calls, scenario, seed)
    comparisons = compare_arms(control, candidate, Tolerances())
    failed = {comparison.metric for comparison in comparisons if comparison.verdict == "fail"}
    return gate_verdict(comparisons), failed


def run_ab_trial(job: tuple[int, Scenario, int]) -> set[str]:
    """The metrics on which the A/B report names a winner (``metric:version``)."""
    calls, scenario, seed = job
    control, candidate = simulate_window(calls, scenario, seed)
    report = ab_report({"control": control, "candidate": candidate}, Tolerances())
    return {f"{metric.metric}:{metric.winner}" for metric in report.metrics if metric.verdict == "winner"}


def shares(counts: Counter[str]) -> str:
    return ", ".join(f"{name} {count / TRIALS:.0%}" for name, count in counts.most_common()) or "none"


def main() -> None:
    print(f"{TRIALS} simulated step windows per row, {CANARY_SHARE:.0%} canary, sticky by user; default tolerances")
    print(f"{'window':>14}  {'scenario':24}{'gate failed':>12}  metrics that failed")
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for calls in WINDOWS:
            for scenario in SCENARIOS:
                jobs = [(calls, scenario, 1_000 * index + calls) for index in range(TRIALS)]
                outcomes = list(pool.map(run_trial, jobs))
                verdicts = Counter(verdict for verdict, _ in outcomes)
                metrics = Counter(metric for _, failed in outcomes for metric in failed)
                print(f"{calls:>8,} calls  {scenario.name:24}{verdicts['fail'] / TRIALS:>11.1%}  {shares(metrics)}")
        print(f"\nA/B report, {AB_WINDOW:,} calls: share of windows naming a winner (metric:version)")
        for scenario in SCENARIOS:
            jobs = [(AB_WINDOW, scenario, 1_000 * index + AB_WINDOW) for index in range(TRIALS)]
            winners = list(pool.map(run_ab_trial, jobs))
            any_winner = sum(bool(found) for found in winners) / TRIALS
            print(f"  {scenario.name:24} any winner {any_winner:6.1%}   {shares(Counter(w for found in winners for w in found))}")


if __name__ == "__main__":
    main()
