"""A rollout as stored: the ``rollouts`` row, what a decision returns, and the row's reads and writes.

A rollout lasts days and no process holds it meanwhile, so its whole state is the row: the plan,
the current step and when it started, the status and the last gates' verdicts. Every change
happens in one transaction that locks the row and checks its ``revision`` (``locked``,
``write``), so the scheduled advance and a person approving or rolling back never both apply;
the loser gets ``RolloutConflictError`` and nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, Row, select, update

from llmops.release.experiments import ABReport
from llmops.release.gates import GateResult
from llmops.release.registry import ConcurrentUpdateError
from llmops.release.rollouts.plan import PlanStep, RolloutPlan, Strategy
from llmops.store.rollout_models import LIVE_STATUSES
from llmops.store.tables import ROLLOUTS

Status = Literal["active", "paused", "awaiting_approval", "completed", "rolled_back"]
Action = Literal["started", "advanced", "completed", "waiting", "awaiting_approval", "paused", "rolled_back", "unchanged"]


class RolloutError(Exception):
    """A promotion, approval or rollback that cannot be done; the message says why and what to do."""


class RolloutConflictError(RolloutError):
    """Another rollout of the same prompt and environment is live, or moved on meanwhile."""


@dataclass(frozen=True, slots=True)
class Rollout:
    """A snapshot of one ``rollouts`` row.

    ``baseline`` is the production version the rollout started from (None only for a first
    release); ``current_step`` indexes ``plan.steps``; ``revision`` counts the row's changes.

    Example:
        ```python
        rollout = get_rollout(engine, 7)
        rollout.summary()["step"], rollout.gate_status  # ("2/3", "evaluation pass, traces wait")
        ```
    """

    id: int
    prompt_name: str
    environment: str
    candidate: str
    baseline: str | None
    strategy: Strategy
    plan: RolloutPlan
    current_step: int
    step_started_at: datetime
    status: Status
    status_reason: str | None
    last_gate_results: list[GateResult]
    created_by: str
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    flow_run_id: str | None
    revision: int

    @classmethod
    def from_row(cls, row: Row[Any]) -> Rollout:
        """The snapshot of a row read from ``rollouts``."""
        return cls(
            id=row.id,
            prompt_name=row.prompt_name,
            environment=row.environment,
            candidate=row.candidate,
            baseline=row.baseline,
            strategy=row.strategy,
            plan=RolloutPlan.model_validate(row.plan),
            current_step=row.current_step,
            step_started_at=row.step_started_at,
            status=row.status,
            status_reason=row.status_reason,
            last_gate_results=[GateResult.from_dict(item) for item in row.last_gate_results or []],
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
            ended_at=row.ended_at,
            flow_run_id=row.flow_run_id,
            revision=row.revision,
        )

    @property
    def step(self) -> PlanStep:
        """The current step of the plan."""
        return self.plan.steps[self.current_step]

    @property
    def is_live(self) -> bool:
        """Not ended yet: active, paused or awaiting approval."""
        return self.status in LIVE_STATUSES

    @property
    def is_last_step(self) -> bool:
        """The current step is the plan's last."""
        return self.current_step == len(self.plan.steps) - 1

    @property
    def gate_status(self) -> str:
        """The gates in one cell: ``evaluation forced, traces wait``."""
        return ", ".join(f"{gate.gate} {gate.verdict}" for gate in self.last_gate_results) or "–"

    def describe(self) -> str:
        """The rollout in one phrase, for messages: which, where, how far, who started it."""
        return (
            f"rollout {self.id} of {self.prompt_name} {self.candidate} in {self.environment} "
            f"({self.strategy}, step {self.current_step + 1}/{len(self.plan.steps)} at "
            f"{self.step.traffic_percent:g} %, {self.status}, started by {self.created_by})"
        )

    def audit_reason(self, what: str, gates: Sequence[GateResult] = ()) -> str:
        """The reason stored with a label move: ``what`` happened, in which rollout, why, and the gates' verdicts."""
        gate_text = "; ".join(f"{gate.gate} gate {gate.verdict}: {gate.summary}" for gate in gates)
        return f"{what} [rollout {self.id}, {self.strategy}: {self.plan.reason}]" + (f" — {gate_text}" if gate_text else "")

    def summary(self) -> dict[str, Any]:
        """One line of ``llmops rollouts`` and of the advance-rollouts artifact."""
        return {
            "id": self.id,
            "prompt": self.prompt_name,
            "environment": self.environment,
            "candidate": self.candidate,
            "baseline": self.baseline,
            "strategy": self.strategy,
            "step": f"{self.current_step + 1}/{len(self.plan.steps)}",
            "traffic_percent": self.step.traffic_percent,
            "status": self.status,
            "gates": self.gate_status,
            "step_started_at": self.step_started_at.isoformat(timespec="seconds"),
            "reason": self.status_reason,
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (``llmops rollouts --json``)."""
        return {
            **self.summary(),
            "plan": self.plan.model_dump(mode="json"),
            "gate_results": [gate.to_dict() for gate in self.last_gate_results],
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(timespec="seconds"),
            "ended_at": self.ended_at.isoformat(timespec="seconds") if self.ended_at else None,
            "flow_run_id": self.flow_run_id,
        }


@dataclass(frozen=True, slots=True)
class RolloutOutcome:
    """What one call did to a rollout; ``production_changed_to`` tells the caller to tag the release.

    Example:
        ```python
        outcome = advance_rollout(engine, rollout.id)
        if outcome.gate_failed:
            print(outcome.message)
        tag_if_released(outcome)
        ```
    """

    rollout: Rollout
    action: Action
    message: str
    gates: list[GateResult] = field(default_factory=list)
    production_changed_to: str | None = None
    ab_report: ABReport | None = None

    @property
    def gate_failed(self) -> bool:
        """A gate refused the candidate (a lost A/B is a decision, not a failed gate)."""
        return self.action == "rolled_back" and any(gate.verdict in ("fail", "missing") for gate in self.gates)

    def alert(self) -> RolloutAlert | None:
        """The Slack alert people get at once for this outcome (a start, a completion, a rollback), else None."""
        if self.action not in OUTCOME_ALERTS:
            return None
        kind, severity = OUTCOME_ALERTS[self.action]
        moved = f"{self.rollout.baseline or '–'} → {self.rollout.candidate}"
        title = f"{self.rollout.prompt_name} ({self.rollout.environment}): {moved}, {self.action.replace('_', ' ')}"
        return RolloutAlert(kind, title, self.message, severity)


@dataclass(frozen=True, slots=True)
class RolloutAlert:
    """An alert about a prompt's labels, as ``enqueue_alert`` takes it: the flows and the CLI word it alike."""

    kind: str
    title: str
    details: str
    severity: str


OUTCOME_ALERTS: dict[str, tuple[str, str]] = {
    "started": ("promotion", "info"),
    "completed": ("promotion", "info"),
    "rolled_back": ("gate_failed", "critical"),
}
"""Which rollout outcomes people hear about at once in Slack: (alert kind, severity)."""


@dataclass(frozen=True, slots=True)
class RollbackResult:
    """What a rollback did; ``restored`` is None when there was nothing to do.

    Example:
        ```python
        result = rollback(engine, "support-chat", reason="answers too long", actor="alice")
        result.restored, result.replaced  # ("1.2.0", "1.3.0")
        ```
    """

    prompt_name: str
    environment: str
    restored: str | None
    replaced: str | None
    ended_rollout: Rollout | None
    message: str

    def alert(self, actor: str, reason: str) -> RolloutAlert | None:
        """The Slack alert for a rollback that moved production, else None."""
        if not self.restored:
            return None
        title = f"{self.prompt_name} ({self.environment}) rolled back: {self.replaced or '–'} → {self.restored}"
        return RolloutAlert("rollback", title, f"{self.message}\nRequested by {actor}: {reason}", "warning")


# -- reads -----------------------------------------------------------------------------------------


def get_rollout(engine: Engine, rollout_id: int) -> Rollout:
    """The rollout with this id, live or ended.

    Args:
        engine: The store.
        rollout_id: The rollout's id.

    Returns:
        Its current snapshot.

    Raises:
        RolloutError: No rollout has that id.

    Example:
        ```python
        get_rollout(engine, 7).status  # "active"
        ```
    """
    with engine.connect() as connection:
        row = connection.execute(select(ROLLOUTS).where(ROLLOUTS.c.id == rollout_id)).one_or_none()
    if row is None:
        raise RolloutError(f"no rollout with id {rollout_id}")
    return Rollout.from_row(row)


def live_rollouts(engine: Engine) -> list[Rollout]:
    """Every rollout not ended yet, oldest first: what the advance-rollouts flow looks at.

    Args:
        engine: The store.

    Returns:
        The live rollouts of every prompt and environment.

    Example:
        ```python
        for rollout in live_rollouts(engine):
            print(rollout.summary())
        ```
    """
    with engine.connect() as connection:
        rows = connection.execute(select(ROLLOUTS).where(ROLLOUTS.c.status.in_(LIVE_STATUSES)).order_by(ROLLOUTS.c.id))
        return [Rollout.from_row(row) for row in rows]


def live_rollout(engine: Engine, prompt_name: str, environment: str) -> Rollout | None:
    """The prompt's live rollout in that environment; there is at most one.

    Args:
        engine: The store.
        prompt_name: The prompt.
        environment: The registry environment.

    Returns:
        The live rollout, or None.

    Example:
        ```python
        live = live_rollout(engine, "support-chat", "production")
        ```
    """
    with engine.connect() as connection:
        row = connection.execute(
            select(ROLLOUTS).where(
                ROLLOUTS.c.prompt_name == prompt_name,
                ROLLOUTS.c.environment == environment,
                ROLLOUTS.c.status.in_(LIVE_STATUSES),
            )
        ).one_or_none()
    return None if row is None else Rollout.from_row(row)


def latest_rollout(engine: Engine, prompt_name: str, environment: str) -> Rollout | None:
    """The live rollout of the prompt, else its most recent one.

    Args:
        engine: The store.
        prompt_name: The prompt.
        environment: The registry environment.

    Returns:
        The newest rollout of the prompt there, or None when it never had one.

    Example:
        ```python
        latest_rollout(engine, "support-chat", "production").status  # "completed"
        ```
    """
    with engine.connect() as connection:
        row = connection.execute(
            select(ROLLOUTS)
            .where(ROLLOUTS.c.prompt_name == prompt_name, ROLLOUTS.c.environment == environment)
            .order_by(ROLLOUTS.c.id.desc())
            .limit(1)
        ).one_or_none()
    return None if row is None else Rollout.from_row(row)


# -- writes, each inside one decision's transaction ----------------------------------------------


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One decision's transaction; a label moved by someone else meanwhile undoes all of it.

    Args:
        engine: The store.

    Yields:
        The connection the row and the label moves are written on.

    Raises:
        RolloutConflictError: A label moved concurrently (the registry's ``ConcurrentUpdateError``).

    Example:
        ```python
        with transaction(engine) as connection:
            rollout = insert_rollout(connection, ...)
        ```
    """
    try:
        with engine.begin() as connection:
            yield connection
    except ConcurrentUpdateError as exc:
        raise RolloutConflictError(str(exc)) from exc


@contextmanager
def locked(engine: Engine, rollout: Rollout) -> Iterator[Connection]:
    """A decision's transaction on ``rollout``, with its row locked and unchanged since it was read.

    Args:
        engine: The store.
        rollout: The snapshot the decision was made on.

    Yields:
        The connection to write the row and move the labels on.

    Raises:
        RolloutConflictError: The row moved on since ``rollout`` was read, or a label moved meanwhile.

    Example:
        ```python
        with locked(engine, rollout) as connection:
            paused = write(connection, rollout, now, status="paused", status_reason="labels changed")
        ```
    """
    with transaction(engine) as connection:
        row = connection.execute(select(ROLLOUTS).where(ROLLOUTS.c.id == rollout.id).with_for_update()).one()
        if row.revision != rollout.revision:
            current = Rollout.from_row(row)
            raise RolloutConflictError(f"{current.describe()} changed while this decision was being made; nothing was done")
        yield connection


def write(connection: Connection, rollout: Rollout, now: datetime, **values: Any) -> Rollout:
    """Update the rollout's row if it still has ``rollout``'s revision, and bump the revision.

    Args:
        connection: The decision's transaction.
        rollout: The snapshot the decision was made on.
        now: The time of the change (``updated_at``).
        **values: The columns to set; ``last_gate_results`` as ``GateResult`` objects.

    Returns:
        The row as updated.

    Raises:
        RolloutConflictError: The row changed since ``rollout`` was read.

    Example:
        ```python
        with locked(engine, rollout) as connection:
            ended = write(connection, rollout, now, status="completed", ended_at=now, status_reason="done")
        ```
    """
    if "last_gate_results" in values:
        values["last_gate_results"] = [gate.to_dict() for gate in values["last_gate_results"]]
    updated = connection.execute(
        update(ROLLOUTS)
        .where(ROLLOUTS.c.id == rollout.id, ROLLOUTS.c.revision == rollout.revision)
        .values(updated_at=now, revision=rollout.revision + 1, **values)
        .returning(*ROLLOUTS.c)
    ).one_or_none()
    if updated is None:
        raise RolloutConflictError(f"{rollout.describe()} changed while this decision was being made; nothing was done")
    return Rollout.from_row(updated)


def insert_rollout(
    connection: Connection,
    *,
    prompt_name: str,
    environment: str,
    candidate: str,
    baseline: str | None,
    plan: RolloutPlan,
    gates: Sequence[GateResult],
    created_by: str,
    flow_run_id: str | None,
    now: datetime,
) -> Rollout:
    """Record a new rollout, active at its first step.

    The store's unique index on live rollouts refuses a second live one for the prompt and
    environment with ``IntegrityError``, which the caller turns into a conflict.

    Args:
        connection: The starting transaction.
        prompt_name: The prompt.
        environment: The registry environment.
        candidate: The version being promoted.
        baseline: The production version it starts from.
        plan: The plan it follows.
        gates: The gates that let it start.
        created_by: Who started it.
        flow_run_id: The Prefect flow run that started it.
        now: When it starts (its first step starts too).

    Returns:
        The new rollout.

    Example:
        ```python
        with transaction(engine) as connection:
            rollout = insert_rollout(
                connection, prompt_name="support-chat", environment="production", candidate="1.3.0", baseline="1.2.0",
                plan=request.plan(), gates=[evaluation], created_by="alice", flow_run_id=None, now=now,
            )
        ```
    """
    row = connection.execute(
        ROLLOUTS.insert()
        .values(
            prompt_name=prompt_name,
            environment=environment,
            candidate=candidate,
            baseline=baseline,
            strategy=plan.strategy,
            plan=plan.model_dump(mode="json"),
            current_step=0,
            step_started_at=now,
            status="active",
            status_reason=None,
            last_gate_results=[gate.to_dict() for gate in gates],
            created_by=created_by,
            created_at=now,
            updated_at=now,
            ended_at=None,
            flow_run_id=flow_run_id,
            revision=0,
        )
        .returning(*ROLLOUTS.c)
    ).one()
    return Rollout.from_row(row)
