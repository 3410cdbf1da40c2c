"""Approvals where people are: one suspended ``approve-rollout`` run per rollout that waits for a person.

A rollout waits for a person when a step awaits approval, or when it is paused because its labels
were moved by hand (approve re-applies the step, reject rolls back, hold keeps it paused).
``request_approval`` makes sure exactly one run of the ``approve-rollout`` deployment waits for
the rollout as it is now: the run is named after the rollout, its step and its ``revision``
(``approve-support-chat-rollout-7-step-1-r4``), and created only when no unfinished run of that
name exists, with an idempotency key, so the advance-rollouts flow (every 15 minutes) never opens
a second form for the same question. A new form is announced in Slack with a link to its page.

``close_stale_approvals`` cancels the waiting runs whose question is no longer open (approved from
the CLI, rolled back, held elsewhere): their form would be refused anyway.

``decide_task`` applies the answer (``llmops.release.rollouts.decide``), refusing a stale one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterName,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelled

from llmops.release.rollouts import (
    Action,
    ApprovalDecision,
    ApprovalResult,
    Rollout,
    RolloutOutcome,
    awaits_decision,
    decide,
    what_answers_do,
)
from llmops.report.slack import OutboxEntry, SlackConfig, enqueue_alert
from prefect_llmops.blocks.store import TraceStore
from prefect_llmops.tasks.common import STORE, current_flow_run_id, flow_run_page, store_engine
from prefect_llmops.tasks.rollouts import tag_release

APPROVAL_DEPLOYMENT = "approve-rollout/approve-rollout"
"""``flow name/deployment name`` of the approval form in prefect.yaml."""
ALERT_KIND = "approval"


def approval_run_name(rollout: Rollout) -> str:
    """The one name of the run asking about this rollout at this step and revision."""
    return f"approve-{rollout.prompt_name}-rollout-{rollout.id}-step-{rollout.current_step + 1}-r{rollout.revision}"


def _approval_deployment(client: Any) -> Any | None:
    try:
        return client.read_deployment_by_name(APPROVAL_DEPLOYMENT)
    except ObjectNotFound:
        return None


def announce(rollout: Rollout, link: str | None, store: TraceStore | None) -> OutboxEntry:
    """The Slack alert that a rollout awaits approval or is paused, saying why and what each answer does, linking the form."""
    waits = "is paused" if rollout.status == "paused" else "awaits approval"
    title = (
        f"{rollout.prompt_name} ({rollout.environment}): {rollout.baseline or '–'} → {rollout.candidate} "
        f"{waits} at step {rollout.current_step + 1}/{len(rollout.plan.steps)}"
    )
    where = (
        f"Approve, reject or hold (with a reason) in the Prefect UI: {link}"
        if link
        else f"Approve with `llmops rollout approve {rollout.prompt_name}`, or roll back with `llmops rollback {rollout.prompt_name}`"
    )
    details = f"{rollout.status_reason or 'waiting for approval'}\n{what_answers_do(rollout)}.\n{where}"
    return enqueue_alert(
        ALERT_KIND, title, details, link, severity="warning", engine=store_engine(store), config=SlackConfig.from_env()
    )


@task(name="request-approval", task_run_name="request-approval-{rollout.id}", **STORE.options(), cache_policy=NO_CACHE)
def request_approval(rollout: Rollout, store_block: str | None = None, store: TraceStore | None = None) -> str | None:
    """Make sure one approve-rollout run waits for this rollout's answer; returns its UI page (or None).

    Without an ``approve-rollout`` deployment (a flow run outside the cockpit) nothing is started:
    the alert then names ``llmops rollout approve``.
    """
    logger = get_run_logger()
    if not awaits_decision(rollout):
        return None
    name = approval_run_name(rollout)
    with get_client(sync_client=True) as client:
        deployment = _approval_deployment(client)
        if deployment is None:
            logger.info("no %s deployment: %s waits for `llmops rollout approve`", APPROVAL_DEPLOYMENT, rollout.describe())
            announce(rollout, None, store)
            return None
        existing = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])),
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
        )
        waiting = [run for run in existing if run.state is None or not run.state.is_final()]
        if waiting:
            return flow_run_page(waiting[0].id)
        run = client.create_flow_run_from_deployment(
            deployment.id,
            parameters={"rollout_id": rollout.id, "revision": rollout.revision, "store_block": store_block},
            name=name,
            idempotency_key=f"{name}#{len(existing) + 1}",
            tags=["llmops", "approval"],
        )
    link = flow_run_page(run.id)
    logger.info("asked for approval of %s in flow run %s (%s)", rollout.describe(), run.name, link or run.id)
    announce(rollout, link, store)
    return link


@task(name="close-stale-approvals", **STORE.options(), cache_policy=NO_CACHE)
def close_stale_approvals(live: Iterable[Rollout]) -> list[str]:
    """Cancel the waiting approve-rollout runs whose question is closed; returns their names."""
    current = {(rollout.id, rollout.revision) for rollout in live if awaits_decision(rollout)}
    closed: list[str] = []
    with get_client(sync_client=True) as client:
        deployment = _approval_deployment(client)
        if deployment is None:
            return closed
        suspended = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))),
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
        )
        for run in suspended:
            key = (run.parameters.get("rollout_id"), run.parameters.get("revision"))
            if key in current:
                continue
            message = f"rollout {key[0]} no longer awaits this answer (answered elsewhere, moved on or ended)"
            client.set_flow_run_state(run.id, Cancelled(message=message), force=True)
            closed.append(run.name)
    if closed:
        get_run_logger().info("cancelled approval forms no longer needed: %s", ", ".join(closed))
    return closed


@task(name="decide-rollout", task_run_name="{decision}-rollout-{rollout_id}", cache_policy=NO_CACHE)
def decide_task(
    rollout_id: int,
    decision: ApprovalDecision,
    actor: str,
    reason: str,
    expected_revision: int,
    store: TraceStore | None = None,
) -> ApprovalResult:
    """Apply the answer; a rollout that moved on meanwhile raises ``RolloutConflictError`` and nothing changes.

    Not retried: a retry after a commit whose answer was lost would be refused as stale.
    """
    result = decide(
        store_engine(store),
        rollout_id,
        decision,
        actor=actor,
        reason=reason,
        expected_revision=expected_revision,
        flow_run_id=current_flow_run_id(),
    )
    get_run_logger().info("%s", result.message)
    if result.decision == "approve":
        tag_release(approval_outcome(result))
    return result


def approval_outcome(result: ApprovalResult) -> RolloutOutcome:
    """An approval as the rollout outcome the promote and advance flows publish: advanced or completed."""
    action: Action = "completed" if result.rollout.status == "completed" else "advanced"
    return RolloutOutcome(result.rollout, action, result.message, production_changed_to=result.production_changed_to)
