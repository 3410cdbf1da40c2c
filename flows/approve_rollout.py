"""The ``approve-rollout`` flow: a rollout that waits for a person, as a form in the Prefect UI.

A rollout waits for a person when a step awaits approval, or when it is paused because its labels
were moved by hand; there approve re-applies the step and the rollout goes on, reject rolls back,
and hold keeps it paused. The advance-rollouts flow starts one run per question (rollout, step and
revision; see ``prefect_llmops.tasks.approvals``). The run suspends with a typed input form
(``ApprovalInput``): the flow run's page shows "Resume", which asks for the decision (approve,
reject or hold), a reason and the approver's name. Suspending, unlike pausing, ends the process: a question can wait days
and holds no worker slot; when answered, Prefect runs the flow again and ``suspend_flow_run``
returns the answer.

The answer applies only to the rollout as it was when asked (its revision): approved from the CLI
meanwhile, rolled back, or held by someone else, the run fails with why and nothing changes.
A hold keeps the rollout waiting (or paused), records the reason, and opens the next question at
once: one new form, announced in Slack with who holds it and why, per hold.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run
from pydantic import Field

from llmops.release.rollouts import Rollout, awaits_decision, get_rollout, what_answers_do
from llmops.text import markdown_escape
from prefect_llmops.blocks.store import TraceStore
from prefect_llmops.flows.promote_prompt import alert_outcome, rollout_artifact_key
from prefect_llmops.tasks.approvals import approval_outcome, decide_task, request_approval
from prefect_llmops.tasks.common import store_engine
from prefect_llmops.tasks.drift import capture_when_serving

DECISION_KEY = "decision"
"""The suspension's key: a rerun after the answer finds it used and gets the answer back."""
DEFAULT_TIMEOUT_HOURS = 168.0


class ApprovalInput(RunInput):
    """The Resume form of an approve-rollout run."""

    decision: Literal["approve", "reject", "hold"] = Field(
        description=(
            "approve: on to the next step (a paused rollout: its step re-applied, then on). reject: roll back to the "
            "baseline. hold: stay as it is (waiting or paused), with your reason on record."
        )
    )
    reason: str = Field(min_length=1, description="Why; stored in the audit log with your name.")
    approver: str = Field(min_length=1, description="Your name, for the audit log.")


def question_markdown(rollout: Rollout) -> str:
    """What the form asks about: the rollout, its step, why it waits (or is paused), what each answer
    does, and its gates; every value escaped."""
    md = markdown_escape
    which = f"{md(rollout.prompt_name)} {md(rollout.candidate)} in {md(rollout.environment)}"
    paused = rollout.status == "paused"
    heading = f"{which} is paused: re-apply its step and go on?" if paused else f"Approve {which}?"
    gates = "\n".join(f"- {md(gate.gate)} gate **{md(gate.verdict)}**: {md(gate.summary)}" for gate in rollout.last_gate_results)
    return (
        f"### {heading}\n\n"
        f"Rollout {rollout.id} ({md(rollout.strategy)}) from {md(rollout.baseline or '–')}, step "
        f"{rollout.current_step + 1}/{len(rollout.plan.steps)} at {rollout.step.traffic_percent:g} %"
        f"{', paused' if paused else ''}.\n\n"
        f"{md(rollout.status_reason or '')}\n\n**{md(what_answers_do(rollout))}.**\n\n{gates}\n\n"
        f"Requested by {md(rollout.created_by)}: {md(rollout.plan.reason)}"
    )


def _already_asked() -> bool:
    """This run suspended for its question before (this is the rerun after the answer)."""
    if not flow_run.id:
        return False
    with get_client(sync_client=True) as client:
        policy = client.read_flow_run(flow_run.id).empirical_policy
    return DECISION_KEY in (policy.pause_keys or set())


@flow(
    name="approve-rollout",
    description="Approve, reject or hold a rollout step that awaits approval, or a paused rollout: open the run, Resume, answer the form.",
)
def approve_rollout(
    rollout_id: int,
    revision: int,
    store_block: str | None = None,
    timeout_hours: float = DEFAULT_TIMEOUT_HOURS,
) -> dict[str, Any]:
    """Suspend until a person answers the approval form, then apply the answer to the rollout.

    Args:
        rollout_id: The rollout awaiting approval, or paused.
        revision: Its revision when the question was asked; a later one refuses the answer.
        store_block: A TraceStore block; empty: ``LLMOPS_DATABASE_URL``.
        timeout_hours: Unanswered this long, the run fails and the next advance-rollouts asks again.
    """
    logger = get_run_logger()
    store = TraceStore.load(store_block) if store_block else None
    rollout = get_rollout(store_engine(store), rollout_id)
    if not _already_asked() and (rollout.revision != revision or not awaits_decision(rollout)):
        message = f"nothing to ask: {rollout.describe()} moved on (revision {rollout.revision}, asked for {revision})"
        logger.info("%s", message)
        return {"rollout_id": rollout_id, "decision": None, "applied": False, "message": message}

    form = ApprovalInput.with_initial_data(description=question_markdown(rollout))
    answer = suspend_flow_run(wait_for_input=form, timeout=round(timeout_hours * 3600), key=DECISION_KEY)
    logger.info("%s answered %s: %s", answer.approver, answer.decision, answer.reason)
    result = decide_task(rollout_id, answer.decision, answer.approver, answer.reason, revision, store)

    md = markdown_escape
    create_markdown_artifact(
        key=rollout_artifact_key("approval", result.rollout),
        markdown=(
            f"### {md(result.decision)}: {md(result.rollout.prompt_name)} {md(result.rollout.candidate)}\n\n"
            f"{md(result.message)}\n\nBy {md(answer.approver)}: {md(answer.reason)}"
        ),
        description=f"Approval decision on rollout {rollout_id}: {result.decision} by {answer.approver}",
    )
    if result.decision == "hold":
        request_approval(result.rollout, store_block, store)
    elif result.decision == "approve":
        outcome = approval_outcome(result)
        alert_outcome(outcome, store)
        capture_when_serving(outcome, store)
    return {
        "rollout_id": rollout_id,
        "decision": result.decision,
        "applied": True,
        "approver": answer.approver,
        "reason": answer.reason,
        "status": result.rollout.status,
        "step": f"{result.rollout.current_step + 1}/{len(result.rollout.plan.steps)}",
        "message": result.message,
    }
