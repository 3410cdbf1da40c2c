"""Canary gates and A/B reports: noise never fails a gate, a real regression does, and too
little traffic says so; sequentially, at every look."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest

from llmops import settings
from llmops.records import TraceRecord
from llmops.release.experiments import (
    ABReport,
    ArmSample,
    OutcomeTolerance,
    Tolerances,
    ab_report,
    arm_samples_from_traces,
    compare_arms,
    gate_verdict,
    with_history,
)

FAST = Tolerances()
FIXED = Tolerances(method="fixed")


@pytest.fixture(autouse=True)
def fewer_resamples(monkeypatch: pytest.MonkeyPatch) -> None:
    """500 bootstrap resamples instead of 2,000: the same verdicts here, in a quarter of the time."""
    monkeypatch.setenv(settings.LLMOPS_GATE_BOOTSTRAP_RESAMPLES, "500")


def simulated_arm(
    seed: int,
    calls: int = 2_000,
    error_rate: float = 0.01,
    latency_factor: float = 1.0,
    cost_factor: float = 1.0,
    eval_shift: float = 0.0,
    escalation_rate: float = 0.1,
) -> ArmSample:
    rng = np.random.default_rng(seed)
    long = rng.random(calls) < 0.3
    return ArmSample(
        errors=(rng.random(calls) < error_rate).tolist(),
        latencies_ms=(np.where(long, 6_000, 1_500) * rng.lognormal(0, 0.4, calls) * latency_factor).tolist(),
        costs=(np.where(long, 0.02, 0.004) * rng.lognormal(0, 0.5, calls) * cost_factor).tolist(),
        feedback=np.where(rng.random(calls // 20) < 0.8, 1.0, -1.0).tolist(),
        eval_scores=np.clip(rng.normal(0.86 + eval_shift, 0.08, calls // 5), 0, 1).tolist(),
        outcomes={"escalated": (rng.random(calls // 2) < escalation_rate).astype(float).tolist()},
    )


def by_metric(control: ArmSample, candidate: ArmSample, tolerances: Tolerances = FAST) -> dict[str, str]:
    return {comparison.metric: comparison.verdict for comparison in compare_arms(control, candidate, tolerances)}


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("tolerances", [FAST, FIXED], ids=["sequential", "fixed"])
def test_identical_arms_never_fail(seed: int, tolerances: Tolerances) -> None:
    comparisons = compare_arms(simulated_arm(2 * seed), simulated_arm(2 * seed + 1), tolerances)
    assert [c.metric for c in comparisons if c.verdict == "fail"] == []
    # sequentially, 2,000 calls an arm may not show the absence of harm yet: then the step's minimum decides
    assert gate_verdict(comparisons) in ({"pass", "undecided"} if tolerances.method == "sequential" else {"pass"})


@pytest.mark.parametrize("seed", range(12))
def test_peeking_at_every_look_never_fails_an_identical_candidate(seed: int) -> None:
    """The gate is asked at every advance-rollouts run: 16 looks at a growing window, none fails."""
    control, candidate = simulated_arm(100 + 2 * seed, calls=8_000), simulated_arm(101 + 2 * seed, calls=8_000)
    for calls in range(500, 8_001, 500):
        comparisons = compare_arms(prefix(control, calls), prefix(candidate, calls), FAST)
        assert gate_verdict(comparisons) != "fail", [c.evidence for c in comparisons if c.verdict == "fail"]


def prefix(arm: ArmSample, calls: int) -> ArmSample:
    """The first ``calls`` calls of an arm: what an earlier look saw (sparse samples in proportion)."""
    share = calls / len(arm.errors)

    def head(values: list[float]) -> list[float]:
        return values[: round(len(values) * share)]

    return ArmSample(
        errors=arm.errors[:calls], latencies_ms=head(arm.latencies_ms), costs=head(arm.costs),
        feedback=head(arm.feedback), eval_scores=head(arm.eval_scores),
        outcomes={name: head(values) for name, values in arm.outcomes.items()},
    )  # fmt: skip


def test_a_harmful_candidate_fails_at_the_first_look_that_shows_it() -> None:
    """Error rate 1 % → 4 %: sequentially the gate fails long before a fixed window of 8,000 an arm."""
    control, candidate = simulated_arm(31, calls=8_000), simulated_arm(32, calls=8_000, error_rate=0.04)
    first = next(
        calls for calls in range(500, 8_001, 500)
        if gate_verdict(compare_arms(prefix(control, calls), prefix(candidate, calls), FAST)) == "fail"
    )  # fmt: skip
    assert first <= 1_500
    error_rate = compare_arms(prefix(control, first), prefix(candidate, first), FAST)[0]
    assert error_rate.verdict == "fail"
    assert error_rate.evidence is not None and error_rate.evidence.startswith("evidence of harm")
    assert "crossed" in error_rate.evidence


def test_an_unchanged_candidate_passes_early_once_no_harm_is_shown() -> None:
    comparisons = compare_arms(simulated_arm(41, calls=30_000), simulated_arm(42, calls=30_000), FAST)
    core = {c.metric: c.verdict for c in comparisons if c.metric in ("error_rate", "p95_latency_ms", "cost_per_request_usd")}
    assert core == {"error_rate": "pass", "p95_latency_ms": "pass", "cost_per_request_usd": "pass"}
    assert gate_verdict(comparisons) == "pass"
    assert all("evidence of no harm" in (c.evidence or "") for c in comparisons if c.metric in core)


def test_an_undecided_metric_says_how_much_traffic_a_verdict_takes() -> None:
    comparisons = compare_arms(simulated_arm(43, calls=1_000), simulated_arm(44, calls=1_000), FAST)
    error_rate = comparisons[0]
    assert error_rate.verdict == "undecided"
    assert error_rate.calls_to_verdict is not None and error_rate.calls_to_verdict > 0
    assert error_rate.evidence is not None and " of 20" in error_rate.evidence  # the early pass's threshold, 1/β


def users_with_history(seed: int, calls: int, latency_factor: float = 1.0) -> ArmSample:
    """Users who differ a lot (some always ask long questions), each with their average cost and
    latency before the rollout."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 400, calls)
    size = np.exp(rng.normal(0, 1.0, 400))  # a user's typical request size
    cost = 0.004 * size[users] * rng.lognormal(0, 0.3, calls)
    latency = 800 * size[users] ** 0.5 * rng.lognormal(0, 0.3, calls) * latency_factor
    names = [f"user-{user}" for user in users]
    arm = ArmSample(errors=[False] * calls, latencies_ms=latency.tolist(), costs=cost.tolist(),
                    users={"errors": names, "latencies_ms": names, "costs": names})  # fmt: skip
    history = {
        f"user-{user}": {"costs": 0.004 * size[user], "latencies_ms": float(np.log(800 * size[user] ** 0.5))}
        for user in range(400)
    }
    return with_history(arm, history)


