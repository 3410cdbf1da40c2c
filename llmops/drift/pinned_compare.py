"""Pinned-model drift statistics: what is read of an answer, and the paired tests of tonight's answers against the reference.

An answer is reduced to its ``Traits`` (embedding, length, refusal, validity of its structured
output, judge score); each example pairs the reference's answer, the reference's own re-run and
tonight's answer (``PairedAnswers``). ``compare`` tests each trait over the examples with a paired
test (Wilcoxon signed-rank; exact McNemar for yes/no traits), so ordinary sampling variation,
which moves answers both ways, does not alert, while a provider update, which moves most answers
the same way, does. No store and no model here: ``llmops.drift.pinned`` asks the model and
corrects the night's tests together; ``llmops.drift.pinned_references`` keeps the references.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field

from llmops.evals.datasets import EvalExample, JsonSchema, JsonValid
from llmops.evals.embeddings import cosine_similarity
from llmops.evals.scorers import ScorerInput, check_assertion
from llmops.stats import Alternative, mcnemar_p_value, signed_rank_p_value

REFUSAL = re.compile(
    r"\b(?:I|we)(?:'m| am)? (?:sorry,? (?:but )?(?:I|we) )?(?:can't|cannot|can not|won't|am unable to|'m unable to|"
    r"unable to) (?:help|assist|answer|comply)",
    re.I,
)
"""How answers decline; a refusal in a JSON answer is still this text inside it."""
ANY_JSON = JsonValid(type="json_valid")
"""The check of an example without JSON assertions whose reference answered in JSON."""

StructuralCheck = JsonValid | JsonSchema
"""An assertion on the structure of an answer: what ``structured_valid`` holds it to."""


class PinnedDriftConfig(BaseModel):
    """How pinned-model drift decides; the defaults are the ones ``bench_pinned_drift`` measures.

    Example:
        >>> PinnedDriftConfig(subset_size=60).min_pairs
        20
    """

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


def is_refusal(text: str) -> bool:
    """Whether an answer declines to help (in plain text or inside a JSON answer).

    Args:
        text: The answer.

    Returns:
        True when it refuses.

    Example:
        >>> is_refusal("I'm sorry, but I can't help with that request."), is_refusal("Your refund is on its way.")
        (True, False)
    """
    return REFUSAL.search(text) is not None


def structural_checks(example: EvalExample, reference_text: str) -> list[StructuralCheck]:
    """The checks an example's answers are held to: its JSON assertions, else JSON when the reference answered in JSON.

    Deciding by the reference's answer holds tonight's answers to what the model did then.

    Args:
        example: The eval example.
        reference_text: The reference's answer to it.

    Returns:
        The example's ``json_valid`` and ``json_schema`` assertions; without any, plain JSON
        validity when the reference answer is JSON; else none.

    Example:
        >>> from llmops.evals.datasets import EvalExample
        >>> structural_checks(EvalExample(id="a", input="Order status?"), '{"status": "shipped"}')
        [JsonValid(type='json_valid')]
    """
    checks = [assertion for assertion in example.assertions if isinstance(assertion, JsonValid | JsonSchema)]
    if checks:
        return checks
    return [ANY_JSON] if check_assertion(ANY_JSON, ScorerInput(reference_text)).passed else []


def structure_holds(checks: Sequence[StructuralCheck], text: str) -> bool | None:
    """Whether an answer passes its structural checks.

    Args:
        checks: The example's checks (``structural_checks``).
        text: The answer.

    Returns:
        True or False; None when the example has no checks.

    Example:
        >>> structure_holds([ANY_JSON], '{"status": "shipped"}'), structure_holds([ANY_JSON], "shipped"), structure_holds([], "")
        (True, False, None)
    """
    if not checks:
        return None
    return all(check_assertion(check, ScorerInput(text)).passed for check in checks)


@dataclass(frozen=True)
class Traits:
    """What the nightly comparison reads of one answer.

    Attributes:
        embedding: The answer's embedding (unit length).
        length: Its length in characters.
        refused: Whether it declines (``is_refusal``).
        structured_valid: Whether it passes its structural checks; None without any.
        judge_score: The prompt's LLM judge's score (0-1), None when not judged or not readable.

    Example:
        >>> import numpy as np
        >>> Traits(np.array([1.0, 0.0]), length=120, refused=False, structured_valid=None, judge_score=0.75).length
        120
    """

    embedding: np.ndarray
    length: int
    refused: bool
    structured_valid: bool | None
    judge_score: float | None


@dataclass(frozen=True)
class PairedAnswers:
    """One example: its reference answer, the reference's own re-run, and tonight's answer.

    The re-run shows how far the model's answers wander on their own: tonight's similarity to the
    reference is judged against the re-run's.

    Example:
        ```python
        pairs = [PairedAnswers(example.id, reference_traits, rerun_traits, new_traits)]
        tests, notes = compare(pairs)
        ```
    """

    example_id: str
    reference: Traits
    rerun: Traits
    new: Traits


@dataclass(frozen=True)
class PinnedTest:
    """One trait of one version's subset tonight against its reference, before the night's correction.

    Attributes:
        metric: The trait (``pinned:similarity``, ``pinned:judge_score``, ``pinned:output_length``,
            ``pinned:refusal_rate``, ``pinned:invalid_structure``).
        value: Tonight's value; ``reference`` the reference's; ``change`` between them.
        p_value: The paired test's p-value, described by ``statistic_name``.
        pairs: Examples compared.
        large_enough: The change is worth an alert if the test holds.
        summary: The comparison in words.

    Example:
        ```python
        tests, _ = compare(pairs)
        print([(t.metric, round(t.p_value, 3)) for t in tests if t.large_enough])
        ```
    """

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
    """The Wilcoxon signed-rank p-value of paired differences, and how a finding names it."""
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
    """The paired tests of one version's subset tonight against its reference.

    Similarity to the reference (against the re-run's), judge score, output length, refusals and,
    for examples with structured output, its validity; a trait with too few examples is left out.

    Args:
        pairs: Each example answered by the reference, its re-run and tonight.
        config: Thresholds; the defaults when None.
        judged: The prompt has an LLM judge, so a missing judge score is worth a note.

    Returns:
        ``(tests, notes)``: the tests, and notes on what could not be compared (no tests at all
        with fewer than ``min_pairs`` examples).

    Example:
        ```python
        tests, notes = compare(pairs, PinnedDriftConfig(), judged=True)
        ```
    """
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
