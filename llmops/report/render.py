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
from dataclasses import asdict, dataclass, field
from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock, DividerBlock, HeaderBlock, MarkdownTextObject, SectionBlock

from llmops import settings
from llmops.evals.verdicts import interval_text
from llmops.report.chart import render_chart
from llmops.report.digest_data import Digest, Finding, Metric
from llmops.report.formatting import (
    MENTION_CLOSE,
    MENTION_OPEN,
    change,
    clip,
    escape,
    money,
    name,
    number,
    percent,
    score,
)
from llmops.report.incidents import Incident, group_incidents, short_name
from llmops.stats import Interval
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
DIGEST_SIGNATURE = "prefect-llmops daily digest"
"""What the footer says produced the message (the store it read and the links to act follow)."""
VERDICT_MARKS = {"regression": "🔴", "improvement": "🟢", "no_difference": "⚪", "inconclusive": "❔", "none": "–"}
"""The mark before an eval verdict of the day (``none``: a run without a baseline run)."""
CAUSE_ICONS = {"latency": "🐢", "errors": "🔥", "cost": "💸", "tokens": "🧮", "quality": "📉", "finish reasons": "✂️"}
CACHING_MIN_USD = 1.0
CACHING_MIN_SHARE = 0.05
"""The caching estimate is shown when it saves at least $1 a day or 5 % of the day's cost."""
MIX_SHIFT_MIN_CHANGE = 0.20
"""A feature's p95 moving this much against the week, while the blended p95 moves the other way (or far less), is named."""
MIX_SHIFT_MIN_REQUESTS = 20
TOP_MODELS = 4
MAX_LEAD_INCIDENTS = 5
MAX_DRIFT_LINES = 10
MENTION = re.compile(f"{MENTION_OPEN}(@[UW][A-Z0-9]{{2,20}}|!subteam\\^S[A-Z0-9]{{2,20}}){MENTION_CLOSE}")
SLACK_USER_ID = re.compile(r"^<?@?([UW](?=[A-Z]*[0-9])[A-Z0-9]{6,20})>?$")
SLACK_GROUP_ID = re.compile(r"^<?!?(?:subteam\^)?(S(?=[A-Z]*[0-9])[A-Z0-9]{6,20})>?$")


@dataclass
class Section:
    """One part of a message: facts as label/value pairs and lines, both raw (escaped when rendered).

    Attributes:
        title: The section's heading.
        fields: ``(label, value)`` pairs, shown two columns wide in Slack (at most ``MAX_FIELDS``).
        lines: Bullet lines under the fields.
        links: ``(label, url)`` pairs shown under the lines (Slack links; ``label: url`` elsewhere),
            only ``http(s)`` URLs without spaces or Slack markup.

    Example:
        >>> Section("Spend", fields=[("Month to date", "$120")]).title
        'Spend'
    """

    title: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)


def _safe_url(url: object) -> bool:
    return isinstance(url, str) and re.fullmatch(r"https?://[^\s<>|]+", url) is not None


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
        thread_text: The fallback text of the reply in the message's thread (the details), if any.
        thread_blocks: That reply's Block Kit blocks.

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
    thread_text: str | None = None
    thread_blocks: list[dict[str, Any]] | None = None

    def payload(self) -> dict[str, Any]:
        """Everything but the chart's bytes, as the outbox row's JSON ``payload`` (``thread`` only when there is one)."""
        chart = {"filename": self.chart_filename, "title": self.chart_title} if self.chart_png else None
        payload: dict[str, Any] = {
            "text": self.text,
            "blocks": self.blocks,
            "markdown": self.markdown,
            "plain": self.plain,
            "chart": chart,
        }
        if self.thread_blocks:
            payload["thread"] = {"text": self.thread_text, "blocks": self.thread_blocks}
        return payload


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
    """An eval run of the day against its baseline, e.g.
    ``🔴 support-chat@2.4.0 on golden: regression vs 2.3.1 — quality Δ -0.120 [-0.150, -0.090] (run 42 vs 41)``.

    Without a headline metric (a run that did not complete, other dataset contents) the reason
    is shown instead of the delta; without a baseline run, the run's status and why (raw).
    """
    run = f"{name(row['prompt_name'])}@{name(row['prompt_version'])} on {name(row['dataset'])}"
    if row.get("verdict") is None:
        return f"{VERDICT_MARKS['none']} {run}: {name(row['status'])}, no verdict: {name(row['reason'])}"
    verdict = (
        f"{VERDICT_MARKS[row['verdict']]} {run}: {name(row['verdict']).replace('_', ' ')} vs {name(row['baseline_version'])}"
    )
    if row.get("delta") is not None and row.get("interval"):
        moved = f"{name(row['metric'])} Δ {row['delta']:+.3f} {interval_text(Interval(*row['interval']))}"
    else:
        moved = clip(" ".join(str(row["reason"]).split()), MAX_REASON_CHARS)
    return f"{verdict} — {moved} (run {row['run_id']} vs {row['baseline_run']})"


