"""A rollout's transitions: each moves the row and the registry's labels together, in one transaction.

Whether the labels are what the current step expects (``label_drift``), the label moves that
make them so (``apply_step``, ``restore``), and ``Decision``: one decision on one rollout
(pause, wait, ask for approval, next step, production, complete, roll back, resume), committed
with the row's revision check. Whether to take a transition is decided in ``actions``; how it
is carried out is here, so every path writes the row and the labels the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from sqlalchemy import Connection, Engine

from llmops.release.gates import GateResult
from llmops.release.registry import CANARY, PRODUCTION, STAGING, LabelState, Registry
from llmops.release.rollouts.state import Action, Rollout, RolloutOutcome, locked, write

TRAFFIC_EPSILON = 1e-9
"""Traffic shares closer than this are the same share."""


class _MoveArguments(TypedDict):
    """What every label move of one decision shares."""

    environment: str
    actor: str
    reason: str
    flow_run_id: str | None
    connection: Connection


# -- what the labels should be -------------------------------------------------------------------


def _expected_labels(rollout: Rollout) -> dict[str, tuple[str | None, float | None]]:
    """Per label, the version and traffic share the registry holds while the rollout is at its current step."""
    share = rollout.step.traffic_percent
    fallback = rollout.baseline if rollout.strategy == "blue_green" else None
    if share >= 100:
        return {PRODUCTION: (rollout.candidate, None), CANARY: (None, None), STAGING: (fallback, None)}
    expected = {PRODUCTION: (rollout.baseline, None), CANARY: (rollout.candidate, share)}
    if fallback:
        expected[STAGING] = (fallback, None)
    return expected


def label_drift(rollout: Rollout, labels: LabelState) -> list[str]:
    """How the labels differ from what the rollout's current step expects (someone moved them by hand).

    Args:
        rollout: A live rollout.
        labels: The labels as stored now.

    Returns:
        One sentence per label that differs; empty when the labels are as expected.

    Example:
        ```python
        label_drift(rollout, registry.labels("support-chat"))  # ["canary is 1.3.0 at 50 %, the rollout expects 1.3.0 at 5 %"]
        ```
    """
    drift = []
    for label, (version, share) in _expected_labels(rollout).items():
        slot = labels.slot(label)
        same_share = (share is None and slot.traffic_percent is None) or (
            share is not None
            and slot.traffic_percent is not None
            and math.isclose(share, slot.traffic_percent, abs_tol=TRAFFIC_EPSILON)
        )
        if slot.version != version or (version is not None and not same_share):
            found = f"{slot.version or 'unset'}" + (f" at {slot.traffic_percent:g} %" if slot.traffic_percent is not None else "")
            wanted = f"{version or 'unset'}" + (f" at {share:g} %" if share is not None else "")
            drift.append(f"{label} is {found}, the rollout expects {wanted}")
    return drift


# -- label moves, inside the caller's transaction --------------------------------------------------


def apply_step(
    connection: Connection,
    registry: Registry,
    rollout: Rollout,
    labels: LabelState,
    *,
    actor: str,
    reason: str,
    flow_run_id: str | None,
    share: float | None = None,
) -> bool:
    """Move the labels to serve the candidate at ``share``; blue-green keeps the baseline as ``staging`` throughout.

    Below 100 % the candidate is the canary at that share; at 100 % it is production and the
    canary is cleared. Each move expects the revision in ``labels``.

    Args:
        connection: The decision's transaction.
        registry: The registry the labels move in.
        rollout: The rollout whose candidate serves.
        labels: The labels as read before the decision.
        actor: Who decides, for the audit log.
        reason: Why, for the audit log.
        flow_run_id: The Prefect flow run, for the audit log.
        share: The candidate's share; the current step's when None.

    Returns:
        True when production moved (the caller may tag the release).

    Example:
        ```python
        with locked(engine, rollout) as connection:
            apply_step(connection, registry, rollout, labels, actor="alice", reason="step 2", flow_run_id=None)
        ```
    """
    name = rollout.prompt_name
    common = _MoveArguments(
        environment=rollout.environment, actor=actor, reason=reason, flow_run_id=flow_run_id, connection=connection
    )
    share = rollout.step.traffic_percent if share is None else share
    if rollout.strategy == "blue_green" and rollout.baseline and labels.staging != rollout.baseline:
        registry.set_label(name, STAGING, rollout.baseline, expected_revision=labels.slot(STAGING).revision, **common)
    if share < 100:
        registry.set_label(
            name, CANARY, rollout.candidate, traffic_percent=share, expected_revision=labels.slot(CANARY).revision, **common
        )
        return False
    moved = registry.set_label(name, PRODUCTION, rollout.candidate, expected_revision=labels.slot(PRODUCTION).revision, **common)
    if labels.canary is not None:
        registry.clear_label(name, CANARY, expected_revision=labels.slot(CANARY).revision, **common)
    return moved is not None


def restore(
    connection: Connection,
    registry: Registry,
    name: str,
    environment: str,
    target: str,
    labels: LabelState,
    *,
    actor: str,
    reason: str,
    flow_run_id: str | None,
    clear_staging: bool,
) -> None:
    """Production = ``target``; no canary; the blue-green fallback released when ``clear_staging``.

    Args:
        connection: The rollback's transaction.
        registry: The registry the labels move in.
        name: The prompt.
        environment: The registry environment.
        target: The version to restore.
        labels: The labels as read before the rollback.
        actor: Who rolls back, for the audit log.
        reason: Why, for the audit log.
        flow_run_id: The Prefect flow run, for the audit log.
        clear_staging: Clear the ``staging`` label too (a live rollout's fallback).

    Example:
        ```python
        with transaction(engine) as connection:
            restore(connection, registry, "support-chat", "production", "1.2.0", labels,
                    actor="alice", reason="too long", flow_run_id=None, clear_staging=False)
        ```
    """
    common = _MoveArguments(environment=environment, actor=actor, reason=reason, flow_run_id=flow_run_id, connection=connection)
    if labels.production != target:
        registry.set_label(
            name, PRODUCTION, target, action="rollback", expected_revision=labels.slot(PRODUCTION).revision, **common
        )
    if labels.canary is not None:
        registry.clear_label(name, CANARY, action="rollback", expected_revision=labels.slot(CANARY).revision, **common)
    if clear_staging and labels.staging is not None:
        registry.clear_label(name, STAGING, expected_revision=labels.slot(STAGING).revision, **common)


# -- decisions -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision on one rollout, by ``actor`` at ``now`` on the labels read before it.

    Each method commits the row and its label moves in one transaction, or nothing: the row
    must still have the revision of ``rollout`` (``RolloutConflictError`` otherwise) and each
    label the revision in ``labels``.

    Example:
        ```python
        decision = Decision(engine, registry, rollout, registry.labels(name, environment), "alice", None, now)
        outcome = decision.next_step(gates)
        ```
    """

    engine: Engine
    registry: Registry
    rollout: Rollout
    labels: LabelState
    actor: str
    flow_run_id: str | None
    now: datetime

    def _apply(self, connection: Connection, rollout: Rollout, reason: str, share: float | None = None) -> bool:
        return apply_step(
            connection,
            self.registry,
            rollout,
            self.labels,
            actor=self.actor,
            reason=reason,
            flow_run_id=self.flow_run_id,
            share=share,
        )

    def pause(self, message: str) -> RolloutOutcome:
        """Stop advancing until a person approves (re-applies the step) or rolls back; no label moves."""
        with locked(self.engine, self.rollout) as connection:
            paused = write(connection, self.rollout, self.now, status="paused", status_reason=message)
        return RolloutOutcome(paused, "paused", message)

    def wait(self, gates: list[GateResult], message: str) -> RolloutOutcome:
        """Stay at the step, recording the gates and why it waits."""
        with locked(self.engine, self.rollout) as connection:
            updated = write(connection, self.rollout, self.now, last_gate_results=gates, status_reason=message)
        return RolloutOutcome(updated, "waiting", message, gates)

    def await_approval(self, gates: list[GateResult], why: str) -> RolloutOutcome:
        """Wait for ``llmops rollout approve`` (or a rollback) before going on."""
        message = f"{why}; waiting for approval (llmops rollout approve {self.rollout.prompt_name})"
        with locked(self.engine, self.rollout) as connection:
            updated = write(
                connection, self.rollout, self.now, status="awaiting_approval", status_reason=message, last_gate_results=gates
            )
        return RolloutOutcome(updated, "awaiting_approval", message, gates)

    def resume(self, what: str, gates: list[GateResult]) -> RolloutOutcome:
        """A paused rollout goes on: its current step re-applied, with a fresh window; the label moves
        carry ``gates`` (the approval, with its reason) in the audit log."""
        with locked(self.engine, self.rollout) as connection:
            resumed = write(connection, self.rollout, self.now, status="active", status_reason=what, step_started_at=self.now)
            self._apply(connection, resumed, resumed.audit_reason(what, gates))
        return RolloutOutcome(resumed, "advanced", what, gates)

    def next_step(self, gates: list[GateResult]) -> RolloutOutcome:
        """Enter the next step; a canary's 100 % step is production, which ends it."""
        now = self.now
        with locked(self.engine, self.rollout) as connection:
            moved = write(
                connection,
                self.rollout,
                now,
                current_step=self.rollout.current_step + 1,
                step_started_at=now,
                status="active",
                status_reason=None,
                last_gate_results=gates,
            )
            share = moved.step.traffic_percent
            what = f"step {moved.current_step + 1}/{len(moved.plan.steps)}: {moved.candidate} at {share:g} %"
            production_moved = self._apply(connection, moved, moved.audit_reason(what, gates))
            if share >= 100 and moved.strategy != "blue_green":
                moved = write(
                    connection, moved, now, status="completed", ended_at=now, status_reason=f"{moved.candidate} is production"
                )
        action: Action = "completed" if moved.status == "completed" else "advanced"
        return RolloutOutcome(moved, action, what, gates, moved.candidate if production_moved else None)

    def enter_final(self, gates: list[GateResult]) -> RolloutOutcome:
        """An A/B rollout decided for the candidate: production, and done."""
        rollout, now = self.rollout, self.now
        what = f"A/B decided for {rollout.candidate}: production"
        with locked(self.engine, self.rollout) as connection:
            production_moved = self._apply(connection, rollout, rollout.audit_reason(what, gates), share=100)
            done = write(connection, rollout, now, status="completed", ended_at=now, status_reason=what, last_gate_results=gates)
        return RolloutOutcome(done, "completed", what, gates, rollout.candidate if production_moved else None)

    def complete(self, gates: list[GateResult]) -> RolloutOutcome:
        """Blue-green's 100 % step passed: release the fallback and end the rollout."""
        rollout, now, labels = self.rollout, self.now, self.labels
        what = f"{rollout.candidate} passed its last step; fallback {rollout.baseline} released"
        with locked(self.engine, self.rollout) as connection:
            if labels.staging is not None:
                self.registry.clear_label(
                    rollout.prompt_name,
                    STAGING,
                    environment=rollout.environment,
                    actor=self.actor,
                    reason=rollout.audit_reason(what, gates),
                    flow_run_id=self.flow_run_id,
                    expected_revision=labels.slot(STAGING).revision,
                    connection=connection,
                )
            done = write(connection, rollout, now, status="completed", ended_at=now, status_reason=what, last_gate_results=gates)
        return RolloutOutcome(done, "completed", what, gates)

    def roll_back(self, reason: str, gates: list[GateResult], target: str | None = None) -> RolloutOutcome:
        """End the rollout with ``target`` (default: its baseline) as production, no canary and no fallback.

        The gates are recorded when there are any (a person's rollback keeps the last ones).
        """
        rollout, now = self.rollout, self.now
        target = target or rollout.baseline
        with locked(self.engine, self.rollout) as connection:
            if target is not None:
                restore(
                    connection,
                    self.registry,
                    rollout.prompt_name,
                    rollout.environment,
                    target,
                    self.labels,
                    actor=self.actor,
                    reason=reason,
                    flow_run_id=self.flow_run_id,
                    clear_staging=True,
                )
            ended = write(
                connection,
                rollout,
                now,
                status="rolled_back",
                ended_at=now,
                status_reason=reason,
                **({"last_gate_results": gates} if gates else {}),
            )
        return RolloutOutcome(ended, "rolled_back", reason, gates)
