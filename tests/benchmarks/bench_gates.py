"""Decision quality of the canary gate and the A/B report (issues 3 and 15): how often an identical
candidate fails, how often and how soon a real regression (error rate +2 points, p95 latency
+30 %) is caught, the fixed-horizon gate beside the sequential one, measured on the same windows.

The simulated traffic has the noise a real step window has: sticky assignment by user, with a
few heavy users and users who differ in how long their requests are (so the canary's mix is
not the control's mix), hour-to-hour latency and error-rate swings shared by both arms, and the
per-call spread of latency, cost, feedback and eval scores. Each arm says which user made each
call, as ``arm_samples_from_traces`` does from the traces. A second population skews activity
harder (a handful of users make a large share of the calls). Before the rollout each user made
calls of their own, from which the sequential gate reads their history (CUPED), as the trace
gate reads the week before a rollout. Tolerances are the defaults: error rate +1 point, p95 +15 %,
cost +10 %, feedback and eval score −0.05.

- fixed: today's gate, one look when the window is full (8,000 or 20,000 calls, both arms);
- sequential: the default gate, asked every ``LOOK_EVERY`` calls (an advance-rollouts run) from
  the first look with 300 calls an arm; it fails at the first look that shows harm. "failed by
  N" counts a failure at any look up to N calls, so an identical candidate's figure is its
  false-failure rate under peeking at every run.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from llmops.release.experiments import ArmSample, Tolerances, UserHistory, ab_report, compare_arms, gate_verdict, with_history

TRIALS = int(os.environ.get("BENCH_GATES_TRIALS", "60"))
AB_TRIALS = int(os.environ.get("BENCH_GATES_AB_TRIALS", "400"))
WINDOWS = (8_000, 20_000)
"""Calls in the step window (both arms)."""
LOOK_EVERY = 500
"""Calls between two looks of the sequential gate."""
AB_WINDOW = 8_000
"""The A/B report is measured on the smaller window (where false winners are likeliest)."""
AB_LOOK_EVERY = 1_000
CANARY_SHARE = 0.25
USERS = 4_000
HOURS = 24
SEQUENTIAL, FIXED = Tolerances(), Tolerances(method="fixed")


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
POPULATIONS = {"as before": 1.2, "heavy users": 2.0}
"""The spread (log-normal sigma) of users' activity."""


@dataclass(frozen=True)
class Window:
    """One simulated stream of calls, in time order, and each user's history before it."""

    canary: np.ndarray
    failed: np.ndarray
    latency: np.ndarray
    cost: np.ndarray
    rated: np.ndarray
    thumbs: np.ndarray
    scored: np.ndarray
    scores: np.ndarray
    users: np.ndarray
    history: UserHistory

    def arms(self, calls: int, with_user_history: bool) -> tuple[ArmSample, ArmSample]:
        """Control and canary over the first ``calls`` calls."""
        first = np.arange(self.canary.size) < calls
        control, canary = self.arm(first & ~self.canary), self.arm(first & self.canary)
        if with_user_history:
            return with_history(control, self.history), with_history(canary, self.history)
        return control, canary

    def arm(self, members: np.ndarray) -> ArmSample:
        ok, feedback, evaluated = members & ~self.failed, members & self.rated, members & self.scored
        users = self.users
        return ArmSample(
            errors=self.failed[members].tolist(),
            latencies_ms=self.latency[ok].tolist(),
            costs=self.cost[ok].tolist(),
            feedback=self.thumbs[feedback].tolist(),
            eval_scores=self.scores[evaluated].tolist(),
            users={"errors": users[members].tolist(), "latencies_ms": users[ok].tolist(), "costs": users[ok].tolist(),
                   "feedback": users[feedback].tolist(), "eval_scores": users[evaluated].tolist()},
        )  # fmt: skip


