"""The rollout state machine on SQLite and PostgreSQL: plans, gates, approval, pause, rollback,
one live rollout per prompt under real concurrency, and the release tag in a temporary git repo."""

from __future__ import annotations

import math
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pydantic import ValidationError
from sqlalchemy import Engine, text

from llmops import settings
from llmops.evals.store import RunRecord
from llmops.prompts import get_prompt
from llmops.release.experiments import Tolerances
from llmops.release.gates import read_user_history
from llmops.release.registry import Registry
from llmops.release.rollouts import (
    EvalGateContext,
    GateResult,
    PromotionRequest,
    RolloutConflictError,
    RolloutError,
    advance_rollout,
    approve,
    get_rollout,
    live_rollouts,
    rollback,
    start_rollout,
    tag_release,
)
from llmops.sim import SimConfig, SimServer
from llmops.store.models import Base
from llmops.store.writer import write_traces
from tests.e2e.test_eval_runner import BRIEF_SYSTEM, POLICY_SYSTEM, refund_dataset, run
from tests.e2e.test_eval_runner import settings as eval_settings
from tests.factories import trace

NAME = "support"
T0 = datetime(2025, 11, 3, 9, 0, tzinfo=UTC)
CLEANED_TABLES = ("rollouts", "label_events", "prompt_labels", "prompt_versions")


def write_prompt(directory: Path, version: str, system: str | None = None, name: str = NAME) -> None:
    document: dict[str, Any] = {
        "version": version,
        "model": "claude-3-5-sonnet-20241022",
        "created": "2025-11-01",
        "author": "team-ai",
        "changelog": f"release {version}",
        "system": system or f"You are Acme's support assistant (v{version}).",
        "parameters": {"temperature": 0.3, "max_tokens": 512},
    }
    path = directory / name / f"{version}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


