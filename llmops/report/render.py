"""Digests and alerts as Slack messages: Block Kit within Slack's limits, with markdown and plain-text twins.

A message is first a list of ``Section``s holding raw text; each output format escapes it
its own way: Block Kit escapes Slack's control characters (a feature named ``<!channel>``
pings nobody), markdown escapes every Markdown special character for the Prefect UI
(``llmops.text.markdown_escape``: no link, image or HTML from trace data), and plain text is
left as is for the terminal (the CLI makes it terminal-safe). Block Kit is built with
slack_sdk's block models, which validate Slack's limits, and each part is clipped to those
limits first, so a long digest loses its tail, never its delivery. The result, a ``RenderedMessage``, is what the outbox stores.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock, DividerBlock, HeaderBlock, MarkdownTextObject, SectionBlock

from llmops import settings
from llmops.report.chart import render_chart
from llmops.report.digest_data import Digest, Finding, Metric
from llmops.report.formatting import change, clip, escape, money, name, number, percent, score
from llmops.text import markdown_escape

MAX_BLOCKS = 50
MAX_SECTION_CHARS = 3000
MAX_FIELDS = 10
MAX_FIELD_CHARS = 2000
MAX_HEADER_CHARS = 150
MAX_FALLBACK_CHARS = 3000
MAX_REASON_CHARS = 200
TOTAL_LABELS: dict[str, tuple[str, Callable[[float | None], str]]] = {
    "cost_usd": ("Cost", money),
    "requests": ("Requests", number),
    "avg_cost_per_request": ("Avg cost / request", money),
    "input_tokens": ("Input tokens", number),
    "output_tokens": ("Output tokens", number),
    "cache_read_share": ("Cache-read share", percent),
    "error_rate": ("Error rate", lambda v: percent(v, 2)),
    "p50_latency_ms": ("p50 latency", lambda v: f"{number(v)} ms"),
    "p95_latency_ms": ("p95 latency", lambda v: f"{number(v)} ms"),
}
FINDING_LABELS = {"p95_latency_ms": "p95 latency", "error_rate": "error rate", "cost_usd": "cost"}
DRIFT_MARKS = {"trace": "📉", "pinned": "🧭", "pinning": "📌"}
SEVERITY_ICONS = {"info": "ℹ️", "warning": "⚠️", "critical": "🚨"}


@dataclass
class Section:
    """One part of a message: facts as label/value pairs and lines, both raw (escaped when rendered).

    Attributes:
        title: The section's heading.
        fields: ``(label, value)`` pairs, shown two columns wide in Slack (at most ``MAX_FIELDS``).
        lines: Bullet lines under the fields.

    Example:
        >>> Section("Spend", fields=[("Month to date", "$120")]).title
        'Spend'
    """

    title: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


@dataclass
class RenderedMessage:
    """A message ready for the outbox: Block Kit, the fallback text, markdown, plain text, and the chart.

    Attributes:
        header: The message's title (raw).
        text: Slack's fallback ``text`` for notifications (escaped).
        blocks: The Block Kit blocks as dicts.
        markdown: The message for a Prefect markdown artifact.
        plain: The message for a terminal or a log.
        chart_png: The chart to upload into the message's thread, if any.
        chart_filename: The chart's file name in Slack.
        chart_title: The chart's title and alt text in Slack.

    Example:
        >>> message = render_alert("rollback", "support-chat rolled back", "p95 +40 %", None, "warning")
        >>> sorted(message.payload())
        ['blocks', 'chart', 'markdown', 'plain', 'text']
    """

    header: str
    text: str
    blocks: list[dict[str, Any]]
    markdown: str
    plain: str
    chart_png: bytes | None = None
    chart_filename: str | None = None
    chart_title: str | None = None

    def payload(self) -> dict[str, Any]:
        """Everything but the chart's bytes, as the outbox row's JSON ``payload``."""
        chart = {"filename": self.chart_filename, "title": self.chart_title} if self.chart_png else None
        return {"text": self.text, "blocks": self.blocks, "markdown": self.markdown, "plain": self.plain, "chart": chart}


# --- the digest as sections --------------------------------------------------------------


def _changes(metric: Metric) -> str:
    return f"{change(metric.vs_previous, metric.points)} vs prev · {change(metric.vs_week, metric.points)} vs 7d"


def _finding_line(finding: Finding) -> str:
    if finding.metric == "error_rate":
        shown = f"{percent(finding.value, 2)} (7d {percent(finding.baseline, 2)}, {change(finding.change, True)})"
    else:
        shown = f"{number(finding.value)} ms (7d {number(finding.baseline)} ms, {change(finding.change)})"
    return f"⚠️ {name(finding.feature)}: {FINDING_LABELS[finding.metric]} {shown}"


def _drift_line(row: dict[str, Any]) -> str:
    """A stored drift finding: ``📉 support-chat@2.3.1 chat_response (claude-…): p95 latency 2,140 ms, +34 % vs …``."""
    prompt = f"{name(row['prompt_name'])}@{name(row['prompt_version'])}" if row.get("prompt_name") else ""
    where = " ".join(part for part in (prompt, name(row["feature"]) if row.get("feature") else "") if part)
    model = f" ({name(row['model'])})" if row.get("model") else ""
    return f"{DRIFT_MARKS.get(row['kind'], '•')} {where or name(row.get('environment') or '-')}{model}: {name(row['summary'])}"


def _change_line(row: dict[str, Any]) -> str:
    """A registry audit event: ``promote support-chat production (production): 2.3.0 → 2.3.1 by ops — reason``."""
    where = " ".join(name(row[key]) for key in ("label", "environment") if row.get(key))
    versions = f"{name(row.get('from_version') or '–')} → {name(row.get('to_version') or '–')}"
    line = f"{name(row['action'])} {name(row['prompt_name'])} {where}: {versions}"
    if row.get("actor"):
        line += f" by {name(row['actor'])}"
    if row.get("reason"):
        line += f" — {clip(' '.join(str(row['reason']).split()), MAX_REASON_CHARS)}"
    return line


def _verdict_line(row: dict[str, Any]) -> str:
    """An evaluation run: ``support-chat@2.3.1: complete, on golden`` (``verdict`` and ``score`` when a row has them)."""
    parts = [name(row[key]) for key in ("verdict", "status") if row.get(key)]
    if row.get("score") is not None:
        parts.append(f"score {score(float(row['score']))}")
    if row.get("dataset"):
        parts.append(f"on {name(row['dataset'])}")
    return f"{name(row['prompt_name'])}@{name(row['prompt_version'])}: {', '.join(parts) or 'finished'}"


def _spend_section(digest: Digest) -> Section:
    budget = digest.budget
    fields = [
        ("Month to date", f"{money(budget.month_to_date_usd)} (day {budget.days_elapsed} of {budget.days_in_month})"),
        ("Month-end projection", f"{money(budget.projected_usd)} at {money(budget.daily_run_rate_usd)}/day (7-day rate)"),
    ]
    if budget.budget_usd is not None:
        warn = " ⚠️ over budget" if (budget.projected_share or 0) > 1 else ""
        fields.append(
            (
                "Budget",
                f"{money(budget.budget_usd)}: {percent(budget.used_share, 0)} used, "
                f"{percent(budget.projected_share, 0)} projected{warn}",
            )
        )
    fields.append(
        (
            "Response caching could save",
            f"{money(digest.caching.savings_usd)} ({digest.caching.repeated_requests:,} repeated calls)",
        )
    )
    return Section("Spend", fields=fields, lines=[f"Caching estimate: {digest.caching.method}"])


def digest_sections(digest: Digest) -> list[Section]:
    """The digest as sections in reading order; optional parts only when they have something to say.

    Args:
        digest: The day's numbers.

    Returns:
        Totals, cost per feature, what to look at, spend, quality per prompt version, the latest
        evaluations, promotions and rollbacks, and drift (raw text: escaped when rendered).

    Example:
        ```python
        for section in digest_sections(compute_digest(engine, date(2026, 11, 26))):
            print(section.title, len(section.lines))
        ```
    """
    totals = Section(
        "Totals",
        fields=[
            (label, f"{fmt(digest.totals[key].value)}\n{_changes(digest.totals[key])}")
            for key, (label, fmt) in TOTAL_LABELS.items()
        ],
    )
    sections = [totals]
    if digest.features:
        sections.append(
            Section(
                "Cost per feature",
                lines=[
                    f"{name(line.feature)}: {money(line.cost_usd)} ({percent(line.share, 0)}), "
                    f"{line.requests:,} requests, {change(line.cost.vs_week)} vs 7d"
                    + (f", p95 {number(line.p95_latency_ms.value)} ms" if line.p95_latency_ms.value else "")
                    for line in digest.features
                ],
            )
        )
    watch = [_finding_line(finding) for finding in digest.findings]
    watch += [
        f"📈 {name(line.feature)} is growing: {money(line.cost_usd)} today, {change(line.cost.vs_week)} vs its 7-day average"
        for line in digest.growing
    ]
    if digest.unpriced_requests:
        models = ", ".join(name(model) for model in digest.unpriced_models)
        watch.append(f"❔ {digest.unpriced_requests:,} unpriced requests (no price known for {models}): not in the cost")
    if watch:
        sections.append(Section("What to look at", lines=watch))
    sections.append(_spend_section(digest))
    if digest.quality:
        sections.append(
            Section(
                "Quality per prompt version (from traces)",
                lines=[
                    f"{name(item.prompt_name)}@{name(item.prompt_version)}"
                    + (f" [{', '.join(name(label) for label in item.labels)}]" if item.labels else "")
                    + f": eval score {score(item.eval_score.value)} ({change(item.eval_score.vs_week)} vs 7d), "
                    f"feedback {score(item.feedback.value)}, {item.requests:,} requests"
                    for item in digest.quality
                ],
            )
        )
    if digest.eval_verdicts:
        sections.append(Section("Latest evaluations", lines=[_verdict_line(row) for row in digest.eval_verdicts]))
    if digest.label_changes:
        sections.append(Section("Promotions and rollbacks", lines=[_change_line(row) for row in digest.label_changes]))
    if digest.drift:
        more = digest.drift_total - len(digest.drift)
        tail = [f"… and {more} more: `llmops drift --date {digest.day}`"] if more > 0 else []
        sections.append(Section("Drift", lines=[_drift_line(row) for row in digest.drift] + tail))
    return sections


def digest_header(digest: Digest) -> str:
    """The digest's title: ``LLM cost & quality (production) — Thu 26 Nov 2026`` (raw)."""
    scope = f" ({digest.environment})" if digest.environment else ""
    return f"LLM cost & quality{scope} — {digest.day:%a %d %b %Y}"