def test_each_users_history_narrows_the_intervals_without_moving_them() -> None:
    control, candidate = users_with_history(51, 3_000), users_with_history(52, 3_000, latency_factor=1.05)
    adjusted = {c.metric: c for c in compare_arms(control, candidate, FAST)}
    plain = {c.metric: c for c in compare_arms(replace(control, history={}), replace(candidate, history={}), FAST)}
    for metric in ("cost_per_request_usd", "p95_latency_ms"):
        width = adjusted[metric].ci_high - adjusted[metric].ci_low  # type: ignore[operator]
        assert width < 0.6 * (plain[metric].ci_high - plain[metric].ci_low)  # type: ignore[operator]
    assert adjusted["cost_per_request_usd"].ci_low < 1.0 < adjusted["cost_per_request_usd"].ci_high  # type: ignore[operator]
    assert adjusted["p95_latency_ms"].ci_low < 1.05 < adjusted["p95_latency_ms"].ci_high  # type: ignore[operator]
    assert adjusted["cost_per_request_usd"].control_value == plain["cost_per_request_usd"].control_value  # shown as observed


@pytest.mark.parametrize("tolerances", [FAST, FIXED], ids=["sequential", "fixed"])
def test_a_large_regression_fails_each_metric_it_touches(tolerances: Tolerances) -> None:
    control = simulated_arm(1, calls=4_000)
    candidate = simulated_arm(
        2, calls=4_000, error_rate=0.06, latency_factor=1.6, cost_factor=1.5, eval_shift=-0.2, escalation_rate=0.3
    )
    tolerances = tolerances.model_copy(update={"outcomes": {"escalated": OutcomeTolerance(higher_is_better=False)}})
    verdicts = by_metric(control, candidate, tolerances)
    assert verdicts.pop("user_feedback") != "fail"
    assert verdicts == {
        "error_rate": "fail",
        "p95_latency_ms": "fail",
        "cost_per_request_usd": "fail",
        "eval_score": "fail",
        "outcome:escalated": "fail",
    }
    assert gate_verdict(compare_arms(control, candidate, tolerances)) == "fail"


