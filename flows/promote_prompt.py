"""The ``promote-prompt`` flow: the Prefect UI's promote button, with a typed parameter form.

It checks the gates, records the rollout's plan in the store and moves the first step's
labels, then ends: the ``advance-rollouts`` flow carries a staged rollout forward every
15 minutes, so a rollout lasting days holds no flow run open.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from llmops.release.rollouts import PromotionForm, Rollout, RolloutOutcome, gate_table, plan_table
from llmops.text import markdown_code, markdown_escape
from prefect_llmops.blocks.store import TraceStore
from prefect_llmops.flows.artifact_keys import artifact_key
from prefect_llmops.tasks.digest import send_alert
from prefect_llmops.tasks.drift import capture_when_serving
from prefect_llmops.tasks.rollouts import start_rollout_task


def rollout_artifact_key(kind: str, rollout: Rollout) -> str:
    """One artifact history per kind, prompt and environment."""
    return artifact_key("rollout", kind, rollout.prompt_name, rollout.environment)


def publish_outcome(outcome: RolloutOutcome) -> None:
    """The plan and the gate results as tables, and what happened in one paragraph."""
    rollout = outcome.rollout
    create_table_artifact(
        key=rollout_artifact_key("plan", rollout),
        table=plan_table(rollout),
        description=(
            f"Plan of rollout {rollout.id}: {rollout.prompt_name} {rollout.baseline or '–'} → {rollout.candidate} "
            f"({rollout.strategy})"
        ),
    )
    create_table_artifact(
        key=rollout_artifact_key("gates", rollout),
        table=gate_table(outcome.gates),
        description=f"Gates of rollout {rollout.id}, step {rollout.current_step + 1}: {outcome.action}",
    )
    create_markdown_artifact(
        key=rollout_artifact_key("status", rollout),
        markdown=status_markdown(outcome),
        description=f"Rollout {rollout.id} of {rollout.prompt_name}",
    )


def status_markdown(outcome: RolloutOutcome) -> str:
    """What happened to a rollout, one paragraph of Markdown; every name, reason and actor escaped."""
    rollout, md = outcome.rollout, markdown_escape
    return (
        f"### {md(rollout.prompt_name)}: {md(rollout.baseline or '–')} → {md(rollout.candidate)} "
        f"({md(rollout.strategy)}, {md(rollout.environment)})\n\n"
        f"**{md(outcome.action)}**: {md(outcome.message)}\n\n"
        f"Status {markdown_code(rollout.status)}, step {rollout.current_step + 1}/{len(rollout.plan.steps)} at "
        f"{rollout.step.traffic_percent:g} %. Gates: {md(rollout.gate_status)}.\n\n"
        f"Requested by {md(rollout.created_by)}: {md(rollout.plan.reason)}"
    )


def alert_outcome(outcome: RolloutOutcome, store: TraceStore | None) -> None:
    """Promotions and failed gates go to Slack through the outbox, linking this flow run."""
    if alert := outcome.alert():
        send_alert(alert.kind, alert.title, alert.details, alert.severity, store=store)


@flow(name="promote-prompt", description="Promote a prompt version: immediate, canary, blue-green or A/B, behind gates.")
def promote_prompt(request: PromotionForm, store_block: str | None = None) -> dict[str, Any]:
    """Start the rollout the form describes; returns the rollout as ``llmops rollouts --json`` shows it.

    Args:
        request: Prompt, version, strategy, reason and who asks; a tolerance preset; the advanced
            section for the pace and custom tolerances.
        store_block: A TraceStore block; empty: ``LLMOPS_DATABASE_URL``.

    A second promotion of a prompt with a live rollout, a version without an evaluation (unless
    forced, which the audit log records) or one whose evaluation is worse fails the run, with why.
    """
    store = TraceStore.load(store_block) if store_block else None
    outcome = start_rollout_task(request.request(), store)
    publish_outcome(outcome)
    alert_outcome(outcome, store)
    capture_when_serving(outcome, store)
    return outcome.rollout.to_dict()
