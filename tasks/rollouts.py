"""Promotion, advance and rollback as Prefect tasks, plus the events automations listen to.

The decisions live in ``llmops.release.rollouts``; here they get names, retries where a rerun is
safe, the flow run id for the audit log, the git tag of a release and the Prefect events
``llmops.rollout.gate_failed`` and ``llmops.prompt.rolled_back``.

Retries: advancing and rolling back re-read the rollout and labels before acting, so a retry
after a store blip does the right thing (or nothing). Starting is not retried: a start whose
commit reached the store but whose answer did not would come back as "already live".
"""

from __future__ import annotations

from typing import Any

from prefect import Task, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.events import emit_event
from prefect.states import State

from llmops.release.rollouts import (
    PromotionRequest,
    RollbackResult,
    Rollout,
    RolloutError,
    RolloutOutcome,
    advance_rollout,
    gate_table,
    live_rollouts,
    resource_id,
    rollback,
    start_rollout,
    tag_if_released,
)
from prefect_llmops.blocks.store import TraceStore
from prefect_llmops.tasks.common import STORE, current_flow_run_id, store_engine

GATE_FAILED_EVENT = "llmops.rollout.gate_failed"
ROLLED_BACK_EVENT = "llmops.prompt.rolled_back"


def tag_release(outcome: RolloutOutcome) -> str | None:
    """Tag the release in git when the outcome made a version production (see ``tag_if_released``),
    logging the tag; a failure to tag is a warning, since the labels already moved and committed.

    Example:
        ```python
        tag_release(start_rollout(engine, request))  # 'prompt/support-chat/2.3.1', or None
        ```
    """
    logger = get_run_logger()
    try:
        tag = tag_if_released(outcome)
    except RolloutError as exc:  # the labels moved and committed; a missing tag must not undo that
        logger.warning("%s", exc)
        return None
    if tag:
        logger.info("tagged %s", tag)
    return tag


def _resource(prompt_name: str, environment: str, version: str | None) -> dict[str, str]:
    resource = {
        "prefect.resource.id": resource_id(prompt_name),
        "prefect.resource.name": prompt_name,
        "llmops.environment": environment,
    }
    if version:
        resource["llmops.prompt.version"] = version
    return resource


def _related_flow_run() -> list[dict[str, str]]:
    run_id = current_flow_run_id()
    return [{"prefect.resource.id": f"prefect.flow-run.{run_id}", "prefect.resource.role": "flow-run"}] if run_id else []


def _worth_retrying(_task: Task, _run: TaskRun, state: State) -> bool:
    """Retry store trouble, not a refusal (``RolloutError``), which would be refused again."""
    try:
        state.result()
    except RolloutError:
        return False
    except Exception:
        return True
    return False


@task(name="start-rollout", task_run_name="start-{request.prompt_name}-{request.version}", cache_policy=NO_CACHE)
def start_rollout_task(request: PromotionRequest, store: TraceStore | None = None) -> RolloutOutcome:
    """Gate, record the plan, move the first step's labels; tag the release when it is production."""
    outcome = start_rollout(store_engine(store), request, flow_run_id=current_flow_run_id())
    get_run_logger().info("%s", outcome.message)
    tag_release(outcome)
    return outcome


@task(name="live-rollouts", **STORE.options(), cache_policy=NO_CACHE)
def live_rollouts_task(store: TraceStore | None = None) -> list[Rollout]:
    return live_rollouts(store_engine(store))


@task(
    name="advance-rollout",
    task_run_name="advance-rollout-{rollout_id}",
    **STORE.options(),
    retry_condition_fn=_worth_retrying,
    cache_policy=NO_CACHE,
)
def advance_rollout_task(rollout_id: int, store: TraceStore | None = None) -> RolloutOutcome:
    """One look at one rollout; a failed gate rolls it back here and emits ``llmops.rollout.gate_failed``."""
    outcome = advance_rollout(store_engine(store), rollout_id, flow_run_id=current_flow_run_id())
    rollout = outcome.rollout
    get_run_logger().info(
        "rollout %s of %s %s: %s — %s", rollout.id, rollout.prompt_name, rollout.candidate, outcome.action, outcome.message
    )
    if outcome.gate_failed:
        emit_gate_failed(outcome)
    tag_release(outcome)
    return outcome


def emit_gate_failed(outcome: RolloutOutcome) -> None:
    """``llmops.rollout.gate_failed`` on ``llmops.prompt.<name>``, with the gate table as payload."""
    rollout = outcome.rollout
    emit_event(
        event=GATE_FAILED_EVENT,
        resource=_resource(rollout.prompt_name, rollout.environment, rollout.candidate),
        related=_related_flow_run(),
        payload={
            "rollout_id": rollout.id,
            "candidate": rollout.candidate,
            "baseline": rollout.baseline,
            "step": rollout.current_step + 1,
            "traffic_percent": rollout.step.traffic_percent,
            "reason": outcome.message,
            "gates": gate_table(outcome.gates),
        },
    )


@task(
    name="rollback-prompt",
    task_run_name="rollback-{prompt_name}",
    **STORE.options(),
    retry_condition_fn=_worth_retrying,
    cache_policy=NO_CACHE,
)
def rollback_task(
    prompt_name: str,
    reason: str,
    actor: str,
    environment: str,
    to_version: str | None = None,
    only_if_serving: str | None = None,
    store: TraceStore | None = None,
) -> RollbackResult:
    """Restore the earlier (or named) version, end any rollout, emit ``llmops.prompt.rolled_back``."""
    result = rollback(
        store_engine(store),
        prompt_name,
        reason=reason,
        actor=actor,
        environment=environment,
        to_version=to_version,
        only_if_serving=only_if_serving,
        flow_run_id=current_flow_run_id(),
    )
    get_run_logger().info("%s", result.message)
    if result.restored is not None:
        payload: dict[str, Any] = {
            "restored": result.restored,
            "replaced": result.replaced,
            "reason": reason,
            "actor": actor,
            "rollout_id": result.ended_rollout.id if result.ended_rollout else None,
        }
        emit_event(
            event=ROLLED_BACK_EVENT,
            resource=_resource(result.prompt_name, environment, result.restored),
            related=_related_flow_run(),
            payload=payload,
        )
    return result
