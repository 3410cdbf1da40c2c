"""Pinned-model drift statistics: sampling variation is not drift, a provider update is, a partial one
adds up over the nights of a round, and each finding says in words what moved and how sure it is."""

from __future__ import annotations

import json
import re
from datetime import date

import numpy as np
import pytest

from llmops.drift.pinned import PinnedCheck, pinned_findings
from llmops.drift.pinned_compare import (
    ACCUMULATED_METRICS,
    NightScores,
    PairedAnswers,
    PinnedDriftConfig,
    Traits,
    accumulated_tests,
    compare,
    continue_round,
    is_refusal,
    structural_checks,
    structure_holds,
)
from llmops.drift.pinned_references import pinned_subset
from llmops.evals.datasets import Dataset, EvalExample
from llmops.sim.knowledge import REFUSAL
from llmops.stats import spent_level

DIMENSION = 384


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def answers(
    seed: int,
    examples: int = 40,
    *,
    drift: float = 0.0,
    length_factor: float = 1.0,
    refusals: int = 0,
    judge_drop: float = 0.0,
    judged: bool = True,
) -> list[PairedAnswers]:
    """Each example's reference, its re-run and tonight's answer. Re-runs and tonight vary around the
    reference by the same sampling noise; ``drift`` moves tonight's answers further, in one direction."""
    rng = np.random.default_rng(seed)
    direction = unit(rng.normal(size=DIMENSION))
    pairs = []
    for index in range(examples):
        base = unit(rng.normal(size=DIMENSION))
        length = int(rng.integers(150, 600))
        judge = float(rng.choice([0.75, 1.0]))

        def sampled(shift: float, factor: float, refused: bool, score: float) -> Traits:
            embedding = unit(base + rng.normal(0, 0.015, DIMENSION) + shift * direction)
            jitter = int(length * factor * rng.uniform(0.9, 1.1))
            return Traits(embedding, jitter, refused, None, score if judged else None)

        reference = sampled(0.0, 1.0, False, judge)
        rerun = sampled(0.0, 1.0, False, judge)
        new = sampled(drift, length_factor, index < refusals, max(0.0, judge - judge_drop * rng.uniform(0.5, 1.5)))
        pairs.append(PairedAnswers(f"example-{index}", reference, rerun, new))
    return pairs


def drifted(pairs: list[PairedAnswers], config: PinnedDriftConfig | None = None) -> dict[str, str]:
    tests, _ = compare(pairs, config)
    check = PinnedCheck("support-chat", "2.3.0", "claude-3-5-sonnet-20241022", "golden", "production", "compared", tests)
    return {f.metric: f.summary for f in pinned_findings(date(2026, 11, 26), "production", [check], config)}


@pytest.mark.parametrize("seed", range(8))
def test_sampling_variation_alone_is_not_drift(seed: int) -> None:
    assert drifted(answers(seed)) == {}


def test_a_provider_update_is_found_and_said_in_words() -> None:
    found = drifted(answers(1, drift=1.0, length_factor=2.5, refusals=9, judge_drop=0.3))
    assert set(found) == {"pinned:similarity", "pinned:output_length", "pinned:refusal_rate", "pinned:judge_score"}
    assert re.fullmatch(
        r"outputs' similarity to the reference 0\.\d\d, usual 0\.\d\d \(the reference's own re-run\), over 40 examples, dataset golden",
        found["pinned:similarity"],
    ), found["pinned:similarity"]
    assert found["pinned:refusal_rate"] == "refusals 9/40 vs 0/40 in the reference, dataset golden"
    assert re.fullmatch(
        r"output length \+1\d\d % vs the reference \(median [\d,]+ vs [\d,]+ characters\), dataset golden",
        found["pinned:output_length"],
    )
    assert re.fullmatch(
        r"judge score 0\.\d\d vs 0\.\d\d in the reference \(\d\.\d vs \d\.\d of 5\), over 40 examples, dataset golden",
        found["pinned:judge_score"],
    )


def test_small_moves_need_a_practical_effect() -> None:
    """Two new refusals out of 40, or a slightly different wording, are not an incident."""
    assert drifted(answers(2, refusals=2)) == {}
    assert drifted(answers(2, length_factor=1.08)) == {}