def simulate_window(calls: int, scenario: Scenario, seed: int, activity_spread: float = 1.2) -> Window:
    """A step window's calls from the same users' population and hours, and the week before it."""
    rng = np.random.default_rng(seed)
    activity = rng.lognormal(0, activity_spread, USERS)
    long_share = rng.beta(3, 7, USERS)  # users differ: some mostly ask long questions
    in_canary = rng.random(USERS) < CANARY_SHARE
    hour_latency = np.exp(rng.normal(0, 0.05, HOURS))
    hour_errors = 0.01 * np.exp(rng.normal(0, 0.3, HOURS))

    def stream(size: int, treated: bool) -> dict[str, np.ndarray]:
        user = rng.choice(USERS, size=size, p=activity / activity.sum())
        hour = rng.integers(0, HOURS, size)
        canary = in_canary[user] & treated
        long = rng.random(size) < long_share[user]
        output_tokens = np.where(long, 600 * np.exp(rng.normal(0, 0.5, size)), 150 * np.exp(rng.normal(0, 0.45, size)))
        output_tokens = np.minimum(np.round(output_tokens), 2048)
        input_tokens = np.where(long, 3500 * np.exp(rng.normal(0, 0.8, size)), 800 * np.exp(rng.normal(0, 0.6, size)))
        latency = 600 * np.exp(rng.normal(0, 0.3, size)) + output_tokens * 14 * np.exp(rng.normal(0, 0.15, size))
        latency *= hour_latency[hour] * np.where(canary, scenario.latency_factor, 1.0)
        failed = rng.random(size) < hour_errors[hour] + np.where(canary, scenario.extra_error_rate, 0.0)
        cost = (np.round(input_tokens) * 3 + output_tokens * 15) / 1e6
        return {"user": user, "canary": in_canary[user], "failed": failed, "latency": latency, "cost": cost}

    before = stream(2 * calls, treated=False)
    now = stream(calls, treated=True)
    rated = (rng.random(calls) < 0.05) & ~now["failed"]
    scored = (rng.random(calls) < 0.2) & ~now["failed"]
    return Window(
        canary=now["canary"], failed=now["failed"], latency=now["latency"], cost=now["cost"],
        rated=rated, thumbs=np.where(rng.random(calls) < 0.8, 1.0, -1.0),
        scored=scored, scores=np.clip(rng.normal(0.86, 0.08, calls), 0, 1),
        users=now["user"].astype(str), history=user_history(before),
    )  # fmt: skip


def user_history(calls: dict[str, np.ndarray]) -> UserHistory:
    """Each user's averages over their calls before the rollout, as ``read_user_history`` returns them."""
    user, ok = calls["user"], ~calls["failed"]
    made, succeeded = np.bincount(user, minlength=USERS), np.bincount(user, weights=ok, minlength=USERS)
    errors = np.bincount(user, weights=calls["failed"], minlength=USERS)
    latency = np.bincount(user, weights=np.where(ok, calls["latency"], 0), minlength=USERS)
    cost = np.bincount(user, weights=np.where(ok, calls["cost"], 0), minlength=USERS)
    history: dict[str, dict[str, float]] = {}
    for index in np.flatnonzero(made):
        averages = {"errors": errors[index] / made[index]}
        if succeeded[index]:
            averages["latencies_ms"] = float(np.log(latency[index] / succeeded[index]))
            averages["costs"] = float(cost[index] / succeeded[index])
        history[str(index)] = averages
    return history


@dataclass(frozen=True)
class Outcome:
    fixed: dict[int, bool]
    """Per window size: did the fixed gate fail at its one look."""
    failed_at: int | None
    """Sequential: the calls at its first failing look."""
    passed_at: int | None
    """Sequential: the calls at its first early pass (no harm shown)."""


def run_trial(job: tuple[Scenario, int, float]) -> Outcome:
    scenario, seed, spread = job
    window = simulate_window(max(WINDOWS), scenario, seed, spread)
    fixed = {calls: gate_verdict(compare_arms(*window.arms(calls, False), FIXED)) == "fail" for calls in WINDOWS}
    failed_at = passed_at = None
    for calls in range(LOOK_EVERY, max(WINDOWS) + 1, LOOK_EVERY):
        control, candidate = window.arms(calls, True)
        if min(len(control.errors), len(candidate.errors)) < SEQUENTIAL.min_samples_per_arm:
            continue
        verdict = gate_verdict(compare_arms(control, candidate, SEQUENTIAL))
        if verdict == "pass" and passed_at is None:
            passed_at = calls  # the gate would pass the step here; looking on checks it never fails later
        if verdict == "fail":
            failed_at = calls
            break
    return Outcome(fixed, failed_at, passed_at)