def digest_summary(digest: Digest) -> str:
    """One line for notifications and the fallback ``text``: cost, requests, p95, errors, top findings (raw).

    Args:
        digest: The day's numbers.

    Returns:
        The header and the day's headline numbers, or that no call was recorded.

    Example:
        ```python
        print(digest_summary(digest))
        # LLM cost & quality — Thu 26 Nov 2026: $41.20 (▲ +8% vs 7d), 1,310 requests, p95 2,140 ms, errors 0.31%
        ```
    """
    totals = digest.totals
    if not digest.has_traffic:
        return f"{digest_header(digest)}: no LLM calls recorded."
    parts = [
        f"{money(totals['cost_usd'].value)} ({change(totals['cost_usd'].vs_week)} vs 7d)",
        f"{number(totals['requests'].value)} requests",
        f"p95 {number(totals['p95_latency_ms'].value)} ms",
        f"errors {percent(totals['error_rate'].value, 2)}",
    ]
    summary = f"{digest_header(digest)}: {', '.join(parts)}"
    if digest.findings:
        summary += ". " + "; ".join(_finding_line(finding) for finding in digest.findings[:3])
    return summary


# --- sections → Block Kit, markdown, plain text ----------------------------------------------


def _section_blocks(section: Section) -> list[Block]:
    blocks: list[Block] = []
    title = f"*{escape(section.title)}*"
    if section.fields:
        fields = [
            MarkdownTextObject(text=clip(f"*{escape(label)}*\n{escape(value)}", MAX_FIELD_CHARS))
            for label, value in section.fields[:MAX_FIELDS]
        ]
        blocks.append(SectionBlock(text=MarkdownTextObject(text=title), fields=fields))
        title = ""
    if section.lines:
        body = "\n".join(f"• {escape(line)}" for line in section.lines)
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(f"{title}\n{body}".strip(), MAX_SECTION_CHARS))))
    return blocks