def test_a_missing_judge_leaves_the_other_traits_compared() -> None:
    tests, notes = compare(answers(3, drift=1.0, judged=False))
    assert "pinned:judge_score" not in {test.metric for test in tests}
    assert notes == ["judge score not available (0 of 40 examples judged both times)"]
    assert {"pinned:similarity", "pinned:output_length", "pinned:refusal_rate"} <= {test.metric for test in tests}


def test_too_few_answered_examples_are_not_compared() -> None:
    tests, notes = compare(answers(4, examples=12, drift=1.0))
    assert tests == [] and notes == ["only 12 examples answered both times, fewer than 20: not compared"]


def test_findings_carry_the_test_behind_them() -> None:
    tests, _ = compare(answers(5, drift=1.0))
    check = PinnedCheck(
        "support-chat", "2.3.1", "claude-3-5-sonnet-20241022", "golden", "canary", "compared", tests, eval_run_id=7
    )
    [similarity] = [f for f in pinned_findings(date(2026, 11, 26), "production", [check]) if f.metric == "pinned:similarity"]
    assert similarity.kind == "pinned" and similarity.calls == 40
    assert (similarity.group.environment, similarity.group.prompt_name, similarity.group.prompt_version) == (
        "production", "support-chat", "2.3.1",
    )  # fmt: skip
    assert similarity.value < similarity.reference and similarity.change == pytest.approx(similarity.value - similarity.reference)
    assert similarity.p_value <= similarity.adjusted_p_value <= 0.05 and similarity.statistic == similarity.p_value
    assert similarity.threshold is not None and similarity.p_value <= similarity.threshold
    assert "Wilcoxon signed-rank" in (similarity.statistic_name or "")
    assert similarity.details == {"dataset": "golden", "label": "canary", "eval_run_id": 7, "notes": []}


def example(example_id: str, **fields: object) -> EvalExample:
    return EvalExample.model_validate({"id": example_id, "input": f"question {example_id}", **fields})


def test_the_subset_is_stable_and_in_file_order() -> None:
    dataset = Dataset(name="golden", prompt_name="support-chat", examples=[example(f"case-{i:03d}") for i in range(100)])
    subset = pinned_subset(dataset, 40)
    assert len(subset) == 40 and subset.name == "golden@pinned"
    ids = [e.id for e in subset.examples]
    assert ids == sorted(ids)  # file order kept
    reordered = dataset.model_copy(update={"examples": list(reversed(dataset.examples))})
    assert {e.id for e in pinned_subset(reordered, 40).examples} == set(ids)
    grown = dataset.model_copy(update={"examples": [*dataset.examples, *(example(f"new-{i}") for i in range(10))]})
    assert len(set(ids) & {e.id for e in pinned_subset(grown, 40).examples}) >= 30  # only new ids that hash lower enter


def test_refusals_are_recognised_in_prose_and_json() -> None:
    assert is_refusal(REFUSAL)
    assert is_refusal(json.dumps({"refusal": REFUSAL}))
    assert is_refusal("I cannot assist with that request.")
    assert not is_refusal("Refunds are available within 30 days; I can help you with the return.")


def test_structure_is_checked_where_the_example_or_its_reference_has_one() -> None:
    schema = {"type": "json_schema", "value": {"type": "object", "required": ["summary"]}}
    with_schema = example("a", assertions=[schema])
    checks = structural_checks(with_schema, "not json at all")
    assert [c.type for c in checks] == ["json_schema"]
    assert structure_holds(checks, '{"summary": "ok"}') is True
    assert structure_holds(checks, '{"note": "wordier"}') is False
    plain = example("b")
    assert structural_checks(plain, "Prose answer.") == [] and structure_holds([], "anything") is None
    [json_valid] = structural_checks(plain, '{"topic": "refund"}')
    assert json_valid.type == "json_valid" and structure_holds([json_valid], "Sorry, prose now") is False


