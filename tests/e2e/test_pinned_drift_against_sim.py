"""Pinned-model drift against the real local model server through the official SDK: a reference is
captured, an unchanged model that samples differently each call is quiet, and the provider-update
switch behind the same model id is found and announced for the canary."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import anthropic
import orjson
import pytest
import typer
from sqlalchemy import Engine
from typer.testing import CliRunner

from llmops import settings
from llmops.drift.pinned import CREATED_BY, pinned_findings, run_pinned_checks
from llmops.drift.pinned_compare import PinnedDriftConfig
from llmops.drift.pinned_references import load_reference, pinned_subset
from llmops.drift.report import drift_events, save_findings
from llmops.evals import store as eval_store
from llmops.evals.datasets import load_dataset
from llmops.prompts import load_prompts
from llmops.release.registry import Registry
from llmops.sim import SimConfig, SimServer
from llmops.store.engine import get_engine
from prefect_llmops.cli.drift import register

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SONNET = "claude-3-5-sonnet-20241022"
DAY = date(2026, 11, 26)
CONFIG = PinnedDriftConfig(subset_size=24, min_pairs=20, concurrency=1)  # one call at a time: the sim's draws come in order
SCORERS = """\
judge:
  model: "claude-sonnet-4-20250514"
scorers:
  assertions: {weight: 0.5}
  judge:
    weight: 0.5
    rubric: Answers with the Acme Corp policy that applies and asks for the order number.
