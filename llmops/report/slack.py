"""Digests and alerts as Slack messages: rendering, the outbox, and delivery that loses nothing.

Rendering builds Block Kit with slack_sdk's block models, which validate Slack's limits, and
escapes every string that comes from traces or users, so a feature named ``<!channel>``
pings nobody. Delivery goes through the ``outbox`` table: a message is stored before it is
sent, addressed by a dedupe key (a digest per day and channel), and a failed send stays
``pending`` for the next run. A sender leases a row before it sends, records the message's
``ts`` the moment Slack accepts it and then uploads the chart into that thread, so a rerun
after any failure finishes the job without posting the message twice.

Tokens and webhook URLs are kept as ``SecretStr`` and scrubbed from every error that is
stored or logged.
"""

from __future__ import annotations

import hashlib
import html
import io
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr
from slack_sdk import WebClient, WebhookClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from sqlalchemy import Engine, Table, select, update

from llmops import settings
from llmops.report.digest import Digest, Metric
from llmops.store.engine import dialect_insert, get_engine
from llmops.store.outbox_models import ALERT_SEVERITIES, OUTBOX_KINDS, AlertRecord, OutboxMessage

OUTBOX: Table = OutboxMessage.__table__  # type: ignore[assignment]
ALERTS: Table = AlertRecord.__table__  # type: ignore[assignment]
"""Prefect's own setting: the UI address that alert links point at."""
DEFAULT_API_URL = "https://slack.com/api/"
MAX_BLOCKS = 50
MAX_SECTION_CHARS = 3000
MAX_FIELDS = 10
MAX_FIELD_CHARS = 2000
MAX_HEADER_CHARS = 150
MAX_FALLBACK_CHARS = 3000
MAX_NAME_CHARS = 80
MAX_ERROR_CHARS = 500
SPIKE_FACTOR = 2.5
"""A day over this multiple of a feature's median day is labelled on the chart."""
MAX_ATTEMPTS = 8
"""Sends of one message before it is marked failed (configuration errors are retried until then)."""
LEASE = timedelta(minutes=10)
"""How long a sender owns a row; a sender that died mid-send frees it after this."""
PERMANENT_ERRORS = frozenset(
    {"invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text", "invalid_arguments", "too_many_attachments"}
)
"""Slack errors about the message itself: sending it again cannot succeed."""
NO_CHANNEL = "outbox"
"""The address of messages queued while no Slack destination is configured."""
WEBHOOK_CHANNEL = "webhook"

logger = logging.getLogger(__name__)
sdk_logger = logging.getLogger(f"{__name__}.sdk")
sdk_logger.setLevel(logging.INFO)  # slack_sdk's DEBUG lines carry the webhook URL: never emit them


# --- text --------------------------------------------------------------------------------


