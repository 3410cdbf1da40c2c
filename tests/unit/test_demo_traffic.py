"""The demo history: reproducible, realistic in rhythm and shape, with exactly the two incidents
that the detectors and the digest are meant to find; and `make demo`'s seeding of a store."""

from __future__ import annotations

import statistics
import tracemalloc
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from llmops.demo import DEMO_INCIDENTS, FEATURES_BY_NAME, UNKNOWN_MODEL, generate_traces, plan_days
from llmops.ingest.pull import SourceConfig, pull_traces
from llmops.pricing import TokenUsage, price_call
from llmops.store.engine import get_engine
from llmops.store.rollups import cost_report
from prefect_llmops.deployments import demo

UTC_ZONE = ZoneInfo("UTC")
END_DAY = date(2025, 11, 20)  # a Thursday: day 25 is a Saturday, the quietest kind of day
COST_SPIKE = next(incident for incident in DEMO_INCIDENTS if incident.kind == "cost_spike")
LATENCY_REGRESSION = next(incident for incident in DEMO_INCIDENTS if incident.kind == "latency_regression")


@dataclass
class History:
    """The default 30-day history, reduced to what the tests look at (the records are not kept)."""

    calls: Counter[date] = field(default_factory=Counter)
    cost: dict[str, dict[date, Decimal]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(Decimal)))
    latencies: dict[str, dict[date, list[float]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    by_feature: Counter[str] = field(default_factory=Counter)
    shapes: Counter[tuple[str, str]] = field(default_factory=Counter)


@pytest.fixture(scope="module")
def history() -> History:
    seen = History()
    for record in generate_traces(end_day=END_DAY, timezone=UTC_ZONE):
        day = record.timestamp.date()
        feature = record.feature or ""
        seen.calls[day] += 1
        seen.by_feature[feature] += 1
        usage = TokenUsage(
            record.input_tokens, record.output_tokens, record.cache_read_input_tokens, record.cache_creation_input_tokens
        )
        cost = price_call(record.model, usage, record.timestamp, record.is_batch)
        seen.cost[feature][day] += cost or 0
        if record.latency_ms is not None and record.status == "ok":
            seen.latencies[feature][day].append(record.latency_ms)
        seen.shapes["status", record.status] += 1
        seen.shapes["error_type", str(record.error_type)] += 1
        seen.shapes["finish_reason", str(record.finish_reason)] += 1
        seen.shapes["environment", record.environment] += 1
        seen.shapes["feedback", str(record.user_feedback)] += 1
        seen.shapes["eval_scored", str(record.automated_eval_score is not None)] += 1
        seen.shapes["batch", f"{feature}:{record.is_batch}"] += 1
        seen.shapes["cached", str(record.cache_read_input_tokens + record.cache_creation_input_tokens > 0)] += 1
        seen.shapes["priced", str(cost is not None) + ("" if cost is not None else f":{record.model}")] += 1
        seen.shapes["ttft", f"{feature}:{record.ttft_ms is not None}"] += 1
        assert record.cost_usd is None, "the store prices the calls"
    return seen


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def test_same_seed_gives_the_same_traces_and_another_seed_does_not() -> None:
    def run(seed: int) -> list[dict[str, object]]:
        return [r.model_dump() for r in generate_traces(days=2, end_day=END_DAY, calls_per_weekday=150, seed=seed)]

    first = run(3)
    assert first == run(3)
    other = run(4)
    assert {r["trace_id"] for r in first}.isdisjoint(r["trace_id"] for r in other)
    assert [r["input_tokens"] for r in first] != [r["input_tokens"] for r in other]


def test_traces_come_in_time_order_with_unique_ids_and_match_the_plan() -> None:
    traces = list(generate_traces(days=3, end_day=END_DAY, calls_per_weekday=400, timezone=UTC_ZONE))
    stamps = [t.timestamp for t in traces]
    assert stamps == sorted(stamps)
    assert len({t.trace_id for t in traces}) == len(traces)
    assert len(traces) == sum(plan.total_calls for plan in plan_days(3, END_DAY, 400))
    assert {t.timestamp.date() for t in traces} == {END_DAY - timedelta(days=n) for n in range(3)}


def test_weekends_carry_about_forty_percent_of_weekday_traffic_and_working_hours_are_busiest() -> None:
    history_days = plan_days(30, END_DAY)
    weekday = statistics.mean(p.calls for p in history_days if p.day.weekday() < 5)
    weekend = statistics.mean(p.calls for p in history_days if p.day.weekday() >= 5)
    assert 0.35 <= weekend / weekday <= 0.45
    hours = Counter(t.timestamp.hour for t in generate_traces(days=1, end_day=END_DAY, timezone=UTC_ZONE))
    assert min(hours[h] for h in range(9, 17)) > 3 * max(hours[h] for h in range(0, 5))


def test_the_cost_spike_day_costs_three_times_the_features_median_day(history: History) -> None:
    spike_day = COST_SPIKE.day(END_DAY)
    assert spike_day == date(2025, 11, 15)  # day 25 of 30
    daily = history.cost[COST_SPIKE.feature]
    median = statistics.median(daily.values())
    assert daily[spike_day] >= 3 * median
    assert all(cost < Decimal("1.5") * median for day, cost in daily.items() if day != spike_day)


def test_only_the_last_day_has_chat_latency_regression(history: History) -> None:
    assert LATENCY_REGRESSION.day(END_DAY) == END_DAY
    daily_p95 = {day: p95(values) for day, values in history.latencies[LATENCY_REGRESSION.feature].items()}
    ordinary = [value for day, value in daily_p95.items() if day != END_DAY]
    median = statistics.median(ordinary)
    assert daily_p95[END_DAY] >= 1.3 * median
    assert all(0.85 * median <= value <= 1.15 * median for value in ordinary)


def test_calls_have_the_shapes_of_a_real_application(history: History) -> None:
    total = sum(history.calls.values())
    shapes = history.shapes
    assert 0.007 <= shapes["status", "error"] / total <= 0.013
    assert {"rate_limit_error", "overloaded_error", "api_error"} <= {v for k, v in shapes if k == "error_type"}
    assert shapes["finish_reason", "end_turn"] / total > 0.9
    assert shapes["finish_reason", "max_tokens"] > 0 and shapes["finish_reason", "stop_sequence"] > 0
    assert 0.04 <= (shapes["feedback", "1.0"] + shapes["feedback", "-1.0"]) / total <= 0.06
    assert shapes["feedback", "1.0"] > 2 * shapes["feedback", "-1.0"]
    assert 0.18 <= shapes["eval_scored", "True"] / total <= 0.22
    assert 0.005 <= shapes["environment", "staging"] / total <= 0.04
    assert 0.2 <= shapes["cached", "True"] / total <= 0.7
    assert shapes["batch", "document_summarization:True"] > 0.25 * history.by_feature["document_summarization"]
    assert shapes["batch", "chat_response:True"] == shapes["batch", "code_review:True"] == 0
    assert shapes["ttft", "chat_response:True"] > 0 and shapes["ttft", "document_summarization:True"] == 0
    assert 100 <= shapes["priced", f"False:{UNKNOWN_MODEL}"] <= 1_000
    assert {k[1] for k in shapes if k[0] == "priced"} == {"True", f"False:{UNKNOWN_MODEL}"}
    assert set(history.by_feature) == set(FEATURES_BY_NAME)


def test_generation_streams_in_flat_memory() -> None:
    """~24k traces: holding them would take tens of MB; the generator keeps about one hour's worth."""
    tracemalloc.start()
    try:
        count = sum(1 for _ in generate_traces(days=2, end_day=END_DAY, calls_per_weekday=12_000, timezone=UTC_ZONE))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count > 20_000
    assert peak < 4 * 1024 * 1024


def test_the_application_history_pulled_into_the_store_shows_every_feature_once(llmops_home: Path) -> None:
    engine = get_engine()
    app_url = f"sqlite:///{llmops_home / demo.APP_DATABASE_FILE}"
    source = SourceConfig(url=app_url, table=demo.APP_TABLE)
    demo.write_application_history(app_url, end_day=END_DAY, calls_per_weekday=300)
    first = pull_traces(engine, source)
    demo.write_application_history(app_url, end_day=END_DAY, calls_per_weekday=300)
    again = pull_traces(engine, source)
    assert first.inserted > 5_000 and first.unpriced > 0 and first.rejected == 0
    assert again.pulled == 0

    lines = {line["feature"]: line for line in cost_report(engine, END_DAY - timedelta(days=29), END_DAY, "feature")}
    assert set(lines) == set(FEATURES_BY_NAME)
    assert sum(line["requests"] for line in lines.values()) == first.inserted
    assert lines["chat_response"]["unpriced_requests"] == first.unpriced
    assert all(line["cost_usd"] > 0 for line in lines.values())


def test_the_demo_rebuilds_only_its_own_store_when_the_history_changes(llmops_home: Path) -> None:
    llmops_home.mkdir(parents=True)
    own_store = llmops_home / demo.DEMO_STORE_FILE
    own_store.write_bytes(b"old history")
    demo.prepare_demo_store("sqlite:///unused", True, demo.history_marker(7, 2_000, END_DAY))
    assert own_store.exists(), "the same history is kept"

    demo.prepare_demo_store("sqlite:///unused", True, demo.history_marker(7, 2_000, END_DAY + timedelta(days=1)))
    assert not own_store.exists()

    users_store = llmops_home / "llmops.db"
    users_store.write_bytes(b"the user's traces")
    note = demo.prepare_demo_store(f"sqlite:///{users_store}", False, demo.history_marker(8, 2_000, END_DAY))
    assert users_store.read_bytes() == b"the user's traces"
    assert note is not None and "already holds a demo history" in note


def test_sample_calls_go_through_the_sdk_and_the_simulator_into_the_store() -> None:
    engine = get_engine()
    assert not demo.today_has_traces(engine)
    assert demo.make_sample_calls(engine, count=3) == 3
    assert demo.today_has_traces(engine)


def test_the_history_is_served_by_the_version_the_demo_releases_and_never_by_its_canary() -> None:
    """The demo releases CANARY_BASELINE as "the version the app served until now" and canaries
    CANARY_CANDIDATE today: the history must agree, so only today's canary calls carry the candidate."""
    versions = {(t.prompt_name, t.prompt_version) for t in generate_traces(days=2, end_day=END_DAY, calls_per_weekday=300)}
    assert (demo.CANARY_PROMPT, demo.CANARY_BASELINE) in versions
    assert (demo.CANARY_PROMPT, demo.CANARY_CANDIDATE) not in versions


def test_the_drift_story_names_the_incident_and_never_blames_the_canary() -> None:
    def found(version: str) -> dict[str, str]:
        return {"kind": "trace", "feature": "chat_response", "prompt_name": "support-chat", "prompt_version": version}

    story = demo.drift_story([found("2.3.0"), {**found("2.3.0"), "kind": "pinning"}], END_DAY)
    assert story[0].startswith(f"chat_response's findings are {END_DAY}'s incident on support-chat@2.3.0")
    assert LATENCY_REGRESSION.description in story[0]
    assert story[1].startswith("none is the canary's: support-chat@2.3.1 started after")
    assert not any("none is the canary's" in line for line in demo.drift_story([found("2.3.1")], END_DAY))
