"""Hostile YAML in prompt files and scorers.yaml: deep nesting, alias bombs, node floods and huge files.

Each is refused while composing, before any Python object is built, as ``path:line: field: message``
with the line of the offending node, quickly and in bounded memory (issue 13, item 4).
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops.evals.scorers import ScorerConfigError, parse_scorer_config
from llmops.prompts import (
    MAX_YAML_ALIASES,
    MAX_YAML_BYTES,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    YAMLLimitError,
    check_prompt_file,
    load_prompts,
    safe_load,
    validate_prompts,
)
from prefect_llmops.cli import app

HEAD = """\
version: "1.0.0"
model: "claude-3-5-haiku-20241022"
created: "2025-08-11"
author: "team-ai"
changelog: "first"
system: "You are helpful."
parameters:
  max_tokens: 10
"""
HEAD_LINES = HEAD.count("\n")


def deep(levels: int) -> str:
    """``parameters.metadata`` nested ``levels`` deep, on the line after HEAD."""
    return HEAD + "  metadata: " + "[" * levels + "]" * levels + "\n"


def laughs(levels: int = 10, width: int = 9) -> str:
    """The billion-laughs bomb under ``parameters``: each anchor repeats the one before ``width`` times."""
    text = HEAD + "  a0: &a0 [" + ", ".join(['"lol"'] * width) + "]\n"
    for level in range(1, levels):
        text += f"  a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]\n"
    return text


def many_aliases(count: int) -> str:
    return HEAD + "  base: &b 1\n  many: [" + ", ".join(["*b"] * count) + "]\n"


def flood(nodes: int) -> str:
    return HEAD + "  metadata: [" + ", ".join(["1"] * nodes) + "]\n"


def write(tmp_path: Path, text: str, name: str = "chat") -> Path:
    path = tmp_path / "prompts" / name / "1.0.0.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def only_error(path: Path) -> str:
    prompt, problems = check_prompt_file(path, check_models_priced=False)
    assert prompt is None
    [problem] = problems
    return str(problem)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (deep(1_000), HEAD_LINES + 1, f"nested too deeply: more than {MAX_YAML_DEPTH} levels"),
        (laughs(), HEAD_LINES + 5, f"too many YAML nodes: more than {MAX_YAML_NODES:,}"),  # at a4: 9 × 820 nodes
        (many_aliases(MAX_YAML_ALIASES + 1), HEAD_LINES + 2, f"too many YAML aliases: more than {MAX_YAML_ALIASES}"),
        (flood(MAX_YAML_NODES + 1), HEAD_LINES + 1, f"too many YAML nodes: more than {MAX_YAML_NODES:,}"),
    ],
    ids=["depth-1000", "billion-laughs", "aliases", "node-flood"],
)
def test_a_hostile_prompt_file_is_one_located_error_found_fast_in_little_memory(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = write(tmp_path, text)
    started = time.perf_counter()
    reported = only_error(path)
    elapsed = time.perf_counter() - started
    assert reported.startswith(f"{path}:{line}: yaml: {message}"), reported
    assert elapsed < 3, elapsed  # well under a second; the bomb used to take 2 GB and never finish
    tracemalloc.start()
    try:
        only_error(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, peak


def test_an_alias_repeating_a_deep_subtree_counts_at_the_depth_it_is_used(tmp_path: Path) -> None:
    half = MAX_YAML_DEPTH // 2 + 2
    text = HEAD + "  a: &deep " + "[" * half + "]" * half + "\n  b: " + "[" * half + "*deep" + "]" * half + "\n"
    assert f"{write(tmp_path, text)}:{HEAD_LINES + 2}: yaml: nested too deeply" in only_error(write(tmp_path, text))


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + "# " + "x" * MAX_YAML_BYTES + "\n")
    assert only_error(path) == f"{path}:1: file: file too large: more than {MAX_YAML_BYTES:,} bytes"


def test_ordinary_anchors_and_nesting_still_load(tmp_path: Path) -> None:
    text = HEAD + "  metadata: &m {team: {name: [a, b]}}\n  tool_choice: *m\n"
    prompt, problems = check_prompt_file(write(tmp_path, text), check_models_priced=False)
    assert prompt is not None and not [p for p in problems if p.severity == "error"]
    assert safe_load("a: &x [1, 2]\nb: *x\n") == {"a": [1, 2], "b": [1, 2]}
    assert safe_load("[" * MAX_YAML_DEPTH + "]" * MAX_YAML_DEPTH) is not None
    with pytest.raises(YAMLLimitError):
        safe_load("[" * (MAX_YAML_DEPTH + 1) + "]" * (MAX_YAML_DEPTH + 1))


def test_the_repository_prompts_still_load_quickly() -> None:
    prompts_dir = Path(__file__).parents[2] / "prompts"
    started = time.perf_counter()
    for _ in range(10):
        load_prompts(prompts_dir)
    assert (time.perf_counter() - started) / 10 < 0.5
    assert not [p for p in validate_prompts(prompts_dir) if p.severity == "error"]


def test_validate_and_show_report_the_bomb_by_line_and_exit_1(tmp_path: Path) -> None:
    path = write(tmp_path, laughs())
    runner = CliRunner()
    validate = runner.invoke(app, ["prompts", "validate", str(tmp_path / "prompts")])
    assert validate.exit_code == 1, validate.output
    assert f"{path}:{HEAD_LINES + 5}: yaml: too many YAML nodes" in validate.stdout
    assert validate.exception is None or isinstance(validate.exception, SystemExit)
    show = runner.invoke(app, ["prompts", "show", "chat", "--dir", str(tmp_path / "prompts")])
    assert show.exit_code == 1 and f"{path}:{HEAD_LINES + 5}: yaml: too many YAML nodes" in show.stderr
    deep_path = write(tmp_path, deep(1_000), name="deep")
    again = runner.invoke(app, ["prompts", "validate", str(tmp_path / "prompts")])
    assert again.exit_code == 1 and f"{deep_path}:{HEAD_LINES + 1}: yaml: nested too deeply" in again.stdout
    assert "Traceback" not in again.output and "RecursionError" not in again.output


@pytest.mark.parametrize("text", [laughs(), "scorers:\n  - type: " + "[" * 1_000 + "]" * 1_000 + "\n"], ids=["laughs", "deep"])
def test_scorers_yaml_has_the_same_limits(tmp_path: Path, text: str) -> None:
    path = tmp_path / "chat" / "scorers.yaml"
    path.parent.mkdir()
    path.write_text(text)
    with pytest.raises(ScorerConfigError) as caught:
        parse_scorer_config(path)
    [problem] = caught.value.problems
    assert str(problem).startswith(f"{path}:") and problem.field == "yaml"
    assert "too many YAML nodes" in problem.message or "nested too deeply" in problem.message
