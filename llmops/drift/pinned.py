"""Pinned-model drift: has the provider changed the model behind an unchanged, pinned model id?

When a version starts serving, its answers on a fixed subset of each of its eval datasets are
kept as a reference (``capture_reference``): every example answered twice by the pinned model,
once as the reference and once to show how much the model's answers vary on their own. Each
night the subset is asked again — through the eval runner with its cache off, so the provider
really answers — and every new answer is paired with its example's reference (``compare``):

- embedding similarity (all-MiniLM-L6-v2) of the new answer to the reference answer, against
  the similarity of the reference's own re-run to it: is tonight further off than sampling is?
- judge score (the prompt's LLM judge), output length (log ratio), refusals and, for examples
  with structured output, its validity.

Each is a paired test over the examples (Wilcoxon signed-rank; exact McNemar for yes/no
traits), so ordinary sampling variation, which moves answers both ways, does not alert, while a
provider update, which moves most answers the same way, does. A finding needs the night's
Benjamini–Hochberg adjusted p-value (over every version's tests) within the false discovery rate
and a practical effect. A judge that cannot be reached or read leaves the judge score out
(reported as not available); the other traits are still compared.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import anthropic
import numpy as np
from pydantic import BaseModel, Field
from sqlalchemy import Connection, Engine, Row, delete, insert, select

from llmops.drift.report import Finding
from llmops.drift.trace import TraceGroup
from llmops.evals import store as eval_store
from llmops.evals.datasets import Dataset, EvalExample, JsonSchema, JsonValid, dataset_paths, load_dataset
from llmops.evals.embeddings import Embedder, cosine_similarity, default_embedder
from llmops.evals.runner import RunSettings, async_client, default_scorers, evaluate
from llmops.evals.scorers import ScorerConfig, ScorerInput, check_assertion
from llmops.prompts import PromptVersion, get_prompt
from llmops.release.registry import Registry
from llmops.stats import Alternative, benjamini_hochberg, benjamini_hochberg_cutoff, mcnemar_p_value, signed_rank_p_value
from llmops.store.engine import read_only
from llmops.store.pinned_models import PinnedReference, PinnedReferenceOutput

REFERENCES = PinnedReference.__table__
OUTPUTS = PinnedReferenceOutput.__table__
CREATED_BY = eval_store.PINNED_DRIFT_CREATOR
EMBEDDING_MODEL = "all-MiniLM-L6-v2"
JUDGE_METRIC = "judge"
"""The metric name the prompt's ``scorers.yaml`` gives its LLM judge."""
REFERENCE_SAMPLE, RERUN_SAMPLE = 0, 1
REFUSAL = re.compile(
    r"\b(?:I|we)(?:'m| am)? (?:sorry,? (?:but )?(?:I|we) )?(?:can't|cannot|can not|won't|am unable to|'m unable to|"
    r"unable to) (?:help|assist|answer|comply)",
    re.I,
)
"""How answers decline; a refusal in a JSON answer is still this text inside it."""
STRUCTURAL_ASSERTIONS = ("json_valid", "json_schema")
ANY_JSON = JsonValid(type="json_valid")


class PinnedDriftConfig(BaseModel):
    """How pinned-model drift decides; the defaults are the ones ``bench_pinned_drift`` measures."""

    subset_size: int = Field(40, ge=5, description="Examples of each dataset kept as the pinned subset.")
    min_pairs: int = Field(20, ge=5, description="Examples answered both times that a comparison needs.")
    false_discovery_rate: float = Field(0.05, gt=0, lt=1, description="Benjamini–Hochberg level over the night's tests.")
    min_similarity_drop: float = Field(
        0.05, ge=0, description="Smallest drop of mean similarity to the reference worth an alert."
    )
    min_judge_drop: float = Field(0.1, ge=0, description="Smallest drop of the mean judge score (0-1 scale) worth an alert.")
    min_length_change: float = Field(0.15, ge=0, description="Smallest relative change of typical output length worth an alert.")
    min_share_change: float = Field(
        0.05, ge=0, description="Smallest rise of the share refusing (or of invalid structured output) worth an alert."
    )
    min_changed_examples: int = Field(2, ge=1, description="Examples that must newly refuse (or break) for an alert.")
    concurrency: int = Field(8, ge=1, description="Calls in flight while a subset is answered.")