def to_blocks(header: str, sections: Sequence[Section], context: str) -> list[dict[str, Any]]:
    """Lay a message out as Block Kit within Slack's limits, validated by slack_sdk's models.

    Args:
        header: The title (raw; escaped here).
        sections: The body (raw; escaped here).
        context: The footer line, already Slack text (escaped by the caller, links allowed).

    Returns:
        At most ``MAX_BLOCKS`` blocks as dicts: header, a divider and blocks per section, the footer.

    Raises:
        slack_sdk.errors.SlackObjectFormationError: When a block breaks a limit that clipping missed.

    Example:
        >>> blocks = to_blocks("Daily <digest>", [Section("Spend", lines=["$12"])], "footer")
        >>> blocks[0]["text"]["text"], len(blocks)
        ('Daily &lt;digest&gt;', 4)
    """
    blocks: list[Block] = [HeaderBlock(text=clip(escape(header), MAX_HEADER_CHARS))]
    for section in sections:
        blocks.append(DividerBlock())
        blocks.extend(_section_blocks(section))
    blocks = blocks[: MAX_BLOCKS - 1]
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(context, MAX_SECTION_CHARS))]))
    return [block.to_dict() for block in blocks]


def _unslack(text: str) -> str:
    """Slack link markup ``<url|label>`` as ``label (url)``, for text outside Slack."""
    return re.sub(r"<([^|>]+)\|([^>]+)>", r"\2 (\1)", text)