def owner_mention(owner: str) -> str:
    """An owner as raw text: a Slack user or group id becomes a mention (it pings), anything else plain text.

    Slack pings only ``<@U…>`` and ``<!subteam^S…>``; ``@alice`` typed as text pings nobody,
    so it is shown as written (and escaped like any other text).

    Example:
        >>> owner_mention("U024BE7LH") == f"{MENTION_OPEN}@U024BE7LH{MENTION_CLOSE}", owner_mention("@alice")
        (True, '@alice')
    """
    if found := SLACK_USER_ID.match(owner):
        return f"{MENTION_OPEN}@{found.group(1)}{MENTION_CLOSE}"
    if found := SLACK_GROUP_ID.match(owner):
        return f"{MENTION_OPEN}!subteam^{found.group(1)}{MENTION_CLOSE}"
    return name(owner)


def _owner(digest: Digest, feature: str) -> str:
    owner = digest.owners.get(feature)
    return f" — owner {owner_mention(owner)}" if owner else ""


def incidents(digest: Digest) -> list[Incident]:
    """The day's incidents: trace drift findings and the rollups' latency/error findings, by feature and cause."""
    return group_incidents(digest.drift, [asdict(finding) for finding in digest.findings])


def incident_line(incident: Incident, owner: str = "") -> str:
    """One incident on one line: ``🐢 chat_response: latency ▲ +60% (p50, p95, TTFT; both models)`` (raw)."""
    icon = CAUSE_ICONS.get(incident.cause, "⚠️")
    moved = change(incident.change, incident.points) if incident.change is not None else "moved"
    scope = f"; {name(incident.scope)}" if incident.scope else ""
    metrics = ", ".join(
        dict.fromkeys(name(short_name(metric)) for metric in incident.metrics)
    )  # p95 from drift and rollups: once
    return f"{icon} {name(incident.feature) or '(no feature)'}: {name(incident.cause)} {moved} ({metrics}{scope}){owner}"


def _detail_line(row: dict[str, Any]) -> str:
    if row.get("kind") == "rollup":
        return _finding_line(Finding(row["feature"], row["metric"], row["value"], row["baseline"], row["change"])) + " (rollups)"
    return _drift_line(row)


def mix_shift(digest: Digest) -> list[tuple[str, float]]:
    """Features whose p95 moved a lot while the blended p95 moved the other way, or far less.

    A day whose traffic shifted toward a fast feature shows a lower blended p95 although a
    slow feature got slower: the blended number alone would mislead.

    Returns:
        ``(feature, change vs 7d)`` pairs, largest move first.
    """
    blended = digest.totals["p95_latency_ms"].vs_week
    moved = []
    for line in digest.features:
        own = line.p95_latency_ms.vs_week
        if own is None or line.requests < MIX_SHIFT_MIN_REQUESTS or abs(own) < MIX_SHIFT_MIN_CHANGE:
            continue
        if blended is None or blended * own < 0 or abs(blended) < abs(own) / 4:
            moved.append((line.feature, own))
    return sorted(moved, key=lambda pair: -abs(pair[1]))


def _headline_numbers(digest: Digest) -> str:
    totals = digest.totals
    p95 = totals["p95_latency_ms"]
    line = (
        f"{money(totals['cost_usd'].value)} ({change(totals['cost_usd'].vs_week)} vs 7d), "
        f"{number(totals['requests'].value)} requests, errors {percent(totals['error_rate'].value, 2)}, "
        f"p95 {number(p95.value)} ms ({change(p95.vs_week)} vs 7d, all features)"
    )
    shifted = mix_shift(digest)
    if shifted:
        moves = ", ".join(f"{name(feature)} {change(own)}" for feature, own in shifted[:3])
        opposite = p95.vs_week is not None and any(own * p95.vs_week < 0 for _, own in shifted)
        line += f" — but per feature: {moves}" + (" (the traffic mix shifted)" if opposite else "")
    return line


