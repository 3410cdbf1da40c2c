"""The README's commands, run verbatim after ``make demo``: each exits 0 and shows the demo's data.

The demo runs twice into a temporary ``LLMOPS_HOME`` (``--no-compression``: LLMLingua takes
minutes on a CPU and no README command needs its result); both runs must tell the same story in
the same sections. Then every ``llmops`` command of the README runs as written, through bash
from the checkout, with no extra flag or variable but that ``LLMOPS_HOME``.

Which lines are commands: in a fenced code block (not ```python), a line that starts with
``llmops `` or ``.venv/bin/llmops ``, after an optional ``$ `` prompt. A block right after the
comment ``<!-- readme-commands: skip — why -->`` is not run (it needs a server, or takes minutes).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from llmops import settings

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SKIP_MARK = "<!-- readme-commands: skip"
COMMAND = re.compile(r"^(?:\$ )?((?:\.venv/bin/)?llmops .*)$")
DEMO_TIMEOUT_SECONDS = 1_500
SECTION_TITLES = (
    "Costs by feature",
    "Costs by day",
    "What to look at",
    "Evaluation before the canary",
    "Prompt rollout in progress",
    "Drift on",
    "Compressing",
    "Explore it yourself",
)
NO_DATA = ("no data", "no live rollouts", "nothing drifted", "no traces")


def readme_commands(text: str) -> list[str]:
    """The README's ``llmops`` command lines, in order (see the module's docstring for the rule)."""
    commands: list[str] = []
    fence: str | None = None
    skip = False
    previous = ""
    for line in text.splitlines():
        stripped = line.strip()
        if fence is None:
            if stripped.startswith("```"):
                fence = stripped[3:].strip() or "text"
                skip = previous.startswith(SKIP_MARK) or fence == "python"
            elif stripped:
                previous = stripped
            continue
        if stripped.startswith("```"):
            fence, previous = None, ""
            continue
        if not skip and (match := COMMAND.match(stripped)):
            commands.append(match.group(1))
    return commands


def test_the_rule_finds_the_readmes_commands_and_leaves_the_marked_ones_out() -> None:
    sample = "\n".join(
        [
            "```bash",
            "make demo   # not llmops",
            ".venv/bin/llmops costs --by model   # a comment stays: bash drops it",
            "```",
            "<!-- readme-commands: skip — slow -->",
            "```",
            "$ .venv/bin/llmops compress help-center",
            "```",
            "```",
            "$ llmops rollouts",
            "```",
            "```python",
            "llmops = 1",
            "```",
        ]
    )
    assert readme_commands(sample) == [".venv/bin/llmops costs --by model   # a comment stays: bash drops it", "llmops rollouts"]
    found = readme_commands(README.read_text(encoding="utf-8"))
    assert any(" costs " in f" {command} " for command in found) and any("rollouts" in command for command in found)
    assert not any(" compress " in command for command in found), "the compress example is marked to skip"


@dataclass(frozen=True)
class Demo:
    home: Path
    env: dict[str, str]
    first: str
    second: str


def _environment(home: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("LLMOPS_", "PREFECT_", "ANTHROPIC_", "SLACK_")) and name != "VIRTUAL_ENV"
    }
    env.update(
        {
            settings.LLMOPS_HOME: str(home),
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
            "COLUMNS": "200",
            "NO_COLOR": "1",
        }
    )
    return env


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """``make demo`` twice into a fresh home, as a user runs it from the checkout."""
    home = tmp_path_factory.mktemp("readme") / "llmops-home"
    env = _environment(home)
    outputs = []
    for _ in range(2):
        run = subprocess.run(
            [sys.executable, "-m", "prefect_llmops.deployments.demo", "--no-compression"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=DEMO_TIMEOUT_SECONDS,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        outputs.append(run.stdout)
    return Demo(home, env, *outputs)


def sections(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.strip().startswith(SECTION_TITLES)]


def _section_names(output: str) -> list[str]:
    return [next(title for title in SECTION_TITLES if line.startswith(title)) for line in sections(output)]


@pytest.mark.timeout(2 * DEMO_TIMEOUT_SECONDS)
def test_the_demo_tells_one_true_story_and_the_same_on_a_second_run(demo: Demo) -> None:
    first, second = demo.first, demo.second
    names = _section_names(first)
    assert names == _section_names(second), "the same sections, in the same order, on a second run"
    assert [title for title in dict.fromkeys(names)] == list(SECTION_TITLES)  # (the digest has a "What to look at" too)
    for output in (first, second):
        assert "Run " in output and "verdict:" in output, "the evaluation's verdict table"
        drift = output.split("Drift on", 1)[1].split("Compressing", 1)[0]
        trace_findings = [line for line in drift.splitlines() if line.strip().startswith("• trace:")]
        assert trace_findings and all("support-chat@2.3.0" in line for line in trace_findings if "chat_response" in line)
        assert not any("@2.3.1" in line for line in trace_findings), "the history's drift is not the canary's"
        assert "none is the canary's" in output
        assert "llmops.drift.detected for 2.3.0 (production)" in output
        assert "LLMOPS_DATABASE_URL=" not in output, "no variable needed: the demo's store is the default"
    assert "as an earlier run of the demo stored it" in second

    by_version = subprocess.run(
        [str(Path(sys.executable).parent / "llmops"), "costs", "--by", "prompt_version", "--json"],
        cwd=REPO, env=demo.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert by_version.returncode == 0, by_version.stderr
    requests = {line["prompt_version"]: line["requests"] for line in json.loads(by_version.stdout)}
    assert requests["2.3.0"] > 20_000 > 300 > requests["2.3.1"] > 0, requests  # 30 days of 2.3.0; today's canary share


def _runnable(command: str) -> str:
    """The line itself; ``.venv/bin/llmops`` is this interpreter's when the checkout has no .venv."""
    if command.startswith(".venv/bin/llmops ") and not (REPO / ".venv" / "bin" / "llmops").exists():
        return str(Path(sys.executable).parent / "llmops") + command.removeprefix(".venv/bin/llmops")
    return command


@pytest.mark.timeout(2 * DEMO_TIMEOUT_SECONDS)
@pytest.mark.parametrize("command", readme_commands(README.read_text(encoding="utf-8")))
def test_every_readme_command_runs_as_written_on_the_demos_data(demo: Demo, command: str) -> None:
    env = {**demo.env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{demo.env.get('PATH', '')}"}
    result = subprocess.run(["bash", "-c", _runnable(command)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    assert result.stdout.strip(), f"{command} printed nothing"
    shown = result.stdout.lower()
    assert not any(phrase in shown for phrase in NO_DATA), f"{command} shows no data:\n{result.stdout[-2000:]}"
    demo_store = f"sqlite:///{(demo.home / 'demo.db').resolve()}"
    assert demo_store in result.stdout + result.stderr, f"{command} does not name the demo's store:\n{result.stderr[-1000:]}"
