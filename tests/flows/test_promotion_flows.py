"""promote-prompt, advance-rollouts and rollback-prompt under the Prefect test harness, their CLI,
and their deployments and automations in prefect.yaml."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from prefect.cli.deploy._models import PrefectYamlModel, RawScheduleConfig
from prefect.cli.deploy._triggers import _initialize_deployment_triggers
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
from prefect.server.events.actions import RunDeployment
from prefect.server.events.schemas.events import ReceivedEvent
from prefect.utilities.schema_tools.hydration import HydrationContext, hydrate
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

import prefect_llmops.tasks.rollouts as task_module
from llmops import settings
from llmops.release.experiments import Tolerances
from llmops.release.registry import get_registry
from llmops.release.rollouts import AdvancedPromotion, PromotionForm, get_rollout, latest_rollout
from llmops.sim import SimConfig, SimServer
from llmops.store.engine import get_engine
from llmops.store.writer import write_traces
from prefect_llmops.cli.rollouts import register
from prefect_llmops.flows.advance_rollouts import advance_rollouts
from prefect_llmops.flows.promote_prompt import promote_prompt
from prefect_llmops.flows.rollback_prompt import rollback_prompt
from tests.e2e.test_eval_runner import BRIEF_SYSTEM, POLICY_SYSTEM
from tests.factories import trace
from tests.store.test_rollouts import evaluated, write_prompt

REPO = Path(__file__).resolve().parents[2]
NAME = "support"
PREFECT_YAML_SNIPPET = """
  - name: promote-prompt
    entrypoint: prefect_llmops.flows.promote_prompt:promote_prompt
    description: >-
      The promote button. Fill in the form: prompt, version, strategy (immediate, canary
      5 → 25 → 100 %, blue_green 10 → 50 → 100 % with the old version kept as fallback, or
      ab), step length and traffic, tolerances, reason. The run checks the evaluation gate,
      records the rollout's plan in the store and moves the first step's labels; the
      advance-rollouts deployment takes it from there. Its artifacts show the plan and gates.
    tags: [llmops, prompts]
    enforce_parameter_schema: true
    work_pool: *llmops_pool
  - name: advance-rollouts
    entrypoint: prefect_llmops.flows.advance_rollouts:advance_rollouts
    description: >-
      Every 15 minutes, looks at each active prompt rollout once: moves it to its next step
      when the step has run long enough, had enough traffic and passed its gates; waits for
      `llmops rollout approve` where the plan asks for approval; pauses it when its labels
      were moved by hand; rolls it back when a gate fails (emitting llmops.rollout.gate_failed).
    tags: [llmops, prompts]
    enforce_parameter_schema: true
    schedules:
      - interval: 900
        timezone: UTC
        active: true
    concurrency_limit: 1
    work_pool: *llmops_pool
  - name: rollback-prompt
    entrypoint: prefect_llmops.flows.rollback_prompt:rollback_prompt
    description: >-
      Restores a prompt's previous production version (or the one named), ends its rollout and
      emits llmops.prompt.rolled_back. Started by hand (`llmops rollback`), or by the automation
      below when an evaluation regression, drift or a failed rollout gate is reported for a
      prompt; an event about a version that no longer serves changes nothing.
    tags: [llmops, prompts]
    enforce_parameter_schema: true
    concurrency_limit: 1
    work_pool: *llmops_pool
    triggers:
      - name: rollback-prompt-on-regression
        description: An evaluation regression or a failed rollout gate of a prompt rolls it back.
        enabled: true
        match:
          prefect.resource.id: "llmops.prompt.*"
        expect:
          - llmops.rollout.gate_failed
        for_each:
          - prefect.resource.id
        posture: Reactive
        threshold: 1
        within: 0
        parameters:
          prompt_name: "{{ event.resource.id }}"
          environment: "{{ event.resource.get('llmops.environment', 'production') }}"
          only_if_serving: "{{ event.resource.get('llmops.prompt.version') }}"
          reason: "automation: {{ event.event }} for {{ event.resource.id }}"
          actor: automation