def rounds_of(seed: int, nights: int, *, updated_share: float, examples: int = 40) -> list[list[PairedAnswers]]:
    """The same reference and re-run each night, tonight's answer drawn afresh; on ``updated_share``
    of the calls a provider update moves it far (and the judge marks it down)."""
    rng = np.random.default_rng(seed)
    bases = [unit(rng.normal(size=DIMENSION)) for _ in range(examples)]

    def answer(base: np.ndarray, updated: bool) -> Traits:
        shift = unit(rng.normal(size=DIMENSION)) if updated else 0.0
        score = 0.25 if updated else float(rng.choice([0.75, 1.0]))
        return Traits(unit(base + rng.normal(0, 0.015, DIMENSION) + shift), 300, False, None, score)

    reference = [(answer(base, False), answer(base, False)) for base in bases]
    return [
        [PairedAnswers(f"example-{index}", *kept, answer(base, bool(rng.random() < updated_share)))
         for index, (base, kept) in enumerate(zip(bases, reference, strict=True))]
        for _ in range(nights)
    ]  # fmt: skip


def test_a_partial_update_too_small_for_one_night_adds_up_over_the_round() -> None:
    """A quarter of the calls updated, too few for the first night: the round's evidence alarms
    within three nights, and the finding says how much evidence there is and which boundary it crossed."""
    config = PinnedDriftConfig()
    kept: list[NightScores] = []
    verdicts = []
    for night, pairs in enumerate(rounds_of(11, 3, updated_share=0.25), start=1):
        accumulated, kept = continue_round(pairs, kept, config)
        check = PinnedCheck("support-chat", "2.3.1", "claude-3-5-sonnet-20241022", "golden", "canary", "compared",
                            accumulated=accumulated)  # fmt: skip
        findings = pinned_findings(date(2026, 11, 26), "production", [check], config)
        verdicts.append((night, {f.metric for f in findings}, len(kept)))
        if findings:
            break
    night, metrics, left = verdicts[-1]
    assert [v[1] for v in verdicts[:-1]] == [set()] * (night - 1) and 1 < night <= 3, verdicts
    assert metrics & set(ACCUMULATED_METRICS) and left == 0  # the alarm starts a new round
    [finding] = [f for f in findings if f.metric in ACCUMULATED_METRICS][:1]
    assert finding.threshold == spent_level(config.round_alpha / 2, night, config.round_nights)
    assert finding.statistic is not None and finding.statistic <= finding.threshold
    assert re.search(rf"over {night} nights vs 0\.\d\d for .*: p [\d.e-]+, alarm at p ≤ [\d.e-]+ \(night {night} of 3\), crossed, "
                     r"dataset golden$", finding.summary), finding.summary  # fmt: skip
    assert finding.details is not None and finding.details["nights"] == night


@pytest.mark.parametrize("seed", range(4))
def test_an_unchanged_model_keeps_the_round_going_and_says_how_far_the_boundary_is(seed: int) -> None:
    config = PinnedDriftConfig()
    kept: list[NightScores] = []
    for night, pairs in enumerate(rounds_of(seed, 3, updated_share=0.0), start=1):
        accumulated, kept = continue_round(pairs, kept, config)
        assert [test.metric for test in accumulated] == list(ACCUMULATED_METRICS)
        assert not any(test.alarm for test in accumulated)
        assert len(kept) == (night if night < 3 else 0)  # the round's last night starts a new one
        line = PinnedCheck("support-chat", "2.3.1", "m", "golden", None, "compared", accumulated=accumulated).line()
        assert re.search(rf"alarm at p ≤ [\d.e-]+ \(night {night} of 3\), \d+× away", line), line


def test_without_a_judge_similarity_has_the_whole_level() -> None:
    [pairs] = rounds_of(3, 1, updated_share=0.0)
    [similarity] = accumulated_tests(pairs, [NightScores.of(pairs)], judged=False)
    [judged, _] = accumulated_tests(pairs, [NightScores.of(pairs)], judged=True)
    assert similarity.level == 2 * judged.level == spent_level(PinnedDriftConfig().round_alpha, 1, 3)


def test_the_round_compares_only_examples_answered_every_night() -> None:
    first, second = rounds_of(5, 2, updated_share=0.0)
    nights = [NightScores.of(first[:30]), NightScores.of(second)]
    [similarity, _] = accumulated_tests(second, nights)
    assert similarity.examples == 30 and similarity.nights == 2
    assert NightScores.from_json(nights[0].as_json()) == nights[0]
