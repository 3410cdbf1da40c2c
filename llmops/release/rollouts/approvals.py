"""A person's answer to a rollout that waits for approval: approve, reject or hold, with a reason.

The ``approve-rollout`` flow asks in the Prefect UI (a typed form on a suspended flow run), the
CLI asks nobody (``llmops rollout approve``); both land here or in ``approve``. The answer is for
the rollout *as it was when asked* (its ``revision``): when it moved on meanwhile — approved from
the CLI, rolled back by a gate, held by someone else — the answer is refused with
``RolloutConflictError`` and nothing changes, so a form answered late never applies a stale decision.

- ``approve``: the next step (production after an A/B), the approver and reason in the audit log
  with the label moves.
- ``reject``: rolled back to the baseline (``rollback``), "rejected by …: reason" in the audit log.
- ``hold``: stays awaiting approval; the rollout's status reason says who holds it and why, and
  the audit log gets a ``hold`` entry. Holding changes the revision, so a new question is asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

from sqlalchemy import Engine

from llmops.release.rollouts.actions import _check_revision, _registry, approve, rollback
from llmops.release.rollouts.state import Rollout, RolloutConflictError, RolloutError, get_rollout, locked, write

ApprovalDecision = Literal["approve", "reject", "hold"]
DECISIONS: tuple[str, ...] = get_args(ApprovalDecision)


@dataclass(frozen=True, slots=True)
class ApprovalResult:
    """What an answer did: the rollout after it, and one sentence for logs, artifacts and alerts."""

    decision: ApprovalDecision
    rollout: Rollout
    message: str
    production_changed_to: str | None = None


def awaiting_approval(rollout: Rollout) -> bool:
    """The rollout waits for a person's approval (not merely paused, not ended)."""
    return rollout.status == "awaiting_approval"


def decide(
    engine: Engine,
    rollout_id: int,
    decision: ApprovalDecision,
    *,
    actor: str,
    reason: str,
    expected_revision: int,
    flow_run_id: str | None = None,
    now: datetime | None = None,
) -> ApprovalResult:
    """Apply a person's answer to the rollout awaiting approval, if it has not moved on since.

    Args:
        engine: The store.
        rollout_id: The rollout asked about.
        decision: ``approve``, ``reject`` or ``hold``.
        actor: Who answers, for the audit log.
        reason: Why (required), for the audit log.
        expected_revision: The rollout's revision when the question was asked.
        flow_run_id: The Prefect flow run that asked, for the audit log.
        now: The time of the answer; the current time by default.

    Returns:
        What was done.

    Raises:
        RolloutError: An unknown decision, an empty reason or approver, or no such rollout.
        RolloutConflictError: The rollout no longer awaits approval at that revision; nothing was done.

    Example:
        ```python
        decide(engine, 7, "hold", actor="alice", reason="legal review first", expected_revision=4).message
        ```
    """
    if decision not in DECISIONS:
        raise RolloutError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    if not reason.strip() or not actor.strip():
        raise RolloutError("an approval decision needs the approver's name and a reason; both go to the audit log")
    now = now or datetime.now(UTC)
    rollout = get_rollout(engine, rollout_id)
    _check_revision(rollout, expected_revision)
    if not awaiting_approval(rollout):
        raise RolloutConflictError(f"{rollout.describe()} does not wait for approval; nothing was done")
    name, environment = rollout.prompt_name, rollout.environment
    if decision == "approve":
        outcome = approve(
            engine, name, environment=environment, actor=actor, reason=reason, flow_run_id=flow_run_id, now=now,
            expected_revision=expected_revision,
        )  # fmt: skip
        return ApprovalResult(decision, outcome.rollout, f"approved by {actor}: {outcome.message}", outcome.production_changed_to)
    if decision == "reject":
        result = rollback(
            engine, name, reason=f"rejected in review: {reason}", actor=actor, environment=environment,
            flow_run_id=flow_run_id, now=now, expected_revision=expected_revision,
        )  # fmt: skip
        ended = result.ended_rollout or get_rollout(engine, rollout_id)
        return ApprovalResult(decision, ended, f"rejected by {actor}: {result.message}")
    held_reason = (
        f"held by {actor}: {reason}; waiting for approval (answer the approve-rollout run, "
        f"or llmops rollout approve {name} / llmops rollback {name})"
    )
    with locked(engine, rollout) as connection:
        held = write(connection, rollout, now, status_reason=held_reason)
        _registry(engine).note(
            name,
            "hold",
            environment=environment,
            actor=actor,
            reason=rollout.audit_reason(f"held in review by {actor}: {reason}"),
            flow_run_id=flow_run_id,
            connection=connection,
        )
    return ApprovalResult(decision, held, f"held by {actor}: {reason}")