"""


@pytest.fixture(autouse=True)
def prompts_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Prompt files in a temporary git checkout: releases are tagged there, never in this repository."""
    repo = tmp_path / "app"
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        write_prompt(repo / "prompts", version)
    for args in (
        ("init", "-q"),
        ("add", "."),
        ("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "prompts"),
    ):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    monkeypatch.setenv(settings.LLMOPS_PROMPTS_DIR, str(repo / "prompts"))
    return repo


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every Prefect event the rollout tasks emit (still sent to the harness)."""
    seen: list[dict[str, Any]] = []
    real = task_module.emit_event

    def recording(**kwargs: Any) -> Any:
        seen.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(task_module, "emit_event", recording)
    return seen


def promotion(version: str = "1.1.0", **overrides: Any) -> PromotionForm:
    """The form, with the advanced section's fields given by name like the others."""
    advanced: dict[str, Any] = {
        "min_step_minutes": 0,
        "min_requests_per_step": 100,
        "custom_tolerances": Tolerances(min_samples_per_arm=100),
    }
    fields: dict[str, Any] = {
        "prompt_name": NAME,
        "version": version,
        "force_without_eval": True,
        "reason": "better refunds",
        "actor": "alice",
    }
    for key, value in overrides.items():
        (advanced if key in AdvancedPromotion.model_fields else fields)[key] = value
    return PromotionForm(**fields, advanced=AdvancedPromotion(**advanced))


def release(version: str = "1.0.0") -> dict[str, Any]:
    return promote_prompt(promotion(version, strategy="immediate", reason="first release"))


def traffic(version: str, count: int, start: datetime, errors: int = 0) -> None:
    """``count`` calls just after ``start`` (microseconds apart, so all before the next advance)."""
    write_traces(
        get_engine(),
        [
            trace(
                trace_id=f"{version}-{start.timestamp()}-{index}",
                timestamp=start + timedelta(microseconds=10 * (index + 1)),
                prompt_name=NAME,
                prompt_version=version,
                status="error" if index < errors else "ok",
                error_type="api_error" if index < errors else None,
                latency_ms=900.0 + index % 50,
                output_tokens=200 + index % 7,
                user_feedback=1.0 if index % 3 else 0.0,
            )
            for index in range(count)
        ],
    )


def healthy_step(rollout_id: int) -> None:
    rollout = get_rollout(get_engine(), rollout_id)
    traffic(rollout.candidate, 150, rollout.step_started_at)
    traffic(rollout.baseline or "", 600, rollout.step_started_at)


def labels() -> tuple[str | None, str | None, float | None]:
    state = get_registry().labels(NAME)
    return state.production, state.canary, state.canary_traffic_percent


def artifacts(key: str) -> list[Any]:
    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))


def tags(repo: Path) -> list[str]:
    return subprocess.run(["git", "-C", str(repo), "tag", "--list"], check=True, capture_output=True, text=True).stdout.split()


def cli() -> Callable[..., Any]:
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def alerts() -> list[tuple[str, str, str]]:
    """(kind, severity, title) of every alert queued for Slack, oldest first."""
    from llmops.store.outbox_models import AlertRecord

    with Session(get_engine()) as session:
        rows = session.scalars(select(AlertRecord).order_by(AlertRecord.id))
        return [(row.kind, row.severity, row.title) for row in rows]


# -- promote-prompt --------------------------------------------------------------------------------


