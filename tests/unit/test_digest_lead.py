"""The digest leads with what to act on (issue 14, item 7): incidents grouped by cause with the
details in the thread, pinning notes only when new, honest headline numbers, cost by model, the
budget line, owners, links, and material caching only."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from llmops.report.caching import CachingEstimate
from llmops.report.digest import feature_owners
from llmops.report.digest_data import Budget, FeatureLine, Finding, Metric, ModelCost
from llmops.report.formatting import MENTION_CLOSE, MENTION_OPEN
from llmops.report.incidents import group_incidents
from llmops.report.preview import MAX_INLINE_BYTES, _rows, preview_markdown, readable, render_preview, save_preview
from llmops.report.render import caching_is_material, digest_sections, mix_shift, render_digest
from tests.unit.test_digest_render import make_digest

MODELS = ("claude-3-5-sonnet-20241022", "claude-3-5-haiku-20241022")
LATENCY = {"latency_p50": 0.58, "latency_p95": 0.63, "latency_per_output_token": 0.61, "ttft_p50": 0.55}


def _slow_chat() -> list[dict]:
    """One incident as the drift flow stores it: 4 latency metrics × 2 models on chat_response."""
    return [
        {"kind": "trace", "environment": "production", "feature": "chat_response", "prompt_name": "support-chat",
         "prompt_version": "2.3.1", "model": model, "metric": metric, "change": change, "value": 5000.0,
         "reference": 3100.0, "summary": f"{metric} +{change:.0%} vs the usual", "seen_before": None}
        for model in MODELS for metric, change in LATENCY.items()
    ]  # fmt: skip


def _pinning(seen_before: str | None, model: str = "claude-3-5-sonnet-latest") -> dict:
    return {"kind": "pinning", "environment": "production", "feature": "summarize", "prompt_name": "", "prompt_version": "",
            "model": model, "metric": "alias_model", "change": None, "summary": f"120 calls on the alias {model}",
            "seen_before": seen_before}  # fmt: skip


def _lead(message_plain: str) -> str:
    return message_plain.split("\nTotals\n", 1)[0]


def _main_blocks_text(message) -> str:  # noqa: ANN001
    return json.dumps(message.blocks, ensure_ascii=False)


def test_eight_drift_findings_of_one_cause_are_one_incident() -> None:
    incidents = group_incidents(_slow_chat(), [{"feature": "chat_response", "metric": "p95_latency_ms", "change": 0.63,
                                                "value": 9100.0, "baseline": 5600.0}])  # fmt: skip
    assert len(incidents) == 1
    incident = incidents[0]
    assert (incident.feature, incident.cause, incident.scope, len(incident.details)) == (
        "chat_response",
        "latency",
        "both models",
        9,
    )
    assert incident.metrics == ["latency_p50", "latency_p95", "latency_per_output_token", "ttft_p50", "p95_latency_ms"]
    assert incident.change == pytest.approx(0.61)  # the median of the nine changes


def test_different_causes_and_features_stay_apart() -> None:
    rows = _slow_chat() + [
        {**_slow_chat()[0], "metric": "error_rate", "change": 0.03},
        {**_slow_chat()[0], "feature": "code_review", "change": 0.25},
    ]
    found = {(incident.feature, incident.cause) for incident in group_incidents(rows)}
    assert found == {("chat_response", "latency"), ("chat_response", "errors"), ("code_review", "latency")}


def test_the_lead_has_one_line_per_incident_and_the_thread_the_details() -> None:
    message = render_digest(make_digest(drift=_slow_chat(), drift_total=8, findings=[]), with_chart=False)
    lead = _lead(message.plain)
    assert "🐢 chat_response: latency ▲ +60% (p50, p95, per token, TTFT; both models)" in lead
    assert lead.count("chat_response") == 1  # not eight bullets
    main = _main_blocks_text(message)
    assert "latency_p95 +63%" not in main  # the per-metric details are not in the channel message …
    thread = json.dumps(message.thread_blocks, ensure_ascii=False)
    assert thread.count("chat_response (claude-3-5-") == 8 and "latency_p95 +63% vs the usual" in thread  # … but in the thread
    assert message.payload()["thread"]["blocks"] == message.thread_blocks
    assert "chat_response: latency" in message.text  # the notification names the incident once


def test_a_digest_without_details_has_no_thread() -> None:
    quiet = make_digest(drift=[], findings=[], caching=CachingEstimate(0, 0.0))
    message = render_digest(quiet, with_chart=False)
    assert message.thread_blocks is None and "thread" not in message.payload()


def test_pinning_notes_already_reported_go_to_the_thread_only() -> None:
    rows = [_pinning(None, "claude-3-5-haiku-latest"), _pinning("2026-11-20")]
    message = render_digest(make_digest(drift=rows, drift_total=2), with_chart=False)
    main, thread = _main_blocks_text(message), json.dumps(message.thread_blocks, ensure_ascii=False)
    assert "alias claude-3-5-haiku-latest" in main  # new: in the message
    assert "alias claude-3-5-sonnet-latest" not in main  # reported on an earlier day: not repeated
    assert "alias claude-3-5-sonnet-latest (since 2026-11-20)" in thread
    only_old = render_digest(make_digest(drift=[_pinning("2026-11-20")], drift_total=1), with_chart=False)
    assert "Drift (new)" not in only_old.plain.split("Details —", 1)[0]


def _p95_line(feature: str, requests: int, change: float) -> FeatureLine:
    return FeatureLine(feature, requests, 5.0, 0.5, Metric(5.0, 5.0, 5.0), Metric(1000.0 * (1 + change), 1000.0, 1000.0),
                       Metric(0.01, 0.01, 0.01, points=True), 0)  # fmt: skip


def test_a_blended_p95_that_hides_a_slower_feature_says_so() -> None:
    totals = {**make_digest().totals, "p95_latency_ms": Metric(5336.0, 5800.0, 5800.0)}  # ▼ −8 %
    features = [_p95_line("chat_response", 900, 0.63), _p95_line("classify", 5000, -0.05), _p95_line("tiny", 5, 2.0)]
    digest = make_digest(features=features, totals=totals, growing=[], findings=[])
    assert mix_shift(digest) == [("chat_response", pytest.approx(0.63))]  # too few calls on "tiny" to count
    lead = _lead(render_digest(digest, with_chart=False).plain)
    assert "p95 5,336 ms (▼ -8% vs 7d, all features) — but per feature: chat_response ▲ +63% (the traffic mix shifted)" in lead

    agreeing = make_digest(features=[_p95_line("chat_response", 900, 0.10)], totals=totals, growing=[], findings=[])
    assert mix_shift(agreeing) == [] and "but per feature" not in render_digest(agreeing, with_chart=False).plain


def test_feedback_has_its_scale() -> None:
    plain = render_digest(make_digest(), with_chart=False).plain
    assert "feedback +0.60 (mean rating, −1 to +1)" in plain and "feedback 0.600" not in plain


def test_caching_shows_only_when_material() -> None:
    cost = make_digest().totals["cost_usd"].value  # $20.80
    assert not caching_is_material(make_digest(caching=CachingEstimate(3, 0.01)))
    assert caching_is_material(make_digest(caching=CachingEstimate(40, 1.0)))  # $1 a day
    assert caching_is_material(make_digest(caching=CachingEstimate(40, 0.06 * cost)))  # ≥ 5 % of the cost
    material = render_digest(make_digest(caching=CachingEstimate(40, 2.5)), with_chart=False)
    spend = material.plain.split("\nSpend\n", 1)[1].split("\n\n", 1)[0]
    assert "Response caching could save: $2.50/day (40 repeated calls; how: in the thread)" in spend
    assert "no hash of the input" not in spend and len(spend.splitlines()[-1]) < 120  # the method is in the thread


def test_cost_by_model_lists_the_top_models_and_their_share() -> None:
    models = [ModelCost(f"model-{index}", 10, 10.0 - index, (10.0 - index) / 45) for index in range(6)]
    plain = render_digest(make_digest(models=models), with_chart=False).plain
    section = plain.split("\nCost by model\n", 1)[1].split("\n\n", 1)[0]
    assert "model-0: $10.00 (22%), 10 requests" in section and "model-3" in section and "model-4" not in section
    assert "2 other models: $11.00 (24%)" in section


def test_the_budget_line_names_its_setting() -> None:
    with_budget = _lead(render_digest(make_digest(), with_chart=False).plain)
    assert "💰 Month to date $400, projected $460 of budget $450 (102%) ⚠️ over budget" in with_budget
    without = render_digest(make_digest(budget=Budget(400.0, 26, 30, 15.0, 460.0, None)), with_chart=False).plain
    assert "Month to date $400, projected $460; no budget set: set LLMOPS_MONTHLY_BUDGET_USD" in _lead(without)


def test_owners_come_from_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOPS_FEATURE_OWNERS", "chat_response=U024BE7LH, code_review=@bob")
    assert feature_owners() == {"chat_response": "U024BE7LH", "code_review": "@bob"}
    monkeypatch.setenv("LLMOPS_FEATURE_OWNERS", '{"chat_response": "<@U024BE7LH>"}')
    assert feature_owners() == {"chat_response": "<@U024BE7LH>"}
    for bad in ("chat_response", '{"chat_response": 3}', "{oops"):
        monkeypatch.setenv("LLMOPS_FEATURE_OWNERS", bad)
        with pytest.raises(ValueError, match="LLMOPS_FEATURE_OWNERS"):
            feature_owners()


def test_a_slack_id_owner_pings_and_a_name_is_text() -> None:
    owners = {"chat_response": "U024BE7LH", "code_review": "@bob <!channel>"}
    rows = _slow_chat() + [{**row, "feature": "code_review"} for row in _slow_chat()[:2]]
    message = render_digest(make_digest(drift=rows, findings=[], owners=owners), with_chart=False)
    main = _main_blocks_text(message)
    assert "owner <@U024BE7LH>" in main  # a live mention
    assert "owner @bob &lt;!channel&gt;" in main and "<!channel>" not in main  # text, pings nobody
    assert "owner @U024BE7LH" in message.plain and MENTION_OPEN not in message.plain + message.markdown


def test_trace_data_cannot_forge_a_mention() -> None:
    forged = f"x{MENTION_OPEN}@U024BE7LH{MENTION_CLOSE}"
    rows = [{**row, "feature": forged} for row in _slow_chat()]
    message = render_digest(make_digest(drift=rows, findings=[]), with_chart=False)
    sent = _main_blocks_text(message) + json.dumps(message.thread_blocks) + message.text
    assert "<@U024BE7LH>" not in sent


def test_links_to_the_ui_when_its_address_is_set() -> None:
    linked = render_digest(make_digest(ui_url="http://127.0.0.1:4200"), with_chart=False)
    context = linked.blocks[-1]["elements"][0]["text"]
    assert "<http://127.0.0.1:4200/deployments|Deployments>" in context  # where a promotion or rollback is started
    assert "<http://127.0.0.1:4200/runs|Flow runs>" in context and "<http://127.0.0.1:4200/dashboard|Prefect UI>" in context
    assert "Flow runs (http://127.0.0.1:4200/runs)" in linked.plain
    assert "4200" not in render_digest(make_digest(), with_chart=False).blocks[-1]["elements"][0]["text"]


def test_sections_lead_with_what_to_look_at() -> None:
    titles = [
        section.title for section in digest_sections(make_digest(findings=[Finding("chat", "error_rate", 0.05, 0.01, 0.04)]))
    ]
    assert titles[:2] == ["What to look at", "Totals"]


def test_the_preview_reads_the_blocks_as_slack_shows_them() -> None:
    assert (
        readable("*Cost* &lt;!channel&gt; <http://x/runs|Flow runs> <@U024BE7LH> 🐢 ▲")
        == "Cost <!channel> Flow runs @U024BE7LH ▲"
    )
    rows = _rows(render_digest(make_digest(drift=_slow_chat(), findings=[]), with_chart=False).blocks)
    texts = [" ".join(row[1:]) for row in rows if row[0] != "rule"]
    assert texts[0].startswith("LLM cost & quality") and "What to look at" in texts[1]
    assert any("chat_response: latency ▲ +60%" in text for text in texts)
    assert any(text.startswith("Cost ") and "Requests" in text for text in texts)  # fields two to a row


def test_the_preview_is_a_png_as_tall_as_the_message(tmp_path: Path) -> None:
    from PIL import Image

    message = render_digest(make_digest(drift=_slow_chat(), findings=[]), with_chart=False)
    alone, with_thread = render_preview(message.blocks), render_preview(message.blocks, message.thread_blocks)
    assert alone.startswith(b"\x89PNG") and with_thread.startswith(b"\x89PNG")
    width, height = Image.open(io.BytesIO(alone)).size
    assert width == 900 and Image.open(io.BytesIO(with_thread)).size[1] > height > 400
    path = save_preview(alone, tmp_path / "digests", make_digest().day, "#llm-ops/../x")
    assert path.name == "digest-2026-11-26-llm-ops_.._x.png" and path.parent == tmp_path / "digests"
    assert "data:image/png;base64," in preview_markdown(alone, path) and "`" in preview_markdown(alone, path)
    assert "data:image" not in preview_markdown(b"x" * (MAX_INLINE_BYTES + 1), path)  # too big to inline: the path only


def test_the_days_alerts_link_their_runs() -> None:
    alerts = [
        {"kind": "eval_regression", "severity": "critical", "title": "support-chat 2.4.0 <!channel>",
         "link": "http://127.0.0.1:4200/runs/flow-run/0f6c"},
        {"kind": "rollback", "severity": "warning", "title": "support-chat rolled back", "link": "javascript:alert(1)|x"},
    ]  # fmt: skip
    message = render_digest(make_digest(alerts=alerts), with_chart=False)
    main = _main_blocks_text(message)
    assert "🚨 eval_regression: support-chat 2.4.0 &lt;!channel&gt;" in main and "<!channel>" not in main
    assert "<http://127.0.0.1:4200/runs/flow-run/0f6c|eval_regression run>" in main
    assert "javascript" not in main and "javascript" not in message.plain  # not a link Slack or a reader should follow
    assert "eval_regression run: http://127.0.0.1:4200/runs/flow-run/0f6c" in message.plain
    assert "Alerts of the day" not in render_digest(make_digest(alerts=[]), with_chart=False).plain


def test_the_footer_says_what_produced_the_digest_and_which_store_it_read() -> None:
    message = render_digest(make_digest(store="postgresql+psycopg://llmops:***@db/<!channel>"), with_chart=False)
    footer = message.blocks[-1]["elements"][0]["text"]
    assert footer.startswith("prefect-llmops daily digest · store postgresql+psycopg://llmops:***@db/&lt;!channel&gt; · ")
    assert "prefect-llmops daily digest · store postgresql+psycopg://llmops:***@db/<!channel>" in message.plain