def escape(value: object) -> str:
    """Slack's three control characters as entities: ``<!channel>`` shows, and pings nobody."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def name(value: object) -> str:
    """A name from traces or users, shortened for one line (escaped later, where it is rendered)."""
    return clip(" ".join(str(value).split()), MAX_NAME_CHARS)


def money(value: float | None) -> str:
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"${value:,.0f}"
    return f"${value:,.2f}" if abs(value) >= 1 else f"${value:,.4f}"


def number(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def percent(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def change(value: float | None, points: bool = False) -> str:
    """``+12%`` for a ratio, ``+1.3 pp`` for a rate; an arrow so the eye finds the direction."""
    if value is None:
        return "n/a"
    arrow = "▲" if value > 0 else "▼" if value < 0 else "="
    if points:
        return f"{arrow} {value * 100:+.1f} pp"
    return f"{arrow} {value * 100:+.0f}%"


def _changes(metric: Metric) -> str:
    return f"{change(metric.vs_previous, metric.points)} vs prev · {change(metric.vs_week, metric.points)} vs 7d"


# --- the message as sections -------------------------------------------------------------


@dataclass
class Section:
    """One part of a message: facts as label/value pairs and lines, both raw (escaped when rendered)."""

    title: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


@dataclass
class RenderedMessage:
    """A message ready for the outbox: Block Kit, the fallback text, markdown, and the chart."""

    header: str
    text: str
    blocks: list[dict[str, Any]]
    markdown: str
    plain: str
    chart_png: bytes | None = None
    chart_filename: str | None = None
    chart_title: str | None = None

    def payload(self) -> dict[str, Any]:
        chart = {"filename": self.chart_filename, "title": self.chart_title} if self.chart_png else None
        return {"text": self.text, "blocks": self.blocks, "markdown": self.markdown, "plain": self.plain, "chart": chart}


TOTAL_LABELS = {
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


def _finding_line(finding: Any) -> str:
    if finding.metric == "error_rate":
        shown = f"{percent(finding.value, 2)} (7d {percent(finding.baseline, 2)}, {change(finding.change, True)})"
    else:
        shown = f"{number(finding.value)} ms (7d {number(finding.baseline)} ms, {change(finding.change)})"
    return f"⚠️ {name(finding.feature)}: {FINDING_LABELS[finding.metric]} {shown}"


def digest_sections(digest: Digest) -> list[Section]:
    """The digest as sections, in reading order; optional parts only when they have something."""
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
                    + f": eval score {_score(item.eval_score.value)} ({change(item.eval_score.vs_week)} vs 7d), "
                    f"feedback {_score(item.feedback.value)}, {item.requests:,} requests"
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


DRIFT_MARKS = {"trace": "📉", "pinned": "🧭", "pinning": "📌"}


def _drift_line(row: dict[str, Any]) -> str:
    """A stored drift finding: ``📉 support-chat@2.3.1 chat_response (claude-…): p95 latency 2,140 ms, +34 % vs …``."""
    prompt = f"{name(row['prompt_name'])}@{name(row['prompt_version'])}" if row.get("prompt_name") else ""
    where = " ".join(part for part in (prompt, name(row["feature"]) if row.get("feature") else "") if part)
    model = f" ({name(row['model'])})" if row.get("model") else ""
    return f"{DRIFT_MARKS.get(row['kind'], '•')} {where or name(row.get('environment') or '-')}{model}: {name(row['summary'])}"


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _change_line(row: dict[str, Any]) -> str:
    """A registry audit event: ``promote support-chat production (production): 2.3.0 → 2.3.1 by ops — reason``."""
    where = " ".join(name(row[key]) for key in ("label", "environment") if row.get(key))
    versions = f"{name(row.get('from_version') or '–')} → {name(row.get('to_version') or '–')}"
    line = f"{name(row['action'])} {name(row['prompt_name'])} {where}: {versions}"
    if row.get("actor"):
        line += f" by {name(row['actor'])}"
    if row.get("reason"):
        line += f" — {clip(' '.join(str(row['reason']).split()), 200)}"
    return line


def _verdict_line(row: dict[str, Any]) -> str:
    """An evaluation run: ``support-chat@2.3.1: regression, score 0.84 (dataset)``."""
    parts = [name(row[key]) for key in ("verdict", "status") if row.get(key)]
    if row.get("score") is not None:
        parts.append(f"score {_score(float(row['score']))}")
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


def digest_header(digest: Digest) -> str:
    scope = f" ({digest.environment})" if digest.environment else ""
    return f"LLM cost & quality{scope} — {digest.day:%a %d %b %Y}"


def digest_summary(digest: Digest) -> str:
    """One line for notifications and the fallback ``text`` (raw; escaped when sent)."""
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


# --- sections → Block Kit, markdown, text --------------------------------------------------


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
    """Block Kit within Slack's limits, validated by slack_sdk's models (``to_dict`` raises otherwise)."""
    blocks: list[Block] = [HeaderBlock(text=clip(escape(header), MAX_HEADER_CHARS))]
    for section in sections:
        blocks.append(DividerBlock())
        blocks.extend(_section_blocks(section))
    blocks = blocks[: MAX_BLOCKS - 1]
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(context, MAX_SECTION_CHARS))]))
    return [block.to_dict() for block in blocks]


def to_markdown(header: str, sections: Sequence[Section], context: str) -> str:
    """The same message for a Prefect markdown artifact (HTML-escaped: the UI renders HTML)."""
    out = [f"# {html.escape(header)}"]
    for section in sections:
        out.append(f"\n## {html.escape(section.title)}\n")
        if section.fields:
            out += ["| | |", "|---|---|"]
            out += [
                f"| **{html.escape(label)}** | {html.escape(value).replace(chr(10), '<br>')} |" for label, value in section.fields
            ]
            out.append("")
        out += [f"- {html.escape(line)}" for line in section.lines]
    out.append(f"\n_{html.escape(_unslack(context))}_")
    return "\n".join(out)


def to_plain(header: str, sections: Sequence[Section], context: str) -> str:
    """The message as plain text, for ``llmops digest --dry-run`` and logs."""
    out = [header, "=" * len(header)]
    for section in sections:
        out += ["", section.title, "-" * len(section.title)]
        out += [f"  {label}: {value.replace(chr(10), '  ')}" for label, value in section.fields]
        out += [f"  • {line}" for line in section.lines]
    out += ["", _unslack(context)]
    return "\n".join(out)


def _unslack(text: str) -> str:
    """Slack link markup ``<url|label>`` as ``label (url)``, for text outside Slack."""
    return re.sub(r"<([^|>]+)\|([^>]+)>", r"\2 (\1)", text)


# --- the chart ---------------------------------------------------------------------------


def chart_spikes(digest: Digest) -> list[tuple[str, int]]:
    """(feature, day index) of each series' peak when it is over ``SPIKE_FACTOR`` × its median day."""
    spikes = []
    for feature, values in digest.chart_series.items():
        ordered = sorted(values)
        median = ordered[len(ordered) // 2]
        peak = max(range(len(values)), key=values.__getitem__)
        if values[peak] > 0 and values[peak] > SPIKE_FACTOR * median:
            spikes.append((feature, peak))
    return spikes


def _chart_label(feature: str) -> str:
    label = clip(feature, 40).replace("$", r"\$")  # "$" would start matplotlib mathtext
    return " " + label if label.startswith("_") else label  # matplotlib hides labels starting with "_"


def render_chart(digest: Digest) -> bytes:
    """30 days of cost per feature, one line each, with every spike labelled (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = digest.chart_days
    figure, axes = plt.subplots(figsize=(10, 4.5), dpi=100)
    try:
        for feature, values in digest.chart_series.items():
            axes.plot(days, values, marker="o", markersize=3, linewidth=1.5, label=_chart_label(feature))
        for feature, index in chart_spikes(digest):
            value = digest.chart_series[feature][index]
            axes.annotate(
                f"{_chart_label(feature)}: \\${value:,.2f} on {days[index]:%d %b}",
                (days[index], value),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=8,
                arrowprops={"arrowstyle": "-", "alpha": 0.5},
            )
        axes.set_title(f"Cost per feature, {days[0]:%d %b} – {days[-1]:%d %b %Y} (USD per day, {digest.timezone})")
        axes.set_ylabel("USD per day")
        axes.set_ylim(bottom=0)
        axes.margins(y=0.15)
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        axes.grid(axis="y", alpha=0.3)
        figure.autofmt_xdate()
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(figure)


# --- rendering entry points --------------------------------------------------------------


def render_digest(digest: Digest, *, with_chart: bool = True) -> RenderedMessage:
    """The digest as a Slack message, its markdown and plain-text twins, and the chart."""
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


SEVERITY_ICONS = {"info": "ℹ️", "warning": "⚠️", "critical": "🚨"}


def render_alert(kind: str, title: str, details: str, link: str | None, severity: str) -> RenderedMessage:
    """An alert: what happened, the details, and a link to the Prefect flow run."""
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
    """The Prefect UI page of a flow run, when ``PREFECT_UI_URL`` says where the UI is."""
    base = settings.env(settings.PREFECT_UI_URL)
    if not base or not flow_run_id:
        return None
    return f"{base.rstrip('/')}/flow-runs/flow-run/{flow_run_id}"


# --- configuration -----------------------------------------------------------------------


@dataclass(frozen=True)
class SlackConfig:
    """Where messages go: a bot token and channel (Web API, with the chart), or a webhook (no chart)."""

    bot_token: SecretStr | None = None
    channel: str | None = None
    webhook_url: SecretStr | None = None
    base_url: str | None = None
    timeout_seconds: int = 15
    max_retry_after_seconds: int = 60

    @classmethod
    def from_env(cls, **overrides: Any) -> SlackConfig:
        """``SLACK_BOT_TOKEN``, ``SLACK_CHANNEL``, ``SLACK_WEBHOOK_URL``, ``SLACK_API_URL``; overrides win when not None."""
        token, webhook = settings.env(settings.SLACK_BOT_TOKEN), settings.env(settings.SLACK_WEBHOOK_URL)
        values: dict[str, Any] = {
            "bot_token": SecretStr(token) if token else None,
            "channel": settings.env(settings.SLACK_CHANNEL),
            "webhook_url": SecretStr(webhook) if webhook else None,
            "base_url": settings.env(settings.SLACK_API_URL),
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    @property
    def uses_bot(self) -> bool:
        return self.bot_token is not None and bool(self.channel)

    @property
    def configured(self) -> bool:
        return self.uses_bot or self.webhook_url is not None

    @property
    def destination(self) -> str:
        """The outbox address: the channel, ``webhook``, or ``outbox`` when nothing is configured."""
        if self.uses_bot:
            return self.channel  # type: ignore[return-value]
        if self.webhook_url is not None:
            return WEBHOOK_CHANNEL
        return self.channel or NO_CHANNEL

    @property
    def api_url(self) -> str:
        base = self.base_url or DEFAULT_API_URL
        return base if base.endswith("/") else base + "/"

    def secrets(self) -> list[str]:
        values = [secret.get_secret_value() for secret in (self.bot_token, self.webhook_url) if secret is not None]
        return [value for value in values if value]


class CappedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Retries a 429 after its ``Retry-After``, unless Slack asks for longer than ``cap_seconds``:
    then the message stays pending for the next run instead of holding the flow."""

    def __init__(self, max_retry_count: int, cap_seconds: int) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.cap_seconds = cap_seconds

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        retry_after = next((values for key, values in response.headers.items() if key.lower() == "retry-after"), None)
        if retry_after is None:
            return True
        try:
            return int(retry_after[0]) <= self.cap_seconds
        except ValueError:
            return False


def retry_handlers(config: SlackConfig) -> list[RetryHandler]:
    """429 honouring Retry-After (capped), 5xx with backoff, and connection errors."""
    return [
        ConnectionErrorRetryHandler(max_retry_count=2),
        CappedRateLimitRetryHandler(max_retry_count=3, cap_seconds=config.max_retry_after_seconds),
        ServerErrorRetryHandler(max_retry_count=2),
    ]


def web_client(config: SlackConfig) -> WebClient:
    if config.bot_token is None:
        raise ValueError(f"no Slack bot token: set {settings.SLACK_BOT_TOKEN} or the SlackDigest block's bot_token")
    return WebClient(
        token=config.bot_token.get_secret_value(),
        base_url=config.api_url,
        timeout=config.timeout_seconds,
        retry_handlers=retry_handlers(config),
        logger=sdk_logger,
    )


def webhook_client(config: SlackConfig) -> WebhookClient:
    if config.webhook_url is None:
        raise ValueError(f"no Slack webhook URL: set {settings.SLACK_WEBHOOK_URL} or the block's webhook_url")
    return WebhookClient(
        url=config.webhook_url.get_secret_value(),
        timeout=config.timeout_seconds,
        retry_handlers=retry_handlers(config),
        logger=sdk_logger,
    )


# --- the outbox --------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class OutboxEntry:
    """A stored message: its row, whether this call created it, and its status."""

    id: int
    dedupe_key: str
    created: bool
    status: str


def enqueue(
    engine: Engine, kind: str, dedupe_key: str, channel: str, message: RenderedMessage, *, refresh: bool = False
) -> OutboxEntry:
    """Store a message once per ``dedupe_key``.

    ``refresh`` replaces the content of a stored message that nothing has been sent of yet
    (a rerun after late traces), never one already (partly) in Slack.
    """
    if kind not in OUTBOX_KINDS:
        raise ValueError(f"outbox kind must be one of {', '.join(OUTBOX_KINDS)}, got {kind!r}")
    row = {
        "kind": kind,
        "dedupe_key": dedupe_key,
        "channel": channel,
        "payload": message.payload(),
        "chart_png": message.chart_png,
        "status": "pending",
        "attempts": 0,
        "created_at": _now(),
    }
    with engine.begin() as connection:
        inserted = (
            connection.execute(
                dialect_insert(connection, OUTBOX)
                .on_conflict_do_nothing(index_elements=["dedupe_key"])
                .values(row)
                .returning(OUTBOX.c.id)
            ).scalar()
            is not None
        )
        if not inserted and refresh:
            connection.execute(
                update(OUTBOX)
                .where(OUTBOX.c.dedupe_key == dedupe_key, OUTBOX.c.status == "pending", OUTBOX.c.slack_ts.is_(None))
                .where(OUTBOX.c.claimed_until.is_(None) | (OUTBOX.c.claimed_until < _now()))
                .values(payload=row["payload"], chart_png=row["chart_png"])
            )
        stored = connection.execute(select(OUTBOX.c.id, OUTBOX.c.status).where(OUTBOX.c.dedupe_key == dedupe_key)).one()
    return OutboxEntry(stored.id, dedupe_key, inserted, stored.status)


def digest_key(digest: Digest, destination: str) -> str:
    scope = f":{digest.environment}" if digest.environment else ""
    return f"digest:{digest.day.isoformat()}{scope}:{destination}"


def enqueue_digest(engine: Engine, digest: Digest, config: SlackConfig, message: RenderedMessage | None = None) -> OutboxEntry:
    """The day's digest into the outbox, addressed to the configured destination, once per (day, channel)."""
    message = message or render_digest(digest)
    return enqueue(engine, "digest", digest_key(digest, config.destination), config.destination, message, refresh=True)


def enqueue_alert(
    kind: str,
    title: str,
    details: str,
    link: str | None = None,
    *,
    severity: str = "warning",
    engine: Engine | None = None,
    config: SlackConfig | None = None,
    deliver: bool = True,
) -> OutboxEntry:
    """Record an alert (regression verdict, failed gate, rollback, promotion) and queue its message.

    The same (kind, title, details, link) is stored and sent once, so a retried task does not
    alert twice. With ``deliver`` the outbox is flushed at once when Slack is configured; a
    failed send stays pending for the next flush and never raises here.
    """
    if severity not in ALERT_SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(ALERT_SEVERITIES)}, got {severity!r}")
    engine = engine or get_engine()
    config = config or SlackConfig.from_env()
    fingerprint = hashlib.sha256("\x1f".join((kind, title, details, link or "")).encode()).hexdigest()[:24]
    dedupe_key = f"alert:{clip(kind, 64)}:{fingerprint}:{config.destination}"
    with engine.begin() as connection:
        connection.execute(
            dialect_insert(connection, ALERTS)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .values(
                kind=kind,
                severity=severity,
                title=clip(title, 300),
                details=details,
                link=link,
                dedupe_key=dedupe_key,
                fired_at=_now(),
            )
        )
    entry = enqueue(engine, "alert", dedupe_key, config.destination, render_alert(kind, title, details, link, severity))
    if deliver and config.configured:
        deliver_pending(engine, config)
    return entry