def test_promote_immediate_moves_production_tags_the_release_and_publishes_the_plan(prompts_repo: Path) -> None:
    shown = release()

    assert (shown["status"], shown["candidate"], shown["step"]) == ("completed", "1.0.0", "1/1")
    assert labels() == ("1.0.0", None, None)
    [event] = [e for e in get_registry().history(NAME) if e.action != "register"]
    assert event.flow_run_id == shown["flow_run_id"] and event.flow_run_id
    assert "force_without_eval" in event.reason
    assert tags(prompts_repo) == ["prompt/support/1.0.0"]
    [plan] = artifacts("rollout-plan-support-production")
    assert json.loads(plan.data) == [
        {"step": 1, "traffic_percent": 100.0, "min_minutes": 0.0, "min_requests": 0, "state": "done"}
    ]
    [gates] = artifacts("rollout-gates-support-production")
    assert json.loads(gates.data)[0]["verdict"] == "forced"
    promote_prompt(promotion("1.1.0", strategy="immediate", git_tag=False))
    assert labels()[0] == "1.1.0" and tags(prompts_repo) == ["prompt/support/1.0.0"]
    assert [(kind, severity) for kind, severity, _ in alerts()] == [("promotion", "info"), ("promotion", "info")]
    assert "1.0.0 → 1.1.0" in alerts()[-1][2]


def test_the_parameter_model_refuses_bad_values_before_the_run() -> None:
    schema = promote_prompt.parameters.model_dump()
    request_schema = schema["definitions"]["PromotionForm"]
    assert list(request_schema["properties"])[:5] == ["prompt_name", "version", "strategy", "reason", "actor"]
    assert request_schema["properties"]["strategy"]["enum"] == ["immediate", "canary", "blue_green", "ab"]
    assert request_schema["properties"]["tolerances"]["enum"] == ["strict", "default", "lenient"]
    assert set(request_schema["required"]) == {"prompt_name", "version", "reason", "actor"}
    assert "bootstrap_resamples" not in str(schema) and "seed" not in str(schema), "statistical internals are settings"
    with pytest.raises(ValidationError, match="steps must increase"):
        promotion(steps=[50, 5, 100]).request()


def test_a_second_promotion_of_a_prompt_with_a_live_rollout_fails_with_a_clear_message() -> None:
    release()
    promote_prompt(promotion())

    state = promote_prompt(promotion("1.2.0"), return_state=True)

    assert state.is_failed()
    assert "already has a live rollout" in state.message and "llmops rollback support" in state.message
    assert labels() == ("1.0.0", "1.1.0", 5.0)


def test_promote_prompt_gates_on_real_eval_runs_and_advance_rolls_back_a_regressed_canary(
    prompts_repo: Path, emitted: list[dict[str, Any]]
) -> None:
    write_prompt(prompts_repo / "prompts", "2.0.0", POLICY_SYSTEM)
    write_prompt(prompts_repo / "prompts", "2.1.0", BRIEF_SYSTEM)  # drops the refund policy the dataset asks for
    engine = get_engine()
    with SimServer(SimConfig(latency_median_ms=5, ttft_ms=1, seed=11)) as sim:
        production = evaluated(sim, engine, "2.0.0")
        promote_prompt(promotion("2.0.0", strategy="immediate", force_without_eval=False, git_tag=False))
        # Forced in before it was evaluated; tonight's run shows the regression and the next look rolls it back.
        forced_id = promote_prompt(promotion("2.1.0", force_without_eval=True))["id"]
        assert labels() == ("2.0.0", "2.1.0", 5.0)
        candidate = evaluated(sim, engine, "2.1.0")

    [line] = advance_rollouts()
    assert line["id"] == forced_id and line["action"] == "rolled_back"
    assert f"run {candidate.id} vs run {production.id}" in line["message"]
    assert labels() == ("2.0.0", None, None)
    [event] = [e for e in emitted if e["event"] == "llmops.rollout.gate_failed"]
    assert any(row["gate"] == "evaluation" and row["verdict"] == "regression" for row in event["payload"]["gates"])

    for forced in (False, True):  # forcing covers a missing evaluation, never a worse one
        refused = promote_prompt(promotion("2.1.0", force_without_eval=forced), return_state=True)
        assert refused.is_failed() and "regressed against 2.0.0 on refunds" in refused.message
        assert re.search(r"assertions Δ -0\.\d+ \[-0\.\d+, -0\.\d+\]", refused.message)
    assert labels() == ("2.0.0", None, None)


