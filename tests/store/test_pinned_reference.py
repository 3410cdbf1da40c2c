"""Pinned-model references on the store (SQLite and PostgreSQL): the migration matches the model,
a reference comes back as stored, and a re-capture replaces it whole."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
import typer
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from llmops import settings
from llmops.drift.pinned_compare import NightScores, Traits
from llmops.drift.pinned_references import (
    REFERENCE_SAMPLE,
    RERUN_SAMPLE,
    StoredAnswer,
    load_reference,
    pinned_subset,
    references_of,
    save_reference,
    save_round,
)
from llmops.evals.datasets import Dataset, EvalExample
from llmops.prompts import PromptVersion
from llmops.store.models import Base
from llmops.store.tables import PINNED_OUTPUTS as OUTPUTS
from llmops.store.tables import PINNED_REFERENCES
from prefect_llmops.cli.drift import register

PROMPT = PromptVersion(
    name="support-chat", version="2.3.0", model="claude-3-5-sonnet-20241022", created="2025-11-01", author="tests",
    changelog="release", system="You are Acme Corp's support assistant.", parameters={"max_tokens": 300},
)  # fmt: skip
runner = CliRunner()
DATASET = Dataset(
    name="golden",
    prompt_name="support-chat",
    examples=[EvalExample(id=f"case-{index:02d}", input=f"Question {index}") for index in range(30)],
)


def stored_answers(seed: int, judged: bool = True) -> list[StoredAnswer]:
    rng = np.random.default_rng(seed)
    found = []
    for example in pinned_subset(DATASET, 20).examples:
        for sample in (REFERENCE_SAMPLE, RERUN_SAMPLE):
            embedding = rng.normal(size=384).astype(np.float32)
            traits = Traits(embedding / np.linalg.norm(embedding), int(rng.integers(50, 500)), sample == 1 and example.id.endswith("3"),
                            True if example.id.endswith("7") else None, 0.75 if judged else None)  # fmt: skip
            found.append(
                StoredAnswer(example.id, sample, f"answer {example.id}/{sample} ✓ <&>", traits, int(rng.integers(10, 90)))
            )
    return found


def test_the_migration_creates_exactly_the_model(store: Engine) -> None:
    with store.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    assert [difference for difference in differences if "pinned_reference" in str(difference)] == []


def test_a_reference_comes_back_as_stored(store: Engine) -> None:
    answers = stored_answers(1)
    subset = pinned_subset(DATASET, 20)
    reference_id = save_reference(store, PROMPT, DATASET, subset, answers, eval_run_id=42, captured_by="tests",
                                  details={"examples": [e.id for e in subset.examples]})  # fmt: skip

    reference = load_reference(store, "support-chat", "2.3.0", PROMPT.model, "golden")
    assert reference is not None and reference.id == reference_id
    assert (reference.examples, reference.eval_run_id, reference.captured_by) == (20, 42, "tests")
    assert (reference.dataset_name, reference.subset_hash) == ("golden", subset.content_hash)
    for answer in answers:
        back = reference.answers[(answer.example_id, answer.sample)]
        assert back.output == answer.output and back.output_tokens == answer.output_tokens
        assert np.array_equal(back.traits.embedding, answer.traits.embedding)
        assert (back.traits.length, back.traits.refused, back.traits.structured_valid, back.traits.judge_score) == (
            answer.traits.length, answer.traits.refused, answer.traits.structured_valid, answer.traits.judge_score,
        )  # fmt: skip
    assert load_reference(store, "support-chat", "2.3.1", PROMPT.model, "golden") is None
    assert load_reference(store, "support-chat", "2.3.0", "claude-3-haiku-20240307", "golden") is None
    assert load_reference(store, "support-chat", "2.3.0", PROMPT.model, "adversarial") is None
    assert [e.id for e in reference.still_asked(DATASET)] == [e.id for e in subset.examples]


def test_after_the_dataset_is_edited_only_its_unchanged_examples_are_still_asked(store: Engine) -> None:
    subset = pinned_subset(DATASET, 20)
    save_reference(store, PROMPT, DATASET, subset, stored_answers(1), eval_run_id=1, captured_by="tests")
    edited_id, removed_id = subset.examples[0].id, subset.examples[1].id
    edited = DATASET.model_copy(update={"examples": [
        example.model_copy(update={"input": "A reworded question"}) if example.id == edited_id else example
        for example in reversed(DATASET.examples) if example.id != removed_id
    ]})  # fmt: skip
    reference = load_reference(store, "support-chat", "2.3.0", PROMPT.model, "golden")
    assert reference is not None and reference.dataset_hash != edited.content_hash
    still = [e.id for e in reference.still_asked(edited)]
    assert still == [e.id for e in reversed(subset.examples) if e.id not in {edited_id, removed_id}]


def test_capturing_again_replaces_the_reference_whole(store: Engine) -> None:
    subset = pinned_subset(DATASET, 20)
    save_reference(store, PROMPT, DATASET, subset, stored_answers(1), eval_run_id=1, captured_by="tests")
    other_version = PROMPT.model_copy(update={"version": "2.3.1"})
    save_reference(store, other_version, DATASET, subset, stored_answers(2), eval_run_id=2, captured_by="tests")
    save_reference(store, PROMPT, DATASET, subset, stored_answers(3, judged=False), eval_run_id=3, captured_by="tests")

    reference = load_reference(store, "support-chat", "2.3.0", PROMPT.model, "golden")
    assert reference is not None and reference.eval_run_id == 3
    assert all(answer.traits.judge_score is None for answer in reference.answers.values())
    with store.connect() as connection:
        assert connection.execute(select(func.count()).select_from(OUTPUTS)).scalar_one() == 2 * 40
    assert [r.prompt_version for r in references_of(store, "support-chat")] == ["2.3.0", "2.3.1"]
    assert [r.eval_run_id for r in references_of(store, "support-chat", "2.3.1")] == [2]


def test_the_rounds_nights_are_kept_with_the_reference_until_it_is_captured_again(store: Engine) -> None:
    """What the nights of a round showed is there the next night, on either database, beside the
    capture's own details; a new round, or a new reference, starts with none."""
    subset = pinned_subset(DATASET, 20)
    examples = [e.id for e in subset.examples]
    reference_id = save_reference(store, PROMPT, DATASET, subset, stored_answers(1), eval_run_id=1, captured_by="tests",
                                  details={"examples": examples})  # fmt: skip
    first = NightScores({example: 0.9 + index / 1000 for index, example in enumerate(examples)}, {examples[0]: 0.75})
    second = NightScores({example: 0.5 for example in examples}, {})
    save_round(store, reference_id, [first])
    save_round(store, reference_id, [first, second])

    reference = load_reference(store, "support-chat", "2.3.0", PROMPT.model, "golden")
    assert reference is not None and reference.nights == [first, second]
    with store.connect() as connection:
        details = connection.execute(
            select(PINNED_REFERENCES.c.details).where(PINNED_REFERENCES.c.id == reference_id)
        ).scalar_one()
    assert details["examples"] == examples
    save_round(store, reference_id, [])
    new_round = load_reference(store, "support-chat", "2.3.0", PROMPT.model, "golden")
    assert new_round is not None and new_round.nights == []

    save_round(store, reference_id, [first])
    save_reference(store, PROMPT, DATASET, subset, stored_answers(2), eval_run_id=2, captured_by="tests")
    captured_again = load_reference(store, "support-chat", "2.3.0", PROMPT.model, "golden")
    assert captured_again is not None and captured_again.nights == []


