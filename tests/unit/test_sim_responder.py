"""The simulated model's answers: deterministic, shaped by the prompt, the model and drift."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from llmops.evals.datasets import EvalExample, load_datasets
from llmops.evals.scorers import JudgeScorer, ScorerInput, parse_judge_output
from llmops.prompts import get_prompt
from llmops.sim import SimConfig, UnknownModelError, resolve_model
from llmops.sim.faults import Fault, FaultInjector
from llmops.sim.grounding import SPECIFIC, PromptText, states
from llmops.sim.knowledge import ESCALATION_FOLLOW_UP, ESCALATION_OFFER, REFUSAL, SUPPORT_TOPICS, VERBOSE_OPENER
from llmops.sim.protocol import MessagesRequest
from llmops.sim.responder import answer_text, complete
from llmops.sim.usage import PromptCache, count_input_tokens

SONNET = "claude-3-5-sonnet-20241022"
HAIKU = "claude-3-haiku-20240307"
OPUS = "claude-opus-4-1-20250805"
PLAIN_PROMPT = "You are a customer support assistant for Acme Corp."
REFUND_FACTS = next(topic.facts for topic in SUPPORT_TOPICS if topic.name == "refund")
ALL_FACTS = [fact for topic in SUPPORT_TOPICS for fact in topic.facts]
POLICY_PROMPT = (
    "You are a customer support assistant for Acme Corp. Ask for the order number before you look anything up. "
    "Apply the company policies exactly:\n"
    + "\n".join(ALL_FACTS)
    + "\nEscalate angry customers to a human agent. "
    + ESCALATION_FOLLOW_UP
)
"""A prompt that states every policy the simulator knows: it may only say what its prompt states."""
SUPPORT_QUESTIONS = [
    "I want a refund for my blender.",
    "Can I return a toaster I bought last week?",
    "How long does shipping take to Denver?",
    "Is express delivery available?",
    "I forgot my password and can't log in.",
    "My account is locked out after a password reset.",
    "Why was I charged twice on my invoice?",
    "How do I cancel my subscription billing?",
    "Please delete my account and remove my data.",
    "Where is my order? It has been a week.",
    "What is the order status of #12345?",
    "Does the kettle have a warranty?",
    "When will the blender be in stock again?",
    "I need a refund, the mixer arrived broken.",
    "Can you ship to Canada with express shipping?",
    "I was overcharged on my last payment.",
    "How do I reset my password on mobile?",
    "What's the warranty on the coffee grinder product?",
    "My refund hasn't arrived yet, where is my money back?",
    "Can I track my order status online?",
]


def request(user: str, system: str | None = PLAIN_PROMPT, model: str = SONNET, **settings: object) -> MessagesRequest:
    body: dict[str, object] = {"model": model, "max_tokens": 1024, "messages": [{"role": "user", "content": user}]}
    if system is not None:
        body["system"] = system
    return MessagesRequest.model_validate({**body, **settings})


def facts_stated(text: str) -> int:
    return sum(fact in text for fact in ALL_FACTS)


def test_identical_requests_get_identical_text() -> None:
    for temperature in (0.0, 0.7, None):
        settings = {} if temperature is None else {"temperature": temperature}
        first = answer_text(request("I want a refund!!", POLICY_PROMPT, **settings))
        assert first == answer_text(request("I want a refund!!", POLICY_PROMPT, **settings))


def test_refund_policy_facts_only_when_the_prompt_asks_for_policy() -> None:
    with_policy = answer_text(request("I want a refund for my blender.", POLICY_PROMPT, model=OPUS))
    without_policy = answer_text(request("I want a refund for my blender.", PLAIN_PROMPT, model=OPUS))
    assert sum(fact in with_policy for fact in REFUND_FACTS) >= 3
    assert not any(fact in without_policy for fact in ALL_FACTS)


def test_escalation_offered_to_angry_customers_only_when_the_prompt_mentions_it() -> None:
    angry = "This is RIDICULOUS, my order never arrived and nobody answers!!"
    assert ESCALATION_OFFER in answer_text(request(angry, POLICY_PROMPT))
    assert ESCALATION_OFFER not in answer_text(request(angry, PLAIN_PROMPT))
    assert ESCALATION_OFFER not in answer_text(request("How long does shipping take?", POLICY_PROMPT))


def test_concise_prompt_gives_shorter_answers() -> None:
    concise = POLICY_PROMPT + " Keep answers concise."
    for question in SUPPORT_QUESTIONS[:5]:
        assert len(answer_text(request(question, concise))) < len(answer_text(request(question, POLICY_PROMPT)))


@pytest.mark.parametrize(
    "user",
    [
        "Where is my order?",
        "Summarize this document:\nAcme grew 20% this year. Costs rose. The outlook is strong.",
        "Please review this code:\ndef f(x=[]):\n    return x",
    ],
)
def test_json_prompt_gets_valid_json_for_every_feature(user: str) -> None:
    text = answer_text(request(user, "Answer only in JSON. Follow the refund policy."))
    assert isinstance(json.loads(text), dict)


def test_smaller_model_states_fewer_policy_facts_than_larger_model() -> None:
    haiku = sum(facts_stated(answer_text(request(q, POLICY_PROMPT, model=HAIKU))) for q in SUPPORT_QUESTIONS)
    sonnet = sum(facts_stated(answer_text(request(q, POLICY_PROMPT, model=SONNET))) for q in SUPPORT_QUESTIONS)
    assert haiku < sonnet


def test_provider_update_changes_answers_under_the_same_model_id() -> None:
    same_request = request("I want a refund for my blender.", POLICY_PROMPT)
    assert answer_text(same_request, provider_updated=True) != answer_text(same_request)
    assert answer_text(same_request, provider_updated=True) == answer_text(same_request, provider_updated=True)
    before = [answer_text(request(q, POLICY_PROMPT)) for q in SUPPORT_QUESTIONS]
    after = [answer_text(request(q, POLICY_PROMPT), provider_updated=True) for q in SUPPORT_QUESTIONS]
    assert sum(map(facts_stated, after)) < sum(map(facts_stated, before))
    assert sum(map(len, after)) > sum(map(len, before))
    assert any(text.startswith(VERBOSE_OPENER) for text in after)


DOCUMENT = (
    "Acme Corp reported record revenue in the third quarter. Sales grew 24% year over year, driven by the "
    "new blender line. The company opened two warehouses in Ohio. Operating costs rose 8% because of higher "
    "shipping prices. Management expects revenue growth to continue next year as the blender line expands to "
    "Europe. The cafeteria menu was also updated."
)


def test_summary_is_extractive_and_longer_for_larger_models() -> None:
    prompt = "You summarize documents for the support team."
    user = f"Summarize the following document:\n{DOCUMENT}"
    haiku = answer_text(request(user, prompt, model=HAIKU))
    opus = answer_text(request(user, prompt, model=OPUS))
    single = answer_text(request(user, prompt + " Reply in one sentence.", model=OPUS))
    for summary in (haiku, opus, single):
        assert summary and all(sentence in DOCUMENT for sentence in summary.split(". ")[:-1])
    assert len(single) < len(haiku) < len(opus) < len(DOCUMENT)
    assert "cafeteria" not in opus


FLAWED_CODE = """Please review this code:
```python
def load(user_id, cache={}):
    try:
        rows = cursor.execute(f"SELECT * FROM users WHERE id = {user_id}")
    except:
        pass  # TODO handle errors
    return rows
```"""


def test_code_review_reports_the_concrete_issues_in_the_snippet() -> None:
    review = answer_text(request(FLAWED_CODE, "You are a senior engineer doing code review.", model=OPUS))
    for issue in ("mutable-default-argument", "sql-injection", "bare-except", "todo", "missing-tests"):
        assert issue in review
    assert "Line 4 [high] bare-except" in review


def test_code_review_approves_clean_tested_code() -> None:
    clean = "Review this code:\ndef add(a, b):\n    return a + b\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    review = json.loads(answer_text(request(clean, "Code review. Respond in JSON.", model=OPUS)))
    assert review == {"issues": [], "verdict": "approve"}


def test_max_tokens_truncates_and_reports_max_tokens() -> None:
    completion = complete(request("Where is my order?", max_tokens=5))
    assert completion.stop_reason == "max_tokens"
    assert completion.output_tokens == 5
    assert len(completion.text) <= 20


def test_stop_sequence_cuts_the_text_before_it() -> None:
    full = answer_text(request("Where is my order?", POLICY_PROMPT, temperature=0))
    completion = complete(request("Where is my order?", POLICY_PROMPT, temperature=0, stop_sequences=["order number"]))
    assert completion.stop_reason == "stop_sequence"
    assert completion.stop_sequence == "order number"
    assert completion.text == full[: full.index("order number")]


def test_prompt_cache_writes_then_reads_the_prefix_within_its_ttl() -> None:
    now = [0.0]
    cache = PromptCache(ttl_5m_seconds=lambda: 300.0, clock=lambda: now[0])
    cached = MessagesRequest.model_validate(
        {
            "model": SONNET,
            "max_tokens": 10,
            "system": [{"type": "text", "text": "Policy " * 400, "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "Where is my order?"}],
        }
    )
    total = count_input_tokens(cached)
    first = cache.account(SONNET, cached)
    assert first.cache_creation_input_tokens == 700 and first.cache_read_input_tokens == 0
    assert first.input_tokens + first.cache_creation_input_tokens == total
    now[0] = 299.0
    second = cache.account(SONNET, cached)
    assert second.cache_read_input_tokens == 700 and second.cache_creation_input_tokens == 0
    assert second.input_tokens == total - 700
    assert cache.account(HAIKU, cached).cache_read_input_tokens == 0
    now[0] = 299.0 + 301.0
    assert cache.account(SONNET, cached).cache_creation_input_tokens == 700


def test_config_validates_rates_and_resolves_aliases() -> None:
    with pytest.raises(ValidationError, match="must be at most 1"):
        SimConfig(error_rate_429=0.7, error_rate_529=0.5)
    with pytest.raises(ValidationError, match="not a model the simulator knows"):
        SimConfig(provider_updated_models=["gpt-4"])
    assert SimConfig(provider_updated_models=["claude-sonnet-4-5"]).provider_updated_models == {"claude-sonnet-4-5-20250929"}
    assert resolve_model("claude-3-5-sonnet-latest") == SONNET
    with pytest.raises(UnknownModelError, match="Known models"):
        resolve_model("claude-9")


def test_fault_sequence_is_reproducible_from_the_seed() -> None:
    config = SimConfig(error_rate_429=0.3, error_rate_529=0.2, hang_rate=0.1, seed=42)
    first, second = FaultInjector(config), FaultInjector(config)
    draws = [first.draw() for _ in range(50)]
    assert draws == [second.draw() for _ in range(50)]
    assert {Fault.RATE_LIMIT, Fault.OVERLOADED, Fault.HANG, None} <= set(draws)


# --- the simulator as an LLM judge ----------------------------------------------------------------

JUDGE_MODEL = "claude-sonnet-4-20250514"
EVALS_DIR = Path(__file__).resolve().parents[2] / "evals"
REFUND_RUBRIC = (
    "States the refund policy that applies with its numbers (30 days from purchase, refunds processed in "
    "5-7 business days to the original payment method); asks for the order number."
)
REFUND_CASE = EvalExample(
    id="refund", input="Can I get a refund for my blender?", rubric=REFUND_RUBRIC,
    expected="Refunds are available within 30 days of purchase and processed within 5-7 business days. "
    "Please share your order number.",
)  # fmt: skip
COMPLETE_REFUND = (
    "Refunds are available within 30 days of purchase with a receipt or order number, and approved refunds "
    "are processed within 5-7 business days to the original payment method. Please share your order number."
)
VAGUE_REFUND = "I can help you with a refund. Please share your order number so I can start the request."


def judge_body(example: EvalExample, answer: str, *later_turns: dict[str, str], model: str = JUDGE_MODEL) -> MessagesRequest:
    """The request JudgeScorer sends for ``answer``, as the server receives it (extra_body merged in)."""
    judge = JudgeScorer(None, model)
    messages = [{"role": "user", "content": judge.first_message(example, ScorerInput(text=answer))}, *later_turns]
    arguments: dict[str, Any] = judge.request(messages)
    return MessagesRequest.model_validate({**arguments, **arguments.pop("extra_body", {})})


def judged(example: EvalExample, answer: str, *later_turns: dict[str, str]) -> tuple[float, str]:
    return parse_judge_output(answer_text(judge_body(example, answer, *later_turns)))


def test_a_judge_request_gets_a_score_and_reason_as_json_deterministically() -> None:
    reply = answer_text(judge_body(REFUND_CASE, COMPLETE_REFUND))
    data = json.loads(reply)
    assert set(data) == {"score", "reason"} and data["score"] in range(1, 6) and data["reason"]
    assert reply == answer_text(judge_body(REFUND_CASE, COMPLETE_REFUND))


def test_the_judge_grades_the_content_against_the_rubric_and_reference() -> None:
    complete_score, complete_reason = judged(REFUND_CASE, COMPLETE_REFUND)
    vague_score, vague_reason = judged(REFUND_CASE, VAGUE_REFUND)
    refusal_score, refusal_reason = judged(REFUND_CASE, REFUSAL)
    assert complete_score >= 4 and "asks for the order number" in complete_reason
    assert vague_score < complete_score and "does not state 30, 5-7" in vague_reason
    assert refusal_score == 1 and "refuses" in refusal_reason


def test_the_judge_checks_the_format_and_behaviours_the_rubric_names() -> None:
    review = EvalExample(
        id="review", input="Review this:\n```python\nimport os\n```",
        rubric="Notes that the code has no tests. Answer as JSON with 'issues' and 'verdict'; ends with the verdict approve_with_comments.",
    )  # fmt: skip
    good = json.dumps({"issues": [{"line": None, "issue": "No tests accompany this code."}], "verdict": "approve_with_comments"})
    assert judged(review, good)[0] >= 4
    prose_score, prose_reason = judged(review, "Looks fine to me. Verdict: approve.")
    assert prose_score <= 2 and "does not note the missing tests" in prose_reason
    json_only = EvalExample(id="json", input="Summarize: the parcel arrived late.", rubric="A summary as JSON.")
    assert "does not answer in JSON" in judged(json_only, "The parcel arrived late.")[1]


def test_the_judge_answers_on_the_scale_its_instructions_name_even_on_a_retry_turn() -> None:
    retry = [{"role": "assistant", "content": "Looks good!"}, {"role": "user", "content": 'Reply with JSON only: {"score": 4}'}]
    score, _ = judged(REFUND_CASE, COMPLETE_REFUND, *retry)
    assert score >= 4  # the answer to grade is in the first turn
    body = judge_body(REFUND_CASE, COMPLETE_REFUND)
    body = body.model_copy(update={"system": body.system_text().replace("integer 1-5", "integer 0-10")})
    assert 7 <= json.loads(answer_text(body))["score"] <= 10


def demo_pairs(prompt_name: str, versions: tuple[str, str]) -> dict[str, list[float]]:
    """Each demo version's answers to its dataset, graded as the configured judge grades them."""
    [dataset] = load_datasets(prompt_name, EVALS_DIR)
    scores: dict[str, list[float]] = {}
    for version in versions:
        prompt = get_prompt(prompt_name, version, EVALS_DIR.parent / "prompts")
        for example in dataset.examples:
            body = {"model": prompt.model, "system": prompt.system, "messages": example.messages(),
                    **prompt.parameters.model_dump(exclude_none=True)}  # fmt: skip
            answer = answer_text(MessagesRequest.model_validate(body))
            scores.setdefault(version, []).append(judged(example, answer)[0])
    return scores