# -- advance-rollouts ------------------------------------------------------------------------------


def test_a_canary_advances_through_its_steps_when_the_trace_gate_passes(prompts_repo: Path) -> None:
    release()
    rollout_id = promote_prompt(promotion())["id"]
    assert labels() == ("1.0.0", "1.1.0", 5.0)

    healthy_step(rollout_id)
    first = advance_rollouts()
    assert [(line["id"], line["action"]) for line in first] == [(rollout_id, "advanced")]
    assert labels() == ("1.0.0", "1.1.0", 25.0)

    traffic("1.1.0", 20, get_rollout(get_engine(), rollout_id).step_started_at)
    assert advance_rollouts()[0]["action"] == "waiting"

    healthy_step(rollout_id)
    assert advance_rollouts()[0]["action"] == "completed"
    assert labels() == ("1.1.0", None, None)
    assert tags(prompts_repo) == ["prompt/support/1.0.0", "prompt/support/1.1.0"]
    assert advance_rollouts() == []
    summary = artifacts("live-rollouts")
    assert any(json.loads(artifact.data)[0].get("action") == "completed" for artifact in summary)


def test_a_failed_gate_rolls_back_records_why_and_emits_gate_failed(emitted: list[dict[str, Any]]) -> None:
    release()
    rollout_id = promote_prompt(promotion())["id"]
    start = get_rollout(get_engine(), rollout_id).step_started_at
    traffic("1.1.0", 150, start, errors=45)
    traffic("1.0.0", 600, start, errors=3)

    [line] = advance_rollouts()

    assert line["action"] == "rolled_back" and "error_rate" in line["message"]
    assert labels() == ("1.0.0", None, None)
    assert get_rollout(get_engine(), rollout_id).status == "rolled_back"
    [event] = [e for e in emitted if e["event"] == "llmops.rollout.gate_failed"]
    assert event["resource"]["prefect.resource.id"] == "llmops.prompt.support"
    assert event["resource"]["llmops.prompt.version"] == "1.1.0"
    assert any(row["metric"] == "error_rate" and row["verdict"] == "fail" for row in event["payload"]["gates"])
    rolled_back = [a for a in artifacts("rollout-gates-support-production") if "rolled_back" in (a.description or "")]
    assert any(row["metric"] == "error_rate" and row["verdict"] == "fail" for a in rolled_back for row in json.loads(a.data))
    assert ("gate_failed", "critical") in [(kind, severity) for kind, severity, _ in alerts()]


def test_approval_pauses_the_rollout_until_approved_from_the_cli() -> None:
    release()
    rollout_id = promote_prompt(promotion(require_approval=True))["id"]
    healthy_step(rollout_id)
    run = cli()

    assert advance_rollouts()[0]["action"] == "awaiting_approval"
    assert advance_rollouts() == [] and labels()[2] == 5.0
    listed = json.loads(run("rollouts", "--json").output)
    assert [(r["id"], r["status"]) for r in listed] == [(rollout_id, "awaiting_approval")]

    approved = run("rollout", "approve", NAME, "--actor", "bob")

    assert approved.exit_code == 0, approved.output
    assert "step 2/3" in approved.output and labels()[2] == 25.0
    assert run("rollout", "approve", NAME).exit_code == 1