# -- the subset and the traits of an answer ----------------------------------------------------


def pinned_subset(dataset: Dataset, size: int) -> Dataset:
    """The same ``size`` examples every night: those with the smallest sha256 of their id, in file
    order. Adding examples to the dataset swaps in only the new ones that hash lower."""
    ranked = sorted(dataset.examples, key=lambda example: hashlib.sha256(example.id.encode()).hexdigest())
    chosen = {example.id for example in ranked[:size]}
    return dataset.model_copy(
        update={"name": f"{dataset.name}@pinned", "examples": [e for e in dataset.examples if e.id in chosen]}
    )


def is_refusal(text: str) -> bool:
    return REFUSAL.search(text) is not None


def structural_checks(example: EvalExample, reference_text: str) -> list[Any]:
    """The example's JSON assertions; without any, plain JSON validity when the reference answered in JSON."""
    checks = [assertion for assertion in example.assertions if assertion.type in STRUCTURAL_ASSERTIONS]
    if checks:
        return checks
    return [ANY_JSON] if check_assertion(ANY_JSON, ScorerInput(reference_text)).passed else []


def structure_holds(checks: Sequence[JsonValid | JsonSchema], text: str) -> bool | None:
    """Whether ``text`` passes the structural checks; None when the example has none."""
    if not checks:
        return None
    return all(check_assertion(check, ScorerInput(text)).passed for check in checks)


@dataclass(frozen=True)
class Traits:
    """What the nightly comparison reads of one answer."""

    embedding: np.ndarray
    length: int
    refused: bool
    structured_valid: bool | None
    judge_score: float | None


@dataclass(frozen=True)
class PairedAnswers:
    """One example: its reference answer, the reference's own re-run, and tonight's answer."""

    example_id: str
    reference: Traits
    rerun: Traits
    new: Traits


# -- the comparison --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PinnedTest:
    """One trait of one version's subset tonight against its reference, before the night's correction."""

    metric: str
    value: float
    reference: float
    change: float
    p_value: float
    statistic_name: str
    pairs: int
    large_enough: bool
    summary: str


def _signed_rank_test(differences: np.ndarray, alternative: Alternative, what: str) -> tuple[float, str]:
    p = signed_rank_p_value(differences, alternative)
    sided = "one-sided" if alternative != "two-sided" else "two-sided"
    return p, f"p of Wilcoxon signed-rank ({sided}) over {differences.size} paired examples, {what}"


def _share_test(metric: str, label: str, now: np.ndarray, before: np.ndarray, config: PinnedDriftConfig, noun: str) -> PinnedTest:
    """A yes/no trait that is bad when yes (refused, invalid): exact McNemar on the examples that changed."""
    gained = int(np.sum(now & ~before))
    lost = int(np.sum(~now & before))
    pairs = now.size
    rise = int(now.sum()) - int(before.sum())
    return PinnedTest(
        metric=metric,
        value=float(now.mean()),
        reference=float(before.mean()),
        change=float(now.mean() - before.mean()),
        p_value=mcnemar_p_value(gained, lost),
        statistic_name=f"p of exact McNemar (one-sided): {gained} newly {noun}, {lost} no longer",
        pairs=pairs,
        large_enough=rise >= max(config.min_changed_examples, math.ceil(config.min_share_change * pairs)),
        summary=f"{label} {int(now.sum())}/{pairs} vs {int(before.sum())}/{pairs} in the reference",
    )


