"""One store by default: ``make demo``'s store is the default until ``llmops demo reset``, the
variable always wins, and every command that succeeded names the store it read on stderr; the
prompt files read are the ones recorded with that store (the demo's copy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops import settings
from llmops.demo.store import demo_store_url, is_demo_current, make_current, reset_demo
from llmops.store.engine import dispose_engines
from prefect_llmops.cli import app
from prefect_llmops.cli.store_note import store_line
from tests.store.test_rollouts import write_prompt

runner = CliRunner()


def test_the_variable_wins_then_the_current_store_then_llmops_db(llmops_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default = f"sqlite:///{(llmops_home / 'llmops.db').resolve()}"
    assert settings.store_choice() == (default, "default")
    make_current(demo_store_url())
    assert settings.store_choice() == (demo_store_url(), "current-store") and is_demo_current()
    assert (llmops_home / settings.CURRENT_STORE_FILE).stat().st_mode & 0o077 == 0
    monkeypatch.setenv(settings.LLMOPS_DATABASE_URL, "sqlite:///elsewhere.db")
    assert settings.store_choice() == ("sqlite:///elsewhere.db", "LLMOPS_DATABASE_URL")
    assert settings.database_url() == "sqlite:///elsewhere.db"


def test_a_command_names_the_store_it_read_on_stderr_and_json_stays_clean(llmops_home: Path) -> None:
    make_current(demo_store_url())
    result = runner.invoke(app, ["costs", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    assert result.stderr.strip() == (
        f"store: {demo_store_url()} (the demo's; `llmops demo reset` returns to llmops.db)"
    )  # fmt: skip
    assert (llmops_home / "demo.db").exists() and not (llmops_home / "llmops.db").exists()


def test_the_store_line_masks_the_password_and_says_where_the_url_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql+psycopg://llmops:s3cret-pw@db.example:5432/llmops"
    monkeypatch.setenv(settings.LLMOPS_DATABASE_URL, url)
    line = store_line(url)
    assert line == "store: postgresql+psycopg://llmops:***@db.example:5432/llmops (from LLMOPS_DATABASE_URL)"
    assert store_line("sqlite:///some/block.db") == "store: sqlite:///some/block.db"


def test_a_failed_command_stays_one_line(llmops_home: Path) -> None:
    result = runner.invoke(app, ["costs", "--by", "user"])
    assert result.exit_code == 2 and "store:" not in result.output


def test_demo_reset_forgets_the_demo_and_never_touches_llmops_db(llmops_home: Path) -> None:
    llmops_home.mkdir(parents=True)
    own = llmops_home / "llmops.db"
    own.write_bytes(b"the application's traces")
    for name in ("demo.db", "demo.db-wal", "demo-app.db", "demo-history.json"):
        (llmops_home / name).write_bytes(b"invented")
    (llmops_home / "demo-prompts" / "help-center").mkdir(parents=True)
    make_current(demo_store_url())

    status = runner.invoke(app, ["demo", "status"])
    assert status.exit_code == 0 and "demo.db (the demo's" in status.stdout
    result = runner.invoke(app, ["demo", "reset"])
    assert result.exit_code == 0, result.output
    assert "demo.db" in result.stdout and f"commands now read sqlite:///{own.resolve()}" in result.stdout
    assert sorted(path.name for path in llmops_home.iterdir()) == ["llmops.db"]
    assert own.read_bytes() == b"the application's traces"
    assert settings.store_choice()[1] == "default"
    assert runner.invoke(app, ["demo", "reset"]).stdout.startswith("nothing of the demo's")


def test_reset_leaves_a_current_store_that_is_not_the_demos(llmops_home: Path) -> None:
    make_current("sqlite:////srv/llmops/shared.db")
    assert reset_demo() == []
    assert settings.current_store() == "sqlite:////srv/llmops/shared.db"
    assert store_line("sqlite:////srv/llmops/shared.db").endswith("(named in $LLMOPS_HOME/current-store)")
    dispose_engines()


def test_commands_read_the_prompts_the_current_stores_demo_used_until_a_reset(
    llmops_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(settings.LLMOPS_PROMPTS_DIR, raising=False)
    demo_prompts = llmops_home / "demo-prompts"
    write_prompt(demo_prompts, "1.0.0", name="demo-only")  # e.g. the version compression registered in the demo
    make_current(demo_store_url(), demo_prompts)

    listed = runner.invoke(app, ["prompts", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [row["name"] for row in json.loads(listed.stdout)] == ["demo-only"]
    assert settings.prompts_dir() == demo_prompts.resolve()

    monkeypatch.setenv(settings.LLMOPS_PROMPTS_DIR, "elsewhere")  # the variable still wins
    assert settings.prompts_dir() == Path("elsewhere")
    monkeypatch.delenv(settings.LLMOPS_PROMPTS_DIR)
    monkeypatch.setenv(settings.LLMOPS_DATABASE_URL, f"sqlite:///{llmops_home / 'other.db'}")  # not the demo's store
    assert settings.prompts_dir() == Path("./prompts")
    monkeypatch.delenv(settings.LLMOPS_DATABASE_URL)
    reset_demo()
    assert settings.prompts_dir() == Path("./prompts")