def test_an_ab_split_ends_with_a_report(emitted: list[dict[str, Any]]) -> None:
    release()
    rollout_id = promote_prompt(promotion(strategy="ab", ab_split=50, ab_duration_hours=0.0001))["id"]
    assert labels() == ("1.0.0", "1.1.0", 50.0)
    start = get_rollout(get_engine(), rollout_id).step_started_at
    traffic("1.1.0", 300, start)
    traffic("1.0.0", 300, start)
    time.sleep(max(0.0, (start + timedelta(hours=0.0001) - datetime.now(start.tzinfo)).total_seconds()))

    [line] = advance_rollouts()
    report = cli()("ab", "report", NAME, "--json")

    assert line["action"] == "awaiting_approval" and "no winner on any metric → undecided" in line["message"]
    [published] = artifacts("rollout-ab-report-support-production")
    assert "| error rate |" in published.data and "no difference" in published.data
    assert report.exit_code == 0, report.output
    shown = json.loads(report.output)
    assert (shown["rollout_id"], shown["versions"]) == (rollout_id, ["1.0.0", "1.1.0"])
    assert {metric["metric"]: metric["verdict"] for metric in shown["metrics"]}["error_rate"] == "no_difference"


# -- rollback-prompt -------------------------------------------------------------------------------


def test_rollback_to_the_previous_version_by_resource_id_emits_rolled_back(emitted: list[dict[str, Any]]) -> None:
    release("1.0.0")
    promote_prompt(promotion("1.1.0", strategy="immediate"))

    result = rollback_prompt(prompt_name="llmops.prompt.support", reason="eval regression")

    assert (result["restored"], result["replaced"]) == ("1.0.0", "1.1.0")
    assert labels() == ("1.0.0", None, None)
    [event] = [e for e in emitted if e["event"] == "llmops.prompt.rolled_back"]
    assert event["resource"]["prefect.resource.id"] == "llmops.prompt.support"
    assert event["payload"]["restored"] == "1.0.0" and event["payload"]["reason"] == "eval regression"
    kind, severity, title = alerts()[-1]
    assert (kind, severity) == ("rollback", "warning") and "1.1.0 → 1.0.0" in title


def test_rollback_from_the_cli_to_a_named_version_ends_the_rollout() -> None:
    release("1.0.0")
    promote_prompt(promotion("1.1.0", strategy="immediate"))
    rollout_id = promote_prompt(promotion("1.2.0"))["id"]

    done = cli()("rollback", NAME, "--to", "1.0.0", "--reason", "bad week", "--actor", "bob", "--json")

    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["ended_rollout"] == rollout_id
    assert labels() == ("1.0.0", None, None)
    assert latest_rollout(get_engine(), NAME, "production").status == "rolled_back"  # type: ignore[union-attr]
    last = get_registry().history(NAME)[-1]
    assert (last.actor, last.action) == ("bob", "rollback") and "bad week" in (last.reason or "")


def test_cli_promote_without_a_prefect_api_runs_here_and_refuses_a_missing_evaluation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(settings.PREFECT_API_URL, raising=False)
    run = cli()
    refused = run("promote", NAME, "1.0.0", "--strategy", "immediate")
    done = run("promote", NAME, "1.0.0", "--strategy", "immediate", "--force-without-eval", "--reason", "first", "--json")
    bad = run("promote", NAME, "1.1.0", "--steps", "5,x")

    assert refused.exit_code == 1 and "no complete eval run of support 1.0.0" in refused.output
    assert "llmops promote --force-without-eval" in refused.output
    assert done.exit_code == 0, done.output
    shown = json.loads(done.output)
    assert (shown["status"], shown["candidate"], shown["flow_run_id"]) == ("completed", "1.0.0", None)  # no flow run
    assert bad.exit_code == 2 and "--steps" in bad.output


# -- prefect.yaml ----------------------------------------------------------------------------------


