"""The digest's lead read from a store: pinning notes remembered across days, cost by model,
owners and the UI address from the settings (issue 14, item 7)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine, delete
from typer.testing import CliRunner

from llmops.drift.findings import Finding
from llmops.drift.history import TraceGroup
from llmops.drift.report import save_findings
from llmops.report.digest import compute_digest
from llmops.report.render import render_digest
from llmops.store.drift_models import DriftReportRow
from llmops.store.writer import write_traces
from prefect_llmops.cli import digest as digest_cli
from tests.factories import trace

DAY = date(2025, 3, 12)  # a day no other digest test writes
GROUP = TraceGroup("production", "lead_chat", "lead-chat", "1.0.0", "claude-3-5-sonnet-20241022")


def _noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def _pinning(day: date, model: str) -> Finding:
    group = GROUP._replace(model=model)
    return Finding(kind="pinning", day=day, group=group, metric="alias_model", summary=f"40 calls on the alias {model}", calls=40)


@pytest.fixture
def engine(store: Engine) -> Engine:
    with store.begin() as connection:
        connection.execute(delete(DriftReportRow.__table__))
    return store


def test_a_pinning_note_reported_on_an_earlier_day_is_not_repeated(engine: Engine) -> None:
    write_traces(engine, [trace(timestamp=_noon(DAY), feature="lead_chat", cost_usd=Decimal(1))])
    save_findings(engine, DAY - timedelta(days=3), [_pinning(DAY - timedelta(days=3), "claude-3-5-sonnet-latest")])
    save_findings(engine, DAY, [_pinning(DAY, "claude-3-5-sonnet-latest"), _pinning(DAY, "claude-3-5-haiku-latest")])

    digest = compute_digest(engine, DAY)
    seen = {row["model"]: row["seen_before"] for row in digest.drift or []}
    assert seen == {"claude-3-5-sonnet-latest": (DAY - timedelta(days=3)).isoformat(), "claude-3-5-haiku-latest": None}
    message = render_digest(digest, with_chart=False)
    main = json.dumps(message.blocks, ensure_ascii=False)
    assert "alias claude-3-5-haiku-latest" in main and "alias claude-3-5-sonnet-latest" not in main
    assert "alias claude-3-5-sonnet-latest (since 2025-03-09)" in json.dumps(message.thread_blocks, ensure_ascii=False)
    assert compute_digest(engine, DAY - timedelta(days=3)).drift[0]["seen_before"] is None  # type: ignore[index]


def test_cost_by_model_owners_and_links(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    day = DAY + timedelta(days=2)
    write_traces(
        engine,
        [trace(timestamp=_noon(day), model="lead-big", cost_usd=Decimal(3)) for _ in range(3)]
        + [trace(timestamp=_noon(day), model="lead-small", cost_usd=Decimal(1))],
    )
    monkeypatch.setenv("LLMOPS_FEATURE_OWNERS", "chat_response=U024BE7LH")
    monkeypatch.setenv("PREFECT_UI_URL", "http://127.0.0.1:4200/")
    digest = compute_digest(engine, day)
    assert [(model.model, model.requests, model.cost_usd, round(model.share, 2)) for model in digest.models] == [
        ("lead-big", 3, 9.0, 0.9),
        ("lead-small", 1, 1.0, 0.1),
    ]
    assert digest.owners == {"chat_response": "U024BE7LH"} and digest.ui_url == "http://127.0.0.1:4200"
    assert digest.as_dict()["models"][0]["model"] == "lead-big"
    assert "lead-big: $9.00 (90%), 3 requests" in render_digest(digest, with_chart=False).plain


def test_cli_draws_the_preview_and_names_a_bad_owner_setting(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    day = DAY + timedelta(days=4)
    write_traces(engine, [trace(timestamp=_noon(day), cost_usd=Decimal(1))])
    app = typer.Typer()
    digest_cli.register(app)
    app.command("noop", hidden=True)(lambda: None)
    runner = CliRunner()

    drawn = runner.invoke(app, ["digest", "--date", day.isoformat(), "--dry-run", "--preview", str(tmp_path / "d.png")])
    assert drawn.exit_code == 0 and f"preview of the Slack message: {tmp_path / 'd.png'}" in drawn.output
    assert (tmp_path / "d.png").read_bytes().startswith(b"\x89PNG")

    monkeypatch.setenv("LLMOPS_FEATURE_OWNERS", "chat_response")
    bad = runner.invoke(app, ["digest", "--date", day.isoformat(), "--dry-run"])
    assert bad.exit_code != 0 and "LLMOPS_FEATURE_OWNERS expects feature=owner pairs" in bad.output
