"""Trace drift: a day is judged against how much whole days vary, like with like, with enough
data, and says in words what moved."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import date, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fastdigest import TDigest
from sqlalchemy import select

from llmops.demo.traffic import DEMO_INCIDENTS, generate_traces
from llmops.drift.history import DayStats, TraceGroup
from llmops.drift.trace import TraceDriftConfig, assess_trace_drift, detect_trace_drift
from llmops.stats import day_prediction_test, regression_day_prediction_test
from llmops.store.engine import get_engine
from llmops.store.rollups import ROLLUPS
from llmops.store.writer import write_traces
from tests.benchmarks.baseline import baseline_drift

GROUP = TraceGroup("production", "chat_response", "support-chat", "2.3.1", "claude-3-5-sonnet-20241022")
CHECKED_DAY = date(2025, 3, 19)  # a Wednesday
SATURDAY = date(2025, 3, 22)


def simulated_day(
    day: date,
    seed: int,
    calls: int | None = None,
    latency_factor: float = 1.0,
    output_factor: float = 1.0,
    error_rate: float = 0.01,
    weekend_output_factor: float = 1.0,
) -> DayStats:
    """A day of one group's calls with day-to-day variation (latency ±5 %, mix ±3 points)."""
    rng = np.random.default_rng([seed, day.toordinal()])
    weekend = day.weekday() >= 5
    calls = calls or (360 if weekend else 900)
    latency_factor *= np.exp(rng.normal(0, 0.05))
    output_factor *= weekend_output_factor if weekend else 1.0
    long = rng.random(calls) < 0.3 + rng.normal(0, 0.03)
    failed = rng.random(calls) < error_rate
    output = np.minimum(np.where(long, 600, 150) * rng.lognormal(0, 0.45, calls) * output_factor, 2048)
    output = np.where(failed, 0, np.round(output))
    inputs = np.where(failed, 0, np.round(np.where(long, 3500, 800) * rng.lognormal(0, 0.6, calls)))
    ttft = 600 * rng.lognormal(0, 0.3, calls) * latency_factor
    latency = np.where(failed, 300.0, ttft + output * 14 * latency_factor)
    cost = (inputs * 3 + output * 15) / 1e6
    scores = np.clip(rng.normal(0.86, 0.08, calls // 5), 0, 1)
    reasons = Counter(np.where(output >= 2048, "max_tokens", "end_turn")[~failed].tolist())
    return DayStats(
        day=day,
        calls=calls,
        errors=int(failed.sum()),
        input_tokens=int(inputs.sum()),
        output_tokens=int(output.sum()),
        cost_usd=float(cost.sum()),
        priced_calls=calls,
        latency=TDigest.from_values(latency),
        ttft=TDigest.from_values(ttft[~failed]),
        eval_score_sum=float(scores.sum()),
        eval_score_count=int(scores.size),
        finish_reasons=dict(reasons),
        input_tokens_sq_sum=float(np.sum(inputs**2)),
        output_tokens_sq_sum=float(np.sum(output**2)),
        cost_usd_sq_sum=float(np.sum(cost**2)),
        eval_score_sq_sum=float(np.sum(scores**2)),
    )


def history(seed: int, checked: DayStats | None = None, days: int = 14, **reference: float) -> dict[TraceGroup, list[DayStats]]:
    """``days`` ordinary days before ``CHECKED_DAY`` (or before the checked day given) and that day."""
    checked = checked or simulated_day(CHECKED_DAY, seed)
    series = [simulated_day(checked.day - timedelta(days=back), seed, **reference) for back in range(days, 0, -1)]
    return {GROUP: [*series, checked]}


@pytest.mark.parametrize("seed", range(6))
def test_an_ordinary_day_is_not_flagged(seed: int) -> None:
    assert detect_trace_drift(history(seed), CHECKED_DAY) == []


def test_a_p95_jump_is_flagged_with_a_readable_summary() -> None:
    slow = simulated_day(CHECKED_DAY, 1, latency_factor=1.5)
    findings = {finding.metric: finding for finding in detect_trace_drift(history(1, slow), CHECKED_DAY)}
    p95 = findings["latency_p95"]
    evidence = r"t [\d.]+ beyond boundary [\d.]+ \(usual from 14 days, spread from 14\)"
    assert re.fullmatch(rf"p95 latency [\d,]+ ms, \+\d+ % vs the usual [\d,]+ ± [\d,]+ ms; {evidence}", p95.summary), p95.summary
    assert f"t {p95.statistic:.1f} beyond boundary {p95.threshold:.1f}" in p95.summary
    assert p95.relative_change == pytest.approx(p95.value / p95.reference_value - 1)
    assert p95.relative_change > 0.3
    assert p95.statistic > p95.threshold > 0
    assert p95.p_value <= p95.adjusted_p_value <= 0.05
    assert p95.reference_days == 14 and p95.calls == 900
    assert p95.group == GROUP and p95.day == CHECKED_DAY


def test_error_rate_and_output_length_changes_are_flagged() -> None:
    broken = simulated_day(CHECKED_DAY, 2, error_rate=0.05)
    errors = next(f for f in detect_trace_drift(history(2, broken), CHECKED_DAY) if f.metric == "error_rate")
    change = r"error rate [\d.]+ % \((\d+) of 900\), \+[\d.]+ points vs the usual [\d.]+ ± [\d.]+ %"
    evidence = r"count (\d+) beyond boundary \d+ \(usual from 10 days, spread from 14\)"
    match = re.fullmatch(f"{change}; {evidence}", errors.summary)
    assert match and match[1] == match[2] and int(match[2]) >= errors.threshold, errors.summary
    verbose = simulated_day(CHECKED_DAY, 2, output_factor=1.5)
    metrics = {f.metric for f in detect_trace_drift(history(2, verbose), CHECKED_DAY)}
    assert {"output_tokens", "finish_reason:max_tokens"} <= metrics


def test_a_weekend_day_is_compared_with_weekend_days() -> None:
    """Weekends here have 30 % shorter answers: an ordinary Saturday is not a drop, and a
    Saturday that looks like a weekday is a rise."""
    weekend_mix = {"weekend_output_factor": 0.7}
    saturday = simulated_day(SATURDAY, 3, **weekend_mix)
    report = assess_trace_drift(history(3, saturday, **weekend_mix), SATURDAY)
    assert report.findings == []
    output = next(test for test in report.tests if test.metric == "output_tokens")
    weekend_days = [d for d in history(3, saturday, **weekend_mix)[GROUP][:-1] if d.day.weekday() >= 5]
    assert len(weekend_days) == 4
    assert abs(output.relative_change or 0) < 0.1  # against weekends, not the weekday level
    like_a_weekday = simulated_day(SATURDAY, 3)
    flagged = detect_trace_drift(history(3, like_a_weekday, **weekend_mix), SATURDAY)
    assert "output_tokens" in {f.metric for f in flagged}


def test_too_few_weekend_days_fall_back_to_all_days() -> None:
    saturday = simulated_day(SATURDAY, 4)
    config = TraceDriftConfig(min_same_kind_days=5)
    report = assess_trace_drift(history(4, saturday), SATURDAY, config)
    p95 = next(test for test in report.tests if test.metric == "latency_p95")
    assert p95.statistic_name.endswith("13 df)")  # one level for all 14 days: 14 − 1


def test_minimum_sample_sizes_skip_rather_than_guess() -> None:
    quiet = simulated_day(CHECKED_DAY, 5, calls=60, latency_factor=2.0)
    report = assess_trace_drift(history(5, quiet), CHECKED_DAY)
    assert report.findings == []
    assert {check.metric for check in report.skipped} >= {"latency_p95", "error_rate", "output_tokens"}
    assert any("fewer than 100" in check.reason for check in report.skipped)

    short = history(5, simulated_day(CHECKED_DAY, 5, latency_factor=2.0), days=5)
    report = assess_trace_drift(short, CHECKED_DAY)
    assert report.tests == []
    reasons = {check.metric: check.reason for check in report.skipped}
    assert reasons["latency_p95"] == "5 usable reference days, fewer than 7"
    assert reasons["error_rate"] == "5 usable reference days, fewer than 7"


def test_a_rare_rate_needs_enough_events_to_alert() -> None:
    """0 → 2 errors on a small day is a tiny p-value but no incident; 0 → 8 is."""
    quiet = {"calls": 150, "error_rate": 0.0}
    reference = history(8, simulated_day(CHECKED_DAY, 8, **quiet), **quiet)[GROUP][:-1]
    assert sum(day.errors for day in reference) == 0

    def error_test(errors: int, config: TraceDriftConfig | None = None):  # type: ignore[no-untyped-def]
        checked = replace(simulated_day(CHECKED_DAY, 8, **quiet), errors=errors)
        report = assess_trace_drift({GROUP: [*reference, checked]}, CHECKED_DAY, config)
        return next(test for test in report.tests if test.metric == "error_rate")

    two = error_test(2)
    assert two.adjusted_p_value <= 0.05 and not two.drifted  # significant, but two events
    assert error_test(2, TraceDriftConfig(min_events=1)).drifted  # what the floor prevents
    assert error_test(8).drifted


def test_an_earlier_incident_in_the_reference_neither_hides_nor_mimics_drift() -> None:
    series = history(6)[GROUP]
    series[5] = simulated_day(series[5].day, 6, latency_factor=3.0)  # a bad day ten days ago
    assert detect_trace_drift({GROUP: series}, CHECKED_DAY) == []
    series[-1] = simulated_day(CHECKED_DAY, 6, latency_factor=1.5)
    assert "latency_p95" in {f.metric for f in detect_trace_drift({GROUP: series}, CHECKED_DAY)}


def test_the_spread_comes_from_eight_weeks_and_the_usual_from_the_last_two() -> None:
    """Six weeks ago latency ran 40 % higher. The spread is read about each fortnight's own level,
    so those weeks add degrees of freedom (a lower boundary) without moving the usual value or
    widening the spread."""
    slow = simulated_day(CHECKED_DAY, 9, latency_factor=1.3)
    recent = history(9, slow)[GROUP]
    earlier = [simulated_day(CHECKED_DAY - timedelta(days=back), 9, latency_factor=1.4) for back in range(56, 14, -1)]

    def p95_test(days: list[DayStats]):  # type: ignore[no-untyped-def]
        return next(test for test in assess_trace_drift({GROUP: days}, CHECKED_DAY).tests if test.metric == "latency_p95")

    two_weeks, eight_weeks = p95_test(recent), p95_test([*earlier, *recent])
    assert two_weeks.statistic_name.endswith("12 df)")  # 14 days − weekday and weekend levels
    assert eight_weeks.statistic_name.endswith("51 df)")  # 56 days − 4 fortnights' levels − 1 weekend offset
    assert "(usual from 14 days, spread from 56)" in eight_weeks.summary and eight_weeks.reference_days == 14
    assert eight_weeks.reference_value == pytest.approx(two_weeks.reference_value, rel=0.05)  # not 40 % up
    assert eight_weeks.reference_spread < 1.5 * two_weeks.reference_spread
    assert 0 < eight_weeks.threshold < two_weeks.threshold and eight_weeks.drifted
    assert assess_trace_drift({GROUP: [*earlier, *recent]}, CHECKED_DAY, TraceDriftConfig(spread_days=14)).tests == \
        assess_trace_drift({GROUP: recent}, CHECKED_DAY).tests  # fmt: skip


def test_levels_of_a_model_with_one_level_per_kind_are_the_kinds_means() -> None:
    """The regression prediction with weekday and weekend levels is the prediction from each kind's mean."""
    rng = np.random.default_rng(3)
    values, variances = rng.normal(10, 1, 14), rng.uniform(0.01, 0.2, 14)
    weekend = np.arange(14) % 7 >= 5
    by_means = day_prediction_test(12.0, 0.1, values, variances, weekend, weekend, "greater")
    design = np.column_stack([np.ones(14), weekend])
    by_model = regression_day_prediction_test(12.0, 0.1, values, variances, design, [1.0, 1.0], "greater")
    assert by_model.location == pytest.approx(by_means.location) and by_model.df == by_means.df == 12
    assert by_model.t == pytest.approx(by_means.t) and by_model.p_value == pytest.approx(by_means.p_value)


COMBINED = TraceDriftConfig(combined_latency=True)


def test_the_combined_latency_test_is_calibrated_on_ordinary_days() -> None:
    """Forty ordinary days: the combined test's p-values spread like uniform ones, alarms stay rare."""
    reports = [assess_trace_drift(history(seed), CHECKED_DAY, COMBINED) for seed in range(40)]
    latency = [next(test for test in report.tests if test.metric == "latency") for report in reports]
    p_values = np.array([test.p_value for test in latency])
    assert sum(test.drifted for test in latency) <= 2  # 5 %
    assert np.mean(p_values <= 0.1) <= 0.2 and 0.3 <= np.mean(p_values) <= 0.7
    assert not any(test.metric.startswith(("latency_", "ttft_")) for report in reports for test in report.tests)


def test_a_latency_rise_is_one_combined_finding_that_says_what_moved() -> None:
    slow = simulated_day(CHECKED_DAY, 1, latency_factor=1.5)
    [latency] = [f for f in detect_trace_drift(history(1, slow), CHECKED_DAY, COMBINED) if f.metric.startswith("latency")]
    assert latency.metric == "latency" and latency.relative_change is not None and latency.relative_change > 0.3
    assert latency.statistic > latency.threshold > 0 and latency.adjusted_p_value <= 0.05
    parts = r"p50 latency \+\d+ %, p75 latency \+\d+ %, p90 latency \+\d+ %, p95 latency \+\d+ %, " \
            r"latency per output token \+\d+ %, TTFT p50 \+\d+ %, TTFT p90 \+\d+ %"  # fmt: skip
    pattern = rf"latency \+\d+ % \({parts}\); combined t [\d.]+ beyond boundary [\d.]+ \(usual from 14 days, spread from 14\)"
    assert re.fullmatch(pattern, latency.summary), latency.summary
    assert f"combined t {latency.statistic:.1f} beyond boundary {latency.threshold:.1f}" in latency.summary


def test_the_combined_latency_test_without_ttft_or_history() -> None:
    without_ttft = [replace(day, ttft=None) for day in history(2, simulated_day(CHECKED_DAY, 2, latency_factor=1.5))[GROUP]]
    [latency] = [f for f in detect_trace_drift({GROUP: without_ttft}, CHECKED_DAY, COMBINED) if f.metric == "latency"]
    assert "latency per output token" in latency.summary and "TTFT" not in latency.summary
    short = assess_trace_drift(history(2, days=5), CHECKED_DAY, COMBINED)
    assert {check.metric: check.reason for check in short.skipped}["latency"] == "5 usable reference days, fewer than 7"


def test_without_square_sums_a_quiet_weekend_is_judged_by_its_own_noise() -> None:
    """Rollups without sums of squares: the spread is read conservatively, not from weekdays."""
    for seed in range(6):
        days = [replace(d, input_tokens_sq_sum=None, output_tokens_sq_sum=None, cost_usd_sq_sum=None,
                        eval_score_sq_sum=None) for d in history(seed, simulated_day(SATURDAY, seed))[GROUP]]  # fmt: skip
        assert detect_trace_drift({GROUP: days}, SATURDAY) == []


def test_many_groups_share_one_correction() -> None:
    groups = {replace_group(index): history(index)[GROUP] for index in range(8)}
    report = assess_trace_drift(groups, CHECKED_DAY)
    assert len({test.group for test in report.tests}) == 8
    ordered = sorted(report.tests, key=lambda test: test.p_value)
    assert [t.adjusted_p_value for t in ordered] == sorted(t.adjusted_p_value for t in ordered)
    assert all(test.adjusted_p_value >= test.p_value for test in report.tests)


def replace_group(index: int) -> TraceGroup:
    return GROUP._replace(feature=f"feature-{index}")


def test_day_stats_from_a_rollup_row() -> None:
    latencies = [100.0, 200.0, 300.0, 400.0]
    row = SimpleNamespace(
        day=CHECKED_DAY, requests=5, errors=1, input_tokens=100, output_tokens=40, cache_read_input_tokens=50,
        cache_creation_input_tokens=10, cost_picodollars=2_500_000_000, unpriced=1, feedback_sum=1.0,
        feedback_count=2, eval_score_sum=1.6, eval_score_count=2,
        latency_sketch=TDigest.from_values(latencies).to_bytes(), ttft_sketch=None,
    )  # fmt: skip
    stats = DayStats.from_rollup(row, {"end_turn": 3, "max_tokens": 1})
    assert stats.input_tokens == 160  # cached prompt tokens count too
    assert stats.cost_usd == pytest.approx(0.0025)
    assert stats.priced_calls == 4
    assert stats.latency is not None and stats.latency.n_values == 4
    assert stats.ttft is None
    assert stats.output_tokens_sq_sum is None  # a row from before migration 0008
    stored = DayStats.from_rollup(SimpleNamespace(**vars(row), output_tokens_sq_sum=420.0))
    assert stored.output_tokens_sq_sum == 420.0
    assert stats.finish_reasons == {"end_turn": 3, "max_tokens": 1}


def test_evidently_style_baseline_flags_any_shift_of_thousands_of_calls() -> None:
    rng = np.random.default_rng(9)
    reference = {"latency_ms": rng.lognormal(7, 0.5, 12_000)}
    same = baseline_drift(reference, {"latency_ms": rng.lognormal(7, 0.5, 900)})[0]
    shifted = baseline_drift(reference, {"latency_ms": rng.lognormal(7.1, 0.5, 900)})[0]
    assert not same.wasserstein_drift
    assert shifted.ks_drift and shifted.ks_p_value < 0.05
    assert shifted.wasserstein_drift and shifted.wasserstein_normed >= 0.1


def test_the_demo_history_has_exactly_its_two_incidents() -> None:
    """The demo's 30 days through the real store and rollups: the cost spike and the last day's
    latency regression are found; none of the ordinary days of the last two weeks is flagged."""
    end = date(2025, 11, 20)
    records = list(generate_traces(days=30, end_day=end, timezone=ZoneInfo("UTC")))
    engine = get_engine()
    write_traces(engine, records)
    reasons: dict[tuple, Counter[str]] = defaultdict(Counter)
    for record in (record for record in records if record.finish_reason):
        key = (record.timestamp.date(), record.environment, record.feature or "", record.prompt_name or "",
               record.prompt_version or "", record.model)  # fmt: skip
        reasons[key][record.finish_reason] += 1
    series: dict[TraceGroup, list[DayStats]] = defaultdict(list)
    with engine.connect() as connection:
        for row in connection.execute(select(ROLLUPS)):
            group = TraceGroup(row.environment, row.feature, row.prompt_name, row.prompt_version, row.model)
            series[group].append(DayStats.from_rollup(row, reasons[(row.day, *group)]))
    incident_days = {incident.day(end): incident.feature for incident in DEMO_INCIDENTS}
    for back in range(14, -1, -1):
        day = end - timedelta(days=back)
        features = {finding.group.feature for finding in detect_trace_drift(series, day)}
        assert features == ({incident_days[day]} if day in incident_days else set()), day
