"""What a user of the Prefect UI relies on, against the real server ``make serve`` starts:
the deployments with their schedules and automations, the promote form, its refusals, the
automatic rollback of a regressed canary, advance-rollouts, and the artifacts of a run.

The flow runs take a while to start on a busy machine, so the module starts them all at once
(one per prompt, each prompt its own) and each test waits for its own.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    DeploymentFilter,
    DeploymentFilterName,
)
from prefect.events import Event
from prefect.events.clients import PrefectEventsClient
from prefect.exceptions import PrefectHTTPStatusError
from sqlalchemy import Engine

from llmops import settings
from llmops.release.registry import Registry
from llmops.release.rollouts import PromotionRequest, live_rollout, resource_id, start_rollout
from prefect_llmops.deployments.serve import Cockpit, project_deployments, trigger_names
from tests.cockpit.conftest import (
    COCKPIT_PROMPTS,
    canary_on_its_first_step,
    deployment_id,
    promotion,
    prompts_dir,
    run_deployment,
    wait_for_final_state,
)

PROMOTED, ROLLED_BACK, ADVANCED = COCKPIT_PROMPTS
"""One prompt per scenario, so the runs (and the browser test's) never meet."""
AUTOMATION_TIMEOUT_SECONDS = 180.0


def emit(cockpit: Cockpit, event: Event) -> None:
    async def send() -> None:
        async with PrefectEventsClient(api_url=cockpit.api_url) as client:
            await client.emit(event)

    asyncio.run(send())


def labels(engine: Engine, name: str) -> tuple[str | None, str | None, float | None]:
    state = Registry(engine).labels(name)
    return state.production, state.canary, state.canary_traffic_percent


@dataclass(frozen=True)
class Scenarios:
    engine: Engine
    promote_run: uuid.UUID
    advance_run: uuid.UUID


@pytest.fixture(scope="module")
def scenarios(cockpit: Cockpit) -> Scenarios:
    """Start at once: a promotion through the API, a canary's regression event, and advance-rollouts
    on a canary whose first step has had its traffic (the store seeded the way the app fills it)."""
    engine, _ = canary_on_its_first_step(cockpit, ADVANCED)
    with pytest.MonkeyPatch.context() as patch:  # the registry reads version files from the cockpit's prompts
        patch.setenv(settings.LLMOPS_PROMPTS_DIR, str(prompts_dir(cockpit)))
        start_rollout(engine, PromotionRequest(**promotion(ROLLED_BACK, "1.0.0", strategy="immediate", git_tag=False)))
        start_rollout(engine, PromotionRequest(**promotion(ROLLED_BACK, "1.1.0", strategy="canary", git_tag=False)))

    regression = Event(
        event="llmops.eval.regression",
        resource={
            "prefect.resource.id": resource_id(ROLLED_BACK),
            "prefect.resource.name": ROLLED_BACK,
            "llmops.environment": "production",
            "llmops.prompt.version": "1.1.0",
            "llmops.prompt.label": "canary",
            "llmops.eval.comparison": "canary_vs_production",
        },
        payload={"metric": "assertions", "delta": -0.2, "comparison": "canary_vs_production"},
    )
    emit(cockpit, regression)
    return Scenarios(
        engine=engine,
        promote_run=run_deployment(cockpit, "promote-prompt", {"request": promotion(PROMOTED, "1.1.0", strategy="immediate")}),
        advance_run=run_deployment(cockpit, "advance-rollouts", {}),
    )


def test_every_deployment_is_served_with_its_schedules_automations_and_a_worker(cockpit: Cockpit) -> None:
    configs = {config["name"]: config for config in project_deployments()}
    with cockpit.client() as client:
        deployed = {deployment.name: deployment for deployment in client.read_deployments()}
        automations = {automation.name: automation for automation in client.read_automations()}
    assert set(configs) <= set(deployed)
    for name, config in configs.items():
        deployment = deployed[name]
        assert deployment.work_pool_name == cockpit.pool and deployment.enforce_parameter_schema
        assert deployment.description and deployment.tags == config["tags"]
        wanted = config.get("schedules", [])
        assert len(deployment.schedules) == len(wanted), name
        for schedule, written in zip(deployment.schedules, wanted, strict=True):
            assert schedule.active == written.get("active", True), f"{name}: schedule active={schedule.active}"
            if "cron" in written:
                assert (schedule.schedule.cron, schedule.schedule.timezone) == (written["cron"], written["timezone"])
            else:
                assert schedule.schedule.interval == timedelta(seconds=written["interval"])
    assert not deployed["promote-prompt"].schedules and not deployed["rollback-prompt"].schedules

    rollback = deployed["rollback-prompt"]
    for name in trigger_names(list(configs.values())):
        automation = automations[name]
        [action] = automation.actions
        assert automation.enabled and action.type == "run-deployment" and action.deployment_id == rollback.id
    expected = {event for config in configs.values() for trigger in config.get("triggers", []) for event in trigger["expect"]}
    assert expected == {"llmops.eval.regression", "llmops.drift.detected", "llmops.rollout.gate_failed"}
    assert {event for automation in automations.values() for event in automation.trigger.expect} >= expected
    assert cockpit.worker_names()[0] in cockpit.online_workers()


def test_promote_prompt_run_through_the_api_moves_production_and_shows_its_artifacts(
    cockpit: Cockpit, scenarios: Scenarios
) -> None:
    flow_run = wait_for_final_state(cockpit, scenarios.promote_run)

    assert flow_run.state.is_completed(), flow_run.state.message
    assert labels(scenarios.engine, PROMOTED) == ("1.1.0", None, None)
    moves = [event for event in Registry(scenarios.engine).history(PROMOTED) if event.action != "register"]
    assert moves and all(event.flow_run_id == str(flow_run.id) and "cockpit test" in event.reason for event in moves)
    with cockpit.client() as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id])))
    shown = {artifact.key: artifact for artifact in artifacts}
    plan = shown[f"rollout-plan-{PROMOTED}-production"]
    assert json.loads(plan.data) == [
        {"step": 1, "traffic_percent": 100.0, "min_minutes": 0.0, "min_requests": 0, "state": "done"}
    ]
    assert "1.1.0" in shown[f"rollout-status-{PROMOTED}-production"].data


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"strategy": "yolo"}, "yolo"),
        ({"advanced": {"min_step_minutes": -5}}, "-5"),
        ({"prompt_name": "no-such-prompt"}, "no-such-prompt"),  # the form offers the prompts there are
        ({"reason": ""}, "reason"),
        ({"rollout_speed": "fast"}, "rollout_speed"),
    ],
)
def test_bad_promotion_parameters_are_refused_before_any_run_starts(
    cockpit: Cockpit, change: dict[str, Any], refusal: str
) -> None:
    bad = {**promotion(PROMOTED, "1.1.0"), **change}
    with cockpit.client() as client:
        runs_before = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["promote-prompt"]))
        )
        with pytest.raises(PrefectHTTPStatusError) as refused:
            client.create_flow_run_from_deployment(deployment_id(cockpit, "promote-prompt"), parameters={"request": bad})
        runs_after = client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["promote-prompt"])))
    assert refused.value.response.status_code == 409
    assert "Validation failed" in refused.value.response.text and refusal in refused.value.response.text
    assert {run.id for run in runs_after} == {run.id for run in runs_before}