# --- delivery ----------------------------------------------------------------------------


class DeliveryError(Exception):
    """A send that did not go through; the message carries no secret."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` without any secret (nor the path of a webhook URL, which is the secret part)."""
    for secret in secrets:
        text = text.replace(secret, "***")
        path = secret.split("://", 1)[-1].partition("/")[2]
        if len(path) >= 8:
            text = text.replace(path, "***")
    return clip(text, MAX_ERROR_CHARS)


def _describe(step: str, exc: Exception, secrets: Sequence[str]) -> DeliveryError:
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, SlackApiError):
        error = str(exc.response.get("error", "unknown_error")) if isinstance(exc.response.data, dict) else "unknown_error"
        return DeliveryError(
            scrub(f"{step}: Slack answered {exc.response.status_code} {error}", secrets), permanent=error in PERMANENT_ERRORS
        )
    return DeliveryError(scrub(f"{step}: {type(exc).__name__}: {exc}", secrets))


@dataclass
class DeliveryReport:
    """What one flush of the outbox did."""

    destination: str
    sent: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        text = f"{len(self.sent)} sent, {len(self.pending)} pending, {len(self.failed)} failed to {self.destination}"
        return text + (f"; last error: {self.errors[-1]}" if self.errors else "")


def _claim(engine: Engine, row_id: int) -> bool:
    now = _now()
    with engine.begin() as connection:
        claimed = connection.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == row_id, OUTBOX.c.status == "pending")
            .where(OUTBOX.c.claimed_until.is_(None) | (OUTBOX.c.claimed_until < now))
            .values(claimed_until=now + LEASE, attempts=OUTBOX.c.attempts + 1)
        ).rowcount
    return claimed == 1


