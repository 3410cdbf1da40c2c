"""What prompt compression must leave verbatim: the segments ``protect`` cuts a system prompt into.

The prompts here are written for these tests (not the demo's help-center prompt): an extraction
prompt with a fenced JSON schema, an XML-tagged prompt, and a markdown prompt with a response
format section and every kind of fact a support prompt states.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmops.compression.protect import (
    Protection,
    Segment,
    compressible_share,
    missing_spans,
    protected_spans,
    segment,
)

EXTRACTION_PROMPT = """You extract invoice data for Brightwater Utilities. Read the invoice the user pastes and
return the fields below and nothing else.

## Rules
- Amounts are in dollars; a late fee of $7.99 applies after 15 days.
- Never guess a value that is not printed on the invoice.
- Dates are written as "YYYY-MM-DD" in the answer.

## Output schema
```json
{
  "account_id": "string",
  "amount_due": 0.0,
  "due_date": "YYYY-MM-DD",
  "late_fee_applies": false
}
```
"""

XML_PROMPT = """<role>
You are a travel desk assistant. You book rooms and explain what a booking includes, in a calm and
friendly tone, for people who are often tired after a long trip.
</role>
<policies>
A booking can be cancelled for free until 48 hours before arrival. After that the first night is charged.
It is nice to wish the guest a pleasant stay when the booking is confirmed.
</policies>
<examples>
<example>
The guest asks whether breakfast is included and the assistant looks at the rate and answers in one line.
</example>
</examples>
<output_format>
Answer in at most three short sentences, then a line that starts with the word Next and says what happens.
</output_format>
"""

MARKDOWN_PROMPT = """# Support assistant for Larkspur Home
You are talking to {customer_name}. Write {{literal}} exactly as it stands when you quote a template.
The team is very happy to help with anything at all, and it tries hard to be pleasant and patient.

## Billing
The Plus plan costs $7.99 a month and the Family plan costs $12.50 a month.
Refunds arrive within 5-7 business days on the original card.
Members get 15% off every order.
To change the plan, open Account > Billing > Plans and pick one.
Invoices are sent from billing@larkspur.example to the address on the account.
The full price list is at https://larkspur.example/pricing for anyone who wants it.
If the page says 'payment pending', run `refresh-status` from the admin console.
Always confirm the last four digits of the card before you talk about a charge.