def test_a_real_change_within_tolerance_passes() -> None:
    """p95 +5 % is real (its interval excludes no change) but inside +15 %: not a failure."""
    control, candidate = simulated_arm(3, calls=20_000), simulated_arm(4, calls=20_000, latency_factor=1.05)
    p95 = next(c for c in compare_arms(control, candidate, FAST) if c.metric == "p95_latency_ms")
    assert p95.scale == "ratio"
    assert p95.ci_low is not None and p95.ci_high is not None
    assert 1.0 < p95.ci_low < p95.ci_high < 1.15
    assert p95.verdict == "pass"


def test_below_minimum_samples_the_verdict_is_not_enough_data() -> None:
    control, candidate = simulated_arm(5, calls=200), simulated_arm(6, calls=200, error_rate=0.5)
    comparisons = compare_arms(control, candidate, FAST)
    error_rate = next(c for c in comparisons if c.metric == "error_rate")
    assert error_rate.verdict == "not_enough_data"
    assert (error_rate.control_n, error_rate.candidate_n) == (200, 200)
    assert error_rate.ci_low is None
    assert gate_verdict(comparisons) == "not_enough_data"
    looser = FAST.model_copy(update={"min_samples_per_arm": 100})
    assert by_metric(control, candidate, looser)["error_rate"] == "fail"


def test_comparison_reports_values_differences_and_p_values() -> None:
    control, candidate = simulated_arm(7), simulated_arm(8, error_rate=0.05)
    error_rate = next(c for c in compare_arms(control, candidate, FAST) if c.metric == "error_rate")
    assert error_rate.difference == pytest.approx(error_rate.candidate_value - error_rate.control_value)
    assert error_rate.relative_difference == pytest.approx(error_rate.candidate_value / error_rate.control_value - 1)
    assert error_rate.p_value is not None and error_rate.p_value < 1e-6
    assert error_rate.tolerance == "at most +1.0 points"
    json.dumps(error_rate.as_dict())


def test_ab_report_names_a_winner_only_on_a_clear_difference() -> None:
    arms = {"2.3.1": simulated_arm(9, calls=3_000), "2.4.0": simulated_arm(10, calls=3_000, eval_shift=0.05)}
    report = ab_report(arms, FAST)
    verdicts = {metric.metric: (metric.verdict, metric.winner) for metric in report.metrics}
    assert verdicts["eval_score"] == ("winner", "2.4.0")
    assert verdicts["error_rate"] == ("no_difference", None)
    assert verdicts["p95_latency_ms"] == ("no_difference", None)
    eval_score = next(metric for metric in report.metrics if metric.metric == "eval_score")
    summary = eval_score.summaries["2.4.0"]
    assert summary.ci_low is not None and summary.ci_high is not None
    assert summary.ci_low < 0.91 < summary.ci_high


def test_ab_report_waits_for_data_and_renders_for_people_and_scripts() -> None:
    arms = {"1.0.0": simulated_arm(11, calls=3_000), "1.1.0": simulated_arm(12, calls=100)}
    report = ab_report(arms, FAST)
    verdicts = {metric.metric: metric.verdict for metric in report.metrics}
    assert verdicts.pop("outcome:escalated") == "no_difference"  # 50 values per arm: enough for a mean
    assert set(verdicts.values()) == {"not_enough_data"}
    markdown = report.to_markdown()
    assert "| metric | 1.0.0 | 1.1.0 | verdict |" in markdown
    assert "| error rate |" in markdown and "not enough data yet" in markdown
    document = json.loads(json.dumps(report.as_dict()))
    assert document["versions"] == ["1.0.0", "1.1.0"]
    assert document["metrics"][0]["versions"]["1.1.0"]["n"] == 100


def test_ab_report_with_three_versions_needs_one_better_than_all() -> None:
    arms = {
        "a": simulated_arm(13, calls=3_000),
        "b": simulated_arm(14, calls=3_000, eval_shift=0.06),
        "c": simulated_arm(15, calls=3_000, eval_shift=0.12),
    }
    eval_score = next(metric for metric in ab_report(arms, FAST).metrics if metric.metric == "eval_score")
    assert (eval_score.verdict, eval_score.winner) == ("winner", "c")
    assert len(eval_score.comparisons) == 3