@pytest.mark.parametrize(
    ("prompt_name", "worse", "better"),
    [("support-chat", "2.3.0", "2.3.1"), ("doc-summary", "1.1.0", "1.2.0"), ("code-review", "3.0.1", "3.0.2")],
)
def test_better_demo_versions_get_higher_judge_scores_with_realistic_noise(prompt_name: str, worse: str, better: str) -> None:
    scores = demo_pairs(prompt_name, (worse, better))
    # support-chat 2.3.1 states only its refund policy, so only refund questions get better answers
    assert statistics.mean(scores[better]) - statistics.mean(scores[worse]) > 0.5
    assert len(set(scores[better])) >= 3  # a judge is noisy: not every answer of one version gets the same grade


def test_the_model_states_only_the_facts_its_system_prompt_states() -> None:
    refund_only = "You are Acme Corp's support assistant. Follow the refund policy: " + " ".join(REFUND_FACTS)
    refund = answer_text(request("I want a refund for my blender.", refund_only, model=OPUS))
    shipping = answer_text(request("How long does shipping take to Denver?", refund_only, model=OPUS))
    assert sum(fact in refund for fact in REFUND_FACTS) >= 3
    assert facts_stated(shipping) == 0, "the prompt says nothing about shipping"


def test_a_policy_number_the_prompt_lost_never_appears_in_the_answer() -> None:
    lost_number = POLICY_PROMPT.replace("within 30 days of purchase", "within of purchase")
    lost_words = POLICY_PROMPT.replace(
        "Refunds are available within 30 days of purchase with a receipt or order number.", "30 days."
    )
    for prompt in (lost_number, lost_words):
        answers = [
            answer_text(request("I want a refund for my blender.", prompt, model=OPUS, temperature=t)) for t in (0.0, 0.5, 1.0)
        ]
        assert not any("30 days" in answer for answer in answers)
        assert all(sum(fact in answer for fact in REFUND_FACTS[1:]) >= 2 for answer in answers), "the other refund facts remain"


def test_a_handbook_prompt_supports_every_fact_and_its_compressed_shell_supports_none() -> None:
    handbook = get_prompt("help-center", "1.0.0", Path(__file__).resolve().parents[2] / "prompts").system
    prompt = PromptText.of(handbook)
    assert all(states(prompt, fact) for fact in ALL_FACTS)
    numbers_only = PromptText.of(" ".join(SPECIFIC.findall(handbook)))
    assert not any(states(numbers_only, fact) for fact in ALL_FACTS), "numbers without what they are about state nothing"


def test_the_order_number_is_asked_for_only_when_the_prompt_says_to() -> None:
    asks = answer_text(request("Where is my order?", "You are Acme Corp's assistant. Always ask for the order number first."))
    silent = answer_text(request("Where is my order?", "You are Acme Corp's assistant. Be friendly."))
    assert "order number" in asks and "order number" not in silent