@pytest.fixture
def prompts_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Prompt files outside any git checkout, so no test can tag this repository."""
    directory = tmp_path / "prompts"
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        write_prompt(directory, version)
    monkeypatch.setenv(settings.LLMOPS_PROMPTS_DIR, str(directory))
    return directory


@pytest.fixture
def engine(store: Engine, prompts_dir: Path) -> Engine:
    """An empty registry and no rollouts (PostgreSQL's database is shared by the session)."""
    with store.begin() as connection:
        for table in CLEANED_TABLES:
            connection.execute(text(f"DELETE FROM {table}"))
    return store


def request(version: str = "1.1.0", **overrides: Any) -> PromotionRequest:
    fields: dict[str, Any] = {
        "prompt_name": NAME,
        "version": version,
        "strategy": "canary",
        "min_step_minutes": 30,
        "min_requests_per_step": 100,
        "force_without_eval": True,
        "tolerances": Tolerances(min_samples_per_arm=100),
        "reason": "better refunds",
        "actor": "alice",
    }
    return PromotionRequest(**(fields | overrides))


def released(engine: Engine, version: str = "1.0.0") -> None:
    """``version`` holds production, as after an earlier promotion."""
    start_rollout(engine, request(version, strategy="immediate", reason="first release"), now=T0 - timedelta(days=1))


def add_traffic(engine: Engine, version: str, count: int, start: datetime, *, errors: int = 0, latency_ms: float = 900.0) -> None:
    """``count`` calls of ``version`` from ``start`` on, one a second; the first ``errors`` failed."""
    write_traces(
        engine,
        [
            trace(
                trace_id=f"{version}-{start:%H%M%S}-{index}",
                timestamp=start + timedelta(seconds=index),
                prompt_name=NAME,
                prompt_version=version,
                status="error" if index < errors else "ok",
                error_type="api_error" if index < errors else None,
                latency_ms=latency_ms + index % 50,
                output_tokens=200 + index % 7,
                user_feedback=1.0 if index % 3 else 0.0,
            )
            for index in range(count)
        ],
    )


def labels(engine: Engine) -> tuple[str | None, str | None, float | None, str | None]:
    state = Registry(engine).labels(NAME)
    return state.production, state.canary, state.canary_traffic_percent, state.staging


def events(engine: Engine) -> list[Any]:
    return [event for event in Registry(engine).history(NAME) if event.action != "register"]


def healthy_step(engine: Engine, rollout_id: int, start: datetime) -> None:
    """Enough healthy traffic of both versions in the step that starts at ``start``."""
    rollout = get_rollout(engine, rollout_id)
    add_traffic(engine, rollout.candidate, 150, start + timedelta(seconds=1))
    add_traffic(engine, rollout.baseline or "", 600, start + timedelta(seconds=1))


# -- starting ------------------------------------------------------------------------------------


def test_the_schema_of_the_migration_matches_the_model(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [difference for difference in differences if "rollouts" in str(difference)] == []


def test_an_immediate_release_moves_production_and_records_the_forced_gate(engine: Engine) -> None:
    outcome = start_rollout(engine, request("1.0.0", strategy="immediate"), flow_run_id="run-1", now=T0)

    assert (outcome.action, outcome.rollout.status, outcome.production_changed_to) == ("completed", "completed", "1.0.0")
    assert labels(engine) == ("1.0.0", None, None, None)
    [event] = events(engine)
    assert (event.actor, event.label, event.to_version, event.flow_run_id) == ("alice", "production", "1.0.0", "run-1")
    assert "evaluation gate forced: no complete eval run of support 1.0.0" in event.reason and "better refunds" in event.reason
    assert live_rollouts(engine) == []


def test_a_version_without_an_evaluation_is_refused_unless_forced(engine: Engine) -> None:
    with pytest.raises(RolloutError, match="no complete eval run of support 1.0.0.*force_without_eval"):
        start_rollout(engine, request("1.0.0", strategy="immediate", force_without_eval=False))

    assert labels(engine) == (None, None, None, None)


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(latency_median_ms=5, ttft_ms=1, seed=11)) as server:
        yield server


def evaluated(sim: SimServer, engine: Engine, version: str, **run_settings: Any) -> RunRecord:
    """A real eval run of ``version`` (its prompt file) on the refunds dataset against the local model server."""
    return run(sim, engine, get_prompt(NAME, version), refund_dataset(20), settings=eval_settings(**run_settings))


def test_the_evaluation_gate_refuses_a_version_whose_eval_run_regressed(
    engine: Engine, prompts_dir: Path, sim: SimServer
) -> None:
    write_prompt(prompts_dir, "2.0.0", POLICY_SYSTEM)
    write_prompt(prompts_dir, "2.1.0", BRIEF_SYSTEM)  # drops the refund policy the dataset asks for
    write_prompt(prompts_dir, "2.2.0", POLICY_SYSTEM + " Be warm.")
    production, worse, better = (evaluated(sim, engine, version) for version in ("2.0.0", "2.1.0", "2.2.0"))
    released(engine, "2.0.0")

    refusal = rf"regressed against 2\.0\.0 on refunds \(run {worse.id} vs run {production.id}\): assertions Δ -0\.\d+ \[-0\.\d+, -0\.\d+\]"
    with pytest.raises(RolloutError, match=refusal):
        start_rollout(engine, request("2.1.0"))  # forcing covers a missing evaluation, never a worse one
    assert labels(engine) == ("2.0.0", None, None, None)

    started = start_rollout(engine, request("2.2.0", force_without_eval=False))
    [gate] = started.gates
    assert started.action == "started" and gate.verdict == "pass" and f"run {better.id} vs run {production.id}" in gate.summary
    assert {row["metric"] for row in gate.rows} == {"assertions"}


def test_an_incomplete_eval_run_is_neither_a_regression_nor_a_pass(engine: Engine, prompts_dir: Path, sim: SimServer) -> None:
    write_prompt(prompts_dir, "2.0.0", POLICY_SYSTEM)
    write_prompt(prompts_dir, "2.1.0", BRIEF_SYSTEM)
    evaluated(sim, engine, "2.0.0")
    released(engine, "2.0.0")
    sim.configure(error_rate_500=1.0)
    outage = evaluated(sim, engine, "2.1.0", breaker_consecutive=3)
    assert outage.status == "incomplete"

    with pytest.raises(
        RolloutError, match=rf"run {outage.id} on refunds is incomplete .*neither a regression nor a pass.*force_without_eval"
    ):
        start_rollout(engine, request("2.1.0", force_without_eval=False))
    forced = start_rollout(engine, request("2.1.0"))
    assert forced.gates[0].verdict == "forced" and "incomplete" in forced.gates[0].summary


def test_a_pluggable_evaluation_gate_decides(engine: Engine) -> None:
    asked: list[EvalGateContext] = []

    def gate(context: EvalGateContext) -> GateResult:
        asked.append(context)
        return GateResult("evaluation", "fail", "run 42: accuracy 0.71 vs 0.80")

    released(engine)
    with pytest.raises(RolloutError, match="run 42: accuracy 0.71 vs 0.80"):
        start_rollout(engine, request(), eval_gate=gate)
    assert [(c.candidate, c.baseline) for c in asked] == [("1.1.0", "1.0.0")]


def test_staged_strategies_need_a_production_version_to_compare_with(engine: Engine) -> None:
    with pytest.raises(RolloutError, match="no production version .* release the first version with strategy immediate"):
        start_rollout(engine, request("1.0.0"))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"steps": [25, 5, 100]}, "steps must increase"),
        ({"steps": [5, 25]}, "last step must be 100"),
        ({"steps": [0, 100]}, "above 0 and at most 100"),
        ({"strategy": "ab", "steps": [5, 100]}, "ab does not take them"),
        ({"strategy": "rolling"}, "strategy"),
        ({"ab_split": 100}, "ab_split"),
        ({"reason": ""}, "reason"),
    ],
)
def test_bad_requests_are_refused_before_anything_happens(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        request(**fields)


def test_a_request_accepts_the_event_resource_id_as_name() -> None:
    assert request(prompt_name="llmops.prompt.support").prompt_name == NAME


def test_one_live_rollout_per_prompt_and_environment(engine: Engine) -> None:
    released(engine)
    first = start_rollout(engine, request(), now=T0)

    with pytest.raises(
        RolloutConflictError, match=rf"already has a live rollout {first.rollout.id} .*\(llmops rollback support\)"
    ):
        start_rollout(engine, request("1.2.0"), now=T0)
    start_rollout(engine, request("1.0.0", strategy="immediate", environment="staging"), now=T0)

    assert [(r.candidate, r.environment) for r in live_rollouts(engine)] == [("1.1.0", "production")]


def test_two_promotions_at_the_same_moment_one_wins(engine: Engine) -> None:
    released(engine)
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def promote(version: str) -> None:
        barrier.wait()
        try:
            results[version] = start_rollout(engine, request(version), now=T0).rollout.candidate
        except RolloutConflictError as exc:
            results[version] = exc

    threads = [threading.Thread(target=promote, args=(version,)) for version in ("1.1.0", "1.2.0")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    winners = [value for value in results.values() if isinstance(value, str)]
    losers = [value for value in results.values() if isinstance(value, RolloutConflictError)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert [r.candidate for r in live_rollouts(engine)] == winners
    assert labels(engine)[1] == winners[0]
    assert len([event for event in events(engine) if event.label == "canary"]) == 1


# -- advancing -------------------------------------------------------------------------------------


def test_a_canary_waits_for_time_and_traffic_then_steps_to_production(engine: Engine) -> None:
    released(engine)
    rollout_id = start_rollout(engine, request(), now=T0).rollout.id
    assert labels(engine) == ("1.0.0", "1.1.0", 5.0, None)

    healthy_step(engine, rollout_id, T0)
    early = advance_rollout(engine, rollout_id, now=T0 + timedelta(minutes=20))
    assert (early.action, early.message) == ("waiting", "step has run 20 of 30 minutes")

    second = advance_rollout(engine, rollout_id, now=T0 + timedelta(minutes=31))
    assert second.action == "advanced" and labels(engine) == ("1.0.0", "1.1.0", 25.0, None)
    assert [gate.verdict for gate in second.gates] == ["forced", "pass"]

    t1 = T0 + timedelta(minutes=31)
    add_traffic(engine, "1.1.0", 40, t1 + timedelta(seconds=1))
    starved = advance_rollout(engine, rollout_id, now=t1 + timedelta(minutes=45))
    assert starved.action == "waiting" and "waiting for traffic: 40 candidate" in starved.message

    healthy_step(engine, rollout_id, t1 + timedelta(minutes=1))
    done = advance_rollout(engine, rollout_id, now=t1 + timedelta(minutes=46))
    assert (done.action, done.rollout.status, done.production_changed_to) == ("completed", "completed", "1.1.0")
    assert labels(engine) == ("1.1.0", None, None, None)
    assert [(e.label, e.action, e.to_version, e.to_traffic) for e in events(engine)][1:] == [
        ("canary", "promote", "1.1.0", 5.0),
        ("canary", "set_traffic", "1.1.0", 25.0),
        ("production", "promote", "1.1.0", None),
        ("canary", "clear", None, None),
    ]


def test_a_failed_trace_gate_rolls_back_and_says_why(engine: Engine) -> None:
    released(engine)
    rollout_id = start_rollout(engine, request(), now=T0).rollout.id
    add_traffic(engine, "1.1.0", 150, T0 + timedelta(seconds=1), errors=45)
    add_traffic(engine, "1.0.0", 600, T0 + timedelta(seconds=1), errors=3)

    outcome = advance_rollout(engine, rollout_id, now=T0 + timedelta(minutes=10))  # failing needs no minimum time

    assert (outcome.action, outcome.rollout.status, outcome.gate_failed) == ("rolled_back", "rolled_back", True)
    assert labels(engine) == ("1.0.0", None, None, None)
    assert "traces gate fail" in outcome.message and "error_rate" in outcome.message
    assert "evidence of harm" in outcome.message and "crossed 500" in outcome.message  # 1/α, α = 1 % over 5 metrics
    trace_gate = next(gate for gate in outcome.rollout.last_gate_results if gate.gate == "traces")
    assert any(row["metric"] == "error_rate" and row["verdict"] == "fail" for row in trace_gate.rows)
    last = events(engine)[-1]
    assert (last.label, last.action, last.from_version, last.actor) == ("canary", "rollback", "1.1.0", "advance-rollouts")
    assert "error_rate" in last.reason
    assert advance_rollout(engine, rollout_id).action == "unchanged"


def test_a_harmless_candidate_passes_its_step_early_once_enough_users_saw_it(engine: Engine) -> None:
    """Sequentially, no harm shown on error rate, latency and cost passes a step before its
    minimum traffic; its minimum minutes still hold, and one busy user is not enough exposure."""
    released(engine)
    rollout_id = start_rollout(engine, request(min_requests_per_step=5_000), now=T0).rollout.id
    add_traffic(engine, "1.1.0", 3_000, T0 + timedelta(seconds=1))
    add_traffic(engine, "1.0.0", 3_000, T0 + timedelta(seconds=2))

    early = advance_rollout(engine, rollout_id, now=T0 + timedelta(minutes=31))

    assert early.action == "advanced", early.message
    trace_gate = next(gate for gate in early.gates if gate.gate == "traces")
    assert trace_gate.summary.startswith("no harm shown, before the step's minimum traffic (1860 candidate")
    assert "error rate: evidence of no harm" in trace_gate.summary and "crossed 20" in trace_gate.summary


def test_one_busy_user_is_not_enough_exposure_for_an_early_pass(engine: Engine) -> None:
    released(engine)
    rollout_id = start_rollout(engine, request(min_requests_per_step=5_000), now=T0).rollout.id
    calls = [
        trace(trace_id=f"busy-{version}-{index}", timestamp=T0 + timedelta(seconds=index + 1), prompt_name=NAME,
              prompt_version=version, user_id=f"user-{index % 5}", latency_ms=900.0 + index % 50)
        for version in ("1.0.0", "1.1.0") for index in range(3_000)
    ]  # fmt: skip
    write_traces(engine, calls)

    waiting = advance_rollout(engine, rollout_id, now=T0 + timedelta(minutes=31))

    assert waiting.action == "waiting"
    assert "waiting for traffic: 1860 candidate / 1860 control requests, the step needs 5000" in waiting.message


def test_the_trace_gate_reads_each_users_calls_before_the_rollout(engine: Engine) -> None:
    """Their averages (error share, log mean latency of successful calls, cost) narrow the gate's intervals."""
    before = T0 - timedelta(days=2)
    calls = [
        trace(trace_id=f"history-{index}", timestamp=before + timedelta(minutes=index), prompt_name=NAME,
              prompt_version="1.0.0", user_id=f"user-{index % 2}", status="error" if index == 0 else "ok",
              error_type="api_error" if index == 0 else None, latency_ms=1_000.0 * (1 + index % 2), cost_usd=0.002)
        for index in range(6)
    ]  # fmt: skip
    write_traces(
        engine, calls + [trace(trace_id="too-old", timestamp=T0 - timedelta(days=9), prompt_name=NAME, user_id="user-0")]
    )
    history = read_user_history(engine, NAME, "production", T0, days=7)
    first, second = sorted(history.values(), key=lambda averages: -averages["errors"])  # ids are stored pseudonymised
    assert len(history) == 2
    assert first["errors"] == pytest.approx(1 / 3)
    assert first["latencies_ms"] == pytest.approx(math.log(1_000.0))  # its failed call left out
    assert second["latencies_ms"] == pytest.approx(math.log(2_000.0))
    assert second["costs"] == pytest.approx(0.002)


def test_approval_holds_a_passed_step_until_someone_approves(engine: Engine) -> None:
    released(engine)
    rollout_id = start_rollout(engine, request(require_approval=True), now=T0).rollout.id
    healthy_step(engine, rollout_id, T0)

    held = advance_rollout(engine, rollout_id, now=T0 + timedelta(minutes=31))
    again = advance_rollout(engine, rollout_id, now=T0 + timedelta(minutes=46))
    assert (held.action, held.rollout.status) == ("awaiting_approval", "awaiting_approval")
    assert "llmops rollout approve support" in held.message
    assert again.action == "unchanged" and labels(engine)[2] == 5.0

    approved = approve(engine, NAME, actor="bob", now=T0 + timedelta(minutes=50))
    assert (approved.action, approved.rollout.status, approved.rollout.current_step) == ("advanced", "active", 1)
    assert labels(engine)[2] == 25.0 and events(engine)[-1].actor == "bob"
    with pytest.raises(RolloutError, match="does not wait for approval"):
        approve(engine, NAME, actor="bob")


def test_blue_green_keeps_the_old_version_as_fallback_until_the_last_step_passes(engine: Engine) -> None:
    released(engine)
    rollout_id = start_rollout(engine, request(strategy="blue_green"), now=T0).rollout.id
    assert labels(engine) == ("1.0.0", "1.1.0", 10.0, "1.0.0")
    healthy_step(engine, rollout_id, T0)
    assert advance_rollout(engine, rollout_id, now=T0 + timedelta(minutes=31)).action == "advanced"
    assert labels(engine) == ("1.0.0", "1.1.0", 50.0, "1.0.0")
    clock = T0 + timedelta(minutes=31)
    healthy_step(engine, rollout_id, clock)
    clock += timedelta(minutes=31)
    switched = advance_rollout(engine, rollout_id, now=clock)
    assert (switched.action, switched.production_changed_to) == ("advanced", "1.1.0")
    assert labels(engine) == ("1.1.0", None, None, "1.0.0")

    add_traffic(engine, "1.1.0", 150, clock + timedelta(seconds=1))  # baseline traffic from before the switch is the control
    done = advance_rollout(engine, rollout_id, now=clock + timedelta(minutes=31))

    assert (done.action, done.production_changed_to) == ("completed", None)
    assert labels(engine) == ("1.1.0", None, None, None)


def test_an_ab_split_runs_its_time_then_the_report_decides(engine: Engine) -> None:
    released(engine)
    rollout_id = start_rollout(engine, request(strategy="ab", ab_split=50, ab_duration_hours=2), now=T0).rollout.id
    assert labels(engine) == ("1.0.0", "1.1.0", 50.0, None)
    add_traffic(engine, "1.1.0", 400, T0 + timedelta(seconds=1))
    add_traffic(engine, "1.0.0", 400, T0 + timedelta(seconds=1), errors=40)

    early = advance_rollout(engine, rollout_id, now=T0 + timedelta(hours=1))
    decided = advance_rollout(engine, rollout_id, now=T0 + timedelta(hours=2, minutes=1))

    assert (early.action, early.message) == ("waiting", "step has run 60 of 120 minutes")
    assert (decided.action, decided.production_changed_to) == ("completed", "1.1.0")
    assert decided.ab_report is not None
    [errors] = [metric for metric in decided.ab_report.metrics if metric.metric == "error_rate"]
    assert (errors.verdict, errors.winner) == ("winner", "1.1.0")
    assert "1.1.0 on error rate → candidate" in decided.gates[-1].summary
    assert labels(engine) == ("1.1.0", None, None, None)


def test_labels_moved_by_hand_pause_the_rollout_and_approve_resumes_it(engine: Engine) -> None:
    released(engine)
    rollout_id = start_rollout(engine, request(), now=T0).rollout.id
    Registry(engine).set_label(NAME, "canary", "1.1.0", traffic_percent=50, actor="carol", reason="hotfix test")

    paused = advance_rollout(engine, rollout_id, now=T0 + timedelta(minutes=5))
    assert paused.action == "paused" and "canary is 1.1.0 at 50 %, the rollout expects 1.1.0 at 5 %" in paused.message
    assert advance_rollout(engine, rollout_id).action == "unchanged"

    resumed = approve(engine, NAME, actor="alice", now=T0 + timedelta(minutes=6))
    assert resumed.rollout.status == "active" and resumed.rollout.step_started_at == T0 + timedelta(minutes=6)
    assert labels(engine)[2] == 5.0


def test_a_decision_on_a_stale_read_is_refused(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scheduled advance and a person acting at the same moment: the second changes nothing."""
    import llmops.release.rollouts.actions as rollouts_module

    released(engine)
    rollout_id = start_rollout(engine, request(require_approval=True), now=T0).rollout.id
    healthy_step(engine, rollout_id, T0)
    stale = get_rollout(engine, rollout_id)
    rollback(engine, NAME, reason="changed my mind", actor="bob")
    monkeypatch.setattr(rollouts_module, "get_rollout", lambda *_: stale)

    with pytest.raises(RolloutConflictError, match="changed while this decision was being made"):
        advance_rollout(engine, rollout_id, now=T0 + timedelta(minutes=31))
    assert labels(engine) == ("1.0.0", None, None, None)


# -- rolling back ----------------------------------------------------------------------------------


def test_rollback_during_a_rollout_ends_it_and_restores_its_baseline(engine: Engine) -> None:
    released(engine)
    rollout_id = start_rollout(engine, request(), now=T0).rollout.id

    result = rollback(engine, f"llmops.prompt.{NAME}", reason="complaints", actor="bob", flow_run_id="run-9")

    assert (result.restored, result.replaced, result.ended_rollout.id) == ("1.0.0", "1.1.0", rollout_id)  # type: ignore[union-attr]
    assert get_rollout(engine, rollout_id).status == "rolled_back"
    assert labels(engine) == ("1.0.0", None, None, None)
    last = events(engine)[-1]
    assert (last.action, last.actor, last.flow_run_id) == ("rollback", "bob", "run-9") and "complaints" in last.reason


def test_rollback_restores_the_previous_production_or_the_named_version(engine: Engine) -> None:
    released(engine, "1.0.0")
    start_rollout(engine, request("1.1.0", strategy="immediate"), now=T0)
    start_rollout(engine, request("1.2.0", strategy="immediate"), now=T0)

    back = rollback(engine, NAME, reason="regression", actor="bob")
    assert (back.restored, back.replaced, labels(engine)[0]) == ("1.1.0", "1.2.0", "1.1.0")
    named = rollback(engine, NAME, to_version="1.0.0", reason="known good", actor="bob")
    assert (named.restored, labels(engine)[0]) == ("1.0.0", "1.0.0")
    with pytest.raises(RolloutError, match="neither registered nor in"):
        rollback(engine, NAME, to_version="9.9.9", reason="typo", actor="bob")


def test_rollback_for_a_version_no_longer_serving_does_nothing(engine: Engine) -> None:
    released(engine, "1.0.0")
    start_rollout(engine, request("1.1.0", strategy="immediate"), now=T0)
    before = len(events(engine))

    result = rollback(engine, NAME, reason="old event", actor="automation", only_if_serving="1.2.0")

    assert result.restored is None and "no longer serves" in result.message
    assert len(events(engine)) == before and labels(engine)[0] == "1.1.0"


def test_rollback_with_nothing_before_says_what_to_do(engine: Engine) -> None:
    released(engine)
    with pytest.raises(RolloutError, match="no earlier production version .* --to VERSION"):
        rollback(engine, NAME, reason="oops", actor="bob")


# -- git -------------------------------------------------------------------------------------------


def _git(directory: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(directory), *args], check=True, capture_output=True, text=True).stdout


def test_a_release_is_tagged_in_the_checkout_holding_the_prompts(tmp_path: Path) -> None:
    repo = tmp_path / "app"
    (repo / "prompts").mkdir(parents=True)
    _git(repo, "init", "-q")
    assert tag_release(NAME, "1.1.0", repo / "prompts") is None  # no commit yet
    (repo / "prompts" / "README").write_text("prompts\n")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "prompts")

    assert tag_release(NAME, "1.1.0", repo / "prompts") == "prompt/support/1.1.0"
    assert tag_release(NAME, "1.1.0", repo / "prompts") is None
    assert _git(repo, "tag", "--list").split() == ["prompt/support/1.1.0"]
    assert tag_release(NAME, "1.1.0", tmp_path / "not-a-checkout") is None
