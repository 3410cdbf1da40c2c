"""The ``advance-rollouts`` flow: every 15 minutes, one look at every active rollout.

Each is moved forward, held (too little time or traffic yet), sent for approval, paused
(labels changed outside it) or rolled back (a gate failed, which emits
``llmops.rollout.gate_failed``). One rollout's error does not keep the others from moving;
the run fails at the end so the UI shows it.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from llmops.release.rollouts import RolloutConflictError, RolloutOutcome
from prefect_llmops.blocks.store import TraceStore
from prefect_llmops.flows.promote_prompt import alert_outcome, publish_outcome, rollout_artifact_key
from prefect_llmops.tasks.drift import capture_when_serving
from prefect_llmops.tasks.rollouts import advance_rollout_task, live_rollouts_task

ARTIFACT_KEY = "live-rollouts"


class RolloutsNotAdvanced(RuntimeError):
    """Some rollouts could not be looked at this time; the next run tries again."""


@flow(name="advance-rollouts", description="Move every active prompt rollout forward, hold it, or roll it back.")
def advance_rollouts(store_block: str | None = None) -> list[dict[str, Any]]:
    """Advance each active rollout once; returns what happened to each."""
    logger = get_run_logger()
    store = TraceStore.load(store_block) if store_block else None
    outcomes: list[RolloutOutcome] = []
    errors: list[str] = []
    for rollout in live_rollouts_task(store):
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
