"""The digest's numbers from the store (SQLite and PostgreSQL), and the outbox's SQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import Column, DateTime, Engine, Float, Integer, MetaData, String, Table, delete, inspect, select
from typer.testing import CliRunner

from llmops.demo import DEMO_INCIDENTS, generate_traces
from llmops.drift.findings import Finding
from llmops.drift.history import TraceGroup
from llmops.drift.report import save_findings
from llmops.report.delivery import claim as _claim
from llmops.report.digest import compute_digest
from llmops.report.slack import (
    OUTBOX,
    SlackConfig,
    chart_spikes,
    enqueue,
    enqueue_alert,
    enqueue_digest,
    render_alert,
    render_digest,
)
from llmops.store.drift_models import DriftReportRow
from llmops.store.engine import create_store_engine
from llmops.store.models import Base, StoreSetting, Trace, TraceRollup
from llmops.store.outbox_models import AlertRecord
from llmops.store.writer import write_traces
from prefect_llmops.cli import digest as digest_cli
from tests.factories import trace

DAY = date(2026, 11, 26)  # a Thursday


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


@pytest.fixture
def engine(store: Engine) -> Engine:
    """The store with an empty outbox (the shared PostgreSQL database keeps rows between tests)."""
    with store.begin() as connection:
        connection.execute(delete(OUTBOX))
        connection.execute(delete(AlertRecord.__table__))
    return store


def test_demo_last_day_shows_the_latency_regression_and_the_chart_the_cost_spike(engine: Engine) -> None:
    write_traces(engine, list(generate_traces(days=30, end_day=DAY, calls_per_weekday=60)))
    digest = compute_digest(engine, DAY)
    regression = next(incident for incident in DEMO_INCIDENTS if incident.kind == "latency_regression")
    spike = next(incident for incident in DEMO_INCIDENTS if incident.kind == "cost_spike")

    flagged = {(finding.feature, finding.metric) for finding in digest.findings}
    assert (regression.feature, "p95_latency_ms") in flagged
    message = render_digest(digest)
    assert f"⚠️ {regression.feature}: p95 latency" in message.plain

    series = digest.chart_series[spike.feature]
    assert digest.chart_days[series.index(max(series))] == spike.day(DAY)
    assert spike.day(DAY) == digest.chart_days[24]  # day 25 of 30
    assert (spike.feature, 24) in chart_spikes(digest)
    assert message.chart_png is not None and message.chart_png.startswith(b"\x89PNG")


def _write_day_traces(engine: Engine) -> None:
    records = [
        # the day: three chat calls ($1 each, one an error), one code review ($2), one unpriced call
        trace(timestamp=at(DAY, 9), feature="chat", cost_usd=Decimal(1), latency_ms=1000.0, automated_eval_score=0.8),
        trace(timestamp=at(DAY, 10), feature="chat", cost_usd=Decimal(1), latency_ms=3000.0, user_feedback=1.0),
        trace(timestamp=at(DAY, 11), feature="chat", cost_usd=Decimal(1), status="error", latency_ms=200.0),
        trace(timestamp=at(DAY, 12), feature="code", cost_usd=Decimal(2), cache_read_input_tokens=1000, input_tokens=1000),
        trace(timestamp=at(DAY, 13), feature="code", model="acme-unknown-model-v1", input_tokens=10),
        # the previous day: two chat calls
        trace(timestamp=at(DAY - timedelta(days=1)), feature="chat", cost_usd=Decimal(1)),
        trace(timestamp=at(DAY - timedelta(days=1), 13), feature="chat", cost_usd=Decimal(1)),
        # three days before: four chat calls; eight days before: outside the week
        *(trace(timestamp=at(DAY - timedelta(days=3), 8 + n), feature="chat", cost_usd=Decimal(1)) for n in range(4)),
        trace(timestamp=at(DAY - timedelta(days=8)), feature="chat", cost_usd=Decimal(50)),
    ]
    write_traces(engine, records)


def test_totals_and_their_changes(engine: Engine) -> None:
    _write_day_traces(engine)
    digest = compute_digest(engine, DAY)
    totals = digest.totals
    assert totals["cost_usd"].value == pytest.approx(5.0)
    assert totals["cost_usd"].previous == pytest.approx(2.0)
    assert totals["cost_usd"].week == pytest.approx(3.0)  # (2 + 4) / 2 days with data
    assert totals["cost_usd"].vs_previous == pytest.approx(1.5)
    assert totals["requests"].value == 5 and totals["requests"].week == pytest.approx(3.0)
    assert totals["avg_cost_per_request"].value == pytest.approx(5.0 / 4)  # the unpriced call is not averaged in
    assert totals["error_rate"].value == pytest.approx(0.2)
    assert totals["error_rate"].vs_week == pytest.approx(0.2)  # in points: the week had no errors
    share = 1000 / (3 * 1000 + 2000 + 10)
    assert totals["cache_read_share"].value == pytest.approx(share)
    assert 200 <= totals["p50_latency_ms"].value <= 3000
    assert digest.unpriced_requests == 1 and digest.unpriced_models == ["acme-unknown-model-v1"]
    assert [line.feature for line in digest.features] == ["chat", "code"]
    assert digest.features[0].cost_usd == pytest.approx(3.0) and digest.features[0].share == pytest.approx(0.6)
    assert digest.features[0].cost.vs_week == pytest.approx(0.0)
    quality = {(item.prompt_name, item.prompt_version): item for item in digest.quality}
    assert quality[("support", "2.3.1")].eval_score.value == pytest.approx(0.8)
    assert quality[("support", "2.3.1")].feedback.value == pytest.approx(1.0)


def test_top_features_then_other(engine: Engine) -> None:
    write_traces(engine, [trace(timestamp=at(DAY), feature=f"f{n}", cost_usd=Decimal(n + 1)) for n in range(5)])
    digest = compute_digest(engine, DAY, top_features=2)
    assert [line.feature for line in digest.features] == ["f4", "f3", "other (3 features)"]
    assert digest.features[-1].cost_usd == pytest.approx(1 + 2 + 3)
    assert sum(line.share for line in digest.features) == pytest.approx(1.0)


def test_month_to_date_against_the_budget(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOPS_MONTHLY_BUDGET_USD", "100")
    write_traces(engine, [trace(timestamp=at(DAY - timedelta(days=n)), cost_usd=Decimal(2)) for n in range(10)])
    write_traces(engine, [trace(timestamp=at(date(2026, 10, 31)), cost_usd=Decimal(500))])  # last month
    budget = compute_digest(engine, DAY).budget
    assert budget.month_to_date_usd == pytest.approx(20.0)
    assert budget.daily_run_rate_usd == pytest.approx(2.0)
    assert budget.projected_usd == pytest.approx(20.0 + 2.0 * 4)  # four days left in November
    assert budget.used_share == pytest.approx(0.2) and budget.projected_share == pytest.approx(0.28)
    monkeypatch.setenv("LLMOPS_MONTHLY_BUDGET_USD", "lots")
    with pytest.raises(ValueError, match="LLMOPS_MONTHLY_BUDGET_USD"):
        compute_digest(engine, DAY)


def test_caching_estimate_counts_repeated_system_prompt_and_input(engine: Engine) -> None:
    same = {"system_prompt_hash": "sys-1", "user_message_length": 420, "feature": "chat"}
    write_traces(
        engine,
        [
            trace(timestamp=at(DAY, 9), input_tokens=1000, cost_usd=Decimal("0.30"), **same),
            trace(timestamp=at(DAY, 10), input_tokens=1000, cost_usd=Decimal("0.30"), **same),
            # the same input served partly from the prompt cache: same total input tokens
            trace(timestamp=at(DAY, 11), input_tokens=100, cache_read_input_tokens=900, cost_usd=Decimal("0.30"), **same),
            trace(timestamp=at(DAY, 12), input_tokens=1001, cost_usd=Decimal("0.30"), **same),  # another input
            trace(timestamp=at(DAY - timedelta(days=1)), input_tokens=1000, cost_usd=Decimal("0.30"), **same),
        ],
    )
    caching = compute_digest(engine, DAY).caching
    assert caching.repeated_requests == 2
    assert caching.savings_usd == pytest.approx(0.60)


def test_days_are_cut_in_the_configured_timezone(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOPS_TIMEZONE", "America/New_York")
    late = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)  # 22:00 on the 26th in New York
    common = {"system_prompt_hash": "s", "user_message_length": 5, "cost_usd": Decimal(1)}
    write_traces(engine, [trace(timestamp=late, **common), trace(timestamp=late + timedelta(minutes=1), **common)])
    digest = compute_digest(engine, DAY)
    assert digest.timezone == "America/New_York"
    assert digest.totals["requests"].value == 2
    assert digest.caching.repeated_requests == 1
    assert compute_digest(engine, DAY + timedelta(days=1)).totals["requests"].value == 0


def _existing_or_new(engine: Engine, name: str, *columns: Column) -> tuple[Table, bool]:
    """The registry's (or eval feature's) real table when migrated, else one with the same columns."""
    if inspect(engine).has_table(name):
        return Table(name, MetaData(), autoload_with=engine), False
    table = Table(name, MetaData(), *columns)
    table.create(engine)
    return table, True


def test_sections_of_other_features_are_read_when_their_tables_exist(engine: Engine) -> None:
    prompt = "digest-test-prompt"
    write_traces(engine, [trace(timestamp=at(DAY), cost_usd=Decimal(1), prompt_name=prompt, prompt_version="2.3.1")])
    noon = datetime(2026, 11, 26, 12, 0)
    events, new_events = _existing_or_new(
        engine,
        "label_events",
        Column("id", Integer, primary_key=True),
        Column("time", DateTime),
        Column("actor", String(64)),
        Column("action", String(32)),
        Column("name", String(64)),
        Column("environment", String(64)),
        Column("label", String(16)),
        Column("from_version", String(32)),
        Column("to_version", String(32)),
        Column("reason", String(200)),
    )
    labels, new_labels = _existing_or_new(
        engine,
        "prompt_labels",
        Column("id", Integer, primary_key=True),
        Column("name", String(64)),
        Column("environment", String(64)),
        Column("label", String(16)),
        Column("version", String(32)),
        Column("traffic_percent", Float),
        Column("revision", Integer),
        Column("updated_at", DateTime),
    )
    event = {"actor": "ops", "name": prompt, "environment": "production", "label": "production", "reason": "gates passed"}
    try:
        with engine.begin() as connection:
            connection.execute(
                events.insert(),
                [
                    {**event, "time": noon, "action": "promote", "from_version": "2.3.0", "to_version": "2.3.1"},
                    {
                        **event,
                        "time": noon - timedelta(days=2),
                        "action": "rollback",
                        "from_version": "2.3.1",
                        "to_version": "2.3.0",
                    },
                ],
            )
            connection.execute(
                labels.insert(),
                [
                    {
                        "name": prompt,
                        "environment": "production",
                        "label": "production",
                        "version": "2.3.1",
                        "traffic_percent": None,
                        "revision": 1,
                        "updated_at": noon,
                    },
                    {
                        "name": prompt,
                        "environment": "production",
                        "label": "canary",
                        "version": "2.3.1",
                        "traffic_percent": 10.0,
                        "revision": 1,
                        "updated_at": noon,
                    },
                ],
            )
        digest = compute_digest(engine, DAY)
    finally:
        with engine.begin() as connection:
            connection.execute(events.delete().where(events.c.name == prompt))
            connection.execute(labels.delete().where(labels.c.name == prompt))
        for table, created in ((events, new_events), (labels, new_labels)):
            if created:
                table.drop(engine)
    changes = [(row["action"], row["to_version"]) for row in digest.label_changes if row["prompt_name"] == prompt]
    assert changes == [("promote", "2.3.1")]
    assert digest.quality[0].labels == ("canary 10%", "production")
    plain = render_digest(digest, with_chart=False).plain
    assert f"promote {prompt} production production: 2.3.0 → 2.3.1 by ops — gates passed" in plain


def test_the_days_evaluations_leave_out_pinned_drift_reruns(engine: Engine) -> None:
    from llmops.evals import store as eval_store

    noon = datetime(2026, 11, 26, 12, 0)
    for dataset, creator, hours_before_noon in (
        ("golden", "nightly-eval", 3),
        ("golden@pinned", eval_store.PINNED_DRIFT_CREATOR, 1),
    ):
        run_id = eval_store.create_run(
            engine, prompt_name="digest-eval", prompt_version="1.0.0", content_hash="c" * 64, model="claude-3-5-sonnet-20241022",
            dataset_name=dataset, dataset_hash="d" * 64, mode="live", repeats=1, cases_total=1, details={}, created_by=creator,
        )  # fmt: skip
        eval_store.finish_run(
            engine, run_id, status="complete", reason=None, scores={}, calls=1, retries=0, unpriced_calls=0, details={}
        )
        with engine.begin() as connection:
            connection.execute(
                eval_store.RUNS.update()
                .where(eval_store.RUNS.c.id == run_id)
                .values(finished_at=noon - timedelta(hours=hours_before_noon))
            )

    digest = compute_digest(engine, DAY)

    assert [row["dataset"] for row in digest.eval_verdicts if row["prompt_name"] == "digest-eval"] == ["golden"]


def test_the_days_drift_findings_come_from_drift_reports(engine: Engine) -> None:
    write_traces(engine, [trace(timestamp=at(DAY), cost_usd=Decimal(1))])
    with engine.begin() as connection:
        connection.execute(delete(DriftReportRow.__table__))
    group = TraceGroup("production", "chat_response", "support-chat", "2.3.1", "claude-3-5-sonnet-20241022")
    pinned_group = group._replace(feature="", prompt_version="2.3.0")
    pinning = Finding(kind="pinning", day=DAY, group=group, metric="alias_model", summary="40 calls on an alias", calls=40)
    trace_finding = Finding(kind="trace", day=DAY, group=group, metric="latency_p95", summary="p95 latency +34 %", calls=900)
    pinned = Finding(kind="pinned", day=DAY, group=pinned_group, metric="pinned:refusal_rate", summary="refusals 9/40", calls=40)
    save_findings(engine, DAY, [trace_finding, pinned, pinning])
    assert compute_digest(engine, DAY - timedelta(days=1)).drift == []

    digest = compute_digest(engine, DAY)
    assert [(row["kind"], row["metric"], row["summary"]) for row in digest.drift or []] == [
        ("trace", "latency_p95", "p95 latency +34 %"),
        ("pinned", "pinned:refusal_rate", "refusals 9/40"),
        ("pinning", "alias_model", "40 calls on an alias"),
    ]
    assert digest.drift_total == 3 and digest.drift[1]["prompt_version"] == "2.3.0"  # type: ignore[index]
    assert compute_digest(engine, DAY, environment="staging").drift == []
    assert "refusals 9/40" in render_digest(digest, with_chart=False).plain


def test_sections_are_left_out_without_their_tables(tmp_path: Path) -> None:
    bare = create_store_engine(f"sqlite:///{tmp_path / 'bare.db'}")
    Base.metadata.create_all(bare, tables=[Trace.__table__, TraceRollup.__table__, StoreSetting.__table__])
    write_traces(bare, [trace(timestamp=at(DAY), cost_usd=Decimal(1))])
    digest = compute_digest(bare, DAY)
    bare.dispose()
    assert digest.label_changes is None and digest.eval_verdicts is None and digest.quality[0].labels == ()
    assert digest.drift is None
    assert digest.totals["cost_usd"].value == pytest.approx(1.0)


def _outbox(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(select(OUTBOX).order_by(OUTBOX.c.id)))


def test_a_digest_is_stored_once_per_day_and_channel(engine: Engine) -> None:
    write_traces(engine, [trace(timestamp=at(DAY), cost_usd=Decimal(1))])
    digest = compute_digest(engine, DAY)
    config = SlackConfig(channel="#llm-ops")  # no token: stored, not sent
    first = enqueue_digest(engine, digest, config)
    again = enqueue_digest(engine, digest, config)
    other_channel = enqueue_digest(engine, digest, SlackConfig(channel="#finance"))
    assert first.created and not again.created and again.id == first.id
    assert other_channel.created and other_channel.id != first.id
    rows = _outbox(engine)
    assert [row.dedupe_key for row in rows] == ["digest:2026-11-26:#llm-ops", "digest:2026-11-26:#finance"]
    assert rows[0].status == "pending" and rows[0].chart_png.startswith(b"\x89PNG")


def test_a_rerun_refreshes_only_what_nothing_was_sent_of(engine: Engine) -> None:
    old, new = render_alert("k", "old", "d", None, "info"), render_alert("k", "new", "d", None, "info")
    entry = enqueue(engine, "digest", "digest:x", "#c", old)
    enqueue(engine, "digest", "digest:x", "#c", new, refresh=True)
    assert _outbox(engine)[0].payload["text"] == new.text
    with engine.begin() as connection:
        connection.execute(OUTBOX.update().where(OUTBOX.c.id == entry.id).values(slack_ts="1.1"))
    enqueue(engine, "digest", "digest:x", "#c", old, refresh=True)
    assert _outbox(engine)[0].payload["text"] == new.text


def test_one_sender_at_a_time_holds_a_message(engine: Engine) -> None:
    entry = enqueue(engine, "digest", "digest:y", "#c", render_alert("k", "t", "d", None, "info"))
    assert _claim(engine, entry.id)
    assert not _claim(engine, entry.id)
    assert _outbox(engine)[0].attempts == 1


def test_an_alert_is_recorded_and_queued_once(engine: Engine) -> None:
    config = SlackConfig(channel="#alerts")
    args = (
        "eval_regression",
        "support-chat@2.4.0 regressed",
        "faithfulness -0.08 [-0.12, -0.04]",
        "http://ui/runs/flow-run/1",
    )
    first = enqueue_alert(*args, severity="critical", engine=engine, config=config)
    second = enqueue_alert(*args, severity="critical", engine=engine, config=config)
    assert first.created and not second.created
    with engine.connect() as connection:
        alerts = list(connection.execute(select(AlertRecord.__table__)))
    assert len(alerts) == 1 and alerts[0].severity == "critical" and alerts[0].link == args[3]
    assert _outbox(engine)[0].kind == "alert" and _outbox(engine)[0].channel == "#alerts"
    with pytest.raises(ValueError, match="severity"):
        enqueue_alert("x", "y", "z", severity="loud", engine=engine, config=config)


def _cli() -> typer.Typer:
    """A Typer app with only the digest command (cli/__init__.py registers it for users)."""
    app = typer.Typer()
    digest_cli.register(app)
    app.command("noop", hidden=True)(lambda: None)  # a second command keeps "digest" a subcommand
    return app


def test_cli_dry_run_json_and_outbox(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("SLACK_BOT_TOKEN", "SLACK_CHANNEL", "SLACK_WEBHOOK_URL"):
        monkeypatch.delenv(variable, raising=False)
    write_traces(engine, [trace(timestamp=at(DAY), feature="<!channel>", cost_usd=Decimal("1.5"))])
    runner = CliRunner()

    dry = runner.invoke(_cli(), ["digest", "--date", "2026-11-26", "--dry-run"])
    assert dry.exit_code == 0 and "LLM cost & quality — Thu 26 Nov 2026" in dry.output and "<!channel>: $1.50" in dry.output
    assert _outbox(engine) == []

    numbers = runner.invoke(_cli(), ["digest", "--date", "2026-11-26", "--json"])
    assert numbers.exit_code == 0 and json.loads(numbers.output)["totals"]["cost_usd"]["value"] == pytest.approx(1.5)

    stored = runner.invoke(_cli(), ["digest", "--date", "2026-11-26"])
    assert stored.exit_code == 0 and "Slack is not configured" in stored.output
    assert [row.dedupe_key for row in _outbox(engine)] == ["digest:2026-11-26:outbox"]

    bad = runner.invoke(_cli(), ["digest", "--date", "26/11/2026"])
    assert bad.exit_code == 2


def test_the_digest_names_the_store_it_read(engine: Engine) -> None:
    digest = compute_digest(engine, DAY)
    footer = render_digest(digest, with_chart=False).blocks[-1]["elements"][0]["text"]
    assert digest.store == engine.url.render_as_string(hide_password=True)
    assert footer.startswith(f"prefect-llmops daily digest · store {digest.store} · ")