def compare(
    pairs: Sequence[PairedAnswers], config: PinnedDriftConfig | None = None, judged: bool = True
) -> tuple[list[PinnedTest], list[str]]:
    """The paired tests of one version's subset, and notes on what could not be compared
    (``judged``: the prompt has an LLM judge, so a missing judge score is worth a note)."""
    config = config or PinnedDriftConfig()
    if len(pairs) < config.min_pairs:
        return [], [f"only {len(pairs)} examples answered both times, fewer than {config.min_pairs}: not compared"]
    tests: list[PinnedTest] = []
    notes: list[str] = []
    n = len(pairs)

    usual = np.array([cosine_similarity(p.rerun.embedding, p.reference.embedding) for p in pairs])
    tonight = np.array([cosine_similarity(p.new.embedding, p.reference.embedding) for p in pairs])
    p, name = _signed_rank_test(usual - tonight, "greater", "tonight's similarity vs the re-run's")
    tests.append(PinnedTest(
        metric="pinned:similarity", value=float(tonight.mean()), reference=float(usual.mean()),
        change=float(tonight.mean() - usual.mean()), p_value=p, statistic_name=name, pairs=n,
        large_enough=usual.mean() - tonight.mean() >= config.min_similarity_drop,
        summary=(f"outputs' similarity to the reference {tonight.mean():.2f}, usual {usual.mean():.2f} "
                 f"(the reference's own re-run), over {n} examples"),
    ))  # fmt: skip

    scored = [(p.new.judge_score, p.reference.judge_score) for p in pairs]
    scored = [(new, old) for new, old in scored if new is not None and old is not None]
    if len(scored) >= config.min_pairs:
        new_scores, old_scores = (np.array(column) for column in zip(*scored, strict=True))
        p, name = _signed_rank_test(old_scores - new_scores, "greater", "reference score − tonight's")
        tests.append(PinnedTest(
            metric="pinned:judge_score", value=float(new_scores.mean()), reference=float(old_scores.mean()),
            change=float(new_scores.mean() - old_scores.mean()), p_value=p, statistic_name=name, pairs=len(scored),
            large_enough=old_scores.mean() - new_scores.mean() >= config.min_judge_drop,
            summary=(f"judge score {new_scores.mean():.2f} vs {old_scores.mean():.2f} in the reference "
                     f"({1 + 4 * new_scores.mean():.1f} vs {1 + 4 * old_scores.mean():.1f} of 5), over {len(scored)} examples"),
        ))  # fmt: skip
    elif judged:
        notes.append(f"judge score not available ({len(scored)} of {n} examples judged both times)")

    new_lengths = np.array([p.new.length for p in pairs], float)
    old_lengths = np.array([p.reference.length for p in pairs], float)
    log_ratio = np.log1p(new_lengths) - np.log1p(old_lengths)
    change = math.expm1(float(log_ratio.mean()))
    p, name = _signed_rank_test(log_ratio, "two-sided", "log length ratio to the reference")
    tests.append(PinnedTest(
        metric="pinned:output_length", value=float(np.median(new_lengths)), reference=float(np.median(old_lengths)),
        change=change, p_value=p, statistic_name=name, pairs=n, large_enough=abs(change) >= config.min_length_change,
        summary=(f"output length {change * 100:+.0f} % vs the reference (median {np.median(new_lengths):,.0f} vs "
                 f"{np.median(old_lengths):,.0f} characters)"),
    ))  # fmt: skip

    tests.append(_share_test(
        "pinned:refusal_rate", "refusals", np.array([p.new.refused for p in pairs]),
        np.array([p.reference.refused for p in pairs]), config, "refusing",
    ))  # fmt: skip

    structured = [p for p in pairs if p.reference.structured_valid is not None and p.new.structured_valid is not None]
    if len(structured) >= config.min_pairs:
        invalid_now = np.array([not p.new.structured_valid for p in structured])
        invalid_before = np.array([not p.reference.structured_valid for p in structured])
        test = _share_test(
            "pinned:invalid_structure", "invalid structured outputs", invalid_now, invalid_before, config, "invalid"
        )
        tests.append(test)
    return tests, notes