def to_markdown(header: str, sections: Sequence[Section], context: str) -> str:
    """Lay a message out as markdown for a Prefect artifact, every value escaped as Markdown text.

    The Prefect UI renders the artifact, so a name from traces such as ``[x](https://evil)``
    or ``<img>`` must show as written: ``markdown_escape`` turns it into literal text.

    Args:
        header: The title (raw).
        sections: The body (raw); fields become a two-column table, lines a list.
        context: The footer line; Slack links in it become ``label (url)``.

    Returns:
        The markdown text.

    Example:
        >>> print(to_markdown("Digest", [Section("Spend", lines=["a < b"])], "footer"))
        # Digest
        <BLANKLINE>
        ## Spend
        <BLANKLINE>
        - a \\< b
        <BLANKLINE>
        _footer_
    """
    md = markdown_escape
    out = [f"# {md(header)}"]
    for section in sections:
        out.append(f"\n## {md(section.title)}\n")
        if section.fields:
            out += ["| | |", "|---|---|"]
            out += [
                f"| **{md(label)}** | {'<br>'.join(md(part) for part in value.splitlines())} |" for label, value in section.fields
            ]
            out.append("")
        out += [f"- {md(line)}" for line in section.lines]
    out.append(f"\n_{md(_unslack(context))}_")
    return "\n".join(out)


def to_plain(header: str, sections: Sequence[Section], context: str) -> str:
    """Lay a message out as plain text, for ``llmops digest --dry-run`` and logs.

    Args:
        header: The title, underlined.
        sections: The body; fields as ``label: value``, lines as bullets.
        context: The footer line; Slack links in it become ``label (url)``.

    Returns:
        The text, unescaped.

    Example:
        >>> print(to_plain("Digest", [Section("Spend", fields=[("Cost", "$12")])], "footer"))
        Digest
        ======
        <BLANKLINE>
        Spend
        -----
          Cost: $12
        <BLANKLINE>
        footer
    """
    out = [header, "=" * len(header)]
    for section in sections:
        out += ["", section.title, "-" * len(section.title)]
        out += [f"  {label}: {value.replace(chr(10), '  ')}" for label, value in section.fields]
        out += [f"  • {line}" for line in section.lines]
    out += ["", _unslack(context)]
    return "\n".join(out)