def budget_line(digest: Digest) -> str:
    """``Month to date $X, projected $Y of budget $Z (N%)``, or how to set a budget (raw).

    Example:
        >>> from llmops.report.digest_data import Budget
        >>> from types import SimpleNamespace
        >>> budget_line(SimpleNamespace(budget=Budget(20.0, 10, 30, 2.0, 60.0, None)))
        'Month to date $20.00, projected $60.00; no budget set: set LLMOPS_MONTHLY_BUDGET_USD'
    """
    budget = digest.budget
    line = f"Month to date {money(budget.month_to_date_usd)}, projected {money(budget.projected_usd)}"
    if budget.budget_usd is None:
        return f"{line}; no budget set: set {settings.LLMOPS_MONTHLY_BUDGET_USD}"
    warn = " ⚠️ over budget" if (budget.projected_share or 0) > 1 else ""
    return f"{line} of budget {money(budget.budget_usd)} ({percent(budget.projected_share, 0)}){warn}"


def feedback(value: float | None) -> str:
    """Mean user feedback with its scale: ``+0.38 (mean rating, −1 to +1)``.

    Example:
        >>> feedback(0.382), feedback(None)
        ('+0.38 (mean rating, −1 to +1)', '–')
    """
    return "–" if value is None else f"{value:+.2f} (mean rating, −1 to +1)"


def caching_is_material(digest: Digest) -> bool:
    """Whether the caching estimate is worth a line: at least $1 a day, or 5 % of the day's cost."""
    saving, cost = digest.caching.savings_usd, digest.totals["cost_usd"].value or 0.0
    return saving >= CACHING_MIN_USD or (cost > 0 and saving / cost >= CACHING_MIN_SHARE)


def _models_section(digest: Digest) -> Section | None:
    if not digest.models:
        return None
    shown, rest = digest.models[:TOP_MODELS], digest.models[TOP_MODELS:]
    lines = [
        f"{name(model.model)}: {money(model.cost_usd)} ({percent(model.share, 0)}), {model.requests:,} requests"
        for model in shown
    ]
    if rest:
        cost = sum(model.cost_usd for model in rest)
        lines.append(f"{len(rest)} other models: {money(cost)} ({percent(sum(m.share for m in rest), 0)})")
    return Section("Cost by model", lines=lines)


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
    else:
        fields.append(("Budget", f"none set: set {settings.LLMOPS_MONTHLY_BUDGET_USD}"))
    if caching_is_material(digest):
        fields.append(
            (
                "Response caching could save",
                f"{money(digest.caching.savings_usd)}/day ({digest.caching.repeated_requests:,} repeated calls; how: in the thread)",
            )
        )
    return Section("Spend", fields=fields)


def digest_sections(digest: Digest) -> list[Section]:
    """The digest as sections in reading order; optional parts only when they have something to say.

    Args:
        digest: The day's numbers.

    Returns:
        What to look at first (the headline numbers, one line per incident with its owner, the
        budget line), totals, cost per feature and per model, spend, quality per prompt version,
        the day's eval verdicts, rollout moves, and drift findings other than incidents, with
        pinning notes only when new (raw text: escaped when rendered). The details go to the
        thread (``thread_sections``).

    Example:
        ```python
        for section in digest_sections(compute_digest(engine, date(2026, 11, 26))):
            print(section.title, len(section.lines))
        ```
    """
    lead = [_headline_numbers(digest)] if digest.has_traffic else ["No LLM calls recorded."]
    found = incidents(digest)
    lead += [incident_line(incident, _owner(digest, incident.feature)) for incident in found[:MAX_LEAD_INCIDENTS]]
    if len(found) > MAX_LEAD_INCIDENTS:
        lead.append(f"… and {len(found) - MAX_LEAD_INCIDENTS} more incidents (in the thread)")
    lead += [
        f"📈 {name(line.feature)} is growing: {money(line.cost_usd)} today, {change(line.cost.vs_week)} vs its 7-day average"
        + _owner(digest, line.feature)
        for line in digest.growing
    ]
    if digest.unpriced_requests:
        models = ", ".join(name(model) for model in digest.unpriced_models)
        lead.append(f"❔ {digest.unpriced_requests:,} unpriced requests (no price known for {models}): not in the cost")
    lead.append(f"💰 {budget_line(digest)}")
    totals = Section(
        "Totals",
        fields=[
            (label, f"{fmt(digest.totals[key].value)}\n{_changes(digest.totals[key])}")
            for key, (label, fmt) in TOTAL_LABELS.items()
        ],
    )
    sections = [Section("What to look at", lines=lead), totals]
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
    by_model = _models_section(digest)
    if by_model:
        sections.append(by_model)
    sections.append(_spend_section(digest))
    if digest.quality:
        sections.append(
            Section(
                "Quality per prompt version (from traces)",
                lines=[
                    f"{name(item.prompt_name)}@{name(item.prompt_version)}"
                    + (f" [{', '.join(name(label) for label in item.labels)}]" if item.labels else "")
                    + f": eval score {score(item.eval_score.value)} ({change(item.eval_score.vs_week)} vs 7d), "
                    f"feedback {feedback(item.feedback.value)}, {item.requests:,} requests"
                    for item in digest.quality
                ],
            )
        )
    if digest.eval_verdicts:
        sections.append(
            Section(
                "Eval verdicts of the day",
                lines=[_verdict_line(row) for row in digest.eval_verdicts],
                links=[
                    (f"eval run {row['run_id']}", url)
                    for row in digest.eval_verdicts
                    if (url := flow_run_url(row.get("flow_run_id")))
                ],
            )
        )
    if digest.label_changes:
        sections.append(Section("Rollout moves", lines=[_change_line(row) for row in digest.label_changes]))
    if digest.alerts:
        sections.append(
            Section(
                "Alerts of the day",
                lines=[
                    f"{SEVERITY_ICONS.get(row['severity'], '•')} {name(row['kind'])}: {name(row['title'])}"
                    for row in digest.alerts
                ],
                links=[(f"{row['kind']} run", row["link"]) for row in digest.alerts if row.get("link")],
            )
        )
    drift = [row for row in digest.drift or [] if row["kind"] != "trace" and not row.get("seen_before")]
    if drift:
        shown = drift[:MAX_DRIFT_LINES]
        more = len(drift) - len(shown)
        tail = [f"… and {more} more (in the thread): `llmops drift --date {digest.day}`"] if more > 0 else []
        sections.append(Section("Drift (new)", lines=[_drift_line(row) for row in shown] + tail))
    return sections


