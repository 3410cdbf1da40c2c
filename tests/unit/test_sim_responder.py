"""The simulated model's answers: deterministic, shaped by the prompt, the model and drift."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from llmops.sim import SimConfig, UnknownModelError, resolve_model
from llmops.sim.faults import Fault, FaultInjector
from llmops.sim.knowledge import ESCALATION_OFFER, SUPPORT_TOPICS, VERBOSE_OPENER
from llmops.sim.protocol import MessagesRequest
from llmops.sim.responder import answer_text, complete
from llmops.sim.usage import PromptCache, count_input_tokens

SONNET = "claude-3-5-sonnet-20241022"
HAIKU = "claude-3-haiku-20240307"
OPUS = "claude-opus-4-1-20250805"
PLAIN_PROMPT = "You are a customer support assistant for Acme Corp."
POLICY_PROMPT = (
    "You are a customer support assistant for Acme Corp. Apply the refund policy and the other company "
    "policies exactly. Escalate angry customers to a human agent."
)
REFUND_FACTS = next(topic.facts for topic in SUPPORT_TOPICS if topic.name == "refund")
ALL_FACTS = [fact for topic in SUPPORT_TOPICS for fact in topic.facts]
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
    full = answer_text(request("Where is my order?", temperature=0))
    completion = complete(request("Where is my order?", temperature=0, stop_sequences=["order number"]))
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
    assert SimConfig(provider_updated_models=["claude-sonnet-4-5"]).provider_updated_models == {
        "claude-sonnet-4-5-20250929"
    }
    assert resolve_model("claude-3-5-sonnet-latest") == SONNET
    with pytest.raises(UnknownModelError, match="Known models"):
        resolve_model("claude-9")


def test_fault_sequence_is_reproducible_from_the_seed() -> None:
    config = SimConfig(error_rate_429=0.3, error_rate_529=0.2, hang_rate=0.1, seed=42)
    first, second = FaultInjector(config), FaultInjector(config)
    draws = [first.draw() for _ in range(50)]
    assert draws == [second.draw() for _ in range(50)]
    assert {Fault.RATE_LIMIT, Fault.OVERLOADED, Fault.HANG, None} <= set(draws)