# --- the messages --------------------------------------------------------------------------


def render_digest(digest: Digest, *, with_chart: bool = True) -> RenderedMessage:
    """Render the digest as a Slack message, its markdown and plain-text twins, and the cost chart.

    Args:
        digest: The day's numbers.
        with_chart: Whether to draw the chart (skipped anyway for a day without traffic).

    Returns:
        The message, ready for ``enqueue_digest``.

    Example:
        ```python
        message = render_digest(compute_digest(engine, date(2026, 11, 26)), with_chart=False)
        print(message.plain)
        ```
    """
    header = digest_header(digest)
    sections = digest_sections(digest)
    notes = " ".join(digest.warnings)
    context = (
        f"From the daily rollups; days in {digest.timezone}; environment: {digest.environment or 'all'}. "
        "Changes: vs the previous day and vs the average of the 7 days before. " + notes
    ).strip()
    return RenderedMessage(
        header=header,
        text=escape(clip(digest_summary(digest), MAX_FALLBACK_CHARS)),
        blocks=to_blocks(header, sections, escape(context)),
        markdown=to_markdown(header, sections, context),
        plain=to_plain(header, sections, context),
        chart_png=render_chart(digest) if with_chart and digest.has_traffic else None,
        chart_filename=f"llm-cost-per-feature-{digest.day.isoformat()}.png",
        chart_title=f"Cost per feature, 30 days to {digest.day.isoformat()}",
    )


def render_alert(kind: str, title: str, details: str, link: str | None, severity: str) -> RenderedMessage:
    """Render an alert: what happened, its details line by line, and a link to the Prefect flow run.

    Args:
        kind: What fired, e.g. ``eval_regression``, ``rollback``.
        title: One line on what happened (raw).
        details: The details, one fact per line (raw).
        link: The flow run's page in the Prefect UI, or None.
        severity: ``info``, ``warning`` or ``critical`` (picks the icon).

    Returns:
        The message, without a chart.

    Raises:
        KeyError: When ``severity`` is not one of the three.

    Example:
        >>> message = render_alert("rollback", "support-chat <!here>", "p95 +40 %", None, "critical")
        >>> message.header, message.text
        ('🚨 rollback: support-chat <!here>', '🚨 rollback: support-chat &lt;!here&gt; — p95 +40 %')
    """
    header = f"{SEVERITY_ICONS[severity]} {kind}: {title}"
    section = Section(title=kind, lines=[line for line in details.splitlines() if line.strip()] or [title])
    link_text = f"<{link}|Open the Prefect flow run>" if link else "No flow run link (PREFECT_UI_URL unset, run outside Prefect)"
    plain_link = f"Flow run: {link}" if link else link_text
    return RenderedMessage(
        header=header,
        text=escape(clip(f"{header} — {details}", MAX_FALLBACK_CHARS)),
        blocks=to_blocks(header, [section], link_text),
        markdown=to_markdown(header, [section], plain_link),
        plain=to_plain(header, [section], plain_link),
    )


def flow_run_url(flow_run_id: str | None) -> str | None:
    """The Prefect UI page of a flow run, for an alert's link.

    Args:
        flow_run_id: The flow run, or None outside Prefect.

    Returns:
        ``{PREFECT_UI_URL}/flow-runs/flow-run/{id}``, or None without an id or ``PREFECT_UI_URL``.

    Example:
        >>> import os
        >>> os.environ["PREFECT_UI_URL"] = "http://127.0.0.1:4200/"
        >>> flow_run_url("0f6c")
        'http://127.0.0.1:4200/flow-runs/flow-run/0f6c'
        >>> del os.environ["PREFECT_UI_URL"]
    """
    base = settings.env(settings.PREFECT_UI_URL)
    if not base or not flow_run_id:
        return None
    return f"{base.rstrip('/')}/flow-runs/flow-run/{flow_run_id}"
