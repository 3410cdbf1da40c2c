"""Eval runs in the store and the verdicts on them, on SQLite and PostgreSQL: regression,
improvement and no difference on constructed results, every inconclusive case, the default
baseline, the rollouts' evaluation gate, the digest's verdicts of the day, and the output cache."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text

from llmops.evals import store
from llmops.evals.cache import cache_key, entry, lookup, store_outputs
from llmops.evals.verdicts import VerdictPolicy, compare_runs, compare_scores
from llmops.release.gates import EvalGateContext, baseline_run, eval_gate
from llmops.release.registry import Registry
from llmops.report.digest import compute_digest
from llmops.report.render import render_digest
from llmops.store.eval_models import EvalRun  # noqa: F401  (registers the tables on Base.metadata)
from llmops.store.models import Base
from tests.e2e.test_eval_runner import make_prompt

NAME = "support"
EXAMPLES = [f"ex-{index:03d}" for index in range(80)]
DATASET_HASH = "d" * 64


@pytest.fixture
def engine(store: Engine) -> Engine:
    """No eval runs and no registry state (PostgreSQL's database is shared by the session)."""
    with store.begin() as connection:
        for table in ("eval_results", "eval_runs", "eval_cache", "label_events", "prompt_labels", "prompt_versions"):
            connection.execute(text(f"DELETE FROM {table}"))
    return store


def base_scores(seed: int = 1) -> dict[str, dict[str, float]]:
    """Per example a quality and an assertions score, as a noisy judge would give them."""
    rng = np.random.default_rng(seed)
    return {
        example: {"quality": float(rng.uniform(0.4, 0.9)), "assertions": float(rng.choice([0.5, 1.0]))} for example in EXAMPLES
    }


def shifted(scores: dict[str, dict[str, float]], delta: float, noise: float, seed: int) -> dict[str, dict[str, float]]:
    """The same examples scored again: ``quality`` moved by ``delta`` plus per-example noise."""
    rng = np.random.default_rng(seed)
    return {
        example: {**values, "quality": float(np.clip(values["quality"] + delta + rng.normal(0, noise), 0, 1))}
        for example, values in scores.items()
    }


def record_run(
    engine: Engine,
    version: str,
    scores: dict[str, dict[str, float]],
    *,
    status: str = "complete",
    dataset_hash: str = DATASET_HASH,
    repeats: int = 1,
    created_by: str | None = None,
) -> int:
    """A finished run with one result per example and repeat, written the way the runner writes."""
    run_id = store.create_run(
        engine, prompt_name=NAME, prompt_version=version, content_hash="c" * 64, model="claude-3-5-sonnet-20241022",
        dataset_name="refunds", dataset_hash=dataset_hash, mode="live", repeats=repeats,
        cases_total=len(scores) * repeats, details={}, created_by=created_by,
    )  # fmt: skip
    rows: list[dict[str, Any]] = [
        {
            "example_id": example,
            "repeat": repeat,
            "output": f"answer to {example}",
            "scores": values,
            "reasons": None,
            "cost_usd": Decimal("0.001"),
            "latency_ms": 250.0,
            "input_tokens": 100,
            "output_tokens": 50,
            "attempts": 1,
            "error": None,
            "cached": False,
        }  # fmt: skip
        for example, values in scores.items()
        for repeat in range(repeats)
    ]
    store.write_batch(engine, run_id, rows[: len(rows) // 2])
    store.write_batch(engine, run_id, rows[len(rows) // 2 :])
    means = {
        metric: {"mean": float(np.mean([v[metric] for v in scores.values()])), "n": len(rows)}
        for metric in ("quality", "assertions")
    }
    store.finish_run(engine, run_id, status=status, reason=None if status == "complete" else "stopped", scores=means,
                     calls=len(rows), retries=0, unpriced_calls=0, details={})  # fmt: skip
    return run_id


def test_the_schema_of_the_migration_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [difference for difference in differences if "eval_" in str(difference)] == []


def test_runs_and_results_round_trip_with_exact_costs(engine: Engine) -> None:
    run_id = record_run(engine, "1.0.0", base_scores(), repeats=2)
    run = store.get_run(engine, run_id)
    assert (run.status, run.cases_total, run.cases_done, run.cases_failed) == ("complete", 160, 160, 0)
    assert run.cost_usd == Decimal("0.160")
    assert len(store.results(engine, run_id)) == 160
    per_example = store.example_scores(engine, run_id)
    assert per_example["ex-000"] == pytest.approx(base_scores()["ex-000"])  # repeats averaged


def test_a_clear_drop_is_a_regression(engine: Engine) -> None:
    baseline = record_run(engine, "1.0.0", base_scores())
    candidate = record_run(engine, "1.1.0", shifted(base_scores(), -0.12, 0.05, seed=2))
    comparison = compare_runs(engine, baseline, candidate)

    assert comparison.verdict == "regression" and "quality" in comparison.reason
    quality = next(metric for metric in comparison.metrics if metric.metric == "quality")
    assert quality.pairs == 80 and quality.interval.high < -0.02 and quality.delta == pytest.approx(-0.12, abs=0.03)
    assert [metric.metric for metric in comparison.regressions] == ["quality"]
    assert next(m for m in comparison.metrics if m.metric == "assertions").verdict == "no_difference"


def test_a_clear_gain_is_an_improvement(engine: Engine) -> None:
    baseline = record_run(engine, "1.0.0", base_scores())
    candidate = record_run(engine, "1.1.0", shifted(base_scores(), +0.1, 0.05, seed=3))
    comparison = compare_runs(engine, baseline, candidate)
    assert comparison.verdict == "improvement" and comparison.regressions == []


def test_judge_noise_alone_is_no_difference(engine: Engine) -> None:
    baseline = record_run(engine, "1.0.0", base_scores())
    candidate = record_run(engine, "1.1.0", shifted(base_scores(), 0.0, 0.08, seed=4))
    comparison = compare_runs(engine, baseline, candidate)
    assert comparison.verdict == "no_difference"
    quality = next(metric for metric in comparison.metrics if metric.metric == "quality")
    assert quality.interval.low < 0 < quality.interval.high


def test_pairing_sees_a_drop_that_unpaired_spread_would_hide() -> None:
    """Examples differ far more from each other than the versions do; pairing removes that spread."""
    baseline = {example: {"quality": 0.1 + 0.8 * index / len(EXAMPLES)} for index, example in enumerate(EXAMPLES)}
    candidate = {example: {"quality": values["quality"] - 0.04} for example, values in baseline.items()}
    [quality] = compare_scores(baseline, candidate)
    assert quality.verdict == "regression" and quality.interval == (pytest.approx(-0.04), pytest.approx(-0.04))


def test_an_incomplete_run_is_never_a_regression(engine: Engine) -> None:
    baseline = record_run(engine, "1.0.0", base_scores())
    broken = record_run(engine, "1.1.0", shifted(base_scores(), -0.5, 0.01, seed=5), status="incomplete")
    comparison = compare_runs(engine, baseline, broken)
    assert comparison.verdict == "inconclusive" and "incomplete" in comparison.reason and comparison.metrics == []


def test_too_few_pairs_or_other_dataset_contents_are_inconclusive(engine: Engine) -> None:
    few = {example: base_scores()[example] for example in EXAMPLES[:5]}
    baseline = record_run(engine, "1.0.0", few)
    candidate = record_run(engine, "1.1.0", shifted(few, -0.4, 0.0, seed=6))
    comparison = compare_runs(engine, baseline, candidate)
    assert comparison.verdict == "inconclusive" and all(m.note.startswith("5 paired") for m in comparison.metrics)

    other = record_run(engine, "1.1.0", base_scores(), dataset_hash="e" * 64)
    assert "different dataset contents" in compare_runs(engine, record_run(engine, "1.0.0", base_scores()), other).reason


def test_the_default_baseline_is_production_on_the_same_dataset(engine: Engine) -> None:
    registry = Registry(engine)
    for version in ("1.0.0", "1.1.0"):
        registry.register(make_prompt(version), actor="tests")
    registry.set_label(NAME, "production", "1.0.0", actor="tests", reason="first release")

    reference = record_run(engine, "1.0.0", base_scores())
    record_run(engine, "1.0.0", base_scores(), dataset_hash="e" * 64)  # other contents: never a baseline
    last_night = record_run(engine, "1.0.0", base_scores())
    record_run(engine, "1.0.0", base_scores(), status="incomplete")  # never a baseline
    canary = store.get_run(engine, record_run(engine, "1.1.0", base_scores()))
    tonight = store.get_run(engine, record_run(engine, "1.0.0", base_scores()))

    assert baseline_run(engine, canary, registry).id == tonight.id  # production's latest complete run
    assert baseline_run(engine, tonight, registry).id == reference  # production's own reference: its first
    assert last_night != reference


def test_the_digest_shows_each_eval_run_of_the_day_with_its_verdict_against_its_baseline(engine: Engine) -> None:
    day = date(2026, 11, 26)
    registry = Registry(engine)
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        registry.register(make_prompt(version), actor="tests")
    registry.set_label(NAME, "production", "1.0.0", actor="tests", reason="first release")
    finished = {
        (production := record_run(engine, "1.0.0", base_scores())): day - timedelta(days=1),  # the baseline, not of the day
        (worse := record_run(engine, "1.1.0", shifted(base_scores(), -0.12, 0.05, seed=2))): day,
        (broken := record_run(engine, "1.2.0", base_scores(), status="incomplete")): day,
        (alone := record_run(engine, "1.2.0", base_scores(), dataset_hash="e" * 64)): day,  # no production run on it
        record_run(engine, "1.2.0", base_scores(), created_by=store.PINNED_DRIFT_CREATOR): day,  # not a version's own run
    }
    with engine.begin() as connection:
        for hour, (run_id, on) in enumerate(finished.items()):
            stamp = datetime(on.year, on.month, on.day, 8 + hour, tzinfo=UTC)
            connection.execute(store.RUNS.update().where(store.RUNS.c.id == run_id).values(finished_at=stamp))

    rows = compute_digest(engine, day).eval_verdicts or []

    assert [(row["run_id"], row["verdict"], row["baseline_run"]) for row in rows] == [
        (worse, "regression", production),
        (broken, "inconclusive", production),
        (alone, None, None),
    ]
    regression = rows[0]
    assert regression["metric"] == "quality" and regression["delta"] == pytest.approx(-0.12, abs=0.03)
    assert regression["interval"][1] < -0.02
    verdicts = render_digest(compute_digest(engine, day), with_chart=False).plain.split("Eval verdicts of the day", 1)[1]
    low, high = regression["interval"]
    assert (
        f"🔴 {NAME}@1.1.0 on refunds: regression vs 1.0.0 — quality Δ {regression['delta']:+.3f} [{low:+.3f}, {high:+.3f}] "
        f"(run {worse} vs {production})"
    ) in verdicts
    assert f"❔ {NAME}@1.2.0 on refunds: inconclusive vs 1.0.0 — run {broken} is incomplete (stopped)" in verdicts
    assert f"– {NAME}@1.2.0 on refunds: complete, no verdict: no production run on the same dataset content" in verdicts


def test_the_evaluation_gate_for_rollouts(engine: Engine) -> None:
    def gate(candidate: str, baseline: str | None = "1.0.0"):  # type: ignore[no-untyped-def]
        return eval_gate(EvalGateContext(engine, NAME, candidate, baseline, "production"), VerdictPolicy())

    assert gate("1.1.0").verdict == "missing"
    record_run(engine, "1.1.0", shifted(base_scores(), -0.5, 0.01, seed=7), status="incomplete")
    incomplete = gate("1.1.0")
    assert incomplete.verdict == "missing" and "is incomplete (stopped)" in incomplete.summary  # no evaluation…
    assert "neither a regression nor a pass" in incomplete.summary  # …and it says so
    record_run(engine, "1.1.0", shifted(base_scores(), 0.05, 0.02, seed=8))
    passed = gate("1.1.0")
    assert passed.verdict == "pass" and "nothing to compare with" in passed.summary

    record_run(engine, "1.0.0", base_scores())
    result = gate("1.1.0")
    assert result.verdict == "pass" and "improvement" in result.summary
    assert {row["metric"] for row in result.rows} == {"quality", "assertions"}

    record_run(engine, "1.2.0", shifted(base_scores(), -0.2, 0.05, seed=9))
    failed = gate("1.2.0")
    assert failed.verdict == "fail" and re.search(
        r"regressed against 1\.0\.0 on refunds \(run \d+ vs run \d+\): quality Δ -0\.2\d+ \[-0\.2\d+, -0\.1\d+\]", failed.summary
    )
    assert next(row for row in failed.rows if row["metric"] == "quality")["verdict"] == "regression"
    assert gate("1.2.0", baseline=None).verdict == "pass"

    record_run(engine, "1.3.0", base_scores())  # as good as 1.0.0 on the first dataset…
    record_run(engine, "1.0.0", base_scores(), dataset_hash="e" * 64)
    record_run(engine, "1.3.0", shifted(base_scores(), -0.2, 0.05, seed=10), dataset_hash="e" * 64)  # …worse on the second
    mixed = gate("1.3.0")
    assert mixed.verdict == "fail" and mixed.summary.count(" vs run ") == 1 and "on refunds (run" in mixed.summary
    assert {row["verdict"] for row in mixed.rows if row["metric"] == "quality"} == {"no_difference", "regression"}


def test_pinned_drift_subset_runs_never_decide_a_gate(engine: Engine) -> None:
    record_run(engine, "1.0.0", base_scores())
    record_run(engine, "1.1.0", base_scores())
    record_run(engine, "1.1.0", shifted(base_scores(), -0.5, 0.01, seed=11), created_by=store.PINNED_DRIFT_CREATOR)
    record_run(engine, "1.0.0", base_scores(), created_by=store.PINNED_DRIFT_CREATOR)

    result = eval_gate(EvalGateContext(engine, NAME, "1.1.0", "1.0.0", "production"), VerdictPolicy())
    assert result.verdict == "pass"  # the newest 1.1.0 run is a drift re-run 0.5 worse; the gate reads the real one
    assert len(store.find_runs(engine, NAME, limit=10)) == 2


def test_the_output_cache_keeps_or_replaces_entries(engine: Engine) -> None:
    messages = [{"role": "user", "content": "Refund please"}]
    key = cache_key("claude-3-5-sonnet-20241022", {"max_tokens": 400}, "system text", messages, 0)
    assert key != cache_key("claude-3-5-sonnet-20241022", {"max_tokens": 400}, "system text", messages, 1)
    assert key != cache_key("claude-3-5-sonnet-20241022", {"max_tokens": 401}, "system text", messages, 0)
    now = datetime.now(UTC)

    def entry_for(output: str) -> dict[str, Any]:
        return entry(key, "claude-3-5-sonnet-20241022", output, 10, 20, Decimal("0.000123"), 210.0, False, now)

    with engine.begin() as connection:
        store_outputs(connection, [entry_for("first"), entry_for("first again")])  # same key twice in one batch
    with engine.begin() as connection:
        store_outputs(connection, [entry_for("second")])
    assert lookup(engine, [key, "f" * 64])[key].output == "first again"  # kept: another run stored it first
    with engine.begin() as connection:
        store_outputs(connection, [entry_for("refreshed"), entry_for("refreshed twice")], replace=True)
    hit = lookup(engine, [key])[key]
    assert (hit.output, hit.cost_usd, hit.latency_ms) == ("refreshed twice", Decimal("0.000123"), 210.0)
