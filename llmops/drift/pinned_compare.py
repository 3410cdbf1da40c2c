"""Pinned-model drift statistics: what is read of an answer, and the paired tests of tonight's answers against the reference.

An answer is reduced to its ``Traits`` (embedding, length, refusal, validity of its structured
output, judge score); each example pairs the reference's answer, the reference's own re-run and
tonight's answer (``PairedAnswers``). ``compare`` tests each trait over the examples with a paired
test (Wilcoxon signed-rank; exact McNemar for yes/no traits), so ordinary sampling variation,
which moves answers both ways, does not alert, while a provider update, which moves most answers
the same way, does. A provider update that reaches only some calls moves too few answers for
one night's test; ``accumulated_tests`` adds up the similarity and judge score of every night of
a round (``NightScores``, kept with the reference) against each example's own reference draws, at
a share of the round's level per night. No store and no model here: ``llmops.drift.pinned`` asks the model and
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
from llmops.stats import Alternative, mcnemar_p_value, reference_excess_p_value, signed_rank_p_value, spent_level

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
    round_alpha: float = Field(
        0.01, gt=0, lt=1, description="Chance that an unchanged model's check alarms at any night of a round of nights."
    )
    round_nights: int = Field(
        3, ge=1, description="Nights evidence accumulates over before a new round starts (it gains little after a few)."
    )


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


# -- evidence over nights -----------------------------------------------------------------------------------

ACCUMULATED_METRICS = ("pinned:similarity_nights", "pinned:judge_score_nights")
"""The traits whose evidence accumulates over a round of nights; a judged prompt's round level is split evenly between them."""


@dataclass(frozen=True)
class NightScores:
    """One night's per-example scores, kept with the reference for the rest of the round.

    Attributes:
        similarity: Each example's answer's similarity to its reference answer.
        judge: Each judged example's judge score.

    Example:
        >>> NightScores({"refund-1": 0.93}, {}).as_json()
        {'similarity': {'refund-1': 0.93}, 'judge': {}}
    """

    similarity: dict[str, float]
    judge: dict[str, float]

    @classmethod
    def of(cls, pairs: Sequence[PairedAnswers]) -> NightScores:
        """Tonight's scores of the paired examples."""
        return cls(
            {p.example_id: cosine_similarity(p.new.embedding, p.reference.embedding) for p in pairs},
            {p.example_id: p.new.judge_score for p in pairs if p.new.judge_score is not None},
        )

    def as_json(self) -> dict[str, dict[str, float]]:
        """The scores as stored in the reference's details."""
        return {"similarity": self.similarity, "judge": self.judge}

    @classmethod
    def from_json(cls, stored: dict[str, dict[str, float]]) -> NightScores:
        """Scores as ``as_json`` stored them."""
        return cls(dict(stored["similarity"]), dict(stored["judge"]))


@dataclass(frozen=True)
class AccumulatedTest:
    """One trait over the round's nights so far against the reference's draws (``accumulated_tests``).

    Attributes:
        metric: ``pinned:similarity_nights`` or ``pinned:judge_score_nights``.
        nights: Nights of the round so far, tonight's included; ``round_nights`` how many a round has.
        examples: Examples answered every night of the round.
        value: The nights' mean; ``reference`` the reference draws' mean.
        fell: Examples whose nights' mean fell below their reference draws' mean; ``rose`` above it.
        p_value: ``reference_excess_p_value`` of every night of the round at once.
        level: Tonight's share of the round's level: an alarm when ``p_value`` is at most it.

    Example:
        >>> test = AccumulatedTest("pinned:similarity_nights", 2, 3, 40, 0.71, 0.86, 12, 3, 0.21, 0.0017)
        >>> test.explanation().split(": ")[1]
        'p 0.21, alarm at p ≤ 0.0017 (night 2 of 3), 124× away'
    """

    metric: str
    nights: int
    round_nights: int
    examples: int
    value: float
    reference: float
    fell: int
    rose: int
    p_value: float
    level: float

    @property
    def alarm(self) -> bool:
        """The evidence crossed tonight's boundary."""
        return self.p_value <= self.level

    def explanation(self) -> str:
        """The evidence so far, the boundary and whether it was crossed or how far it is, in words."""
        what, usual = (
            ("similarity to the reference", "the re-run") if self.metric == ACCUMULATED_METRICS[0]
            else ("judge score", "the reference")
        )  # fmt: skip
        nights = f"{self.nights} night{'s' if self.nights > 1 else ''}"
        verdict = "crossed" if self.alarm else f"{self.p_value / self.level:.0f}× away"
        return (
            f"{what} {self.value:.2f} over {nights} vs {self.reference:.2f} for {usual}, fell on {self.fell} of "
            f"{self.examples} examples, rose on {self.rose}: p {self.p_value:.2g}, alarm at p ≤ {self.level:.2g} "
            f"(night {self.nights} of {self.round_nights}), {verdict}"
        )


