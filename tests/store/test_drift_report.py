"""Trace drift on the store (SQLite and PostgreSQL): days from the rollups, the demo's incident found
on its day and on no ordinary day, findings stored once per night, the alert, events and CLI."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path

import orjson
import pytest
import typer
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, delete
from typer.testing import CliRunner

from llmops import settings
from llmops.demo import DEMO_INCIDENTS, generate_traces
from llmops.drift.findings import Finding
from llmops.drift.history import TraceGroup, load_history
from llmops.drift.report import alert_for, assess_day, check_day, drift_events, not_yet_reported, save_findings, stored_findings
from llmops.prompts import load_prompts
from llmops.records import TraceRecord
from llmops.release.registry import Registry
from llmops.store.models import Base
from llmops.store.tables import DRIFT_REPORTS as REPORTS
from llmops.store.writer import write_traces
from prefect_llmops.cli.drift import register
from tests.factories import trace

END = date(2026, 11, 26)  # a Thursday: the demo's last day, with chat's latency regression
DEMO_CALLS_PER_WEEKDAY = 400
REPOSITORY_PROMPTS = Path(__file__).parents[2] / "prompts"
LATENCY_METRICS = {"latency_p50", "latency_p95", "latency_per_output_token", "ttft_p50"}
CHAT = TraceGroup("production", "chat_response", "support-chat", "2.3.1", "claude-3-5-sonnet-20241022")
DEMO_CHAT = CHAT._replace(prompt_version="2.3.0")
"""The demo history's chat: served by 2.3.0, the version production served before the canary."""