def _set(engine: Engine, row_id: int, **values: Any) -> None:
    with engine.begin() as connection:
        connection.execute(update(OUTBOX).where(OUTBOX.c.id == row_id).values(**values))


def _send_with_bot(engine: Engine, client: WebClient, row: Any, secrets: Sequence[str]) -> None:
    """Post the message unless it is already in Slack, then the chart into its thread."""
    payload = row.payload
    channel_id, ts = row.slack_channel_id, row.slack_ts
    if ts is None:
        try:
            response = client.chat_postMessage(
                channel=row.channel, text=payload["text"], blocks=payload["blocks"], unfurl_links=False, unfurl_media=False
            )
        except Exception as exc:
            raise _describe("chat.postMessage", exc, secrets) from None
        channel_id, ts = response["channel"], response["ts"]
        _set(engine, row.id, slack_channel_id=channel_id, slack_ts=ts)
    chart = payload.get("chart")
    if chart and row.chart_png and row.chart_file_id is None:
        try:
            upload = client.files_upload_v2(
                channel=channel_id,
                thread_ts=ts,
                content=row.chart_png,
                filename=chart["filename"],
                title=chart["title"],
                alt_txt=chart["title"],
            )
        except Exception as exc:
            raise _describe("files_upload_v2", exc, secrets) from None
        _set(engine, row.id, chart_file_id=upload["file"]["id"])