def test_an_eval_regression_of_a_canary_rolls_it_back_through_the_automation(cockpit: Cockpit, scenarios: Scenarios) -> None:
    deadline = time.monotonic() + AUTOMATION_TIMEOUT_SECONDS
    flow_run = None
    while flow_run is None and time.monotonic() < deadline:
        with cockpit.client() as client:
            runs = client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["rollback-prompt"])))
        flow_run = next((run for run in runs if run.parameters.get("prompt_name") == resource_id(ROLLED_BACK)), None)
        time.sleep(0 if flow_run else 1)
    assert flow_run is not None, f"no rollback-prompt run within {AUTOMATION_TIMEOUT_SECONDS:.0f} s of the event"
    assert flow_run.parameters["only_if_serving"] == "1.1.0"
    assert flow_run.parameters["actor"] == "automation" and "llmops.eval.regression" in flow_run.parameters["reason"]

    finished = wait_for_final_state(cockpit, flow_run.id)

    assert finished.state.is_completed(), finished.state.message
    assert labels(scenarios.engine, ROLLED_BACK) == ("1.0.0", None, None)
    assert live_rollout(scenarios.engine, ROLLED_BACK, "production") is None
    moves = [event for event in Registry(scenarios.engine).history(ROLLED_BACK) if event.flow_run_id == str(finished.id)]
    assert moves and all("llmops.eval.regression" in (event.reason or "") for event in moves)


def test_advance_rollouts_moves_a_canary_with_enough_traffic_to_its_next_step(cockpit: Cockpit, scenarios: Scenarios) -> None:
    flow_run = wait_for_final_state(cockpit, scenarios.advance_run)

    assert flow_run.state.is_completed(), flow_run.state.message
    assert labels(scenarios.engine, ADVANCED) == ("1.0.0", "1.1.0", 25.0)
    rollout = live_rollout(scenarios.engine, ADVANCED, "production")
    assert rollout is not None and rollout.current_step == 1 and rollout.status == "active"
    with cockpit.client() as client:
        [summary] = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id]), key={"any_": ["live-rollouts"]}
            )
        )
    [shown] = [row for row in json.loads(summary.data) if row["prompt"] == ADVANCED]
    assert (shown["step"], shown["traffic_percent"], shown["status"]) == ("2/3", 25.0, "active")


def test_a_schedule_paused_in_the_ui_stays_paused_when_the_cockpit_deploys_again(cockpit: Cockpit) -> None:
    def digest_schedule(client: Any) -> tuple[Any, Any]:
        [deployment] = client.read_deployments(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["daily-digest"]))
        )
        [schedule] = deployment.schedules
        return deployment, schedule

    with cockpit.client() as client:
        deployment, schedule = digest_schedule(client)
        client.update_deployment_schedule(deployment.id, schedule.id, active=False)  # what the UI's toggle does
    try:
        cockpit.deploy()  # what the next `make serve` does

        with cockpit.client() as client:
            assert not digest_schedule(client)[1].active
            paused_in_the_file = {
                config["name"]
                for config in project_deployments()
                for s in config.get("schedules", [])
                if not s.get("active", True)
            }
            others = {d.name: d.schedules for d in client.read_deployments() if d.name != "daily-digest"}
            assert others and all(
                s.active == (name not in paused_in_the_file) for name, schedules in others.items() for s in schedules
            )
    finally:
        with cockpit.client() as client:
            deployment, schedule = digest_schedule(client)
            client.update_deployment_schedule(deployment.id, schedule.id, active=True)
