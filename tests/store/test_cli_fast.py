"""A fast command line: commands load lazily, ``promote`` and ``rollback`` run here without a Prefect
server when no Prefect API is configured, and a user's mistake is one line (a traceback only with
``--debug``). Start times are measured by ``make bench`` (tests/benchmarks/bench_cli.py), not here."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import prefect_llmops.cli as cli_package
from llmops import settings
from llmops.prompts import get_prompt
from llmops.release.registry import get_registry
from llmops.store.engine import get_engine
from llmops.store.tables import ALERTS
from prefect_llmops.cli import COMMANDS, SHORT_HELP, app
from prefect_llmops.cli.cockpit_runs import submitted_line, ui_url
from tests.store.test_rollouts import write_prompt

NAME = "support"


@pytest.fixture
def prompts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "prompts"
    for version in ("1.0.0", "1.1.0"):
        write_prompt(directory, version)
    monkeypatch.setenv(settings.LLMOPS_PROMPTS_DIR, str(directory))
    monkeypatch.delenv(settings.PREFECT_API_URL, raising=False)
    return directory


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_help_lists_every_command_with_its_line_and_imports_no_command_module() -> None:
    code = (
        "import sys\nfrom prefect_llmops.cli import app\n"
        "try:\n    app(['--help'], prog_name='llmops')\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('prefect_llmops.cli.') or m.split('.')[0] in "
        "('prefect', 'anthropic', 'scipy', 'numpy', 'alembic')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLUMNS": "200"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    *shown, loaded = result.stdout.strip().splitlines()
    listed = [line.strip("│ ").split(None, 1) for line in shown if line.startswith("│ ") and "--" not in line[:6]]
    commands = [command for names in COMMANDS.values() for command in names]
    assert [name for name, _ in listed] == commands
    assert all(SHORT_HELP[name].split(";")[0].split(",")[0] in text for name, text in listed)
    assert eval(loaded) == ["prefect_llmops.cli.output"]  # noqa: S307 - our own printed list


@pytest.mark.parametrize(
    ("args", "absent"),
    [
        ("costs --help", ("sqlalchemy",)),
        ("costs --since 2026-10-01", ("sqlalchemy.dialects.postgresql", "llmops.store.eval_models", "genai_prices")),
        (f"resolve {NAME} --user u-42", ("sqlalchemy.dialects.postgresql", "llmops.store.eval_models", "genai_prices")),
        ("prompts list", ("sqlalchemy.dialects.postgresql", "llmops.store.eval_models", "genai_prices")),
    ],
)
def test_a_command_that_reads_a_sqlite_store_imports_only_what_it_uses(prompts: Path, args: str, absent: tuple[str, ...]) -> None:
    registry = get_registry()  # the store migrated, one version in production
    registry.register(get_prompt(NAME, "1.0.0"), actor="ci")
    registry.set_label(NAME, "production", "1.0.0", actor="ci", reason="first")
    code = (
        "import sys\nfrom prefect_llmops.cli import app\n"
        "try:\n    app(sys.argv[1].split(), prog_name='llmops')\nexcept SystemExit as exit:\n    print('exit', exit.code)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({absent!r})))"
    )
    result = subprocess.run([sys.executable, "-c", code, args], capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    *_, exit_line, loaded = result.stdout.strip().splitlines()
    assert exit_line == "exit 0" and eval(loaded) == []  # noqa: S307 - our own printed list


def test_every_command_module_adds_the_commands_listed_for_it() -> None:
    group = importlib.import_module("typer.main").get_command(app)
    for module, commands in COMMANDS.items():
        for command in commands:
            loaded = group.get_command(None, command)
            assert loaded is not None and loaded.name == command, (module, command)
            assert command in SHORT_HELP
    assert set(group.get_command(None, "prompts").commands) >= {"list", "history"}  # history from the registry module


def test_a_missing_extra_is_still_one_line_naming_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def without_scipy(name: str, package: str | None = None) -> Any:
        if name == "prefect_llmops.cli.evals":
            raise ModuleNotFoundError("No module named 'scipy'", name="scipy")
        return real(name, package)

    monkeypatch.setattr(cli_package.importlib, "import_module", without_scipy)
    result = CliRunner().invoke(app, ["eval", "run", "support"])

    assert result.exit_code == 2
    assert result.output.strip() == "error: llmops eval needs an optional install: pip install 'prefect-llmops[ops]'"


def test_promote_and_rollback_run_here_without_prefect_and_print_the_flows_result(prompts: Path, tmp_path: Path) -> None:
    code = (
        "import sys\nfrom prefect_llmops.cli import app\n"
        "for args in sys.argv[1:]:\n"
        "    try:\n        app(args.split('|'), prog_name='llmops')\n    except SystemExit as exit:\n"
        "        print('exit', exit.code)\n"
        "print('prefect loaded:', 'prefect' in sys.modules)"
    )
    env = {**os.environ, settings.LLMOPS_PROMPTS_DIR: str(prompts), settings.PREFECT_HOME: str(tmp_path / "prefect-home")}
    env.pop(settings.PREFECT_API_URL, None)
    runs = [
        "promote|support|1.0.0|--strategy|immediate|--force-without-eval|--reason|first",
        "promote|support|1.1.0|--strategy|immediate|--force-without-eval|--reason|second|--json",
        "rollback|support|--reason|bad week|--actor|bob|--json",
    ]
    result = subprocess.run([sys.executable, "-c", code, *runs], capture_output=True, text=True, timeout=120, env=env)

    assert result.returncode == 0, result.stderr
    assert "rollout 1: support – → 1.0.0 (immediate), step 1/1 at 100 %, completed" in result.stdout
    assert result.stdout.count("exit 0") == 3 and result.stdout.strip().endswith("prefect loaded: False")
    assert "ran here (PREFECT_API_URL is not set)" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "prefect-home").exists()  # no temporary server, nothing recorded
    blocks = result.stdout.split("exit 0")
    rolled_back = json.loads(blocks[2])
    assert (rolled_back["restored"], rolled_back["replaced"], rolled_back["prompt_name"]) == ("1.0.0", "1.1.0", NAME)
    assert get_registry().labels(NAME).production == "1.0.0"
    assert get_registry().history(NAME)[-1].actor == "bob"
    with get_engine().connect() as connection:  # Slack hears of it as from the flows, through the outbox
        alerts = connection.execute(select(ALERTS.c.kind, ALERTS.c.title).order_by(ALERTS.c.id)).all()
    assert [kind for kind, _ in alerts] == ["promotion", "promotion", "rollback"]
    assert alerts[-1].title == f"{NAME} (production) rolled back: 1.1.0 → 1.0.0"


def test_a_mistyped_version_is_one_line_and_exit_1(prompts: Path) -> None:
    promote = invoke("promote", NAME, "1.0.O", "--strategy", "immediate", "--force-without-eval")
    rollback = invoke("rollback", NAME, "--to", "9.9.9", "--reason", "typo")
    refused = invoke("promote", NAME, "1.0.0", "--strategy", "immediate")

    for result in (promote, rollback, refused):
        assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
        assert "Traceback" not in result.output
    assert "support 1.0.O is neither registered nor in" in promote.output
    assert "--force-without-eval" in refused.output


def test_a_bad_option_value_is_a_usage_error() -> None:
    result = invoke("promote", NAME, "1.0.0", "--steps", "5,x")
    typo = invoke("cost", "--since", "2026-10-01")
    assert result.exit_code == 2 and "--steps takes traffic percentages" in result.output
    assert typo.exit_code == 2 and "No such command 'cost'. Did you mean 'costs'?" in typo.output


def test_an_unexpected_error_is_one_line_and_its_traceback_comes_with_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.LLMOPS_TIMEZONE, "Mars/Olympus")
    plain = invoke("costs", "--since", "2026-10-01")
    debug = invoke("--debug", "costs", "--since", "2026-10-01")

    assert plain.exit_code == 1 and "Traceback" not in plain.output
    [line] = [line for line in plain.output.splitlines() if line.startswith("error:")]
    assert "Mars/Olympus" in line and "--debug" in line
    assert isinstance(debug.exception, ValueError) and "Mars/Olympus" in str(debug.exception)


@pytest.mark.parametrize(
    ("command", "deployment"),
    [(["rollback", NAME, "--reason", "x"], "rollback-prompt"), (["promote", NAME, "1.0.0", "--json"], "promote-prompt")],
)
def test_submitting_without_a_cockpit_is_one_line_and_fast(
    prompts: Path, tmp_path: Path, command: list[str], deployment: str
) -> None:
    env = {**os.environ, settings.PREFECT_API_URL: "http://127.0.0.1:9/api", settings.PREFECT_HOME: str(tmp_path / "ph")}
    result = subprocess.run([str(Path(sys.executable).with_name("llmops")), *command],
                            capture_output=True, text=True, timeout=60, env=env)  # fmt: skip

    assert result.returncode == 1 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: could not submit {deployment}/{deployment}: nothing answers at the Prefect API")
    assert "unset PREFECT_API_URL to run here" in line


def test_the_run_link_is_the_ui_beside_the_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(settings.PREFECT_UI_URL, raising=False)
    assert ui_url("http://127.0.0.1:4200/api") == "http://127.0.0.1:4200"
    monkeypatch.setenv(settings.PREFECT_UI_URL, "https://prefect.example.com/")
    assert ui_url("http://10.0.0.5:4200/api") == "https://prefect.example.com"
    line = submitted_line({"deployment": "d/d", "flow_run_name": "calm-fox", "state": "Scheduled", "url": "u"})
    assert line == "submitted d/d run calm-fox (Scheduled); follow it at u"