## Response format
Reply in two short paragraphs of plain prose and never use bullet points or tables of any kind.
Sign off with the team name and nothing else at all.
"""


def coverage(text: str, protection: Protection | None = None) -> list[bool]:
    """For each character of ``text``: is it in a kept segment?"""
    covered: list[bool] = []
    for piece in segment(text, protection):
        covered += [piece.keep] * len(piece.text)
    return covered


def occurrences(text: str, fragment: str) -> list[int]:
    starts = [match.start() for match in re.finditer(re.escape(fragment), text)]
    assert starts, f"{fragment!r} is not in the prompt"
    return starts


def kept(text: str, fragment: str, protection: Protection | None = None) -> bool:
    """Every occurrence of ``fragment`` lies wholly inside kept segments."""
    covered = coverage(text, protection)
    return all(all(covered[start : start + len(fragment)]) for start in occurrences(text, fragment))


def compressible(text: str, word: str, protection: Protection | None = None) -> bool:
    """No character of any whole-word occurrence of ``word`` is kept."""
    covered = coverage(text, protection)
    starts = [match.start() for match in re.finditer(rf"\b{re.escape(word)}\b", text)]
    assert starts, f"{word!r} is not in the prompt"
    return not any(any(covered[start : start + len(word)]) for start in starts)


def line_of(text: str, fragment: str) -> str:
    return next(line for line in text.splitlines() if fragment in line)


@pytest.mark.parametrize("prompt", [EXTRACTION_PROMPT, XML_PROMPT, MARKDOWN_PROMPT], ids=["json", "xml", "markdown"])
def test_segments_join_back_to_the_original_prompt_exactly(prompt: str) -> None:
    pieces = segment(prompt)
    assert "".join(piece.text for piece in pieces) == prompt
    assert all(piece.text for piece in pieces)
    assert any(piece.keep for piece in pieces) and any(not piece.keep for piece in pieces)


def test_headings_line_breaks_and_list_markers_are_kept() -> None:
    assert kept(MARKDOWN_PROMPT, "# Support assistant for Larkspur Home\n")
    assert kept(MARKDOWN_PROMPT, "\n\n## Billing\n")
    assert kept(EXTRACTION_PROMPT, "\n- ")
    covered = coverage(MARKDOWN_PROMPT)
    assert all(covered[index] for index, char in enumerate(MARKDOWN_PROMPT) if char == "\n")


def test_a_fenced_json_schema_is_kept_whole_with_its_keys() -> None:
    fence = EXTRACTION_PROMPT[EXTRACTION_PROMPT.index("```json") :]
    assert kept(EXTRACTION_PROMPT, fence)
    spans = protected_spans(EXTRACTION_PROMPT)
    assert any(EXTRACTION_PROMPT[start:end].strip().endswith(fence.strip()) for start, end, _ in spans)


def test_xml_tags_are_kept_but_the_prose_between_them_may_be_compressed() -> None:
    for tag in ("<role>", "</role>", "<policies>", "</policies>", "<examples>", "<example>", "</example>", "</examples>"):
        assert kept(XML_PROMPT, tag), tag
    assert compressible(XML_PROMPT, "After that the first night is charged")


def test_a_fact_in_one_tagged_section_does_not_keep_the_prose_of_the_section_before() -> None:
    prompt = "<style>\nWe like long walks and a friendly chat.\n</style>\n<policy>\nRefunds take 30 days.\n</policy>\n"
    assert kept(prompt, " 30 days")
    assert compressible(prompt, "walks")


def test_an_output_format_section_is_kept_whole_as_a_heading_or_a_tag() -> None:
    section = MARKDOWN_PROMPT[MARKDOWN_PROMPT.index("## Response format") :]
    assert kept(MARKDOWN_PROMPT, section)
    tag_section = XML_PROMPT[XML_PROMPT.index("<output_format>") : XML_PROMPT.index("</output_format>") + 16]
    assert kept(XML_PROMPT, tag_section)
    whys = {why for _, _, why in _all_spans(MARKDOWN_PROMPT)} | {why for _, _, why in _all_spans(XML_PROMPT)}
    assert {"section 'Response format'", "<output_format> section"} <= whys


def test_an_output_format_section_stays_whole_when_its_example_holds_a_comment_line() -> None:
    prompt = (
        "## Output format\n```yaml\n# one answer per ticket\nanswer: text\n```\n"
        "After the block add nothing, not even a friendly greeting or a closing line.\n\n## Tone\nBe kind to everyone.\n"
    )
    assert kept(prompt, prompt[: prompt.index("## Tone")])


def test_a_section_named_in_keep_sections_is_kept_whole_and_others_are_not() -> None:
    billing = MARKDOWN_PROMPT[MARKDOWN_PROMPT.index("## Billing") : MARKDOWN_PROMPT.index("## Response format")]
    assert not kept(MARKDOWN_PROMPT, billing)
    assert kept(MARKDOWN_PROMPT, billing, Protection(keep_sections=("billing",)))
    policies = XML_PROMPT[XML_PROMPT.index("<policies>") : XML_PROMPT.index("</policies>") + 11]
    assert not kept(XML_PROMPT, policies)
    assert kept(XML_PROMPT, policies, Protection(keep_sections=("Policies",)))
    assert compressible(XML_PROMPT, "Answer", Protection(keep_sections=("Policies",))) is False  # <output_format>
    assert compressible(XML_PROMPT, "travel", Protection(keep_sections=("Policies",)))


def test_template_variables_both_single_and_double_braced_are_kept() -> None:
    assert kept(MARKDOWN_PROMPT, " {customer_name}")
    assert kept(MARKDOWN_PROMPT, " {{literal}}")
    assert "template variable" in {why for _, _, why in _all_spans("Say hi to {first_name} now.")}
    assert kept("Hello {a} and {{b}}.", " {a}") and kept("Hello {a} and {{b}}.", " {{b}}")


@pytest.mark.parametrize(
    "fact",
    ["$7.99 a month", "$12.50 a month", "5-7 business days", "15% off", "$7.99 applies", "15 days", "48 hours"],
)
def test_numbers_are_kept_with_their_unit(fact: str) -> None:
    prompt = next(text for text in (MARKDOWN_PROMPT, EXTRACTION_PROMPT, XML_PROMPT) if fact in text)
    assert kept(prompt, fact)


@pytest.mark.parametrize(
    ("sentence", "fact"),
    [
        ("Prices run from $7.99 to $12.99 depending on the size.", "$7.99 to $12.99"),
        ("Prices run from $7.99–$12.99 depending on the size.", "$7.99–$12.99"),
        ("Allow 3 to 4 calendar days for the parcel.", "3 to 4 calendar days"),
        ("Fees are €20 per person and 2.5% of the total.", "€20 per"),
        ("It serves 1,000,000 users in total.", "1,000,000 users"),
        ("The ticket #4521 was opened.", "#4521 was"),
    ],
)
def test_money_ranges_percentages_and_large_numbers_are_kept_whole(sentence: str, fact: str) -> None:
    assert kept(sentence, fact)


@pytest.mark.parametrize(
    ("sentence", "fact"),
    [
        ("Our phone line is open 24/7 for urgent cases.", "24/7"),
        ("The chat is staffed from 9:00 to 17:00 on weekdays.", "9:00 to 17:00"),
        ("Call 1-800-555-0199 if the parcel is late.", "1-800-555-0199"),
    ],
)
def test_numbers_with_slashes_times_and_phone_numbers_are_kept_whole(sentence: str, fact: str) -> None:
    assert kept(sentence, fact)


@pytest.mark.parametrize(
    ("fragment", "why"),
    [
        (" Account > Billing > Plans", "menu path"),
        (" billing@larkspur.example", "e-mail address"),
        (" https://larkspur.example/pricing", "URL"),
        (" 'payment pending'", "quoted term"),
        (" `refresh-status`", "inline code"),
        (' "YYYY-MM-DD"', "quoted term"),
    ],
)
def test_menu_paths_emails_urls_quoted_terms_and_inline_code_are_kept(fragment: str, why: str) -> None:
    prompt = MARKDOWN_PROMPT if fragment in MARKDOWN_PROMPT else EXTRACTION_PROMPT
    assert kept(prompt, fragment)
    kinds = {kind for start, end, kind in _all_spans(prompt) if prompt[start:end].strip() == fragment.strip()}
    assert why in kinds


def _all_spans(text: str) -> list[tuple[int, int, str]]:
    """Every span each single rule finds (before merging), to tell why a fragment is kept."""
    from llmops.compression.protect import _spans

    return _spans(text, Protection())


def test_json_keys_in_prose_are_kept() -> None:
    sentence = 'Fill "status": with one of open or closed and "reason": with a short text.'
    assert kept(sentence, '"status":')
    assert kept(sentence, '"reason":')


def test_names_used_mid_sentence_are_kept_wherever_they_occur() -> None:
    prompt = "We ship with Parcelfox and Swiftline. Parcelfox collects every day at noon. Swiftline is slower."
    assert kept(prompt, "Parcelfox")
    assert kept(prompt, "Swiftline")
    assert kept(MARKDOWN_PROMPT, "Larkspur Home")
    assert kept(EXTRACTION_PROMPT, "Brightwater Utilities")


def test_keep_patterns_are_kept_and_unmatched_text_is_not() -> None:
    prompt = "Every reply quotes the case reference like case-kq so that the agents find it quickly.\n"
    assert compressible(prompt, "case-kq") and compressible(prompt, "quickly")
    protection = Protection(keep_patterns=(r"case-[a-z]{2}", r"agents find it quickly"))
    assert kept(prompt, " case-kq", protection)
    assert kept(prompt, " agents find it quickly", protection)
    assert compressible(prompt, "reply", protection)


def test_a_fact_sentence_keeps_its_content_words_but_not_its_function_words() -> None:
    line = line_of(MARKDOWN_PROMPT, "Refunds arrive within 5-7 business days on the original card.")
    for word in ("Refunds", " arrive", " original", " card"):
        assert kept(line, word), word
    for word in ("within", "on", "the"):
        assert compressible(line, word), word
    invoice = line_of(EXTRACTION_PROMPT, "You extract invoice data")
    assert kept(invoice, " extract invoice data") and compressible(invoice, "for") and compressible(invoice, "You")


def test_a_sentence_without_a_fact_keeps_none_of_its_words() -> None:
    sentence = "The team is very happy to help with anything at all, and it tries hard to be pleasant and patient."
    covered = coverage(MARKDOWN_PROMPT)
    start = MARKDOWN_PROMPT.index(sentence)
    assert not any(covered[start : start + len(sentence)])


def test_a_rule_sentence_is_marked_rule_and_an_explanation_is_not() -> None:
    pieces = segment(EXTRACTION_PROMPT)
    rule = [piece for piece in pieces if "guess a value" in piece.text]
    assert rule and all(piece.rule and not piece.keep for piece in rule)
    explanation = segment(XML_PROMPT)
    nice = [piece for piece in explanation if "pleasant stay" in piece.text]
    assert nice and not any(piece.rule for piece in nice)


def test_a_rule_is_cut_at_its_sentence_so_the_neighbouring_prose_is_not_rule() -> None:
    prompt = "We love a good story about cooking. You must never share a password. Tell us about your day too."
    pieces = segment(prompt)
    assert "".join(piece.text for piece in pieces if piece.rule).strip() == "You must never share a password."
    assert not any(piece.rule for piece in pieces if "cooking" in piece.text or "your day" in piece.text)


def test_leading_whitespace_travels_with_a_kept_span() -> None:
    prompt = "Returns are accepted for up to 30 days after delivery."
    pieces = segment(prompt)
    thirty = next(piece for piece in pieces if "30" in piece.text)
    assert thirty.keep and thirty.text.startswith(" 30 days")
    before = pieces[pieces.index(thirty) - 1]
    assert not before.keep and not before.text.endswith(" ")
    indented = "Plans:\n    - Plus costs $7.99 a month."
    assert kept(indented, "\n    - Plus costs $7.99 a month")


def test_missing_spans_names_the_kept_spans_a_compression_lost() -> None:
    assert missing_spans(MARKDOWN_PROMPT, MARKDOWN_PROMPT) == []
    damaged = MARKDOWN_PROMPT.replace("5-7 business days", "5 business days").replace("{customer_name}", "{name}")
    lost = missing_spans(MARKDOWN_PROMPT, damaged)
    assert any("5-7 business days" in span for span in lost)
    assert "{customer_name}" in lost


def test_compressible_share_is_the_share_of_prose_characters() -> None:
    pieces = [Segment("abcd", keep=False), Segment("ef", keep=True), Segment("ghij", keep=False)]
    assert compressible_share(pieces) == pytest.approx(0.8)
    assert compressible_share([]) == 0.0
    assert compressible_share(segment("We are glad you came by today and hope you enjoy it.")) == 1.0
    assert compressible_share(segment("## Output format\nOne line of plain text, nothing more.\n")) == 0.0
    assert 0.0 < compressible_share(segment(MARKDOWN_PROMPT)) < 1.0


FRAGMENTS = st.sampled_from(
    [
        "## ", "# ", "\n", "\n\n", "  ", "\t", "- ", "1. ", "```", "```json\n", "~~~", "<tag>", "</tag>", "<output_format>",
        "</output_format>", "<br/>", "{var}", "{{lit}}", "{", "}", "`code`", "`", '"key": ', '"', "'", "30 days", "$7.99",
        "5-7 business days", "24/7", "15%", "a@b.co", "https://x.io/a", "Account > Billing", " > ", "Acme", "the ",
        "must ", "never ", "Always ", ". ", "? ", "word ", "é", "—", "\r\n", "-", ":", "#",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), st.lists(st.one_of(FRAGMENTS, st.text(max_size=5))).map("".join)))
def test_segments_join_back_to_any_text(text: str) -> None:
    pieces = segment(text)
    assert "".join(piece.text for piece in pieces) == text
    assert all(piece.text for piece in pieces)
    assert missing_spans(text, text) == []
    spans = protected_spans(text)
    assert all(0 <= start < end <= len(text) for start, end, _ in spans)
    assert all(left[1] < right[0] for left, right in zip(spans, spans[1:], strict=False))
