"""Eval datasets: line-numbered validation, content hashing, and the demo's datasets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops import settings
from llmops.evals.datasets import DatasetError, EvalExample, load_dataset, load_datasets

REPO = Path(__file__).parents[2]
DEMO_PROMPTS = ("support-chat", "doc-summary", "code-review")


def write_lines(path: Path, lines: list[object | str]) -> Path:
    """Each item a JSON value, or a raw string written as is (to make broken lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


GOOD = {"id": "refund-1", "input": "Can I get a refund?", "expected": "Yes, within 30 days.",
        "assertions": [{"type": "contains", "value": "30 days"}]}  # fmt: skip


def test_a_valid_file_loads_with_its_name_prompt_and_examples(tmp_path: Path) -> None:
    conversation = {"id": "multi", "input": [
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Where is my order?"},
    ]}  # fmt: skip
    path = write_lines(tmp_path / "support-chat" / "golden.jsonl", [GOOD, "", conversation])
    dataset = load_dataset(path)
    assert (dataset.name, dataset.prompt_name, len(dataset)) == ("golden", "support-chat", 2)
    assert dataset.get("multi").messages()[-1] == {"role": "user", "content": "Where is my order?"}
    assert dataset.get("refund-1").messages() == [{"role": "user", "content": "Can I get a refund?"}]
    assert dataset.examples[0].assertions[0].type == "contains"


def test_every_bad_line_is_reported_with_its_line_and_field(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "p" / "d.jsonl", [
        GOOD,                                                                      # 1
        "{not json",                                                               # 2
        [1, 2],                                                                    # 3
        {"id": "no-input"},                                                        # 4
        {"id": "bad-assert", "input": "x", "assertions": [{"type": "contain", "value": "a"}]},  # 5
        {"id": "bad-regex", "input": "x", "assertions": [{"type": "regex", "value": "("}]},      # 6
        {"id": "typo", "input": "x", "expectd": "y"},                              # 7
        {"id": "refund-1", "input": "again"},                                      # 8
        {"id": "bad-role", "input": [{"role": "bot", "content": "x"}]},            # 9
        {"id": "ends-assistant", "input": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},  # 10
        {"id": 7, "input": 5},                                                     # 11
        {"id": "neg", "input": "x", "assertions": [{"type": "max_length", "value": -1}]},  # 12
    ])  # fmt: skip
    with pytest.raises(DatasetError) as caught:
        load_dataset(path)
    found = {(problem.line, problem.field) for problem in caught.value.problems}
    assert found == {
        (2, "json"), (3, "example"), (4, "input"), (5, "assertions.0"), (6, "assertions.0.value"),
        (7, "expectd"), (8, "id"), (9, "input.0.role"), (10, "input"), (11, "id"), (11, "input"),
        (12, "assertions.0.value"),
    }  # fmt: skip
    message = str(caught.value)
    assert f"{path}:8: id: duplicate id 'refund-1' (first on line 1)" in message
    assert "did you mean 'expected'?" in message
    assert "unknown assertion type 'contain'" in message
    assert "not a valid regular expression" in message
    assert "must end with a user message" in message


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "p" / "empty.jsonl", [""])
    with pytest.raises(DatasetError, match="empty.jsonl:1: file: no examples"):
        load_dataset(path)


def test_the_content_hash_ignores_formatting_but_not_content(tmp_path: Path) -> None:
    a = load_dataset(write_lines(tmp_path / "p" / "a.jsonl", [GOOD]))
    reordered = write_lines(tmp_path / "p" / "b.jsonl", ["   " + json.dumps(dict(reversed(GOOD.items())), indent=None)])
    b = load_dataset(reordered)
    changed = load_dataset(write_lines(tmp_path / "p" / "c.jsonl", [{**GOOD, "expected": "Yes, within 14 days."}]))
    assert a.content_hash == b.content_hash
    assert a.content_hash != changed.content_hash
    assert len(a.content_hash) == 64


def test_load_datasets_reads_the_evals_dir_setting_and_reports_all_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "evals"
    write_lines(root / "chat" / "b.jsonl", [GOOD])
    write_lines(root / "chat" / "a.jsonl", [GOOD])
    monkeypatch.setenv(settings.LLMOPS_EVALS_DIR, str(root))
    assert [dataset.name for dataset in load_datasets("chat")] == ["a", "b"]

    write_lines(root / "chat" / "c.jsonl", ["oops"])
    write_lines(root / "chat" / "d.jsonl", [{"input": "x"}])
    with pytest.raises(DatasetError) as caught:
        load_datasets("chat")
    assert [(p.path.name, p.line) for p in caught.value.problems] == [("c.jsonl", 1), ("d.jsonl", 1)]
    with pytest.raises(FileNotFoundError, match="no evals for prompt 'nope'"):
        load_datasets("nope")


def test_an_example_input_is_text_or_a_conversation() -> None:
    with pytest.raises(ValueError, match="must be the user's message"):
        EvalExample.model_validate({"id": "x", "input": {"text": "hi"}})
    with pytest.raises(ValueError, match="alternate"):
        EvalExample.model_validate({"id": "x", "input": [
            {"role": "user", "content": "a"}, {"role": "user", "content": "b"}]})  # fmt: skip


@pytest.mark.parametrize("prompt_name", DEMO_PROMPTS)
def test_the_demo_datasets_load_with_at_least_100_varied_examples(prompt_name: str) -> None:
    (dataset,) = load_datasets(prompt_name, REPO / "evals")
    assert len(dataset) >= 100
    inputs = [example.last_user_message() for example in dataset.examples]
    assert len(set(inputs)) == len(inputs), "every example asks something different"
    assert all(example.rubric for example in dataset.examples)
    with_assertions = sum(bool(example.assertions) for example in dataset.examples)
    assert with_assertions >= 0.9 * len(dataset)