def project_with_rollout_deployments(tmp_path: Path) -> tuple[dict[str, Any], PrefectYamlModel]:
    """A copy of prefect.yaml with the snippet's deployments it lacks appended, loaded as `prefect deploy` does."""
    text = (REPO / "prefect.yaml").read_text()
    present = {deployment["name"] for deployment in yaml.safe_load(text)["deployments"]}
    entries = [entry for entry in re.split(r"(?m)^(?=  - name: )", PREFECT_YAML_SNIPPET) if entry.strip()]
    missing = [entry for entry in entries if entry.split("name: ", 1)[1].split("\n", 1)[0] not in present]
    copy = tmp_path / "prefect.yaml"
    copy.write_text(text.rstrip("\n") + "\n" + "".join(missing))
    document = yaml.safe_load(copy.read_text())
    return document, PrefectYamlModel.model_validate(document)


def test_prefect_yaml_deploys_the_rollout_flows_with_their_automation(tmp_path: Path) -> None:
    document, project = project_with_rollout_deployments(tmp_path)
    deployments = {deployment.name: deployment for deployment in project.deployments}

    for name in ("promote-prompt", "advance-rollouts", "rollback-prompt"):
        deployment = deployments[name]
        module_path, function_name = deployment.entrypoint.split(":")
        loaded = getattr(importlib.import_module(module_path.removesuffix(".py").replace("/", ".")), function_name)
        assert loaded.name == name
        assert deployment.work_pool is not None and deployment.work_pool.name == "llmops"
        assert deployment.enforce_parameter_schema and deployment.description
    raw = {d["name"]: d for d in document["deployments"]}
    [schedule] = raw["advance-rollouts"]["schedules"]
    assert RawScheduleConfig.model_validate(schedule).interval == timedelta(minutes=15)
    assert "schedules" not in raw["promote-prompt"] and "schedules" not in raw["rollback-prompt"]

    triggers = _initialize_deployment_triggers("rollback-prompt", raw["rollback-prompt"]["triggers"])
    trigger = next(t for t in triggers if t.name == "rollback-prompt-on-regression")
    assert isinstance(trigger, DeploymentEventTrigger)
    assert trigger.expect == {"llmops.rollout.gate_failed"}
    canary = next(t for t in triggers if t.name == "rollback-prompt-on-canary-drift")
    assert canary.expect == {"llmops.eval.regression", "llmops.drift.detected"}
    assert canary.match.get("llmops.prompt.label") == ["canary"]
    assert set(trigger.parameters or {}) <= set(rollback_prompt.parameters.properties)


@pytest.mark.parametrize(
    ("event_name", "version", "restored"),
    [("llmops.eval.regression", "1.1.0", "1.0.0"), ("llmops.rollout.gate_failed", "1.2.0", None)],
)
def test_the_automation_parameters_start_the_rollback_for_the_event_prompt(
    tmp_path: Path, event_name: str, version: str, restored: str | None
) -> None:
    """The trigger's templates rendered as the server renders them, then run: the event's prompt is
    rolled back, unless the version it names no longer serves."""
    document, _ = project_with_rollout_deployments(tmp_path)
    triggers = next(d for d in document["deployments"] if d["name"] == "rollback-prompt")["triggers"]
    spec = next(t for t in triggers if t["name"] == "rollback-prompt-on-regression")
    release("1.0.0")
    promote_prompt(promotion("1.1.0", strategy="immediate"))
    event = ReceivedEvent(
        id=uuid.uuid4(),
        occurred=datetime.now().astimezone(),
        event=event_name,
        resource={"prefect.resource.id": "llmops.prompt.support", "llmops.prompt.version": version},
    )
    parameters = dict(spec["parameters"])
    RunDeployment._upgrade_v1_templates(parameters)

    rendered = hydrate(parameters, HydrationContext(render_jinja=True, jinja_context={"event": event}, raise_on_error=True))
    result = rollback_prompt(**rendered)

    assert rendered["prompt_name"] == "llmops.prompt.support" and rendered["environment"] == "production"
    assert rendered["reason"] == f"automation: {event_name} for llmops.prompt.support"
    assert result["restored"] == restored
    assert labels()[0] == (restored or "1.1.0")