def _send_with_webhook(client: WebhookClient, row: Any, secrets: Sequence[str]) -> None:
    try:
        response = client.send(text=row.payload["text"], blocks=row.payload["blocks"], unfurl_links=False)
    except Exception as exc:
        raise _describe("webhook", exc, secrets) from None
    body = (response.body or "").strip()
    if response.status_code != 200 or body != "ok":  # Slack answers "ok"; some errors come with a 200
        raise DeliveryError(
            scrub(f"webhook: HTTP {response.status_code} {body[:100]}", secrets), permanent=body in PERMANENT_ERRORS
        )


def deliver_pending(
    engine: Engine,
    config: SlackConfig,
    *,
    client: WebClient | None = None,
    webhook: WebhookClient | None = None,
    limit: int = 100,
) -> DeliveryReport:
    """Send every pending message addressed to ``config``'s destination, oldest first.

    Without a configured destination nothing is sent: the messages wait in the outbox.
    A row another sender holds is skipped; a failure leaves it pending (failed once it is
    permanent or after ``MAX_ATTEMPTS``) with the scrubbed error in ``last_error``.
    """
    report = DeliveryReport(config.destination)
    rows = _pending(engine, config.destination, limit)
    if not config.configured:
        report.pending = [row.dedupe_key for row in rows]
        return report
    secrets = config.secrets()
    send: Callable[[Any], None]
    if config.uses_bot:
        bot = client or web_client(config)
        send = lambda row: _send_with_bot(engine, bot, row, secrets)  # noqa: E731
    else:
        hook = webhook or webhook_client(config)
        send = lambda row: _send_with_webhook(hook, row, secrets)  # noqa: E731
    for row in rows:
        if not _claim(engine, row.id):
            continue
        try:
            send(_reload(engine, row.id))
        except DeliveryError as error:
            attempts = row.attempts + 1
            status = "failed" if error.permanent or attempts >= MAX_ATTEMPTS else "pending"
            _set(engine, row.id, status=status, last_error=str(error), claimed_until=None)
            (report.failed if status == "failed" else report.pending).append(row.dedupe_key)
            report.errors.append(str(error))
            logger.warning("Slack delivery of %s to %s: %s (%s)", row.dedupe_key, config.destination, error, status)
            continue
        _set(engine, row.id, status="sent", sent_at=_now(), last_error=None, claimed_until=None)
        report.sent.append(row.dedupe_key)
        logger.info("sent %s to %s", row.dedupe_key, config.destination)
    return report


def _pending(engine: Engine, destination: str, limit: int) -> list[Any]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(OUTBOX.c.id, OUTBOX.c.dedupe_key, OUTBOX.c.attempts)
                .where(OUTBOX.c.status == "pending", OUTBOX.c.channel == destination)
                .order_by(OUTBOX.c.created_at, OUTBOX.c.id)
                .limit(limit)
            )
        )


def _reload(engine: Engine, row_id: int) -> Any:
    with engine.connect() as connection:
        return connection.execute(select(OUTBOX).where(OUTBOX.c.id == row_id)).one()
