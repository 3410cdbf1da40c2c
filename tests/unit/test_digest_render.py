"""Rendering the digest and alerts for Slack: escaping, Block Kit limits, text twins, chart, secrets."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from pydantic import SecretStr
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from llmops.report.digest import Budget, CachingEstimate, Digest, FeatureLine, Finding, Metric, VersionQuality
from llmops.report.slack import (
    MAX_BLOCKS,
    NO_CHANNEL,
    WEBHOOK_CHANNEL,
    CappedRateLimitRetryHandler,
    SlackConfig,
    chart_spikes,
    escape,
    flow_run_url,
    render_alert,
    render_chart,
    render_digest,
    scrub,
)

DAY = date(2026, 11, 26)
HOSTILE = "<!channel> & <@U024BE7LH>"


def _line(feature: str, cost: float, share: float, p95: float | None = 1200.0) -> FeatureLine:
    return FeatureLine(
        feature=feature,
        requests=100,
        cost_usd=cost,
        share=share,
        cost=Metric(cost, cost * 0.9, cost / 2),
        p95_latency_ms=Metric(p95, 1000.0, 1000.0),
        error_rate=Metric(0.01, 0.01, 0.01, points=True),
        unpriced=0,
    )


def make_digest(features: list[FeatureLine] | None = None, **changes: object) -> Digest:
    features = features if features is not None else [_line(HOSTILE, 12.5, 0.6), _line("code_review", 8.3, 0.4)]
    days = [DAY - timedelta(days=offset) for offset in range(29, -1, -1)]
    values: dict[str, object] = {
        "day": DAY,
        "timezone": "Europe/Berlin",
        "environment": None,
        "totals": {
            "cost_usd": Metric(20.8, 18.0, 15.0),
            "requests": Metric(2000, 1900, 1500),
            "avg_cost_per_request": Metric(0.0104, 0.0095, 0.01),
            "input_tokens": Metric(3_000_000, 2_900_000, 2_500_000),
            "output_tokens": Metric(400_000, 390_000, 300_000),
            "cache_read_share": Metric(0.12, 0.10, 0.11, points=True),
            "error_rate": Metric(0.011, 0.009, 0.010, points=True),
            "p50_latency_ms": Metric(2100.0, 1500.0, 1450.0),
            "p95_latency_ms": Metric(9100.0, 6000.0, 5800.0),
        },
        "features": features,
        "growing": features[:1],
        "findings": [Finding(HOSTILE, "p95_latency_ms", 9100.0, 5800.0, 0.57)],
        "unpriced_requests": 7,
        "unpriced_models": ["<!here>-ft"],
        "budget": Budget(400.0, 26, 30, 15.0, 460.0, 450.0),
        "caching": CachingEstimate(12, 0.42),
        "quality": [VersionQuality("support-chat", "<b>2.3.1", 1500, Metric(0.85, 0.86, 0.87), Metric(0.6, 0.5, 0.55))],
        "chart_days": days,
        "chart_series": {HOSTILE: [1.0] * 29 + [1.1], "doc_$um_": [0.5] * 24 + [7.0] + [0.5] * 5},
    }
    values.update(changes)
    return Digest(**values)  # type: ignore[arg-type]


def _all_text(blocks: list[dict]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def test_strings_from_traces_are_escaped_everywhere_slack_reads() -> None:
    message = render_digest(make_digest(), with_chart=False)
    sent = _all_text(message.blocks) + message.text
    for raw in ("<!channel>", "<@U024BE7LH>", "<!here>", "<b>"):
        assert raw not in sent
    assert escape(HOSTILE) in sent
    assert "&lt;!here&gt;-ft" in sent
    assert "<!channel>" in message.plain  # people reading the terminal see the real name


def test_blocks_validate_and_stay_within_limits_with_many_features() -> None:
    features = [_line(f"feature-{index:03d}-" + "x" * 150, 1.0, 0.005) for index in range(200)]
    message = render_digest(make_digest(features=features), with_chart=False)
    assert len(message.blocks) <= MAX_BLOCKS
    for block in message.blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
            assert len(block.get("fields", [])) <= 10
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
    assert message.blocks[0]["type"] == "header"
    assert message.blocks[-1]["type"] == "context"


def test_message_reports_each_part_of_the_digest() -> None:
    message = render_digest(make_digest(), with_chart=False)
    plain = message.plain
    assert "Thu 26 Nov 2026" in message.header
    assert "$20.80" in plain and "▲ +39% vs 7d" in plain  # 20.8 against a 15.0 week
    assert "Error rate: 1.10%" in plain and "+0.1 pp vs 7d" in plain
    assert "p95 latency 9,100 ms (7d 5,800 ms, ▲ +57%)" in plain
    assert "7 unpriced requests" in plain
    assert "$450: 89% used, 102% projected ⚠️ over budget" in plain
    assert "Response caching could save" not in plain  # $0.42 of $20.80: not material, only in the thread
    assert "$0.4200 over 12 repeated calls" in plain.split("Details —", 1)[1]
    assert "no hash of the input" in plain  # the estimate says how it was made (in the thread)
    assert "support-chat@<b>2.3.1" in plain
    assert "Europe/Berlin" in plain
    assert "| **Cost** |" in message.markdown and "\\<\\!channel\\>" in message.markdown  # Markdown text, not HTML


def test_optional_sections_appear_only_with_data() -> None:
    without = render_digest(make_digest(), with_chart=False).plain
    assert "Rollout moves" not in without and "Eval verdicts of the day" not in without
    with_them = render_digest(
        make_digest(
            label_changes=[
                {
                    "action": "promote",
                    "prompt_name": "<!channel>",
                    "label": "production",
                    "environment": "production",
                    "from_version": "2.3.1",
                    "to_version": "2.4.0",
                    "actor": "ops",
                    "reason": "canary passed",
                }
            ],
            eval_verdicts=[
                {"run_id": 42, "prompt_name": "support-chat", "prompt_version": "2.4.0", "status": "complete",
                 "dataset": "<!here>", "flow_run_id": None, "verdict": "regression", "baseline_run": 41,
                 "baseline_version": "2.3.1", "reason": "regressed on quality", "metric": "quality", "delta": -0.12,
                 "interval": [-0.15, -0.09]},
                {"run_id": 43, "prompt_name": "support-chat", "prompt_version": "2.4.0", "status": "incomplete",
                 "dataset": "golden", "flow_run_id": None, "verdict": "inconclusive", "baseline_run": 41,
                 "baseline_version": "2.3.1", "reason": "run 43 is incomplete (rate limited)", "metric": None,
                 "delta": None, "interval": None},
            ],
        ),
        with_chart=False,
    )  # fmt: skip
    assert "promote <!channel> production production: 2.3.1 → 2.4.0 by ops — canary passed" in with_them.plain
    verdicts = with_them.plain.split("Eval verdicts of the day", 1)[1]
    assert "🔴 support-chat@2.4.0 on <!here>: regression vs 2.3.1 — quality Δ -0.120 [-0.150, -0.090] (run 42 vs 41)" in verdicts
    assert "❔ support-chat@2.4.0 on golden: inconclusive vs 2.3.1 — run 43 is incomplete (rate limited)" in verdicts
    assert "<!channel>" not in _all_text(with_them.blocks) and "<!here>" not in _all_text(with_them.blocks)


def test_drift_section_lists_the_nights_findings_or_nothing() -> None:
    assert "Drift (new)" not in render_digest(make_digest(drift=[]), with_chart=False).plain
    rows = [
        {"kind": "trace", "environment": "production", "feature": "chat_response", "prompt_name": "support-chat",
         "prompt_version": "2.3.1", "model": "claude-3-5-sonnet-20241022", "metric": "latency_p95",
         "summary": "p95 latency 2,140 ms, +34 % vs the usual 1,600 ± 90 ms"},
        {"kind": "pinned", "environment": "production", "feature": "", "prompt_name": "support-chat",
         "prompt_version": "2.3.0", "model": "claude-3-5-sonnet-20241022", "metric": "pinned:refusal_rate",
         "summary": "refusals 9/40 vs 0/40 in the reference"},
        {"kind": "pinning", "environment": "production", "feature": "<!channel>", "prompt_name": "", "prompt_version": "",
         "model": "claude-3-5-sonnet-latest", "metric": "alias_model", "summary": "120 calls on an alias"},
    ]  # fmt: skip
    message = render_digest(make_digest(drift=rows, drift_total=14), with_chart=False)
    lines = message.plain.split("Drift (new)", 1)[1]
    thread = message.plain.split("Details —", 1)[1]
    assert "📉 support-chat@2.3.1 chat_response (claude-3-5-sonnet-20241022): p95 latency 2,140 ms, +34 % vs the usual" in thread
    assert "🐢 chat_response: latency" in message.plain.split("Totals", 1)[0]  # the trace finding leads as an incident
    assert "🧭 support-chat@2.3.0 (claude-3-5-sonnet-20241022): refusals 9/40 vs 0/40 in the reference" in lines
    assert "11 more findings: `llmops drift --date" in thread
    assert "<!channel>" not in _all_text(message.blocks)


def test_day_without_traffic_has_a_message_but_no_chart() -> None:
    empty = make_digest(
        features=[],
        findings=[],
        growing=[],
        quality=[],
        unpriced_requests=0,
        totals={**make_digest().totals, "requests": Metric(0, None, None)},
    )
    message = render_digest(empty)
    assert message.chart_png is None and message.payload()["chart"] is None
    assert "no LLM calls recorded" in message.text


def test_chart_is_a_png_and_names_the_spike() -> None:
    digest = make_digest()
    assert chart_spikes(digest) == [("doc_$um_", 24)]
    png = render_chart(digest)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert render_digest(digest).chart_png.startswith(b"\x89PNG")


def test_alert_links_the_flow_run_and_escapes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_UI_URL", "http://127.0.0.1:4200/")
    link = flow_run_url("0b5c-run")
    assert link == "http://127.0.0.1:4200/runs/flow-run/0b5c-run"
    message = render_alert("rollback", "support-chat <!channel>", "restored 2.3.1\nreason: p95 up", link, "critical")
    text = _all_text(message.blocks)
    assert f"<{link}|Open the Prefect flow run>" in text
    assert "<!channel>" not in text + message.text
    assert "🚨 rollback" in message.header and "reason: p95 up" in message.plain


def test_flow_run_url_needs_the_ui_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_UI_URL", raising=False)
    assert flow_run_url("abc") is None


def test_destination_follows_what_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_CHANNEL", "SLACK_WEBHOOK_URL", "SLACK_API_URL"):
        monkeypatch.delenv(name, raising=False)
    assert SlackConfig.from_env().destination == NO_CHANNEL and not SlackConfig.from_env().configured
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.example/services/T/B/secret")
    assert SlackConfig.from_env().destination == WEBHOOK_CHANNEL
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_CHANNEL", "#llm-ops")
    config = SlackConfig.from_env(channel="#other")
    assert config.uses_bot and config.destination == "#other"
    assert config.api_url == "https://slack.com/api/"
    assert "xoxb-1" not in repr(config) and "secret" not in repr(config)


def test_scrub_removes_tokens_and_webhook_paths() -> None:
    secrets = ["xoxb-123-secret", "https://hooks.slack.com/services/T1/B2/abcdefghijkl"]
    text = "POST /services/T1/B2/abcdefghijkl failed with token xoxb-123-secret"
    cleaned = scrub(text, secrets)
    assert "abcdefghijkl" not in cleaned and "xoxb-123-secret" not in cleaned


@pytest.mark.parametrize(("retry_after", "retried"), [("2", True), ("600", False), (None, True)])
def test_rate_limit_retry_is_capped(retry_after: str | None, retried: bool) -> None:
    handler = CappedRateLimitRetryHandler(max_retry_count=3, cap_seconds=60)
    headers = {"Retry-After": [retry_after]} if retry_after else {}
    response = HttpResponse(status_code=429, headers=headers)
    request = HttpRequest(method="POST", url="http://x/api/chat.postMessage", headers={})
    assert handler.can_retry(state=RetryState(), request=request, response=response) is retried


def test_secret_str_config_never_prints_the_token() -> None:
    config = SlackConfig(bot_token=SecretStr("xoxb-very-secret"), channel="#c")
    assert "xoxb-very-secret" not in f"{config} {config!r}"
    assert config.secrets() == ["xoxb-very-secret"]