def run_ab_trial(job: tuple[Scenario, int, Tolerances, int]) -> tuple[bool, bool]:
    """Whether the A/B report of identical versions names any winner at its last look, and at any look."""
    scenario, seed, tolerances, every = job
    window = simulate_window(AB_WINDOW, scenario, seed)
    found = []
    for calls in range(every, AB_WINDOW + 1, every):
        control, candidate = window.arms(calls, tolerances.method == "sequential")
        report = ab_report({"control": control, "candidate": candidate}, tolerances)
        found.append(any(metric.verdict == "winner" for metric in report.metrics))
    return found[-1], any(found)


def share(flags: list[bool]) -> str:
    return f"{sum(flags) / len(flags):.1%}"


def quartiles(values: list[int], censored: int) -> str:
    """Median [quartiles] of calls to a verdict; a trial without one counts as beyond ``censored``."""
    if not values:
        return "–"
    padded = sorted(values) + [censored + 1] * (TRIALS - len(values))
    q1, median, q3 = (int(np.percentile(padded, q, method="lower")) for q in (25, 50, 75))
    text = lambda value: f">{censored:,}" if value > censored else f"{value:,}"  # noqa: E731
    return f"{text(median)} [{text(q1)}–{text(q3)}]"


def main() -> None:
    print(f"{TRIALS} simulated windows per row, {CANARY_SHARE:.0%} canary, sticky by user; default tolerances;")
    print(f"sequential: a look every {LOOK_EVERY:,} calls, each user's history before the rollout (CUPED)")
    header = (
        f"{'population':12} {'scenario':22}{'fixed 8k':>9}{'fixed 20k':>10}{'seq by 8k':>10}{'seq by 20k':>11}"
        f"  {'calls to fail: median [IQR]':30}{'early pass':>11}  calls to pass: median"
    )
    print(header)
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for population, spread in POPULATIONS.items():
            for scenario in SCENARIOS:
                jobs = [(scenario, 1_000 * index + 7, spread) for index in range(TRIALS)]
                outcomes = list(pool.map(run_trial, jobs))
                failed = [o.failed_at for o in outcomes if o.failed_at is not None]
                passed = [o.passed_at for o in outcomes if o.passed_at is not None]
                print(
                    f"{population:12} {scenario.name:22}"
                    f"{share([o.fixed[8_000] for o in outcomes]):>9}{share([o.fixed[20_000] for o in outcomes]):>10}"
                    f"{share([f <= 8_000 for f in failed] + [False] * (TRIALS - len(failed))):>10}"
                    f"{share([True] * len(failed) + [False] * (TRIALS - len(failed))):>11}"
                    f"  {quartiles(failed, max(WINDOWS)):30}{len(passed) / TRIALS:>11.1%}  {quartiles(passed, max(WINDOWS))}"
                )
        print(f"\nA/B report of identical versions, {AB_WINDOW:,} calls: share of trials naming any winner")
        identical = SCENARIOS[0]
        rows = (
            ("fixed, read once at the end (before)", FIXED, AB_WINDOW, TRIALS),
            (f"fixed, read every {AB_LOOK_EVERY * 2:,} calls", FIXED, AB_LOOK_EVERY * 2, TRIALS),
            (f"sequential, read every {AB_LOOK_EVERY:,} calls", SEQUENTIAL, AB_LOOK_EVERY, AB_TRIALS),
        )
        for label, tolerances, every, trials in rows:
            jobs = [(identical, 1_000 * index + AB_WINDOW, tolerances, every) for index in range(trials)]
            results = list(pool.map(run_ab_trial, jobs))
            print(f"  {label:42} {share([any_look for _, any_look in results]):>7}  over {trials} trials")


if __name__ == "__main__":
    main()