def thread_sections(digest: Digest) -> list[Section]:
    """The details posted in the message's thread: each incident's findings, pinning notes reported before, how caching was estimated.

    Args:
        digest: The day's numbers.

    Returns:
        One section per incident (its findings, one per metric and model), the other drift
        findings beyond the message's few, the pinning notes already reported on an earlier day,
        and the caching estimate's method; empty when there is nothing to add.
    """
    sections = [
        Section(incident_line(incident), lines=[_detail_line(row) for row in incident.details]) for incident in incidents(digest)
    ]
    rows = digest.drift or []
    new = [row for row in rows if row["kind"] != "trace" and not row.get("seen_before")]
    if len(new) > MAX_DRIFT_LINES:
        sections.append(Section("More drift findings", lines=[_drift_line(row) for row in new[MAX_DRIFT_LINES:]]))
    repeated = [row for row in rows if row.get("seen_before")]
    if repeated:
        sections.append(
            Section(
                "Pinning notes reported before (still open)",
                lines=[f"{_drift_line(row)} (since {row['seen_before']})" for row in repeated],
            )
        )
    if digest.drift_total > len(rows):
        sections.append(
            Section("Drift", lines=[f"{digest.drift_total - len(rows)} more findings: `llmops drift --date {digest.day}`"])
        )
    if digest.caching.repeated_requests:
        caching = f"{money(digest.caching.savings_usd)} over {digest.caching.repeated_requests:,} repeated calls"
        sections.append(Section("Response caching estimate", lines=[caching, digest.caching.method]))
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
        # LLM cost & quality — Thu 26 Nov 2026: $41.20 (▲ +8% vs 7d), 1,310 requests, errors 0.31%, p95 2,140 ms (…)
        ```
    """
    if not digest.has_traffic:
        return f"{digest_header(digest)}: no LLM calls recorded."
    summary = f"{digest_header(digest)}: {_headline_numbers(digest)}"
    found = incidents(digest)
    if found:
        summary += ". " + "; ".join(incident_line(incident) for incident in found[:3])
    return summary


# --- sections → Block Kit, markdown, plain text ----------------------------------------------


def slack_text(raw: str) -> str:
    """Raw text as Slack mrkdwn: escaped, then the configured owners' mentions made live (``<@U…>``)."""
    return MENTION.sub(r"<\1>", escape(raw)).replace(MENTION_OPEN, "").replace(MENTION_CLOSE, "")


def unmention(raw: str) -> str:
    """Raw text outside Slack: a mention marker becomes its text (``@U024BE7LH``)."""
    return raw.replace(MENTION_OPEN, "").replace(MENTION_CLOSE, "")


def _section_blocks(section: Section) -> list[Block]:
    blocks: list[Block] = []
    title = f"*{slack_text(section.title)}*"
    if section.fields:
        fields = [
            MarkdownTextObject(text=clip(f"*{slack_text(label)}*\n{slack_text(value)}", MAX_FIELD_CHARS))
            for label, value in section.fields[:MAX_FIELDS]
        ]
        blocks.append(SectionBlock(text=MarkdownTextObject(text=title), fields=fields))
        title = ""
    if section.lines:
        body = "\n".join(f"• {slack_text(line)}" for line in section.lines)
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(f"{title}\n{body}".strip(), MAX_SECTION_CHARS))))
    links = " · ".join(f"<{url}|{escape(label)}>" for label, url in section.links if _safe_url(url))
    if links:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(links, MAX_SECTION_CHARS))]))
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
    blocks: list[Block] = [HeaderBlock(text=clip(escape(unmention(header)), MAX_HEADER_CHARS))]
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
        out += [f"- {md(label)}: {md(url)}" for label, url in section.links if _safe_url(url)]
    out.append(f"\n_{md(_unslack(context))}_")
    return unmention("\n".join(out))


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
        out += [f"  {label}: {url}" for label, url in section.links if _safe_url(url)]
    out += ["", _unslack(context)]
    return unmention("\n".join(out))


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
    store = f" · store {digest.store}" if digest.store else ""
    context = (
        f"{DIGEST_SIGNATURE}{store} · from the daily rollups; days in {digest.timezone}; "
        f"environment: {digest.environment or 'all'}. Changes: vs the previous day and vs the average of the 7 days before. "
        + notes
    ).strip()
    links = ui_links(digest.ui_url)
    link_text = " · ".join(f"<{url}|{label}>" for label, url in links)
    slack_context = " ".join(part for part in (escape(context), link_text) if part)
    text_context = " ".join(part for part in (context, _unslack(link_text)) if part)  # unescaped, for markdown and plain
    thread = thread_sections(digest)
    thread_header = f"Details — {digest_header(digest)}"
    thread_context = f"Drift findings in full: llmops drift --date {digest.day}"
    markdown = to_markdown(header, sections, text_context)
    plain = to_plain(header, sections, text_context)
    if thread:
        markdown += "\n\n" + to_markdown(thread_header, thread, thread_context)
        plain += "\n\n" + to_plain(thread_header, thread, thread_context)
    return RenderedMessage(
        header=header,
        text=slack_text(clip(digest_summary(digest), MAX_FALLBACK_CHARS)),
        blocks=to_blocks(header, sections, slack_context),
        markdown=markdown,
        plain=plain,
        chart_png=render_chart(digest) if with_chart and digest.has_traffic else None,
        chart_filename=f"llm-cost-per-feature-{digest.day.isoformat()}.png",
        chart_title=f"Cost per feature, 30 days to {digest.day.isoformat()}",
        thread_text=escape(clip(thread_header, MAX_FALLBACK_CHARS)) if thread else None,
        thread_blocks=to_blocks(thread_header, thread, escape(thread_context)) if thread else None,
    )


def ui_links(ui_url: str | None) -> list[tuple[str, str]]:
    """Links to the Prefect UI where a reader acts on the digest: the deployments (to run a flow by
    hand, e.g. promote or roll back), the flow runs and the dashboard; none without ``PREFECT_UI_URL``
    (or with one unfit for a link).

    Example:
        >>> [label for label, _ in ui_links("http://127.0.0.1:4200/")]
        ['Deployments', 'Flow runs', 'Prefect UI']
        >>> ui_links("http://127.0.0.1:4200/")[0]
        ('Deployments', 'http://127.0.0.1:4200/deployments')
        >>> ui_links(None), ui_links("javascript:alert(1)")
        ([], [])
    """
    if not ui_url or not _safe_url(ui_url):
        return []
    base = ui_url.rstrip("/")
    return [("Deployments", f"{base}/deployments"), ("Flow runs", f"{base}/runs"), ("Prefect UI", f"{base}/dashboard")]


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
        ``{PREFECT_UI_URL}/runs/flow-run/{id}``, or None without an id or ``PREFECT_UI_URL``.

    Example:
        >>> import os
        >>> os.environ["PREFECT_UI_URL"] = "http://127.0.0.1:4200/"
        >>> flow_run_url("0f6c")
        'http://127.0.0.1:4200/runs/flow-run/0f6c'
        >>> del os.environ["PREFECT_UI_URL"]
    """
    base = settings.env(settings.PREFECT_UI_URL)
    if not base or not flow_run_id:
        return None
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}"