def test_a_reference_with_duplicate_answers_is_refused_and_leaves_the_old_one(store: Engine) -> None:
    subset = pinned_subset(DATASET, 20)
    save_reference(store, PROMPT, DATASET, subset, stored_answers(1), eval_run_id=1, captured_by="tests")
    duplicated = stored_answers(2)
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        save_reference(store, PROMPT, DATASET, subset, [*duplicated, duplicated[0]], eval_run_id=2, captured_by="tests")
    reference = load_reference(store, "support-chat", "2.3.0", PROMPT.model, "golden")
    assert reference is not None and reference.eval_run_id == 1 and len(reference.answers) == 40


def test_cli_reference_says_what_is_missing(store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (settings.ANTHROPIC_API_KEY, settings.ANTHROPIC_BASE_URL):
        monkeypatch.delenv(name, raising=False)
    app = typer.Typer()
    register(app)
    app.command("noop", hidden=True)(lambda: None)

    unserved = runner.invoke(app, ["drift", "reference", "support-chat"])
    assert unserved.exit_code == 2
    assert "support-chat has no production or canary version in production; pass --version" in unserved.stderr

    no_model = runner.invoke(app, ["drift", "reference", "support-chat", "--version", "2.3.0"])
    assert no_model.exit_code == 3 and "no model to evaluate against" in no_model.stderr  # nothing captured, still listed
    assert "warning: not captured (2.3.0)" in no_model.stderr
    assert "support-chat: no pinned reference stored for 2.3.0" in no_model.stdout

    shown = runner.invoke(app, ["drift", "reference", "support-chat", "--version", "2.3.0", "--show"])
    assert shown.exit_code == 0 and "support-chat: no pinned reference stored for 2.3.0" in shown.stdout
    save_reference(store, PROMPT, DATASET, pinned_subset(DATASET, 20), stored_answers(1), eval_run_id=5, captured_by="ops")
    [row] = orjson.loads(
        runner.invoke(app, ["drift", "reference", "support-chat", "--version", "2.3.0", "--show", "--json"]).stdout
    )
    assert (row["version"], row["examples"], row["refusals"], row["judged"], row["eval_run"], row["by"]) == (
        "2.3.0",
        20,
        0,
        20,
        5,
        "ops",
    )
    # Listing what is stored needs no model (issue 14, item 6): capturing is asked only for what is missing.
    listed = runner.invoke(app, ["drift", "reference", "support-chat", "--version", "2.3.0"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "claude-3-5-sonnet-20241022" in listed.stdout and "no model" not in listed.stderr
