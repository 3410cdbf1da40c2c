"""Data is never markup (issue 13, item 5): the terminal-safe text of the CLI and the Markdown escape of artifacts.

Property tests over arbitrary text, then each renderer that puts trace or user data into Markdown.
"""

from __future__ import annotations

import html
import io
import re
from datetime import datetime
from types import SimpleNamespace

from hypothesis import example, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from rich.console import Console

from llmops.release.experiments import ABMetric, ABReport, VersionSummary
from llmops.report.render import Section, to_markdown
from llmops.text import markdown_code, markdown_escape
from prefect_llmops.cli.output import plain, print_table, safe_text

UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
HOSTILE = "[x](https://evil.example) ![](https://evil.example/i.png) <img src=x onerror=alert(1)> www.evil.example | `c` *b*"

# Text as trace data holds it: any code point, weighted towards the characters that matter here.
SPECIAL = st.sampled_from(
    list("[]/()!<>|`*_#&:.@-+=\\\x1b\x07\x9b\x9c\n\r\t\u202e\u2066 ") + ["\x1b[31m", "\x1b]8;;u\x07", "[/bold]"]
)
TEXT = st.lists(st.one_of(st.text(max_size=8), SPECIAL), max_size=30).map("".join)


def _rendered(renderable: object) -> str:
    out = io.StringIO()
    Console(file=out, width=10_000, color_system="truecolor", force_terminal=True, soft_wrap=True).print(renderable)
    return out.getvalue()


@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_terminal_safe_text_has_no_controls_and_rich_shows_it_as_is(value: str) -> None:
    one_line = safe_text(value)
    assert not UNSAFE.search(one_line) and "\n" not in one_line and "\t" not in one_line
    multiline = safe_text(value, multiline=True)
    assert not UNSAFE.search(multiline.replace("\n", "").replace("\t", ""))
    assert safe_text(one_line) == one_line  # idempotent: nothing is left to strip
    # Printed as Text, markup, emoji codes and brackets are shown as they are; only our own
    # SGR styling (none here) could add escape sequences.
    shown = _rendered(plain(value))
    assert shown == one_line + "\n"
    lines = plain(value, multiline=True)
    assert _rendered(lines) == lines.plain.expandtabs(8) + "\n" or "\t" in lines.plain  # tabs expand by column
    assert "\x1b" not in _rendered(lines)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=3))
def test_tables_of_arbitrary_data_print_without_markup_or_escapes(rows: list[tuple[str, str]]) -> None:
    out = io.StringIO()
    from prefect_llmops.cli import output

    console, output.console = output.console, Console(file=out, width=10_000, force_terminal=False)
    try:
        print_table([{"feature": a, "user": b} for a, b in rows], title=rows[0][0])
    finally:
        output.console = console
    assert "\x1b" not in out.getvalue() and "\x9b" not in out.getvalue()


MARKDOWN = MarkdownIt("commonmark").enable("table").enable("strikethrough")
TAG = re.compile(r"<[^>]+>")


def _text_of(markdown: str) -> str:
    rendered = MARKDOWN.render(markdown)
    assert not re.search(r"<(a|img|script|iframe|svg)\b", rendered), rendered
    return html.unescape(TAG.sub("", rendered))


def _normalised(value: str) -> str:
    value = re.sub(r"\r\n|[\t\n\r\x85\u2028\u2029]", " ", value)
    return " ".join(UNSAFE.sub("", value).split())


@settings(max_examples=500, deadline=None)
@given(TEXT)
@example("\n\n\n\n[")  # four line breaks became four leading spaces: an indented code block
def test_markdown_escape_renders_as_the_literal_text(value: str) -> None:
    escaped = markdown_escape(value)
    assert "\n" not in escaped
    assert " ".join(_text_of(escaped).split()) == _normalised(value)
    assert " ".join(_text_of(f"- item {escaped}").split()) == " ".join(["item", *_normalised(value).split()])
    cell = _text_of(f"| a | b |\n|---|---|\n| {escaped} | x |\n")  # a pipe in the value never splits the cell
    assert " ".join(cell.split()) == " ".join(["a", "b", *_normalised(value).split(), "x"])


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_markdown_code_renders_as_one_code_span_of_the_text(value: str) -> None:
    rendered = MARKDOWN.render(f"x {markdown_code(value)}")
    spans = re.findall(r"<code>(.*?)</code>", rendered, re.S)
    if value.strip(" \t\n\r\x85\u2028\u2029") and _normalised(value):
        assert len(spans) == 1 and " ".join(html.unescape(spans[0]).split()) == _normalised(value)


def test_digest_markdown_shows_links_and_images_from_traces_as_text() -> None:
    markdown = to_markdown(HOSTILE, [Section("Top features", fields=[(HOSTILE, f"$1.00\n{HOSTILE}")], lines=[HOSTILE])], HOSTILE)
    assert not re.search(r"(?<!\\)\]\(|(?<!\\)<img", markdown)  # every bracket and angle bracket escaped
    assert _text_of(markdown).count("[x](https://evil.example)") == 5  # _text_of: no <a> or <img> rendered


def test_ab_report_escapes_versions_and_outcome_names() -> None:
    summary = VersionSummary(0.5, 0.4, 0.6, 100)
    versions = ["1.0.0", "2.0.0](https://evil.example)"]
    metric = ABMetric(
        metric="outcome:x", label=HOSTILE, higher_is_better=True, summaries=dict.fromkeys(versions, summary),
        verdict="winner", winner=versions[1], comparisons=[],
    )  # fmt: skip
    markdown = ABReport(versions=versions, metrics=[metric], confidence=0.95).to_markdown()
    rendered = MARKDOWN.render(markdown)
    assert "<a " not in rendered and "<img" not in rendered and rendered.count("<td>") == 4
    assert "| metric | 1.0.0 |" in markdown  # versions stay readable


def test_flow_artifacts_escape_names_reasons_and_actors() -> None:
    from prefect_llmops.flows.nightly_eval import _line
    from prefect_llmops.flows.promote_prompt import status_markdown
    from prefect_llmops.flows.rollback_prompt import rollback_markdown

    run = SimpleNamespace(id=7, prompt_version=HOSTILE, dataset_name="golden`](x)", status="done")
    comparison = SimpleNamespace(
        candidate=run, baseline=run, verdict="regression", reason=HOSTILE, regression_changes=lambda: [HOSTILE]
    )
    step = SimpleNamespace(traffic_percent=5.0)
    rollout = SimpleNamespace(
        prompt_name=HOSTILE, baseline=None, candidate=HOSTILE, strategy="canary", environment="production",
        status="active", current_step=0, plan=SimpleNamespace(steps=[step], reason=HOSTILE), step=step,
        gate_status=HOSTILE, created_by=HOSTILE, id=3, created_at=datetime(2026, 1, 1),
    )  # fmt: skip
    documents = [
        _line(HOSTILE, "production_check", comparison),  # type: ignore[arg-type]
        status_markdown(SimpleNamespace(rollout=rollout, action="started", message=HOSTILE)),  # type: ignore[arg-type]
        rollback_markdown(HOSTILE, "production", HOSTILE, HOSTILE, HOSTILE, rollout),
    ]
    for document in documents:
        text = _text_of(document)
        assert "[x](https://evil.example)" in text and "<img src=x onerror=alert(1)>" in text