@pytest.fixture
def engine(store: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """The store without earlier tests' findings (the shared PostgreSQL database keeps this table)."""
    monkeypatch.setenv(settings.LLMOPS_PROMPTS_DIR, str(REPOSITORY_PROMPTS))
    with store.begin() as connection:
        connection.execute(delete(REPORTS))
    return store


@cache
def demo_history() -> list[TraceRecord]:
    """Thirty demo days to END at a volume that keeps tests fast: ~10,000 calls."""
    return list(generate_traces(days=30, end_day=END, calls_per_weekday=DEMO_CALLS_PER_WEEKDAY))


def finding(
    metric: str = "latency_p95", kind: str = "trace", group: TraceGroup = CHAT, day: date = END, **fields: object
) -> Finding:
    values: dict = {"summary": f"{metric} moved", "calls": 500, "value": 2.0, "reference": 1.0, "adjusted_p_value": 0.001}
    values.update(fields)
    return Finding(kind=kind, day=day, group=group, metric=metric, **values)  # type: ignore[arg-type]


def test_the_migration_creates_exactly_the_model(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    assert [difference for difference in differences if "drift_reports" in str(difference)] == []


def test_days_come_from_the_rollups_with_finish_reasons_cut_at_local_midnight(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.LLMOPS_TIMEZONE, "America/New_York")
    noon = datetime(2026, 11, 26, 17, tzinfo=UTC)  # 12:00 in New York
    write_traces(engine, [
        trace(timestamp=noon, latency_ms=100.0, input_tokens=10, cache_read_input_tokens=5, output_tokens=20, user_feedback=1.0),
        trace(timestamp=noon, latency_ms=200.0, input_tokens=10, output_tokens=30, finish_reason="max_tokens", automated_eval_score=0.5),
        trace(timestamp=noon, latency_ms=300.0, status="error", error_type="api_error", finish_reason=None, output_tokens=0),
        trace(timestamp=noon + timedelta(hours=10), latency_ms=400.0, finish_reason="stop_sequence"),  # 22:00 local, same day
        trace(timestamp=noon - timedelta(hours=15), latency_ms=500.0),  # 21:00 local the day before
        trace(timestamp=noon - timedelta(days=3), feature="only_earlier"),
    ])  # fmt: skip

    history = load_history(engine, END, 14)

    group = TraceGroup("production", "chat_response", "support", "2.3.1", "claude-3-5-sonnet-20241022")
    assert list(history) == [group]  # a group without traffic on the day is not checked
    before, today = history[group]
    assert (before.day, before.calls, dict(before.finish_reasons)) == (END - timedelta(days=1), 1, {"end_turn": 1})
    assert (today.day, today.calls, today.errors) == (END, 4, 1)
    assert dict(today.finish_reasons) == {"end_turn": 1, "max_tokens": 1, "stop_sequence": 1}
    assert today.input_tokens == 10 + 5 + 10 + 1000 + 1000  # cached prompt tokens count as input
    assert (today.feedback_sum, today.feedback_count, today.eval_score_sum, today.eval_score_count) == (1.0, 1, 0.5, 1)
    assert today.input_tokens_sq_sum == 15**2 + 10**2 + 1000**2 + 1000**2  # the day's own spread, for sharper tests
    assert (today.output_tokens_sq_sum, today.feedback_sq_sum, today.eval_score_sq_sum) == (20**2 + 30**2 + 200**2, 1.0, 0.25)
    assert today.latency is not None and today.latency.n_values == 4
    assert today.latency.quantile(0.0) == pytest.approx(100.0) and today.latency.quantile(1.0) == pytest.approx(400.0)


def test_the_demo_regression_is_found_on_its_last_day_and_on_no_ordinary_day(engine: Engine) -> None:
    write_traces(engine, demo_history())

    last = check_day(engine, END)

    drifted = [f for f in last.findings if f.kind == "trace"]
    assert {f.group for f in drifted} == {DEMO_CHAT}
    assert {f.metric for f in drifted} <= LATENCY_METRICS
    p95 = next(f for f in drifted if f.metric == "latency_p95")
    assert p95.change is not None and p95.change > 0.3
    assert p95.summary.startswith("p95 latency ") and "vs the usual" in p95.summary
    days = re.search(r"beyond boundary [\d.]+ \(usual from (\d+) days, spread from (\d+)\)$", p95.summary)
    assert days and int(days[1]) <= 14 < int(days[2]) <= 29, p95.summary  # the demo's earlier days, not only the 14
    assert p95.adjusted_p_value is not None and p95.adjusted_p_value <= 0.05
    assert p95.threshold is not None and p95.statistic is not None and p95.statistic > p95.threshold

    incident_days = {incident.day(END) for incident in DEMO_INCIDENTS}
    ordinary = [END - timedelta(days=offset) for offset in range(1, 23)]  # every day with 7+ reference days
    reports = {day: assess_day(engine, day) for day in ordinary if day not in incident_days}
    assert {day: [f.summary for f in report.findings] for day, report in reports.items() if report.findings} == {}
    assert sum(len(report.tests) for report in reports.values()) > 150  # they were tested, not skipped


def test_the_demo_pinning_problems_are_chat_calls_off_its_pinned_sonnet(engine: Engine) -> None:
    write_traces(engine, demo_history())
    pinning = {(f.group.environment, f.group.model, f.metric) for f in check_day(engine, END).findings if f.kind == "pinning"}
    assert pinning == {
        ("production", "claude-3-haiku-20240307", "off_pinned_model"),
        ("staging", "claude-3-haiku-20240307", "off_pinned_model"),
        ("production", "acme-ft-support-v1", "unpinned_model"),
    }


def test_saving_a_night_again_replaces_its_findings(engine: Engine) -> None:
    other_day = finding(day=END - timedelta(days=1))
    save_findings(engine, other_day.day, [other_day])
    first = [
        finding(statistic=float("inf"), threshold=3.1, statistic_name="t"),
        finding("pinning_problem", "pinning", details={"examples": ["a"]}),
    ]
    save_findings(engine, END, first, flow_run_id="run-1")
    rerun = [finding("latency_p50")]
    save_findings(engine, END, rerun, flow_run_id="run-2")

    assert stored_findings(engine, END) == rerun
    assert stored_findings(engine, other_day.day) == [other_day]
    save_findings(engine, END, first)
    assert stored_findings(engine, END) == first
    assert stored_findings(engine, END, "pinning") == first[1:]


def test_alerts_skip_what_this_night_stored_already_and_standing_pinning_problems(engine: Engine) -> None:
    standing = [finding("unpinned_model", "pinning", day=END - timedelta(days=1)), finding(day=END - timedelta(days=1))]
    save_findings(engine, standing[0].day, standing)
    tonight = [finding(), finding("unpinned_model", "pinning"), finding("off_pinned_model", "pinning")]
    assert [f.metric for f in not_yet_reported(engine, tonight)] == ["latency_p95", "off_pinned_model"]

    save_findings(engine, END, tonight[:2])  # an earlier run of the night
    assert [f.metric for f in not_yet_reported(engine, [*tonight, finding("latency_p50")])] == ["off_pinned_model", "latency_p50"]


def test_a_pinned_drift_standing_on_one_dataset_does_not_hide_the_same_trait_drifting_on_another(engine: Engine) -> None:
    def on(dataset: str, day: date = END) -> Finding:
        return finding("pinned:similarity", "pinned", day=day, details={"dataset": dataset})

    save_findings(engine, END - timedelta(days=1), [on("golden", END - timedelta(days=1))])
    tonight = [on("golden"), on("adversarial")]
    assert [f.details for f in not_yet_reported(engine, tonight)] == [{"dataset": "adversarial"}]


def test_the_alert_names_the_prompts_and_lists_the_findings() -> None:
    assert alert_for(END, []) is None
    alert = alert_for(
        END,
        [finding(summary="p95 latency 9,770 ms, +65 % vs the usual 5,928 ± 452 ms")]
        + [finding("unpinned_model", "pinning")] * 20,
    )
    assert alert is not None and alert.severity == "warning"
    assert alert.title == f"{END}: 1 drifted metric (support-chat@2.3.1) and 20 new pinning problems"
    lines = alert.details.splitlines()
    assert lines[0] == f"{CHAT.label}: p95 latency 9,770 ms, +65 % vs the usual 5,928 ± 452 ms"
    assert len(lines) == 16 and lines[-1].startswith("… and 6 more")
    assert alert_for(END, [finding("unpinned_model", "pinning")]).severity == "info"  # type: ignore[union-attr]


def test_one_event_per_drifted_prompt_version_with_its_label(engine: Engine) -> None:
    registry = Registry(engine)
    for prompt in load_prompts(REPOSITORY_PROMPTS)["support-chat"].values():
        registry.register(prompt, actor="ci")
    registry.set_label("support-chat", "production", "2.3.0", actor="ci", reason="release")
    registry.set_label("support-chat", "canary", "2.3.1", traffic_percent=10, actor="ci", reason="canary")
    haiku = CHAT._replace(model="claude-3-haiku-20240307")
    old = CHAT._replace(prompt_version="2.3.0")
    findings = [
        finding("latency_p50", adjusted_p_value=0.01),
        finding("latency_p95", group=haiku, adjusted_p_value=0.001, summary="p95 up"),
        finding("latency_p95", group=old),
        finding("unpinned_model", "pinning", group=CHAT._replace(prompt_name="other")),
    ]

    events = {(e.prompt_name, e.version): e for e in drift_events(engine, findings)}

    assert set(events) == {("support-chat", "2.3.1"), ("support-chat", "2.3.0")}
    canary = events[("support-chat", "2.3.1")]
    assert canary.payload == {
        "metric": "latency_p95", "summary": "p95 up", "version": "2.3.1", "environment": "production", "label": "canary",
        "findings": [
            {"metric": "latency_p50", "feature": "chat_response", "model": CHAT.model, "summary": "latency_p50 moved"},
            {"metric": "latency_p95", "feature": "chat_response", "model": haiku.model, "summary": "p95 up"},
        ],
    }  # fmt: skip
    assert events[("support-chat", "2.3.0")].label == "production"


runner = CliRunner()


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    app.command("noop", hidden=True)(lambda: None)  # a second command keeps "drift" a subcommand
    return app


def test_cli_json_is_an_empty_list_when_nothing_drifted(engine: Engine, cli: typer.Typer) -> None:
    result = runner.invoke(cli, ["drift", "--date", END.isoformat(), "--json"])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout) == []
    text = runner.invoke(cli, ["drift", "--date", END.isoformat()])
    assert text.exit_code == 0 and "nothing drifted" in text.stdout
    assert runner.invoke(cli, ["drift", "--date", "26.11.2026"]).exit_code == 2


def test_cli_lists_the_findings_of_the_day_and_feature(engine: Engine, cli: typer.Typer) -> None:
    write_traces(engine, demo_history())
    result = runner.invoke(cli, ["drift", "--date", END.isoformat(), "--feature", "chat_response", "--json"])
    assert result.exit_code == 0, result.output
    listed = orjson.loads(result.stdout)
    assert {item["feature"] for item in listed} == {"chat_response"}
    p95 = next(item for item in listed if item["metric"] == "latency_p95")
    assert (p95["kind"], p95["prompt_version"], p95["day"]) == ("trace", DEMO_CHAT.prompt_version, END.isoformat())
    other = runner.invoke(cli, ["drift", "--date", END.isoformat(), "--feature", "code_review", "--json"])
    assert other.exit_code == 0 and orjson.loads(other.stdout) == []
    table = runner.invoke(cli, ["drift", "--date", END.isoformat()])
    assert table.exit_code == 0 and "p95 latency" in table.stdout
    assert stored_findings(engine, END) == []  # the CLI computes; the flow stores
