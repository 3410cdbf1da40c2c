"""Pinned-model drift: has the provider changed the model behind an unchanged, pinned model id?

When a version starts serving, its answers on a fixed subset of each of its eval datasets are
kept as a reference (``capture``; the subset and the store are ``llmops.drift.pinned_references``'s).
Each night the subset is asked again (``recheck``), through the eval runner with its cache off,
so the provider really answers, and every new answer is paired with its example's reference and
compared trait by trait (``llmops.drift.pinned_compare``: similarity to the reference against the
reference's own re-run, judge score, output length, refusals, structured-output validity). A
finding needs the night's Benjamini–Hochberg adjusted p-value (over every version's tests) within
the false discovery rate and a practical effect (``pinned_findings``). A provider update that
reaches only part of the calls is often too small for one night: similarity and judge score are
also tested over every night of a round (``continue_round``; the nights are kept with the
reference), each night at its share of the round's level, and alarm when that boundary is
crossed. A judge that cannot be reached or read leaves the judge score out (reported as not
available); the other traits are still compared. This module owns the night: which versions, capture or re-check, and the findings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, Literal

import anthropic
import numpy as np
from sqlalchemy import Engine

from llmops.drift.findings import Finding
from llmops.drift.history import TraceGroup
from llmops.drift.pinned_compare import (
    AccumulatedTest,
    PairedAnswers,
    PinnedDriftConfig,
    PinnedTest,
    StructuralCheck,
    Traits,
    compare,
    continue_round,
    is_refusal,
    structural_checks,
    structure_holds,
)
from llmops.drift.pinned_references import (
    REFERENCE_SAMPLE,
    RERUN_SAMPLE,
    Reference,
    StoredAnswer,
    load_reference,
    pinned_subset,
    references_of,
    save_reference,
    save_round,
)
from llmops.evals import store as eval_store
from llmops.evals.datasets import Dataset, EvalExample, dataset_paths, load_dataset
from llmops.evals.embeddings import Embedder, default_embedder
from llmops.evals.runner import RunSettings, async_client, default_scorers, evaluate
from llmops.evals.scorers import ScorerConfig
from llmops.prompts import PromptVersion, get_prompt
from llmops.release.registry import Registry
from llmops.stats import benjamini_hochberg, benjamini_hochberg_cutoff

__all__ = [  # with PinnedDriftConfig, load_reference and references_of from next door, imported from here too
    "CREATED_BY",
    "JUDGE_METRIC",
    "Answered",
    "PinnedCheck",
    "PinnedDriftConfig",
    "Status",
    "answer_subset",
    "capture",
    "load_reference",
    "pinned_findings",
    "recheck",
    "references_of",
    "run_pinned_checks",
    "serving_versions",
]

CREATED_BY = eval_store.PINNED_DRIFT_CREATOR
"""Who the nightly check's eval runs and references are created by."""
JUDGE_METRIC = "judge"
"""The metric name the prompt's ``scorers.yaml`` gives its LLM judge."""


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
    structure: Callable[[EvalExample], list[StructuralCheck]] | None,
    config: PinnedDriftConfig,
    evals_dir: Path | str | None = None,
) -> Answered:
    """Ask the pinned model every example of ``subset`` through the eval runner, its output cache off.

    The provider answers every time. The prompt's scorers run as in any evaluation; the judge's
    score is kept when it could be read.

    ``structure`` gives each example's structural checks (None: decided later, from the
    reference's own answer); ``repeats`` is 2 for a reference (itself and its re-run).
    """
    settings = RunSettings(concurrency=config.concurrency, repeats=repeats, cache="off")
    scorers = default_scorers(prompt.name, evals_dir)
    run = await evaluate(
        prompt, subset, engine=engine, client=client, scorers=scorers, settings=settings, created_by=CREATED_BY,
        details={"purpose": purpose}, evals_dir=evals_dir,
    )  # fmt: skip
    rows = [row for row in await asyncio.to_thread(eval_store.results, engine, run.id) if row["output"] is not None]
    vectors: np.ndarray | list[np.ndarray] = (
        await asyncio.to_thread(embedder.embed, [row["output"] for row in rows]) if rows else []
    )
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
"""What became of a version's check tonight (see ``PinnedCheck``)."""


@dataclass
class PinnedCheck:
    """One serving version on one dataset's pinned subset tonight.

    Attributes:
        prompt_name: The prompt; ``version`` its version, ``model`` its pinned model.
        dataset: The dataset's name.
        label: The label the version serves under (``production``, ``canary``), if any.
        status: ``compared`` (tonight's answers were tested), ``captured`` (a reference was
            kept) or ``failed`` (neither).
        tests: The paired tests, when compared.
        accumulated: Similarity and judge score over the round's nights so far, when compared.
        notes: What could not be done or compared, and why.
        eval_run_id: The eval run that asked tonight.

    Example:
        >>> PinnedCheck("support-chat", "2.3.1", "claude-3-5-sonnet-20241022", "support-chat", "production", "captured").line()
        'support-chat 2.3.1 on claude-3-5-sonnet-20241022, support-chat: reference captured'
    """

    prompt_name: str
    version: str
    model: str
    dataset: str
    label: str | None
    status: Status
    tests: list[PinnedTest] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    eval_run_id: int | None = None
    accumulated: list[AccumulatedTest] = field(default_factory=list)

    def line(self) -> str:
        """The check in one line, for logs, the artifact and ``llmops drift reference``: over nights, the evidence so far."""
        compared = "; ".join([f"{len(self.tests)} traits compared", *(test.explanation() for test in self.accumulated)])
        what = {"compared": compared, "captured": "reference captured", "failed": "not checked"}
        notes = f" ({'; '.join(self.notes)})" if self.notes else ""
        return f"{self.prompt_name} {self.version} on {self.model}, {self.dataset}: {what[self.status]}{notes}"


