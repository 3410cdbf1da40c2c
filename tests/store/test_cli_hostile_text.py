"""Data is never markup: Rich markup and terminal escape sequences in trace data and user ids (issue 13, item 5).

A feature named ``billing[/bold]`` used to crash ``llmops costs`` with ``MarkupError``, a user id
``u[/red]`` crashed ``llmops resolve``, and ESC sequences from traces reached the terminal. Now
the literal text is shown, with escape sequences and control characters removed.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from llmops.prompts import PromptVersion
from llmops.release.registry import Registry
from prefect_llmops.cli import app

runner = CliRunner()
ESC = "\x1b"
FEATURE = "billing[/bold][red]\x1b[31mRED\x1b]8;;https://evil.example\x07link\x1b]8;;\x07\u202eevil\x9b2J"
"""Markup, a colour, an OSC-8 hyperlink, a bidi override and an 8-bit CSI, in one feature name."""
FEATURE_SHOWN = "billing[/bold][red]REDlinkevil"
USER = "u[/red]\x1b[2J:smile:"
ACTOR, REASON = "alice[/red]\x1b[2J", "ship [/bold]\x1b]0;pwned\x07it"


def _import(tmp_path: Path, feature: str) -> None:
    path = tmp_path / "hostile.jsonl"
    record = {"trace_id": "hostile-1", "timestamp": "2025-11-15T10:00:00Z", "model": "claude-3-haiku-20240307",
              "input_tokens": 10, "output_tokens": 5, "feature": feature}  # fmt: skip
    path.write_text(json.dumps(record) + "\n")
    result = runner.invoke(app, ["traces", "import", str(path)])
    assert result.exit_code == 0, result.output


def _clean(output: str) -> None:
    assert ESC not in output and "\x9b" not in output and "\u202e" not in output and "\x07" not in output
    assert "MarkupError" not in output


@pytest.mark.parametrize("by", ["feature", "model"])
def test_costs_shows_markup_and_escapes_in_a_feature_as_literal_text(store: Engine, tmp_path: Path, by: str) -> None:
    _import(tmp_path, FEATURE)
    result = runner.invoke(app, ["costs", "--since", "2025-11-01", "--until", "2025-11-30", "--by", by])
    assert result.exit_code == 0, (result.output, result.exception)
    _clean(result.output)
    if by == "feature":
        assert FEATURE_SHOWN in result.stdout
    as_json = runner.invoke(app, ["costs", "--since", "2025-11-01", "--until", "2025-11-30", "--json"])
    assert json.loads(as_json.stdout)[0]["feature"] == FEATURE  # JSON is data: kept exactly, escaped by JSON


@pytest.fixture
def registry(store: Engine) -> Registry:
    with store.begin() as connection:
        for table in ("label_events", "prompt_labels", "prompt_versions"):
            connection.execute(text(f"DELETE FROM {table}"))
    registry = Registry(store)
    prompt = PromptVersion(
        name="support", version="1.0.0", model="claude-3-5-sonnet-20241022", created=date(2025, 11, 15),
        author="team-ai", changelog="first", system="You help.", parameters={"max_tokens": 64},
        path=Path("prompts/support/1.0.0.yaml"),
    )  # fmt: skip
    registry.register(prompt, actor=ACTOR)
    registry.set_label("support", "production", "1.0.0", actor=ACTOR, reason=REASON)
    return registry


def test_resolve_shows_a_user_id_with_markup_and_escapes_as_literal_text(registry: Registry) -> None:
    result = runner.invoke(app, ["resolve", "support", "--user", USER])
    assert result.exit_code == 0, (result.output, result.exception)
    _clean(result.output)
    assert "u[/red]" in result.stdout and ":smile:" in result.stdout  # no emoji either: data is not markup
    assert "1.0.0" in result.stdout


def test_history_shows_actors_and_reasons_with_markup_as_literal_text(registry: Registry) -> None:
    result = runner.invoke(app, ["prompts", "history", "support"])
    assert result.exit_code == 0, (result.output, result.exception)
    _clean(result.output)
    assert "alice[/red]" in result.stdout and "ship [/bold]it" in result.stdout


def test_errors_with_markup_in_them_are_printed_not_parsed(store: Engine) -> None:
    result = runner.invoke(app, ["resolve", "nope[/red]\x1b[2J", "--user", "u"])
    assert result.exit_code == 1, (result.output, result.exception)
    _clean(result.output)
    assert "nope[/red]" in result.stderr
