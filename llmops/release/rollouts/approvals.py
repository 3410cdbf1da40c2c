"""A person's answer to a rollout that waits for one: approve, reject or hold, with a reason.

Two statuses wait for a person: ``awaiting_approval`` (a step passed its gates and the plan asks
for approval, or an A/B report could not decide) and ``paused`` (labels were moved by hand outside
the rollout). The ``approve-rollout`` flow asks in the Prefect UI (a typed form on a suspended flow
run), the CLI asks nobody (``llmops rollout approve``); both land here or in ``approve``. The answer
is for the rollout *as it was when asked* (its ``revision``): when it moved on meanwhile — approved
from the CLI, rolled back by a gate, held by someone else — the answer is refused with
``RolloutConflictError`` and nothing changes, so a form answered late never applies a stale decision.

- ``approve``: the next step (production after an A/B); a paused rollout gets its current step
  re-applied, with a fresh window, and goes on. The approver and reason go to the audit log with
  the label moves.
- ``reject``: rolled back to the baseline (``rollback``), "rejected by …: reason" in the audit log.
- ``hold``: stays as it is (awaiting approval, or paused); the rollout's status reason says who
  holds it and why (and, paused, how the labels differ from the step), and the audit log gets a
  ``hold`` entry. Holding changes the revision, so a new question is asked; nothing else changes a
  held rollout's revision (``advance_rollout`` leaves a rollout that is not active alone), so one
  hold makes one new question, never a loop of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

from sqlalchemy import Engine

from llmops.release.rollouts.actions import _check_revision, _registry, approve, rollback
from llmops.release.rollouts.state import Rollout, RolloutConflictError, RolloutError, get_rollout, locked, write
from llmops.release.rollouts.steps import label_drift

ApprovalDecision = Literal["approve", "reject", "hold"]
DECISIONS: tuple[str, ...] = get_args(ApprovalDecision)
WAITING_STATUSES = ("awaiting_approval", "paused")
"""The statuses in which a rollout moves only when a person answers."""


@dataclass(frozen=True, slots=True)
class ApprovalResult:
    """What an answer did: the rollout after it, and one sentence for logs, artifacts and alerts."""

    decision: ApprovalDecision
    rollout: Rollout
    message: str
    production_changed_to: str | None = None


def awaits_decision(rollout: Rollout) -> bool:
    """The rollout waits for a person's answer: a step awaiting approval, or paused by labels moved by hand."""
    return rollout.status in WAITING_STATUSES


def what_answers_do(rollout: Rollout) -> str:
    """What approve, reject and hold would do to the rollout now, in one sentence for the alert and the form.

    Example:
        ```python
        what_answers_do(rollout)
        # "approve re-applies step 1 (1.3.0 at 5 %) and the rollout goes on; reject rolls back to 1.2.0; hold keeps it paused"
        ```
    """
    if rollout.status == "paused":
        step = f"step {rollout.current_step + 1} ({rollout.candidate} at {rollout.step.traffic_percent:g} %)"
        approved, held = f"re-applies {step} and the rollout goes on", "keeps it paused"
    elif rollout.strategy == "ab":
        approved, held = f"makes {rollout.candidate} production", "keeps it waiting"
    else:
        following = rollout.plan.steps[rollout.current_step + 1]
        approved = f"moves {rollout.candidate} on to step {rollout.current_step + 2} at {following.traffic_percent:g} %"
        held = "keeps it waiting"
    return f"approve {approved}; reject rolls back to {rollout.baseline or 'the version before'}; hold {held}"


def _held_reason(engine: Engine, rollout: Rollout, actor: str, reason: str) -> str:
    """The status reason of a held rollout: who holds it and why, why it waits, and how to answer."""
    name = rollout.prompt_name
    how = f"answer the approve-rollout run, or llmops rollout approve {name} / llmops rollback {name}"
    if rollout.status != "paused":
        return f"held by {actor}: {reason}; waiting for approval ({how})"
    drift = "; ".join(label_drift(rollout, _registry(engine).labels(name, rollout.environment))) or "they match the step again"
    return f"held by {actor}: {reason}; paused, labels changed outside the rollout: {drift} ({how}; approve re-applies the step)"


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
    """Apply a person's answer to the rollout awaiting approval or paused, if it has not moved on since.

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
        RolloutConflictError: The rollout no longer waits for a person at that revision; nothing was done.

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
    if not awaits_decision(rollout):
        raise RolloutConflictError(f"{rollout.describe()} does not wait for a decision; nothing was done")
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
    held_reason = _held_reason(engine, rollout, actor, reason)
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