# -- references in the store -------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredAnswer:
    """One answer with its traits, as kept in ``pinned_reference_outputs``."""

    example_id: str
    sample: int
    output: str
    traits: Traits
    output_tokens: int | None


@dataclass(frozen=True)
class Reference:
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

    @property
    def examples(self) -> int:
        return len(self.example_hashes)

    def still_asked(self, dataset: Dataset) -> list[EvalExample]:
        """The dataset's examples this reference answered, unchanged since (all of them, in file order,
        while the dataset is as it was)."""
        return [e for e in dataset.examples if self.example_hashes.get(e.id) == e.content_hash]


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
    """Store a reference, replacing the version's earlier one on the same model and dataset (one transaction)."""
    key = (
        REFERENCES.c.prompt_name == prompt.name, REFERENCES.c.prompt_version == prompt.version,
        REFERENCES.c.model == prompt.model, REFERENCES.c.dataset_name == dataset.name,
    )  # fmt: skip
    example_hashes = {example.id: example.content_hash for example in subset.examples}
    with engine.begin() as connection:
        connection.execute(delete(OUTPUTS).where(OUTPUTS.c.reference_id.in_(select(REFERENCES.c.id).where(*key))))
        connection.execute(delete(REFERENCES).where(*key))
        reference_id = connection.execute(
            insert(REFERENCES).values(
                prompt_name=prompt.name, prompt_version=prompt.version, model=prompt.model, dataset_name=dataset.name,
                dataset_hash=dataset.content_hash, subset_hash=subset.content_hash,
                examples=len({answer.example_id for answer in answers}), eval_run_id=eval_run_id,
                embedding_model=EMBEDDING_MODEL, captured_at=datetime.now(UTC), captured_by=captured_by, details=details,
            ).returning(REFERENCES.c.id)
        ).scalar_one()  # fmt: skip
        if answers:
            connection.execute(insert(OUTPUTS), [
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


def _with_answers(connection: Connection, row: Row[Any]) -> Reference:
    outputs = connection.execute(select(OUTPUTS).where(OUTPUTS.c.reference_id == row.id)).all()
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
    )  # fmt: skip


def load_reference(engine: Engine, prompt_name: str, version: str, model: str, dataset_name: str) -> Reference | None:
    """The version's reference on this model and dataset, or None when none was captured."""
    with read_only(engine).connect() as connection:
        row = connection.execute(
            select(REFERENCES).where(
                REFERENCES.c.prompt_name == prompt_name, REFERENCES.c.prompt_version == version,
                REFERENCES.c.model == model, REFERENCES.c.dataset_name == dataset_name,
            )
        ).first()  # fmt: skip
        return None if row is None else _with_answers(connection, row)


def references_of(engine: Engine, prompt_name: str, version: str | None = None) -> list[Reference]:
    """Every stored reference of a prompt (one version's, when given), newest first."""
    query = select(REFERENCES).where(REFERENCES.c.prompt_name == prompt_name).order_by(REFERENCES.c.id.desc())
    if version is not None:
        query = query.where(REFERENCES.c.prompt_version == version)
    with read_only(engine).connect() as connection:
        return [_with_answers(connection, row) for row in connection.execute(query).all()]


# -- asking the model --------------------------------------------------------------------------------


@dataclass
class Answered:
    """One run of a subset: the eval run, each answer's traits, and what went wrong."""

    run: eval_store.RunRecord
    answers: dict[tuple[str, int], StoredAnswer]
    judged: bool
    """The prompt's scorers include an LLM judge."""
    notes: list[str] = field(default_factory=list)


async def answer_subset(
    engine: Engine,
    client: anthropic.AsyncAnthropic,
    prompt: PromptVersion,
    subset: Dataset,
    *,
    repeats: int,
    purpose: str,
    embedder: Embedder,
    structure: Callable[[EvalExample], list[Any]] | None,
    config: PinnedDriftConfig,
    evals_dir: Path | str | None = None,
) -> Answered:
    """Ask the pinned model every example of ``subset`` (``repeats`` times) through the eval runner,
    its output cache off: the provider answers every time. The prompt's scorers run as in any
    evaluation; the judge's score is kept when it could be read. ``structure`` gives each
    example's structural checks (None: decided later, from the reference's own answer)."""
    settings = RunSettings(concurrency=config.concurrency, repeats=repeats, cache="off")
    scorers = default_scorers(prompt.name, evals_dir)
    run = await evaluate(
        prompt, subset, engine=engine, client=client, scorers=scorers, settings=settings, created_by=CREATED_BY,
        details={"purpose": purpose}, evals_dir=evals_dir,
    )  # fmt: skip
    rows = [row for row in await asyncio.to_thread(eval_store.results, engine, run.id) if row["output"] is not None]
    vectors = await asyncio.to_thread(embedder.embed, [row["output"] for row in rows]) if rows else []
    answers: dict[tuple[str, int], StoredAnswer] = {}
    for row, vector in zip(rows, vectors, strict=True):
        text = row["output"]
        checks = structure(subset.get(row["example_id"])) if structure else []
        judge = (row["scores"] or {}).get(JUDGE_METRIC)
        traits = Traits(np.asarray(vector, np.float32), len(text), is_refusal(text), structure_holds(checks, text), judge)
        answers[(row["example_id"], row["repeat"])] = StoredAnswer(
            row["example_id"], row["repeat"], text, traits, row["output_tokens"]
        )
    notes = [f"eval run {run.id} {run.status}: {run.status_reason}"] if run.status != "complete" else []
    judged = isinstance(scorers, ScorerConfig) and JUDGE_METRIC in scorers.specs()
    return Answered(run, answers, judged, notes)


# -- one version, one dataset ---------------------------------------------------------------------------


Status = Literal["compared", "captured", "failed"]


@dataclass
class PinnedCheck:
    """One serving version on one dataset's pinned subset tonight."""

    prompt_name: str
    version: str
    model: str
    dataset: str
    label: str | None
    status: Status
    tests: list[PinnedTest] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    eval_run_id: int | None = None

    def line(self) -> str:
        """The check in one line, for logs, the artifact and ``llmops drift reference``."""
        what = {"compared": f"{len(self.tests)} traits compared", "captured": "reference captured", "failed": "not checked"}
        notes = f" ({'; '.join(self.notes)})" if self.notes else ""
        return f"{self.prompt_name} {self.version} on {self.model}, {self.dataset}: {what[self.status]}{notes}"


def _reference_structure(reference: Reference) -> Callable[[EvalExample], list[Any]]:
    """Structural checks decided by the reference's answer, so tonight's are held to the same."""

    def checks(example: EvalExample) -> list[Any]:
        stored = reference.answers.get((example.id, REFERENCE_SAMPLE))
        return structural_checks(example, stored.output) if stored else []

    return checks


async def capture(
    engine: Engine,
    client: anthropic.AsyncAnthropic,
    prompt: PromptVersion,
    dataset: Dataset,
    *,
    embedder: Embedder,
    config: PinnedDriftConfig,
    captured_by: str,
    label: str | None = None,
    evals_dir: Path | str | None = None,
) -> PinnedCheck:
    """Answer the subset twice and store it as the version's reference (when enough was answered)."""
    subset = pinned_subset(dataset, config.subset_size)
    answered = await answer_subset(
        engine, client, prompt, subset, repeats=2, purpose="pinned reference", embedder=embedder,
        structure=None, config=config, evals_dir=evals_dir,
    )  # fmt: skip
    check = PinnedCheck(prompt.name, prompt.version, prompt.model, dataset.name, label, "captured", notes=answered.notes,
                        eval_run_id=answered.run.id)  # fmt: skip
    kept: list[StoredAnswer] = []
    for example in subset.examples:
        first, second = (answered.answers.get((example.id, sample)) for sample in (REFERENCE_SAMPLE, RERUN_SAMPLE))
        if first is None or second is None:
            continue
        checks = structural_checks(example, first.output)
        for answer in (first, second):
            traits = replace(answer.traits, structured_valid=structure_holds(checks, answer.output))
            kept.append(replace(answer, traits=traits))
    examples = len(kept) // 2
    if examples < config.min_pairs:
        check.status = "failed"
        check.notes.append(
            f"reference not kept: {examples} of {len(subset)} examples answered twice, fewer than {config.min_pairs}"
        )
        return check
    judged = sum(answer.traits.judge_score is not None for answer in kept if answer.sample == REFERENCE_SAMPLE)
    if answered.judged and judged < examples:
        check.notes.append(f"judge score available for {judged} of {examples} examples")
    await asyncio.to_thread(
        save_reference, engine, prompt, dataset, subset, kept, eval_run_id=answered.run.id, captured_by=captured_by,
        details={"subset_size": config.subset_size, "examples": [example.id for example in subset.examples]},
    )  # fmt: skip
    return check


async def recheck(
    engine: Engine,
    client: anthropic.AsyncAnthropic,
    prompt: PromptVersion,
    dataset: Dataset,
    reference: Reference,
    *,
    embedder: Embedder,
    config: PinnedDriftConfig,
    label: str | None = None,
    evals_dir: Path | str | None = None,
) -> PinnedCheck:
    """Ask the reference's examples (those still in the dataset unchanged) again and compare each
    new answer with its reference."""
    subset = dataset.model_copy(update={"name": f"{dataset.name}@pinned", "examples": reference.still_asked(dataset)})
    answered = await answer_subset(
        engine, client, prompt, subset, repeats=1, purpose="pinned check", embedder=embedder,
        structure=_reference_structure(reference), config=config, evals_dir=evals_dir,
    )  # fmt: skip
    pairs = [
        PairedAnswers(example.id, reference.answers[(example.id, REFERENCE_SAMPLE)].traits,
                      reference.answers[(example.id, RERUN_SAMPLE)].traits, answered.answers[(example.id, 0)].traits)
        for example in subset.examples
        if (example.id, RERUN_SAMPLE) in reference.answers and (example.id, 0) in answered.answers
    ]  # fmt: skip
    tests, notes = compare(pairs, config, judged=answered.judged)
    if reference.dataset_hash != dataset.content_hash:
        notes.insert(0, f"the dataset changed since the reference of {reference.captured_at:%Y-%m-%d}: "
                        f"{len(subset)} of its {reference.examples} examples are unchanged and were compared")  # fmt: skip
    return PinnedCheck(
        prompt.name, prompt.version, prompt.model, dataset.name, label, "compared" if tests else "failed",
        tests=tests, notes=answered.notes + notes, eval_run_id=answered.run.id,
    )  # fmt: skip


# -- the night ---------------------------------------------------------------------------------------------


def serving_versions(registry: Registry, prompt_names: Sequence[str], environment: str) -> list[tuple[str, str, str]]:
    """``(prompt, version, label)`` of every production and canary version (a version holding both, once)."""
    serving = []
    for name in prompt_names:
        labels = registry.labels(name, environment)
        for label, version in (("production", labels.production), ("canary", labels.canary)):
            if version is not None and (name, version) not in {(n, v) for n, v, _ in serving}:
                serving.append((name, version, label))
    return serving


async def _check_version(
    engine: Engine,
    client: anthropic.AsyncAnthropic,
    name: str,
    version: str,
    label: str | None,
    *,
    embedder: Embedder,
    config: PinnedDriftConfig,
    capture_only: bool,
    force: bool,
    prompts_dir: Path | str | None,
    evals_dir: Path | str | None,
    captured_by: str,
) -> list[PinnedCheck]:
    prompt = get_prompt(name, version, prompts_dir)
    checks = []
    for path in dataset_paths(name, evals_dir):
        dataset = load_dataset(path, name)
        reference = None if force else load_reference(engine, name, version, prompt.model, dataset.name)
        options: dict[str, Any] = {"embedder": embedder, "config": config, "label": label, "evals_dir": evals_dir}
        outdated = reference is not None and len(reference.still_asked(dataset)) < config.min_pairs
        if reference is None or outdated:
            check = await capture(engine, client, prompt, dataset, captured_by=captured_by, **options)
            if outdated and reference is not None:
                check.notes.insert(0, f"the dataset changed since the reference of {reference.captured_at:%Y-%m-%d}, "
                                      f"fewer than {config.min_pairs} of its examples are left unchanged")  # fmt: skip
            if check.status == "captured" and not capture_only:
                check.notes.append("reference captured tonight, compared from tomorrow")
        elif capture_only:
            note = f"reference already captured {reference.captured_at:%Y-%m-%d} ({reference.examples} examples)"
            check = PinnedCheck(name, version, prompt.model, dataset.name, label, "captured", notes=[note])
        else:
            check = await recheck(engine, client, prompt, dataset, reference, **options)
        checks.append(check)
    return checks


def run_pinned_checks(
    engine: Engine,
    targets: Sequence[tuple[str, str, str | None]],
    *,
    capture_only: bool = False,
    force: bool = False,
    api_key: str | None = None,
    base_url: str | None = None,
    embedder: Embedder | None = None,
    config: PinnedDriftConfig | None = None,
    prompts_dir: Path | str | None = None,
    evals_dir: Path | str | None = None,
    captured_by: str = CREATED_BY,
) -> list[PinnedCheck]:
    """Each ``(prompt, version, label)`` on each of its datasets: capture a reference where there is
    none (``force``: always), else (unless ``capture_only``) re-run the subset and compare.

    Raises ``ModelUnavailable`` when no model is configured. A version whose prompt file or
    datasets cannot be read is reported as a failed check; the others still run.
    """
    config = config or PinnedDriftConfig()
    embedder = embedder or default_embedder()

    async def night() -> list[PinnedCheck]:
        checks: list[PinnedCheck] = []
        async with async_client(api_key, base_url) as client:
            for name, version, label in targets:
                try:
                    checks += await _check_version(
                        engine, client, name, version, label, embedder=embedder, config=config,
                        capture_only=capture_only, force=force, prompts_dir=prompts_dir, evals_dir=evals_dir,
                        captured_by=captured_by,
                    )  # fmt: skip
                except (LookupError, ValueError, OSError) as exc:  # no prompt file, no datasets, a bad dataset
                    checks.append(PinnedCheck(name, version, "", "-", label, "failed", notes=[str(exc).splitlines()[0]]))
        return checks

    return asyncio.run(night())


def pinned_findings(
    day: date, environment: str, checks: Sequence[PinnedCheck], config: PinnedDriftConfig | None = None
) -> list[Finding]:
    """The night's drifted traits, Benjamini–Hochberg corrected over every version's tests, strongest first."""
    config = config or PinnedDriftConfig()
    tested = [(check, test) for check in checks for test in check.tests]
    p_values = [test.p_value for _, test in tested]
    adjusted = benjamini_hochberg(p_values)
    cutoff = benjamini_hochberg_cutoff(p_values, config.false_discovery_rate) if tested else 0.0
    findings = [
        Finding(
            kind="pinned", day=day, group=TraceGroup(environment, "", check.prompt_name, check.version, check.model),
            metric=test.metric, summary=f"{test.summary}, dataset {check.dataset}", calls=test.pairs, value=test.value,
            reference=test.reference,
            change=test.change, statistic=test.p_value, statistic_name=test.statistic_name, threshold=cutoff,
            p_value=test.p_value, adjusted_p_value=float(adjusted_p),
            details={"dataset": check.dataset, "label": check.label, "eval_run_id": check.eval_run_id, "notes": check.notes},
        )
        for (check, test), adjusted_p in zip(tested, adjusted, strict=True)
        if adjusted_p <= config.false_discovery_rate and test.large_enough
    ]  # fmt: skip
    return sorted(findings, key=lambda f: (f.adjusted_p_value or 1.0, f.group, f.metric))