"""
runner = CliRunner()


@pytest.fixture
def sim() -> Iterator[SimServer]:
    config = SimConfig(latency_median_ms=2, ttft_ms=1, seed=5, sampling_variation=True)
    with SimServer(config) as server:
        yield server


@pytest.fixture
def engine(sim: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """support-chat 2.3.0 in production and 2.3.1 as a 10 % canary; its golden dataset; the sim as the model."""
    evals = tmp_path / "evals" / "support-chat"
    evals.mkdir(parents=True)
    shutil.copy(REPO / "evals" / "support-chat" / "golden.jsonl", evals / "golden.jsonl")
    (evals / "scorers.yaml").write_text(SCORERS)
    monkeypatch.setenv(settings.LLMOPS_EVALS_DIR, str(tmp_path / "evals"))
    monkeypatch.setenv(settings.LLMOPS_PROMPTS_DIR, str(REPO / "prompts"))
    monkeypatch.setenv(settings.ANTHROPIC_BASE_URL, sim.base_url)
    monkeypatch.delenv(settings.ANTHROPIC_API_KEY, raising=False)
    engine = get_engine()
    registry = Registry(engine)
    for prompt in load_prompts(REPO / "prompts")["support-chat"].values():
        registry.register(prompt, actor="tests")
    registry.set_label("support-chat", "production", "2.3.0", actor="tests", reason="release")
    registry.set_label("support-chat", "canary", "2.3.1", traffic_percent=10, actor="tests", reason="canary")
    return engine


def messages_posted(sim: SimServer) -> int:
    return sum(sim.stats()["by_endpoint"].get("POST /v1/messages", {}).values())


def test_an_unchanged_model_is_quiet_and_a_provider_update_is_found(sim: SimServer, engine: Engine) -> None:
    canary = [("support-chat", "2.3.1", "canary")]
    [captured] = run_pinned_checks(engine, canary, config=CONFIG)
    assert captured.status == "captured" and "reference captured tonight, compared from tomorrow" in captured.notes
    dataset = load_dataset(REPO / "evals" / "support-chat" / "golden.jsonl", "support-chat")
    reference = load_reference(engine, "support-chat", "2.3.1", SONNET, dataset.name)
    assert reference is not None and reference.examples == 24 and len(reference.answers) == 48
    run = eval_store.get_run(engine, reference.eval_run_id or 0)
    assert (run.dataset_name, run.repeats, run.details["settings"]["cache"]) == ("golden@pinned", 2, "off")

    before = messages_posted(sim)
    [quiet] = run_pinned_checks(engine, canary, config=CONFIG)
    assert quiet.status == "compared", quiet.line()
    assert messages_posted(sim) - before >= 24  # asked again, not served from the output cache
    similarity = next(test for test in quiet.tests if test.metric == "pinned:similarity")
    assert similarity.reference < 0.999  # the model really varies between calls
    assert pinned_findings(DAY, "production", [quiet], CONFIG) == []
    judged = any(test.metric == "pinned:judge_score" for test in quiet.tests)
    assert judged or any(note.startswith("judge score not available") for note in quiet.notes)
    after_quiet = load_reference(engine, "support-chat", "2.3.1", SONNET, dataset.name)
    assert after_quiet is not None and len(after_quiet.nights) == 1  # the round's first night, kept for the next
    assert "(night 1 of 3)" in quiet.line(), quiet.line()

    sim.configure(provider_updated_models=[SONNET])
    [changed] = run_pinned_checks(engine, canary, config=CONFIG)
    findings = pinned_findings(DAY, "production", [changed], CONFIG)
    metrics = {finding.metric for finding in findings}
    assert {"pinned:similarity", "pinned:output_length"} <= metrics, changed.line()
    after_update = load_reference(engine, "support-chat", "2.3.1", SONNET, dataset.name)
    alarmed = any(test.alarm for test in changed.accumulated)
    assert after_update is not None and len(after_update.nights) == (0 if alarmed else 2), changed.line()
    drop = next(f for f in findings if f.metric == "pinned:similarity")
    assert drop.summary.startswith("outputs' similarity to the reference 0.") and drop.value < drop.reference - 0.05

    [event] = drift_events(engine, findings)
    assert (event.prompt_name, event.version, event.label, event.environment) == ("support-chat", "2.3.1", "canary", "production")
    assert event.metric in metrics and event.summary in {f.summary for f in findings}

    app = typer.Typer()
    register(app)
    app.command("noop", hidden=True)(lambda: None)
    save_findings(engine, DAY, findings)
    listed = orjson.loads(runner.invoke(app, ["drift", "--date", DAY.isoformat(), "--json"]).stdout)
    assert {item["metric"] for item in listed if item["kind"] == "pinned"} == metrics
    shown = runner.invoke(app, ["drift", "reference", "support-chat", "--show", "--json"])
    assert shown.exit_code == 0, shown.output
    [row] = orjson.loads(shown.stdout)  # 2.3.0 serves too, but has no reference yet
    assert (row["version"], row["model"], row["examples"], row["by"]) == ("2.3.1", SONNET, 24, CREATED_BY)


def test_an_edited_dataset_keeps_comparing_its_unchanged_examples_and_recaptures_when_too_few_are_left(
    engine: Engine, tmp_path: Path
) -> None:
    canary = [("support-chat", "2.3.1", "canary")]
    golden = tmp_path / "evals" / "support-chat" / "golden.jsonl"
    run_pinned_checks(engine, canary, config=CONFIG)
    first = load_reference(engine, "support-chat", "2.3.1", SONNET, "golden")
    assert first is not None and first.examples == 24

    def reword(count: int) -> None:
        dataset = load_dataset(golden, "support-chat")
        chosen = {example.id for example in pinned_subset(dataset, CONFIG.subset_size).examples[:count]}
        lines = [orjson.loads(line) for line in golden.read_text().splitlines() if line.strip()]
        for line in lines:
            if line["id"] in chosen:
                line["input"] = f"Reworded: {line['input'] if isinstance(line['input'], str) else 'a question'}"
        golden.write_text("".join(orjson.dumps(line).decode() + "\n" for line in lines))

    reword(3)
    [compared] = run_pinned_checks(engine, canary, config=CONFIG)
    assert compared.status == "compared" and all(test.pairs == 21 for test in compared.tests), compared.line()
    assert compared.notes[0].endswith("21 of its 24 examples are unchanged and were compared")
    kept = load_reference(engine, "support-chat", "2.3.1", SONNET, "golden")
    assert kept is not None and (kept.eval_run_id, kept.captured_at) == (first.eval_run_id, first.captured_at)

    reword(CONFIG.subset_size)  # every example of the subset now differs from what the reference answered
    [recaptured] = run_pinned_checks(engine, canary, config=CONFIG)
    assert recaptured.status == "captured", recaptured.line()
    assert recaptured.notes[0].startswith("the dataset changed since the reference of ")
    second = load_reference(engine, "support-chat", "2.3.1", SONNET, "golden")
    assert second is not None and second.eval_run_id != first.eval_run_id and second.examples == 24
    assert second.dataset_hash == load_dataset(golden, "support-chat").content_hash


def test_sampling_variation_draws_a_fresh_answer_per_call_above_temperature_zero(sim: SimServer) -> None:
    client = anthropic.Anthropic(base_url=sim.base_url, api_key="sim")

    def answers(temperature: float) -> set[str]:
        return {
            client.messages.create(
                model=SONNET, max_tokens=400, system="You are Acme Corp's support assistant. State the refund policy.",
                messages=[{"role": "user", "content": "I want a refund for my blender."}],
                extra_body={"temperature": temperature},
            ).content[0].text  # type: ignore[union-attr]
            for _ in range(12)
        }  # fmt: skip

    assert len(answers(0.7)) > 1
    assert len(answers(0.0)) == 1  # greedy decoding does not sample
    sim.configure(sampling_variation=False)
    assert len(answers(0.7)) == 1  # off: the same request always gets the same answer
