"""Scorers: deterministic assertions, the LLM judge (through a fake client), similarity, configuration."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from llmops.evals.datasets import EvalExample
from llmops.evals.embeddings import EmbeddingModelUnavailable, MiniLMEmbedder, default_model_dir
from llmops.evals.scorers import (
    AssertionScorer,
    JudgeOutputError,
    JudgeParseError,
    JudgeScorer,
    Score,
    ScorerConfigError,
    ScorerInput,
    SimilarityScorer,
    check_assertion,
    load_scorer_config,
    parse_judge_output,
    parse_scorer_config,
)
from llmops.pricing import TokenUsage, price_call

REPO = Path(__file__).parents[2]
JUDGE_MODEL = "claude-sonnet-4-20250514"


def example(**fields: Any) -> EvalExample:
    return EvalExample.model_validate({"id": "ex", "input": "Can I get a refund?", **fields})


def check(assertion: dict[str, Any], text: str = "", **output: Any) -> bool:
    parsed = example(assertions=[assertion]).assertions[0]
    return check_assertion(parsed, ScorerInput(text=text, **output)).passed


# --- assertions -------------------------------------------------------------------------------

SCHEMA = {"type": "object", "required": ["summary"], "properties": {"summary": {"type": "string"}}}


@pytest.mark.parametrize(
    ("assertion", "passing", "failing"),
    [
        ({"type": "equals", "value": "approve"}, "  approve\n", "approve with comments"),
        ({"type": "equals", "value": "Approve", "ignore_case": True}, "APPROVE", "reject"),
        ({"type": "contains", "value": "30 days"}, "within 30 days of purchase", "within 30 Days"),
        ({"type": "contains", "value": ["30 days", "order number"], "ignore_case": True},
         "Share your Order Number; refunds within 30 DAYS.", "within 30 days"),
        ({"type": "not_contains", "value": ["escalate", "human agent"]}, "Here is the answer.", "I will escalate this."),
        ({"type": "regex", "value": r"request[ _]changes"}, '{"verdict": "request_changes"}', "Verdict: approve."),
        ({"type": "regex", "value": r"^verdict", "ignore_case": True}, "VERDICT: ok", "the verdict"),
        ({"type": "json_valid"}, ' {"a": 1} ', "Sure! {\"a\": 1}"),
        ({"type": "json_schema", "value": SCHEMA}, '{"summary": "s"}', '{"summary": 3}'),
        ({"type": "json_schema", "value": SCHEMA}, '{"summary": "s", "extra": 1}', "not json"),
        ({"type": "max_length", "value": 5}, "12345", "123456"),
    ],
)  # fmt: skip
def test_each_assertion_passes_and_fails(assertion: dict[str, Any], passing: str, failing: str) -> None:
    assert check(assertion, passing) is True
    assert check(assertion, failing) is False


def test_cost_and_latency_limits_fail_when_unknown_rather_than_assume_zero() -> None:
    assert check({"type": "max_cost", "value": 0.01}, cost_usd=Decimal("0.0099")) is True
    assert check({"type": "max_cost", "value": 0.01}, cost_usd=0.011) is False
    assert check({"type": "max_cost", "value": 0.01}, cost_usd=None) is False
    assert check({"type": "max_latency", "value": 2000}, latency_ms=1999.0) is True
    assert check({"type": "max_latency", "value": 2000}, latency_ms=2500.0) is False
    assert check({"type": "max_latency", "value": 2000}) is False


def test_json_schema_reasons_name_the_failing_path() -> None:
    parsed = example(assertions=[{"type": "json_schema", "value": SCHEMA}]).assertions[0]
    result = check_assertion(parsed, ScorerInput(text='{"summary": 3}'))
    assert "at summary" in result.reason and "not of type 'string'" in result.reason


def test_json_schema_without_jsonschema_installed_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jsonschema", None)
    parsed = example(assertions=[{"type": "json_schema", "value": SCHEMA}]).assertions[0]
    with pytest.raises(RuntimeError, match="pip install jsonschema"):
        check_assertion(parsed, ScorerInput(text="{}"))


def test_the_assertion_score_is_the_fraction_passed_including_the_configs_extra_checks() -> None:
    scorer = AssertionScorer(extra=example(assertions=[{"type": "max_length", "value": 100}]).assertions)
    case = example(assertions=[{"type": "contains", "value": "30 days"}, {"type": "contains", "value": "receipt"}])
    score = scorer.score(case, ScorerInput(text="Refunds within 30 days."))
    assert score.value == pytest.approx(2 / 3)
    assert score.reason.startswith("2/3 assertions passed; failed: contains: missing ['receipt']")
    assert [item["passed"] for item in score.details["assertions"]] == [True, True, False]
    assert AssertionScorer().applies(example()) is False
    assert scorer.applies(example()) is True


def test_a_score_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Score(1.2, "too good")
    with pytest.raises(ValueError):
        Score(float("nan"), "not a number")


# --- the judge ----------------------------------------------------------------------------------


def response(text: str, input_tokens: int = 400, output_tokens: int = 30) -> SimpleNamespace:
    return SimpleNamespace(
        content=[SimpleNamespace(type="text", text=text)],
        usage=SimpleNamespace(input_tokens=input_tokens, output_tokens=output_tokens,
                              cache_read_input_tokens=None, cache_creation_input_tokens=None),
        model=JUDGE_MODEL,
    )  # fmt: skip


class FakeJudgeClient:
    """Answers each ``messages.create`` with the next scripted reply and records the requests."""

    def __init__(self, *replies: str, is_async: bool = False) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        self.messages = self
        self.is_async = is_async

    def create(self, **request: Any) -> Any:
        self.requests.append(request)
        reply = response(self.replies.pop(0))
        if self.is_async:

            async def later() -> SimpleNamespace:
                return reply

            return later()
        return reply


@pytest.mark.parametrize(
    ("reply", "stars", "reason"),
    [
        ('{"score": 4, "reason": "States the window."}', 4.0, "States the window."),
        ('```json\n{"score": 5, "reason": "All points."}\n```', 5.0, "All points."),
        ('Here is my grade: {"reason": "Misses the fee.", "score": "2"} Hope that helps.', 2.0, "Misses the fee."),
        ('{"score": "3/5"}', 3.0, ""),
        ('{"note": 1} then {"score": 1.0, "reason": "Off topic"}', 1.0, "Off topic"),
    ],
)  # fmt: skip
def test_judge_replies_are_parsed_robustly(reply: str, stars: float, reason: str) -> None:
    assert parse_judge_output(reply) == (stars, reason)


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("I'd give it a four.", "no JSON object"),
        ('{"grade": 4}', "no 'score'"),
        ('{"score": 7, "reason": "great"}', "from 1 to 5"),
        ('{"score": true}', "from 1 to 5"),
        ('{"score": "excellent"}', "from 1 to 5"),
    ],
)
def test_unreadable_judge_replies_are_errors(reply: str, problem: str) -> None:
    with pytest.raises(JudgeParseError, match=problem):
        parse_judge_output(reply)


def test_the_judge_scores_with_its_model_prompt_version_and_cost_recorded() -> None:
    client = FakeJudgeClient('{"score": 4, "reason": "Gives the 30-day window but not the fee rule."}')
    judge = JudgeScorer(client, JUDGE_MODEL, "1.0.0")
    case = example(rubric="States the 30-day window.", expected="Refunds within 30 days.")
    score = judge.score(case, ScorerInput(text="You have 30 days."))
    assert score.value == pytest.approx(0.75)
    assert score.reason == "Gives the 30-day window but not the fee rule."
    expected_cost = price_call(JUDGE_MODEL, TokenUsage(input_tokens=400, output_tokens=30), datetime.now(UTC))
    assert score.details == {
        "judge_model": JUDGE_MODEL, "judge_response_model": JUDGE_MODEL, "judge_prompt_version": "1.0.0",
        "judge_input_tokens": 400, "judge_output_tokens": 30, "judge_cost_usd": str(expected_cost),
        "attempts": 1, "stars": 4.0,
    }  # fmt: skip
    (request,) = client.requests
    assert request["model"] == JUDGE_MODEL and request["extra_body"] == {"temperature": 0.0}  # not a typed SDK argument
    prompt = request["messages"][0]["content"]
    assert "States the 30-day window." in prompt and "You have 30 days." in prompt
    assert "<reference_answer>\nRefunds within 30 days.\n</reference_answer>" in prompt


def test_a_malformed_judge_reply_is_retried_once_and_both_calls_are_paid_for() -> None:
    client = FakeJudgeClient("Looks good to me!", '{"score": 5, "reason": "Complete."}')
    score = JudgeScorer(client, JUDGE_MODEL).score(example(rubric="r"), ScorerInput(text="answer"))
    assert score.value == 1.0 and score.details["attempts"] == 2
    assert score.details["judge_input_tokens"] == 800
    retry = client.requests[1]["messages"]
    assert [m["role"] for m in retry] == ["user", "assistant", "user"]
    assert retry[1]["content"] == "Looks good to me!" and "JSON only" in retry[2]["content"]


def test_a_judge_that_stays_unreadable_raises_with_the_replies_and_cost() -> None:
    client = FakeJudgeClient("four", "still four")
    with pytest.raises(JudgeOutputError, match="no readable score twice") as caught:
        JudgeScorer(client, JUDGE_MODEL).score(example(rubric="r"), ScorerInput(text="answer"))
    assert caught.value.details["replies"] == ["four", "still four"]
    assert Decimal(caught.value.details["judge_cost_usd"]) > 0


def test_the_judge_works_with_an_async_client_through_ascore() -> None:
    client = FakeJudgeClient('{"score": 2, "reason": "Mostly misses."}', is_async=True)
    judge = JudgeScorer(client, JUDGE_MODEL, default_rubric="Be right.")
    score = asyncio.run(judge.ascore(example(), ScorerInput(text="answer")))
    assert score.value == pytest.approx(0.25)
    assert "Be right." in client.requests[0]["messages"][0]["content"]
    with pytest.raises(TypeError, match="ascore"):
        JudgeScorer(FakeJudgeClient("{}", is_async=True), JUDGE_MODEL).score(example(rubric="r"), ScorerInput(text="a"))


def test_the_judge_needs_a_pinned_model_a_known_prompt_version_and_a_rubric() -> None:
    with pytest.raises(ValueError, match="alias"):
        JudgeScorer(FakeJudgeClient(), "claude-sonnet-4-5")
    with pytest.raises(ValueError, match="no judge prompt version"):
        JudgeScorer(FakeJudgeClient(), JUDGE_MODEL, "9.9.9")
    judge = JudgeScorer(FakeJudgeClient(), JUDGE_MODEL)
    assert judge.applies(example()) is False and judge.applies(example(rubric="r")) is True


# --- similarity ---------------------------------------------------------------------------------


class BagOfWords:
    """A tiny deterministic embedder, to test the scorer without the model."""

    def embed(self, texts: list[str]) -> np.ndarray:
        vocabulary = ["refund", "days", "shipping", "cat", "30"]
        rows = np.array([[text.lower().count(word) for word in vocabulary] for text in texts], dtype=float)
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def test_similarity_compares_a_json_field_when_configured_and_clips_to_zero_one() -> None:
    scorer = SimilarityScorer(BagOfWords(), field="summary")
    case = example(expected="refund within 30 days")
    same = scorer.score(case, ScorerInput(text=json.dumps({"summary": "refund in 30 days", "key_points": []})))
    assert same.value == pytest.approx(1.0) and same.details["compared"] == "output.summary"
    prose = scorer.score(case, ScorerInput(text="the cat"))
    assert prose.value == 0.0 and prose.details["compared"] == "output"
    assert scorer.score(case, ScorerInput(text="   ")).reason == "the output is empty"
    assert scorer.applies(example()) is False


def real_embedder() -> MiniLMEmbedder:
    try:
        default_model_dir()
        import safetensors  # noqa: F401
        import tokenizers  # noqa: F401
    except (EmbeddingModelUnavailable, ImportError) as exc:
        pytest.skip(f"all-MiniLM-L6-v2 is not installed, so the real model is not tested: {exc}")
    return MiniLMEmbedder()


def test_the_real_model_reproduces_sentence_transformers() -> None:
    vectors = real_embedder().embed(["Refunds are available within 30 days of purchase.", "A man is eating food."])
    assert vectors.shape == (2, 384)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)
    # sentence-transformers' own output for the first text (all-MiniLM-L6-v2, normalised).
    reference = [-0.06915, 0.009943, 0.064931, 0.00013, 0.020566, 0.046162]
    assert vectors[0][:6] == pytest.approx(reference, abs=1e-5)


def test_the_embedder_runs_the_model_once_per_text(monkeypatch: pytest.MonkeyPatch) -> None:
    embedder = real_embedder()
    encoded: list[list[str]] = []
    encode = embedder._encode
    monkeypatch.setattr(embedder, "_encode", lambda texts: encoded.append(list(texts)) or encode(texts))
    first = embedder.embed(["Refunds within 30 days.", "A man is eating food.", "Refunds within 30 days."])
    again = embedder.embed(["A man is eating food.", "Express shipping is $14.99."])
    assert encoded == [["Refunds within 30 days.", "A man is eating food."], ["Express shipping is $14.99."]]
    assert np.array_equal(first[0], first[2]) and np.array_equal(again[0], first[1])


def test_similarity_ranks_a_paraphrase_above_an_unrelated_text() -> None:
    scorer = SimilarityScorer(real_embedder())
    case = example(expected="You can get a refund within 30 days of purchase if the item is unused.")
    reworded = "Unused items can be returned for your money back up to thirty days after you bought them."
    paraphrase = scorer.score(case, ScorerInput(text=reworded))
    unrelated = scorer.score(case, ScorerInput(text="Express shipping costs $14.99 and takes one to two business days."))
    assert paraphrase.value > unrelated.value + 0.2
    assert 0.0 <= unrelated.value < paraphrase.value <= 1.0


# --- per-prompt configuration ----------------------------------------------------------------------


@pytest.mark.parametrize("prompt_name", ["support-chat", "doc-summary", "code-review"])
def test_the_demo_scorer_configs_load_and_build(prompt_name: str) -> None:
    config = load_scorer_config(prompt_name, REPO / "evals")
    assert config.judge is not None and config.judge.model == JUDGE_MODEL
    names = [scorer.name for scorer in config.build(judge_client=FakeJudgeClient(), embedder=BagOfWords())]
    assert names == list(config.specs())
    with pytest.raises(ValueError, match="judge_client"):
        config.build()


def test_the_overall_score_reweights_over_the_scorers_that_applied() -> None:
    config = load_scorer_config("support-chat", REPO / "evals")  # assertions 0.5, similarity 0.2, judge 0.3
    assert config.overall({"assertions": Score(1.0, ""), "similarity": 0.5, "judge": None}) == pytest.approx(0.6 / 0.7)
    assert config.overall({}) is None
    assert config.passed("judge", 0.75) is True and config.passed("judge", 0.5) is False


def test_a_bad_scorer_config_lists_each_problem_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "chat" / "scorers.yaml"
    path.parent.mkdir()
    path.write_text(
        "judge:\n"                                   # 1
        "  model: claude-sonnet-4-5\n"               # 2
        "  prompt_version: '1.0.0'\n"                # 3
        "scorers:\n"                                 # 4
        "  assertions:\n"                            # 5
        "    weight: -1\n"                           # 6
        "    extra:\n"                               # 7
        "      - {type: max_cost}\n"                 # 8
        "  similarity:\n"                            # 9
        "    threshold: 2\n"                         # 10
        "  bleu: {}\n"                               # 11
        "reporting: yes\n"                           # 12
    )  # fmt: skip
    with pytest.raises(ScorerConfigError) as caught:
        parse_scorer_config(path)
    found = {(problem.line, problem.field) for problem in caught.value.problems}
    assert found == {
        (2, "judge.model"), (6, "scorers.assertions.weight"), (8, "scorers.assertions.extra.0.value"),
        (10, "scorers.similarity.threshold"), (11, "scorers.bleu"), (12, "reporting"),
    }  # fmt: skip
    assert "alias" in str(caught.value)


def test_a_judge_scorer_without_a_judge_section_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "chat" / "scorers.yaml"
    path.parent.mkdir()
    path.write_text("scorers:\n  judge:\n    weight: 1\n")
    with pytest.raises(ScorerConfigError, match="scorers.yaml:1: judge: the judge scorer needs a 'judge' section"):
        parse_scorer_config(path)