def test_arm_samples_from_trace_rows_and_records() -> None:
    when = datetime(2025, 11, 20, 12, tzinfo=UTC)
    record = TraceRecord(
        trace_id="t1", timestamp=when, model="m", prompt_version="2.0.0", latency_ms=900.0,
        cost_usd="0.002", user_feedback="thumbs_up", automated_eval_score=0.9, metadata={"escalated": True},
    )  # fmt: skip
    rows = [
        record,
        {"prompt_version": "2.0.0", "status": "error", "latency_ms": 80.0, "cost_usd": None, "metadata": {}},
        {"prompt_version": "1.0.0", "status": "ok", "latency_ms": 1_200.0, "cost_usd": 0.003,
         "metadata": {"escalated": 0, "converted": "yes"}},
    ]  # fmt: skip
    arms = arm_samples_from_traces(rows, outcomes=["escalated", "converted"])
    assert arms["2.0.0"].errors == [False, True]
    assert arms["2.0.0"].latencies_ms == [900.0]  # the error's instant failure is not a latency
    assert arms["2.0.0"].costs == [0.002]
    assert arms["2.0.0"].feedback == [1.0]
    assert arms["2.0.0"].eval_scores == [0.9]
    assert arms["2.0.0"].outcomes == {"escalated": [1.0]}
    assert arms["1.0.0"].outcomes == {"escalated": [0.0]}  # "yes" is not a number


def sticky_users_report(seed: int, users: bool) -> ABReport:
    """Two identical versions, split by user; users differ a lot (some always ask long questions)."""
    rng = np.random.default_rng(seed)
    user = rng.integers(0, 300, 6_000)
    heavy = rng.lognormal(0, 0.6, 300)  # each user's own typical cost and latency
    in_candidate = (np.arange(300) % 2 == 1)[user]
    cost = 0.004 * heavy[user] * rng.lognormal(0, 0.3, user.size)
    latency = 1_500 * heavy[user] * rng.lognormal(0, 0.3, user.size)

    def arm(members: np.ndarray) -> ArmSample:
        who = user[members].astype(str).tolist()
        return ArmSample(errors=[False] * len(who), latencies_ms=latency[members].tolist(), costs=cost[members].tolist(),
                         users={"errors": who, "latencies_ms": who, "costs": who} if users else {})  # fmt: skip

    return ab_report({"a": arm(~in_candidate), "b": arm(in_candidate)}, FAST)


def sticky_users_ab(seed: int, users: bool) -> bool:
    """Whether the A/B report names a winner between the identical versions."""
    return any(metric.verdict == "winner" for metric in sticky_users_report(seed, users).metrics)


def test_an_ab_report_of_sticky_users_does_not_name_a_winner_between_identical_versions() -> None:
    """Independent-call intervals would be too narrow: a few users' habits decide each arm."""
    naive = sum(sticky_users_ab(seed, users=False) for seed in range(40))
    clustered = sum(sticky_users_ab(seed, users=True) for seed in range(40))
    assert naive >= 20  # what the report said before it knew who made each call
    assert clustered <= 4


def test_each_versions_own_interval_widens_with_its_users_too() -> None:
    def widths(users: bool) -> dict[str, float]:
        report = sticky_users_report(3, users)
        return {m.metric: m.summaries["a"].ci_high - m.summaries["a"].ci_low for m in report.metrics if m.summaries["a"].n}  # type: ignore[operator]

    independent, clustered = widths(False), widths(True)
    assert clustered["cost_per_request_usd"] > 1.5 * independent["cost_per_request_usd"]
    assert clustered["p95_latency_ms"] > 1.2 * independent["p95_latency_ms"]
    assert clustered["error_rate"] == independent["error_rate"]  # no errors: nothing to widen


def test_trace_rows_carry_who_made_each_call() -> None:
    rows = [
        {"prompt_version": "2.0.0", "user_id": "u1", "status": "ok", "latency_ms": 900.0, "cost_usd": 0.01, "user_feedback": 1.0},
        {"prompt_version": "2.0.0", "user_id": None, "status": "error", "latency_ms": 50.0, "cost_usd": None},
        {"prompt_version": "2.0.0", "user_id": "u1", "status": "ok", "latency_ms": 700.0, "cost_usd": 0.02},
    ]
    arm = arm_samples_from_traces(rows)["2.0.0"]
    assert arm.users["errors"] == ["u1", "call-1", "u1"]
    assert (arm.users["latencies_ms"], arm.users["costs"], arm.users["feedback"]) == (["u1", "u1"], ["u1", "u1"], ["u1"])


def test_reading_the_ab_report_at_every_run_names_no_winner_between_identical_versions() -> None:
    """Its intervals are confidence sequences: ten readings of a growing split, no false winner."""
    first, second = simulated_arm(61, calls=6_000), simulated_arm(62, calls=6_000)
    for calls in range(600, 6_001, 600):
        report = ab_report({"1.0.0": prefix(first, calls), "1.0.1": prefix(second, calls)}, FAST)
        assert [metric.metric for metric in report.metrics if metric.verdict == "winner"] == []
    assert report.as_dict()["method"] == "sequential"
    assert "confidence sequences" in report.to_markdown()