def _accumulated(
    metric: str, rows: list[list[float]], reference_draws: int, nights: int, level: float, config: PinnedDriftConfig
) -> AccumulatedTest:
    """One trait's rows (the reference's draws, then each night's) tested at tonight's share of the trait's level."""
    draws = np.array(rows)
    reference, later = draws[:, :reference_draws].mean(axis=1), draws[:, reference_draws:].mean(axis=1)
    return AccumulatedTest(
        metric=metric, nights=nights, round_nights=config.round_nights, examples=len(rows), value=float(later.mean()),
        reference=float(reference.mean()), fell=int(np.sum(later < reference - 1e-9)),
        rose=int(np.sum(later > reference + 1e-9)), p_value=reference_excess_p_value(draws, reference_draws),
        level=spent_level(level, nights, config.round_nights),
    )  # fmt: skip


def accumulated_tests(
    pairs: Sequence[PairedAnswers], nights: Sequence[NightScores], config: PinnedDriftConfig | None = None, judged: bool = True
) -> list[AccumulatedTest]:
    """Similarity and judge score over every night of the round so far, each against the reference's own draws.

    While the model is unchanged, an example's reference draws and its nightly answers are
    exchangeable, so ``reference_excess_p_value`` holds however the nights share the reference:
    similarity to the reference answer compares the re-run with each night's answer, the judge
    score the reference's two answers with each night's. A provider update that reaches only
    some calls drops some examples far below their own spread, and the drops add up night
    after night; an example that answers the same every time adds nothing. A trait with fewer
    than ``min_pairs`` examples answered every night is left out.

    Args:
        pairs: Each example answered by the reference, its re-run and tonight (the draws of the reference).
        nights: The round's nights so far, tonight's last (``NightScores.of(pairs)``).
        config: The round's level and length, the pairs needed; the defaults when None.
        judged: The prompt has an LLM judge: the round's level is split between the two traits
            (without one, similarity has it all).

    Returns:
        The tests, at most one per trait of ``ACCUMULATED_METRICS``.

    Example:
        ```python
        nights = [*reference.nights, NightScores.of(pairs)]
        alarms = [test.explanation() for test in accumulated_tests(pairs, nights) if test.alarm]
        ```
    """
    config = config or PinnedDriftConfig()
    level = config.round_alpha / (len(ACCUMULATED_METRICS) if judged else 1)
    every_night = [p for p in pairs if all(p.example_id in night.similarity for night in nights)]
    tests = []
    similarity = [
        [cosine_similarity(p.rerun.embedding, p.reference.embedding), *(night.similarity[p.example_id] for night in nights)]
        for p in every_night
    ]
    if len(similarity) >= config.min_pairs:
        tests.append(_accumulated(ACCUMULATED_METRICS[0], similarity, 1, len(nights), level, config))
    judge = [
        [p.reference.judge_score, p.rerun.judge_score, *(night.judge[p.example_id] for night in nights)]
        for p in every_night
        if p.reference.judge_score is not None and p.rerun.judge_score is not None
        and all(p.example_id in night.judge for night in nights)
    ]  # fmt: skip
    if judged and len(judge) >= config.min_pairs:
        tests.append(_accumulated(ACCUMULATED_METRICS[1], judge, 2, len(nights), level, config))
    return tests


def continue_round(
    pairs: Sequence[PairedAnswers], earlier: Sequence[NightScores], config: PinnedDriftConfig | None = None, judged: bool = True
) -> tuple[list[AccumulatedTest], list[NightScores]]:
    """Add tonight to the round's earlier nights and test them all; the round ends at an alarm or its last night.

    Args:
        pairs: Tonight's examples with the reference's answers.
        earlier: The round's nights before tonight (a round as long as ``round_nights`` or longer
            is over, so tonight starts a new one).
        config: The round's level and length; the defaults when None.
        judged: The prompt has an LLM judge.

    Returns:
        ``(tests, kept)``: tonight's ``accumulated_tests``, and the nights to keep for tomorrow
        (none when the round is over).

    Example:
        ```python
        tests, kept = continue_round(pairs, reference.nights, config)
        save_round(engine, reference.id, kept)
        ```
    """
    config = config or PinnedDriftConfig()
    nights = [*(earlier if len(earlier) < config.round_nights else []), NightScores.of(pairs)]
    tests = accumulated_tests(pairs, nights, config, judged)
    over = len(nights) == config.round_nights or any(test.alarm for test in tests)
    return tests, [] if over else nights
