"""The pinning audit on SQLite and PostgreSQL: aliases, calls off the pinned model, substituted answers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import Engine

from llmops import settings
from llmops.drift.history import TraceGroup
from llmops.drift.pinning import audit_pinning, pinned_models
from llmops.prompts import PromptVersion
from llmops.release.registry import Registry
from llmops.store.writer import write_traces
from tests.factories import trace

DAY = date(2026, 11, 26)
UTC_ZONE = ZoneInfo("UTC")
SONNET = "claude-3-5-sonnet-20241022"
HAIKU = "claude-3-haiku-20240307"


def write_prompt(directory: Path, name: str, version: str, model: str) -> None:
    path = directory / name / f"{version}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "version": version, "model": model, "created": "2025-11-01", "author": "team-ai", "changelog": "release",
        "system": "You are Acme's support assistant.", "parameters": {"max_tokens": 512},
    }  # fmt: skip
    path.write_text(yaml.safe_dump(document, sort_keys=False))


@pytest.fixture
def prompts_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "prompts"
    write_prompt(directory, "support", "2.3.1", SONNET)
    monkeypatch.setenv(settings.LLMOPS_PROMPTS_DIR, str(directory))
    return directory


def calls(count: int, prefix: str, hour: int = 10, day: date = DAY, **fields: Any) -> list:
    start = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    return [trace(trace_id=f"{prefix}-{n}", timestamp=start + timedelta(minutes=n), **fields) for n in range(count)]


def found(engine: Engine, zone: ZoneInfo = UTC_ZONE) -> dict[tuple[str, str], Any]:
    return {(finding.problem, finding.group.model): finding for finding in audit_pinning(engine, DAY, zone)}


def test_aliases_calls_off_the_pinned_model_and_substituted_answers_are_found(store: Engine, prompts_dir: Path) -> None:
    write_traces(store, calls(5, "clean", model=SONNET, response_model=SONNET))
    write_traces(store, calls(3, "alias", model="claude-3-5-sonnet-latest", response_model=SONNET))
    write_traces(store, calls(2, "haiku", model=HAIKU, response_model=HAIKU))
    write_traces(store, calls(4, "swapped", hour=12, model=SONNET, response_model="claude-3-5-sonnet-20240620"))

    findings = found(store)

    assert set(findings) == {
        ("unpinned_model", "claude-3-5-sonnet-latest"),
        ("off_pinned_model", HAIKU),
        ("response_model_differs", SONNET),
    }
    alias = findings[("unpinned_model", "claude-3-5-sonnet-latest")]
    assert (alias.calls, alias.out_of, alias.pinned_model) == (3, 14, SONNET)  # of all the version's calls
    assert alias.examples == ["alias-0", "alias-1", "alias-2"]
    assert alias.group == TraceGroup("production", "chat_response", "support", "2.3.1", "claude-3-5-sonnet-latest")
    assert "asked for claude-3-5-sonnet-latest, an alias or undated id" in alias.summary
    off = findings[("off_pinned_model", HAIKU)]
    assert (off.calls, off.out_of, off.examples) == (2, 14, ["haiku-0", "haiku-1"])
    assert f"not the pinned {SONNET}" in off.summary
    swapped = findings[("response_model_differs", SONNET)]
    assert (swapped.calls, swapped.out_of) == (4, 9)  # of the calls that asked for that model
    assert swapped.served_by == {"claude-3-5-sonnet-20240620": 4}
    assert swapped.examples == [f"swapped-{n}" for n in range(4)]
    assert "4 of 9 calls (44.4%)" in swapped.summary and "answered by claude-3-5-sonnet-20240620 (4)" in swapped.summary


def test_a_clean_day_has_no_findings(store: Engine, prompts_dir: Path) -> None:
    write_traces(store, calls(5, "clean", model=SONNET, response_model=SONNET))
    write_traces(store, calls(2, "failed", model=SONNET, response_model=None, status="error", error_type="overloaded_error"))
    assert audit_pinning(store, DAY, UTC_ZONE) == []


def test_the_registered_version_is_the_pin_a_file_only_fills_gaps(store: Engine, prompts_dir: Path) -> None:
    write_prompt(prompts_dir, "support", "2.4.0", HAIKU)
    registered = PromptVersion(
        name="support", version="2.3.1", model=HAIKU, created=date(2025, 11, 1), author="a", changelog="c",
        system="You are Acme's support assistant.", parameters={"max_tokens": 512},
    )  # fmt: skip
    Registry(store).register(registered, actor="ci")

    assert pinned_models(store) == {("support", "2.3.1"): HAIKU, ("support", "2.4.0"): HAIKU}
    write_traces(store, calls(2, "sonnet", model=SONNET, response_model=SONNET))
    [finding] = audit_pinning(store, DAY, UTC_ZONE)
    assert (finding.problem, finding.pinned_model) == ("off_pinned_model", HAIKU)


def test_without_a_known_pin_only_aliases_count(store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.LLMOPS_PROMPTS_DIR, str(tmp_path / "no-prompts-here"))
    write_traces(store, calls(2, "dated", model=HAIKU, response_model=HAIKU))
    write_traces(store, calls(1, "alias", model="claude-3-haiku", response_model=HAIKU))
    [finding] = audit_pinning(store, DAY, UTC_ZONE)
    assert (finding.problem, finding.pinned_model, finding.examples) == ("unpinned_model", None, ["alias-0"])


def test_the_day_is_the_local_day_of_the_zone(store: Engine, prompts_dir: Path) -> None:
    """23:30 in New York on DAY is 04:30 UTC the next day; 02:00 UTC on DAY is still the day before there."""
    write_traces(store, calls(1, "late-evening", hour=4, day=DAY + timedelta(days=1), model="claude-3-haiku"))
    write_traces(store, calls(1, "previous-evening", hour=2, model="claude-3-haiku"))
    [finding] = audit_pinning(store, DAY, ZoneInfo("America/New_York"))
    assert finding.examples == ["late-evening-0"]