def _reference_structure(reference: Reference) -> Callable[[EvalExample], list[StructuralCheck]]:
    """Structural checks decided by the reference's answer, so tonight's are held to the same."""

    def checks(example: EvalExample) -> list[StructuralCheck]:
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
    """Answer the version's pinned subset twice and store it as its reference, when enough was answered.

    Returns ``captured``, or ``failed`` with a note when too few examples were answered twice.
    """
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
    """Ask the reference's examples again and compare each new answer with its reference, tonight and over the round.

    Tonight's scores join the round's nights kept with the reference; the round starts again
    after an alarm or its last night. Only the examples still in the dataset unchanged are asked;
    a changed dataset is noted.

    Returns ``compared`` with its tests, or ``failed`` when too few examples were answered.
    """
    subset = reference.subset(dataset)
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
    accumulated: list[AccumulatedTest] = []
    if tests:
        accumulated, kept = continue_round(pairs, reference.nights, config, answered.judged)
        await asyncio.to_thread(save_round, engine, reference.id, kept)
    if reference.dataset_hash != dataset.content_hash:
        notes.insert(0, f"the dataset changed since the reference of {reference.captured_at:%Y-%m-%d}: "
                        f"{len(subset)} of its {reference.examples} examples are unchanged and were compared")  # fmt: skip
    return PinnedCheck(
        prompt.name, prompt.version, prompt.model, dataset.name, label, "compared" if tests else "failed",
        tests=tests, notes=answered.notes + notes, eval_run_id=answered.run.id, accumulated=accumulated,
    )  # fmt: skip


# -- the night ---------------------------------------------------------------------------------------------


def serving_versions(registry: Registry, prompt_names: Sequence[str], environment: str) -> list[tuple[str, str, str]]:
    """Every production and canary version of the prompts: what the nightly check re-asks.

    Args:
        registry: The prompt registry.
        prompt_names: The prompts to look at.
        environment: Whose labels.

    Returns:
        ``(prompt, version, label)`` of each, a version holding both labels once (as production).

    Example:
        ```python
        targets = serving_versions(Registry(engine), ["support-chat"], "production")
        checks = run_pinned_checks(engine, targets)
        ```
    """
    serving: list[tuple[str, str, str]] = []
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
    """One version on each of its datasets: capture where there is no usable reference, else re-check."""
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
    """Check each serving version on each of its datasets: capture a reference, or re-ask and compare.

    A reference is captured where there is none, or too few of its examples are left unchanged
    (``force``: always); otherwise, unless ``capture_only``, the subset is asked again and
    compared. A version whose prompt file or datasets cannot be read is reported as a failed
    check; the others still run.

    Args:
        engine: The store.
        targets: ``(prompt, version, label)`` of each version (``serving_versions``).
        capture_only: Capture missing references, compare nothing.
        force: Capture every reference again.
        api_key: The Anthropic API key; the environment's when None.
        base_url: The Anthropic endpoint; the environment's when None.
        embedder: Embeds the answers; all-MiniLM-L6-v2 when None.
        config: Thresholds; the defaults when None.
        prompts_dir: Where the prompt files are.
        evals_dir: Where the eval datasets and scorers are.
        captured_by: Who captures the references.

    Returns:
        One check per version and dataset.

    Raises:
        ModelUnavailable: When no model is configured (neither a key nor a base URL).

    Example:
        ```python
        checks = run_pinned_checks(engine, [("support-chat", "2.3.1", "production")])
        findings = pinned_findings(date.today(), "production", checks)
        ```
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
    """The night's drifted traits, Benjamini–Hochberg corrected over every version's tests, and the round's alarms.

    Args:
        day: The night's day.
        environment: Where the versions serve (the findings' group).
        checks: The night's checks (``run_pinned_checks``).
        config: The false discovery rate; the defaults when None.

    Returns:
        ``pinned`` findings, strongest first: ``statistic`` is the paired test's p-value and
        ``threshold`` the night's cutoff; ``details`` name the dataset, label, eval run and notes.
        An accumulated test's alarm (``pinned:similarity_nights``, ``pinned:judge_score_nights``)
        follows, its ``threshold`` the night's share of the round's level, not corrected again.

    Example:
        ```python
        findings = findings_of(day, report, pinning, pinned_findings(day, "production", checks))
        ```
    """
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
    findings += [
        Finding(
            kind="pinned", day=day, group=TraceGroup(environment, "", check.prompt_name, check.version, check.model),
            metric=test.metric, summary=f"{test.explanation()}, dataset {check.dataset}", calls=test.examples,
            value=test.value, reference=test.reference, change=test.value - test.reference, statistic=test.p_value,
            statistic_name=f"p of a permutation test of {test.nights} nights against each example's reference draws",
            threshold=test.level, p_value=test.p_value,
            details={"dataset": check.dataset, "label": check.label, "eval_run_id": check.eval_run_id, "notes": check.notes,
                     "nights": test.nights, "round_nights": test.round_nights},
        )
        for check in checks
        for test in check.accumulated
        if test.alarm
    ]  # fmt: skip
    return sorted(findings, key=lambda f: (f.adjusted_p_value or 1.0, f.group, f.metric))
