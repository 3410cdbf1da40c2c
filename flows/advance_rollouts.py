"""The ``advance-rollouts`` flow: every 15 minutes, one look at every active rollout.

Each is moved forward, held (too little time or traffic yet), sent for approval (one suspended
``approve-rollout`` run per question, its form linked from Slack), paused
(labels changed outside it; it gets a form too) or rolled back (a gate failed, which emits
``llmops.rollout.gate_failed``). One rollout's error does not keep the others from moving;
the run fails at the end so the UI shows it.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from llmops.release.rollouts import Rollout, RolloutConflictError, RolloutOutcome, awaits_decision
from prefect_llmops.blocks.store import TraceStore
from prefect_llmops.flows.promote_prompt import alert_outcome, publish_outcome, rollout_artifact_key
from prefect_llmops.tasks.approvals import close_stale_approvals, request_approval
from prefect_llmops.tasks.drift import capture_when_serving
from prefect_llmops.tasks.rollouts import advance_rollout_task, live_rollouts_task

ARTIFACT_KEY = "live-rollouts"


class RolloutsNotAdvanced(RuntimeError):
    """Some rollouts could not be looked at this time; the next run tries again."""


def ask_for_approvals(
    live: list[Rollout], outcomes: list[RolloutOutcome], store_block: str | None, store: TraceStore | None
) -> None:
    """One approve-rollout run waits for each rollout awaiting approval or paused (labels moved by hand,
    this run or before); forms no longer needed are cancelled.

    A failure here is a warning: the rollout waits all the same, and ``llmops rollout approve`` works.
    """
    logger = get_run_logger()
    current = {rollout.id: rollout for rollout in live} | {outcome.rollout.id: outcome.rollout for outcome in outcomes}
    for rollout in current.values():
        if awaits_decision(rollout):
            state = request_approval(rollout, store_block, store, return_state=True)
            if state.is_failed():
                logger.warning("no approval form for rollout %s: %s", rollout.id, state.message)
    state = close_stale_approvals(list(current.values()), return_state=True)
    if state.is_failed():
        logger.warning("stale approval forms not closed: %s", state.message)


@flow(
    name="advance-rollouts",
    description="Move every active prompt rollout forward, ask for approval, or roll it back (every 15 min; by hand to move on now).",
)
def advance_rollouts(store_block: str | None = None) -> list[dict[str, Any]]:
    """Advance each active rollout once; returns what happened to each."""
    logger = get_run_logger()
    store = TraceStore.load(store_block) if store_block else None
    outcomes: list[RolloutOutcome] = []
    errors: list[str] = []
    live = live_rollouts_task(store)
    for rollout in live:
        if rollout.status != "active":
            continue
        state = advance_rollout_task(rollout.id, store, return_state=True)
        try:
            outcome = state.result()
        except RolloutConflictError as exc:  # a person approved or rolled back meanwhile: their move stands
            logger.info("%s", exc)
            continue
        except Exception as exc:
            errors.append(f"rollout {rollout.id} ({rollout.prompt_name}): {exc}")
            continue
        outcomes.append(outcome)
        if outcome.action != "waiting":
            publish_outcome(outcome)
            alert_outcome(outcome, store)
            capture_when_serving(outcome, store)
        if outcome.ab_report is not None:
            create_markdown_artifact(
                key=rollout_artifact_key("ab-report", outcome.rollout),
                markdown=outcome.ab_report.to_markdown(),
                description=f"A/B report of rollout {outcome.rollout.id}: {outcome.rollout.baseline} vs {outcome.rollout.candidate}",
            )
    ask_for_approvals(live, outcomes, store_block, store)
    summary = [{**outcome.rollout.summary(), "action": outcome.action, "message": outcome.message} for outcome in outcomes]
    create_table_artifact(
        key=ARTIFACT_KEY,
        table=summary or [{"action": "none", "message": "no active rollouts"}],
        description=f"{len(outcomes)} active rollouts looked at" + (f", {len(errors)} failed" if errors else ""),
    )
    if errors:
        raise RolloutsNotAdvanced("; ".join(errors))
    return [
        {"id": line["id"], "action": line["action"], "status": line["status"], "message": line["message"]} for line in summary
    ]
