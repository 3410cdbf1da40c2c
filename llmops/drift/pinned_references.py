"""Pinned references: the fixed subset a version is re-asked, and its reference answers in the store.

When a version starts serving, its answers on a fixed subset of each of its eval datasets are
kept as its reference: every example answered twice by the pinned model, once as the reference
(``REFERENCE_SAMPLE``) and once to show how much the model's answers vary on their own
(``RERUN_SAMPLE``), each with the traits the nightly comparison reads. This module chooses the
subset and keeps, replaces and reads references (``pinned_references`` and
``pinned_reference_outputs``), and the scores of the nights of the current round compared with it
(in the reference's ``details``, ``save_round``); asking the model for them is ``llmops.drift.pinned``'s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, Row, delete, insert, select, update

from llmops.drift.pinned_compare import NightScores, Traits
from llmops.evals.datasets import Dataset, EvalExample
from llmops.prompts import PromptVersion
from llmops.store.engine import read_only
from llmops.store.tables import PINNED_OUTPUTS, PINNED_REFERENCES

EMBEDDING_MODEL = "all-MiniLM-L6-v2"
"""The embedding model references are stored with (``default_embedder``'s)."""
REFERENCE_SAMPLE, RERUN_SAMPLE = 0, 1
"""A reference's two answers to each example: the reference itself and its re-run."""
ROUND_KEY = "round"
"""Where in a reference's ``details`` the current round's nights are kept."""


def _pinned_copy(dataset: Dataset, examples: list[EvalExample]) -> Dataset:
    """``dataset`` cut down to ``examples``, named as a pinned subset (``<name>@pinned``)."""
    return dataset.model_copy(update={"name": f"{dataset.name}@pinned", "examples": examples})


def pinned_subset(dataset: Dataset, size: int) -> Dataset:
    """The same ``size`` examples every night: those with the smallest sha256 of their id, in file order.

    Adding examples to the dataset swaps in only the new ones that hash lower.

    Args:
        dataset: The version's eval dataset.
        size: How many examples to keep.

    Returns:
        A copy named ``<name>@pinned`` with the chosen examples.

    Example:
        ```python
        subset = pinned_subset(load_dataset(path, "support-chat"), 40)
        assert pinned_subset(load_dataset(path, "support-chat"), 40) == subset  # the same every night
        ```
    """
    ranked = sorted(dataset.examples, key=lambda example: hashlib.sha256(example.id.encode()).hexdigest())
    chosen = {example.id for example in ranked[:size]}
    return _pinned_copy(dataset, [e for e in dataset.examples if e.id in chosen])


@dataclass(frozen=True)
class StoredAnswer:
    """One answer with its traits, as kept in ``pinned_reference_outputs``.

    Attributes:
        example_id: The example answered.
        sample: ``REFERENCE_SAMPLE`` or ``RERUN_SAMPLE`` in a reference (the repeat in a run).
        output: The answer's text.
        traits: What the comparison reads of it.
        output_tokens: Its output tokens, when the provider said.

    Example:
        ```python
        answer = reference.answers[("refund-1", REFERENCE_SAMPLE)]
        print(answer.output[:80], answer.traits.judge_score)
        ```
    """

    example_id: str
    sample: int
    output: str
    traits: Traits
    output_tokens: int | None


@dataclass(frozen=True)
class Reference:
    """A serving version's stored reference on one model and dataset: its answers, twice each.

    Attributes:
        id: The ``pinned_references`` row.
        prompt_name: The prompt; ``prompt_version`` and ``model`` the version and its pinned model.
        dataset_name: The dataset; ``dataset_hash`` and ``subset_hash`` their content hashes then.
        eval_run_id: The eval run that answered it.
        captured_at: When; ``captured_by`` who (the nightly check, ``llmops drift reference``).
        answers: ``{(example id, sample): answer}``.
        example_hashes: Each answered example's ``content_hash`` when the reference was captured.
        nights: The scores of the current round's nights so far, oldest first (``save_round``).

    Example:
        ```python
        reference = load_reference(engine, "support-chat", "2.3.1", "claude-3-5-sonnet-20241022", "support-chat")
        print(reference.examples, reference.captured_at)
        ```
    """

    id: int
    prompt_name: str
    prompt_version: str
    model: str
    dataset_name: str
    dataset_hash: str
    subset_hash: str
    eval_run_id: int | None
    captured_at: datetime
    captured_by: str
    answers: dict[tuple[str, int], StoredAnswer]
    example_hashes: dict[str, str]
    """Each answered example's ``content_hash`` when the reference was captured."""
    nights: list[NightScores] = field(default_factory=list)

    @property
    def examples(self) -> int:
        """How many examples the reference answered."""
        return len(self.example_hashes)

    def still_asked(self, dataset: Dataset) -> list[EvalExample]:
        """The dataset's examples this reference answered, unchanged since.

        Args:
            dataset: The dataset as it is now.

        Returns:
            Those examples in file order (all the reference's, while the dataset is as it was).

        Example:
            ```python
            if len(reference.still_asked(dataset)) < config.min_pairs:
                ...  # capture a new reference
            ```
        """
        return [e for e in dataset.examples if self.example_hashes.get(e.id) == e.content_hash]

    def subset(self, dataset: Dataset) -> Dataset:
        """The pinned subset to ask again: ``still_asked`` as a dataset named ``<name>@pinned``.

        Args:
            dataset: The dataset as it is now.

        Returns:
            A copy of it with only the examples still asked.

        Example:
            ```python
            answered = await answer_subset(engine, client, prompt, reference.subset(dataset), ...)
            ```
        """
        return _pinned_copy(dataset, self.still_asked(dataset))


def save_reference(
    engine: Engine,
    prompt: PromptVersion,
    dataset: Dataset,
    subset: Dataset,
    answers: Sequence[StoredAnswer],
    *,
    eval_run_id: int | None,
    captured_by: str,
    details: dict[str, Any] | None = None,
) -> int:
    """Store a reference, replacing the version's earlier one on the same model and dataset (one transaction).

    Args:
        engine: The store.
        prompt: The version (its name, version and pinned model key the reference).
        dataset: The whole dataset (its name and content hash).
        subset: The pinned subset that was answered.
        answers: Each example's two answers (``REFERENCE_SAMPLE`` and ``RERUN_SAMPLE``).
        eval_run_id: The eval run that answered them.
        captured_by: Who captured it.
        details: Anything else worth keeping with it.

    Returns:
        The new reference's id.

    Example:
        ```python
        reference_id = save_reference(engine, prompt, dataset, subset, answers, eval_run_id=run.id, captured_by="me")
        ```
    """
    key = (
        PINNED_REFERENCES.c.prompt_name == prompt.name, PINNED_REFERENCES.c.prompt_version == prompt.version,
        PINNED_REFERENCES.c.model == prompt.model, PINNED_REFERENCES.c.dataset_name == dataset.name,
    )  # fmt: skip
    example_hashes = {example.id: example.content_hash for example in subset.examples}
    with engine.begin() as connection:
        connection.execute(
            delete(PINNED_OUTPUTS).where(PINNED_OUTPUTS.c.reference_id.in_(select(PINNED_REFERENCES.c.id).where(*key)))
        )
        connection.execute(delete(PINNED_REFERENCES).where(*key))
        reference_id = connection.execute(
            insert(PINNED_REFERENCES).values(
                prompt_name=prompt.name, prompt_version=prompt.version, model=prompt.model, dataset_name=dataset.name,
                dataset_hash=dataset.content_hash, subset_hash=subset.content_hash,
                examples=len({answer.example_id for answer in answers}), eval_run_id=eval_run_id,
                embedding_model=EMBEDDING_MODEL, captured_at=datetime.now(UTC), captured_by=captured_by, details=details,
            ).returning(PINNED_REFERENCES.c.id)
        ).scalar_one()  # fmt: skip
        if answers:
            connection.execute(insert(PINNED_OUTPUTS), [
                {
                    "reference_id": reference_id, "example_id": answer.example_id,
                    "example_hash": example_hashes[answer.example_id], "sample": answer.sample,
                    "output": answer.output, "embedding": np.asarray(answer.traits.embedding, np.float32).tobytes(),
                    "length": answer.traits.length, "output_tokens": answer.output_tokens,
                    "refused": answer.traits.refused, "structured_valid": answer.traits.structured_valid,
                    "judge_score": answer.traits.judge_score,
                }
                for answer in answers
            ])  # fmt: skip
    return int(reference_id)


def save_round(engine: Engine, reference_id: int, nights: Sequence[NightScores]) -> None:
    """Keep the current round's nights with the reference (an empty list starts a new round).

    A re-capture replaces the reference and with it the round.

    Args:
        engine: The store.
        reference_id: The ``pinned_references`` row.
        nights: The round's nights so far, oldest first.

    Example:
        ```python
        save_round(engine, reference.id, [*reference.nights, NightScores.of(pairs)])
        ```
    """
    with engine.begin() as connection:
        details = connection.execute(
            select(PINNED_REFERENCES.c.details).where(PINNED_REFERENCES.c.id == reference_id)
        ).scalar_one()
        kept = {**(details or {}), ROUND_KEY: [night.as_json() for night in nights]}
        connection.execute(update(PINNED_REFERENCES).where(PINNED_REFERENCES.c.id == reference_id).values(details=kept))


def _with_answers(connection: Connection, row: Row[Any]) -> Reference:
    """A ``pinned_references`` row with its stored answers."""
    outputs = connection.execute(select(PINNED_OUTPUTS).where(PINNED_OUTPUTS.c.reference_id == row.id)).all()
    answers = {
        (o.example_id, o.sample): StoredAnswer(
            o.example_id, o.sample, o.output,
            Traits(np.frombuffer(o.embedding, np.float32), o.length, o.refused, o.structured_valid, o.judge_score),
            o.output_tokens,
        )
        for o in outputs
    }  # fmt: skip
    return Reference(
        id=row.id, prompt_name=row.prompt_name, prompt_version=row.prompt_version, model=row.model,
        dataset_name=row.dataset_name, dataset_hash=row.dataset_hash, subset_hash=row.subset_hash,
        eval_run_id=row.eval_run_id, captured_at=row.captured_at, captured_by=row.captured_by, answers=answers,
        example_hashes={o.example_id: o.example_hash for o in outputs},
        nights=[NightScores.from_json(night) for night in (row.details or {}).get(ROUND_KEY, [])],
    )  # fmt: skip


def load_reference(engine: Engine, prompt_name: str, version: str, model: str, dataset_name: str) -> Reference | None:
    """The version's reference on this model and dataset.

    Args:
        engine: The store.
        prompt_name: The prompt.
        version: Its version.
        model: The model the reference was answered by.
        dataset_name: The dataset.

    Returns:
        The reference, or None when none was captured.

    Example:
        ```python
        reference = load_reference(engine, "support-chat", "2.3.1", "claude-3-5-sonnet-20241022", "support-chat")
        ```
    """
    with read_only(engine).connect() as connection:
        row = connection.execute(
            select(PINNED_REFERENCES).where(
                PINNED_REFERENCES.c.prompt_name == prompt_name, PINNED_REFERENCES.c.prompt_version == version,
                PINNED_REFERENCES.c.model == model, PINNED_REFERENCES.c.dataset_name == dataset_name,
            )
        ).first()  # fmt: skip
        return None if row is None else _with_answers(connection, row)


def references_of(engine: Engine, prompt_name: str, version: str | None = None) -> list[Reference]:
    """Every stored reference of a prompt, newest first.

    Args:
        engine: The store.
        prompt_name: The prompt.
        version: Only this version's; all versions' when None.

    Returns:
        The references.

    Example:
        ```python
        for reference in references_of(engine, "support-chat", "2.3.1"):
            print(reference.dataset_name, reference.model, reference.captured_at)
        ```
    """
    query = (
        select(PINNED_REFERENCES).where(PINNED_REFERENCES.c.prompt_name == prompt_name).order_by(PINNED_REFERENCES.c.id.desc())
    )
    if version is not None:
        query = query.where(PINNED_REFERENCES.c.prompt_version == version)
    with read_only(engine).connect() as connection:
        return [_with_answers(connection, row) for row in connection.execute(query).all()]
