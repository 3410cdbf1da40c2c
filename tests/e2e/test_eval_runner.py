"""The eval runner against the real local model server through the official SDK: a live run end
to end, an outage that ends ``incomplete`` without a false regression, a fatal error, the
cache, and batch mode at half price."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import pytest
import typer
import yaml
from sqlalchemy import Engine
from typer.testing import CliRunner

from llmops import settings as env
from llmops.evals import store
from llmops.evals.batch import BatchPolling
from llmops.evals.datasets import Dataset, EvalExample, load_datasets
from llmops.evals.limits import RetryPolicy
from llmops.evals.runner import RunProgress, RunSettings, evaluate
from llmops.evals.scorers import AssertionScorer, JudgeScorer, Score, ScorerConfig, ScorerInput, load_scorer_config
from llmops.evals.verdicts import compare_runs
from llmops.pricing import TokenUsage, price_call
from llmops.prompts import PromptVersion, get_prompt
from llmops.release.registry import get_registry
from llmops.sim import SimConfig, SimServer
from llmops.store.engine import get_engine
from prefect_llmops.cli.evals import register

pytestmark = pytest.mark.e2e

SONNET = "claude-3-5-sonnet-20241022"
POLICY_SYSTEM = (
    "You are Acme Corp's support assistant. Ask for the order number first. Follow the refund policy and state it in "
    "every answer: refunds are available within 30 days of purchase with a receipt or order number, and approved "
    "refunds are processed within 5-7 business days to the original payment method."
)
BRIEF_SYSTEM = "You are Acme Corp's support assistant. Be brief."
QUIET = {"error_rate_429": 0.0, "error_rate_529": 0.0, "error_rate_500": 0.0, "hang_rate": 0.0}
REFUND_QUESTIONS = (
    "I want a refund for my blender, order {n}.",
    "Can I get my money back for order {n}? The kettle arrived scratched.",
    "Please refund order {n}, the toaster stopped working after a week.",
    "How do refunds work? I want to return order {n}.",
    "I'd like to return the pan set from order {n} for a refund.",
)


def make_prompt(version: str = "1.0.0", system: str = POLICY_SYSTEM, name: str = "support", model: str = SONNET) -> PromptVersion:
    return PromptVersion(
        name=name, version=version, model=model, created="2025-11-01", author="tests", changelog=f"release {version}",
        system=system, parameters={"max_tokens": 400, "temperature": 0.0},
    )  # fmt: skip


def refund_dataset(size: int = 20, name: str = "refunds", prompt_name: str = "support") -> Dataset:
    """Refund questions whose good answer states the 30-day policy (the policy prompt does, the brief one does not)."""
    examples = [
        EvalExample(
            id=f"refund-{index:04d}",
            input=REFUND_QUESTIONS[index % len(REFUND_QUESTIONS)].format(n=48_000 + index),
            assertions=[{"type": "contains", "value": "30 days"}, {"type": "max_length", "value": 2000}],
        )
        for index in range(size)
    ]
    return Dataset(name=name, prompt_name=prompt_name, examples=examples)


FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)


def settings(**overrides: Any) -> RunSettings:
    return RunSettings(**{"concurrency": 8, "retry": FAST_RETRY, "call_timeout": 5.0, **overrides})


@pytest.fixture
def sim() -> Iterator[SimServer]:
    config = SimConfig(latency_median_ms=5, ttft_ms=1, retry_after_seconds=0.01, batch_delay_seconds=0.2, seed=11, **QUIET)
    with SimServer(config) as server:
        yield server


@pytest.fixture
def engine() -> Engine:
    return get_engine()


def run(sim: SimServer, engine: Engine, prompt: PromptVersion, dataset: Dataset, **options: Any) -> store.RunRecord:
    """One run with a fresh client per event loop (an SDK client is bound to the loop it first ran on)."""

    async def main() -> store.RunRecord:
        async with anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="sim") as client:
            return await evaluate(prompt, dataset, engine=engine, client=client, scorers=[AssertionScorer()], **options)

    return asyncio.run(main())


def outputs(engine: Engine, run_id: int) -> dict[tuple[str, int], str | None]:
    return {(row["example_id"], row["repeat"]): row["output"] for row in store.results(engine, run_id)}


def messages_posted(sim: SimServer) -> int:
    return sum(sim.stats()["by_endpoint"].get("POST /v1/messages", {}).values())


def test_live_run_end_to_end(sim: SimServer, engine: Engine) -> None:
    seen: list[RunProgress] = []
    dataset = refund_dataset(20)
    record = run(sim, engine, make_prompt(), dataset, settings=settings(repeats=2), progress=seen.append)

    assert record.status == "complete" and record.status_reason is None
    assert (record.cases_total, record.cases_done, record.cases_failed, record.cases_cached) == (40, 40, 0, 0)
    assert record.dataset_hash == dataset.content_hash and record.model == SONNET and record.mode == "live"
    assert messages_posted(sim) == 40 and record.calls == 40 and record.retries == 0
    assert record.cost_usd > 0 and record.unpriced_calls == 0
    assert record.scores["assertions"]["n"] == 40 and record.scores["assertions"]["mean"] > 0.8
    rows = store.results(engine, record.id)
    assert sorted((row["example_id"], row["repeat"]) for row in rows) == sorted(
        (example.id, repeat) for example in dataset.examples for repeat in (0, 1)
    )
    assert all(row["output"] and row["latency_ms"] > 0 and row["input_tokens"] > 0 for row in rows)
    assert sum((row["cost_usd"] for row in rows), Decimal(0)) == record.cost_usd
    passing = [row for row in rows if row["scores"]["assertions"] == 1.0]
    assert passing and all("30 days" in row["output"] for row in passing)
    assert all(row["reasons"]["assertions"]["reason"].startswith("2/2") for row in passing)
    assert seen[-1].done == 40 and seen[-1].total == 40 and seen[-1].note == "complete"


def test_an_outage_ends_the_run_incomplete_and_is_never_a_regression(sim: SimServer, engine: Engine) -> None:
    prompt, dataset = make_prompt(), refund_dataset(60)
    baseline = run(sim, engine, prompt, dataset, settings=settings(cache="off"))
    assert baseline.status == "complete"

    sim.configure(error_rate_429=0.3, error_rate_529=0.25, error_rate_500=0.15, hang_rate=0.15, hang_seconds=30, seed=5)
    sim.reset_stats()
    outage = run(
        sim, engine, prompt, dataset,
        settings=settings(cache="off", call_timeout=0.3, breaker_consecutive=6, breaker_window=20, breaker_failure_rate=0.6),
    )  # fmt: skip

    assert outage.status == "incomplete"
    assert "circuit breaker" in outage.status_reason
    assert outage.cases_done + outage.cases_failed < outage.cases_total  # stopped early, not ground through
    assert outage.retries > 0 and outage.calls > outage.cases_done
    assert set(sim.stats()["faults"]) == {"429", "529", "500", "hang"}
    failed = [row for row in store.results(engine, outage.id) if row["error"]]
    assert failed and all(row["scores"] is None for row in failed)
    assert any(row["error"].startswith("timeout") for row in failed) or any("529" in row["error"] for row in failed)

    comparison = compare_runs(engine, baseline.id, outage.id)
    assert comparison.verdict == "inconclusive" and f"run {outage.id} is incomplete" in comparison.reason
    assert comparison.regressions == []


def test_an_unknown_model_fails_the_run_at_once(sim: SimServer, engine: Engine) -> None:
    record = run(sim, engine, make_prompt(model="claude-3-opus-20240229"), refund_dataset(30), settings=settings())
    assert record.status == "failed" and "404" in record.status_reason
    assert record.calls < 30  # the first answers stopped the rest


def test_the_cache_answers_an_unchanged_case_for_free(sim: SimServer, engine: Engine) -> None:
    dataset = refund_dataset(15)
    first = run(sim, engine, make_prompt("1.0.0"), dataset, settings=settings(repeats=2))
    sim.reset_stats()
    # A new version with the same text, model and parameters asks the same questions: nothing to pay.
    second = run(sim, engine, make_prompt("1.0.1"), dataset, settings=settings(repeats=2))

    assert sim.stats()["total_requests"] == 0
    assert second.status == "complete" and second.cost_usd == 0 and second.calls == 0
    assert second.cases_cached == 30 and first.cases_cached == 0
    assert second.scores == first.scores
    assert outputs(engine, second.id) == outputs(engine, first.id)

    refreshed = run(sim, engine, make_prompt("1.0.1"), dataset, settings=settings(repeats=2, cache="refresh"))
    assert messages_posted(sim) == 30 and refreshed.cost_usd == first.cost_usd and refreshed.cases_cached == 0


def test_batch_mode_collects_by_custom_id_at_half_price(sim: SimServer, engine: Engine) -> None:
    dataset = refund_dataset(25)
    polling = BatchPolling(initial=0.05, factor=2.0, maximum=0.2)
    batch = run(
        sim,
        engine,
        make_prompt(),
        dataset,
        settings=settings(mode="batch", cache="off", batch_polling=polling, batch_chunk_size=10),
    )

    stats = sim.stats()["by_endpoint"]
    assert batch.status == "complete" and batch.mode == "batch" and batch.cases_done == 25
    assert stats["POST /v1/messages/batches"] == {"200": 3}  # chunks of 10, 10 and 5
    assert "POST /v1/messages" not in stats
    assert len(batch.details["batch_ids"]) == 3

    live = run(sim, engine, make_prompt(), dataset, settings=settings(cache="off"))
    assert batch.cost_usd * 2 == live.cost_usd  # the same answers at the batch discount
    assert batch.scores == live.scores
    assert outputs(engine, batch.id) == outputs(engine, live.id)


def test_batch_items_that_hit_server_errors_are_resubmitted(sim: SimServer, engine: Engine) -> None:
    sim.configure(error_rate_500=0.3, seed=3)
    polling = BatchPolling(initial=0.05, factor=2.0, maximum=0.2)
    record = run(
        sim, engine, make_prompt(), refund_dataset(30),
        settings=settings(mode="batch", cache="off", batch_polling=polling, batch_resubmits=3),
    )  # fmt: skip
    assert len(record.details["batch_ids"]) >= 2  # ~30 % errored in the first batch and went again
    assert record.cases_done + record.cases_failed == 30
    assert (record.status == "complete") == (record.cases_failed == 0)


def write_prompt_and_dataset(root: Path, monkeypatch: pytest.MonkeyPatch, size: int = 20) -> None:
    """``support`` 1.0.0 (states the policy) and 1.1.0 (brief) as files, the refunds dataset and its scorer configuration."""
    for version, system in (("1.0.0", POLICY_SYSTEM), ("1.1.0", BRIEF_SYSTEM)):
        prompt = make_prompt(version, system)
        path = root / "prompts" / prompt.name / f"{version}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        fields = prompt.model_dump(
            mode="json", include={"version", "model", "created", "author", "changelog", "system", "parameters"}
        )
        path.write_text(yaml.safe_dump(fields, sort_keys=False))
    dataset = root / "evals" / "support" / "refunds.jsonl"
    dataset.parent.mkdir(parents=True)
    dataset.write_text("".join(json.dumps(example.canonical()) + "\n" for example in refund_dataset(size).examples))
    (dataset.parent / "scorers.yaml").write_text(
        "scorers:\n  assertions:\n    weight: 1.0\n    threshold: 1.0\n    extra:\n      - {type: max_cost, value: 0.05}\n"
    )
    monkeypatch.setenv(env.LLMOPS_PROMPTS_DIR, str(root / "prompts"))
    monkeypatch.setenv(env.LLMOPS_EVALS_DIR, str(root / "evals"))


def test_cli_runs_a_version_and_compares_runs(sim: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_prompt_and_dataset(tmp_path, monkeypatch)
    monkeypatch.setenv(env.ANTHROPIC_BASE_URL, sim.base_url)
    monkeypatch.setenv(env.ANTHROPIC_API_KEY, "sim")
    app = typer.Typer()
    register(app)
    cli = CliRunner()
    registry = get_registry()
    for version in ("1.0.0", "1.1.0"):
        registry.register(get_prompt("support", version), actor="tests")
    registry.set_label("support", "production", "1.0.0", actor="tests", reason="release")

    first = cli.invoke(app, ["eval", "run", "support", "--json", "--concurrency", "4"])
    assert first.exit_code == 0, first.output
    [production] = json.loads(first.stdout)
    assert production["run"]["prompt_version"] == "1.0.0" and production["run"]["status"] == "complete"
    assert production["comparison"] is None  # nothing to compare with yet
    assert set(production["run"]["scores"]) == {"assertions", "overall"}  # scorers.yaml: weighted overall score
    assert production["run"]["details"]["scorers"] == ["assertions"]

    second = cli.invoke(app, ["eval", "run", "support", "--version", "1.1.0", "--fail-on-regression"])
    assert second.exit_code == 1  # the brief version drops the policy: a regression
    assert "Evaluation of support@1.1.0" in second.stdout and "regression vs run" in second.stdout

    compared = cli.invoke(app, ["eval", "compare", str(production["run"]["id"]), str(production["run"]["id"] + 1), "--json"])
    assert compared.exit_code == 0 and json.loads(compared.stdout)["verdict"] == "regression"
    table = cli.invoke(app, ["eval", "compare", str(production["run"]["id"]), str(production["run"]["id"] + 1)])
    assert "verdict: regression" in table.stdout and "assertions" in table.stdout

    assert cli.invoke(app, ["eval", "compare", "1", "999"]).exit_code == 2
    assert cli.invoke(app, ["eval", "run", "support", "--mode", "fast"]).exit_code == 2
    monkeypatch.delenv(env.ANTHROPIC_BASE_URL)
    monkeypatch.delenv(env.ANTHROPIC_API_KEY, raising=False)
    unconfigured = cli.invoke(app, ["eval", "run", "support"])
    assert unconfigured.exit_code == 2 and "ANTHROPIC_API_KEY" in unconfigured.output


# --- the LLM judge against the local model server ---------------------------------------------------

JUDGE_MODEL = "claude-sonnet-4-20250514"
EVALS_DIR = Path(__file__).resolve().parents[2] / "evals"
PROMPTS_DIR = EVALS_DIR.parent / "prompts"
REFUND_CASE = EvalExample(
    id="refund", input="Can I get a refund for my blender?",
    rubric="States the refund policy with its numbers (30 days from purchase, processed in 5-7 business days); asks for the order number.",
)  # fmt: skip
GOOD_ANSWER = (
    "Refunds are available within 30 days of purchase and processed within 5-7 business days. Please share your order number."
)


def test_the_judge_grades_through_the_sync_and_async_sdk_clients(sim: SimServer) -> None:
    with anthropic.Anthropic(base_url=sim.base_url, api_key="sim") as client:
        judge = JudgeScorer(client, JUDGE_MODEL)
        synchronous = judge.score(REFUND_CASE, ScorerInput(text=GOOD_ANSWER))
        vague = judge.score(REFUND_CASE, ScorerInput(text="I can help with that."))

    async def graded() -> Score:
        async with anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="sim") as client:
            return await JudgeScorer(client, JUDGE_MODEL).ascore(REFUND_CASE, ScorerInput(text=GOOD_ANSWER))

    asynchronous = asyncio.run(graded())
    assert synchronous.value == asynchronous.value >= 0.75 > vague.value
    assert synchronous.details["judge_response_model"] == JUDGE_MODEL and Decimal(synchronous.details["judge_cost_usd"]) > 0
    assert messages_posted(sim) == 3


def demo_sample(prompt_name: str, size: int = 12) -> Dataset:
    [dataset] = load_datasets(prompt_name, EVALS_DIR)
    return Dataset(name=f"{dataset.name}-sample", prompt_name=prompt_name, examples=dataset.examples[:size])


@pytest.mark.parametrize(
    ("prompt_name", "version"), [("support-chat", "2.3.1"), ("doc-summary", "1.2.0"), ("code-review", "3.0.2")]
)
def test_the_demo_prompts_configured_scorers_complete_against_the_local_server(
    sim: SimServer, engine: Engine, prompt_name: str, version: str
) -> None:
    config = load_scorer_config(prompt_name, EVALS_DIR)

    async def main() -> store.RunRecord:
        async with anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="sim") as client:
            return await evaluate(
                get_prompt(prompt_name, version, PROMPTS_DIR), demo_sample(prompt_name), engine=engine, client=client,
                settings=settings(), evals_dir=EVALS_DIR,
            )  # fmt: skip

    record = asyncio.run(main())
    assert record.status == "complete", record.status_reason
    assert set(record.scores) == {*config.specs(), "overall"} and record.scores["judge"]["n"] == 12
    assert record.scores["judge"]["mean"] > 0.5  # the production-quality versions are graded well
    assert record.details["judge"]["model"] == JUDGE_MODEL
    for row in store.results(engine, record.id):
        judged = row["reasons"]["judge"]["details"]
        assert judged["judge_model"] == JUDGE_MODEL and Decimal(judged["judge_cost_usd"]) > 0


def test_a_judge_that_stays_unreadable_fails_the_case_but_its_cost_is_kept(sim: SimServer, engine: Engine) -> None:
    sim.configure(provider_updated_models=[JUDGE_MODEL])  # the judge now refuses ~30 % of the time, without a score
    judge_only = ScorerConfig(
        prompt_name="support", judge={"model": JUDGE_MODEL}, scorers={"judge": {"rubric": "States the 30-day refund window."}}
    )

    async def main() -> store.RunRecord:
        async with anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="sim") as client:
            return await evaluate(
                make_prompt(), refund_dataset(40), engine=engine, client=client, scorers=judge_only, settings=settings()
            )

    record = asyncio.run(main())
    rows = store.results(engine, record.id)
    unreadable = [row for row in rows if row["error"] and "JudgeOutputError" in row["error"]]
    assert unreadable and record.status == "incomplete"  # a case without its judge score is not scored
    for row in unreadable:
        details = row["reasons"]["judge"]["details"]
        assert details["attempts"] == 2 and len(details["replies"]) == 2
        model_cost = price_call(
            SONNET, TokenUsage(input_tokens=row["input_tokens"], output_tokens=row["output_tokens"]), datetime.now(UTC)
        )
        assert row["cost_usd"] == model_cost + Decimal(details["judge_cost_usd"]) > model_cost
    assert record.cost_usd == sum((row["cost_usd"] for row in rows), Decimal(0))
