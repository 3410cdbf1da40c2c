"""Staged promotion of a prompt version: the plan, the gates and the state machine, without Prefect.

A rollout can last days, so nothing here waits: ``start_rollout`` records the plan and moves
the labels of the first step, and ``advance_rollout`` (run every 15 minutes by the
``advance-rollouts`` flow) looks at the current step once and decides — wait, move on, ask
for approval, pause, complete, or roll back. Every decision commits the rollout row and the
label moves (``llmops.release.registry``, audited) in one transaction, and the row's ``revision``
makes the scheduled advance and a person approving or rolling back exclude each other.

Strategies (the steps are the candidate's share of traffic):

- ``immediate``: production = candidate at once.
- ``canary``: the canary label serves the candidate at 5 → 25 % …; reaching 100 % makes it
  production and ends the rollout.
- ``blue_green``: as canary (10 → 50 %), with the old version held as ``staging`` — the
  instant fallback — until the 100 % step has run its minimum time and passed its gates.
- ``ab``: a fixed split for a fixed time, then the A/B report decides: the candidate wins →
  production; the baseline wins → rolled back; no difference or too little data → a person
  decides (``llmops rollout approve`` or ``llmops rollback``).

Gates: the evaluation gate (a pluggable ``EvalGate``; by default the paired comparison of the
candidate's latest complete eval run with the baseline's, ``llmops.release.gates.eval_gate``)
and the trace gate (candidate vs
control over the step's window, ``llmops.release.experiments.compare_arms`` within the plan's
tolerances). A failed gate rolls back at once, passing needs the step's minimum time and
traffic: fail fast, pass slowly.
"""

from __future__ import annotations

import getpass
import math
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import Connection, Engine, Row, Table, select, update
from sqlalchemy.exc import IntegrityError

from llmops import settings
from llmops.prompts import PromptFileError, PromptNotFoundError, get_prompt
from llmops.release.experiments import (
    ABReport,
    ArmSample,
    MetricComparison,
    Tolerances,
    ab_report,
    arm_samples_from_traces,
    compare_arms,
    gate_verdict,
)
from llmops.release.gates import EvalGate, EvalGateContext, GateResult
from llmops.release.gates import eval_gate as evaluation_gate
from llmops.release.registry import (
    CANARY,
    PRODUCTION,
    STAGING,
    ConcurrentUpdateError,
    ImmutableVersionError,
    LabelState,
    Registry,
    get_registry,
)
from llmops.store.models import Trace
from llmops.store.rollout_models import LIVE_STATUSES, RolloutRow

ROLLOUTS: Table = RolloutRow.__table__  # type: ignore[assignment]
Strategy = Literal["immediate", "canary", "blue_green", "ab"]
Status = Literal["active", "paused", "awaiting_approval", "completed", "rolled_back"]
Action = Literal["started", "advanced", "completed", "waiting", "awaiting_approval", "paused", "rolled_back", "unchanged"]
DEFAULT_STEPS: dict[str, list[float]] = {"canary": [5, 25, 100], "blue_green": [10, 50, 100]}
RESOURCE_PREFIX = "llmops.prompt."
TRAFFIC_EPSILON = 1e-9
TAG_TIMEOUT_SECONDS = 10


class RolloutError(Exception):
    """A promotion, approval or rollback that cannot be done; the message says why and what to do."""


class RolloutConflictError(RolloutError):
    """Another rollout of the same prompt and environment is live, or moved on meanwhile."""


# -- the request and the plan ------------------------------------------------------------------


class PlanStep(BaseModel):
    """One step: the candidate's share, and how long and how much traffic before it may pass."""

    model_config = ConfigDict(frozen=True)

    traffic_percent: float
    min_minutes: float
    min_requests: int


class PromotionRequest(BaseModel):
    """What the promote-prompt form asks for; invalid values are refused before the run starts."""

    model_config = ConfigDict(extra="forbid", title="Promotion request")

    prompt_name: str = Field(min_length=1, description="The prompt, e.g. support-chat.")
    version: str = Field(min_length=1, description="The version to promote; registered from its file if needed.")
    environment: str = Field(default="production", min_length=1, description="Registry environment.")
    strategy: Strategy = Field(
        default="canary",
        description="immediate | canary (5 → 25 → 100 %) | blue_green (10 → 50 → 100 %, old version kept as fallback) | ab.",
    )
    steps: list[float] | None = Field(
        default=None,
        description="Traffic % per step, increasing, ending at 100 (canary, blue_green). Empty: the strategy's default.",
    )
    min_step_minutes: float = Field(default=60, ge=0, description="Minimum time each step serves before it may pass.")
    min_requests_per_step: int = Field(default=300, ge=1, description="Candidate requests a step needs before it may pass.")
    ab_split: float = Field(default=50, gt=0, lt=100, description="ab: the candidate's share of traffic, in %.")
    ab_duration_hours: float = Field(default=24, gt=0, description="ab: how long the split runs before the report decides.")
    require_approval: bool = Field(default=False, description="Wait for `llmops rollout approve` between steps.")
    force_without_eval: bool = Field(
        default=False,
        description="Promote a version without a complete eval run (recorded in the audit log); a regression is never forced.",
    )
    tolerances: Tolerances = Field(default_factory=Tolerances, description="How much worse than control a step may be.")
    git_tag: bool = Field(
        default=True, description="Tag `prompt/<name>/<version>` in the prompt files' git checkout when it becomes production."
    )
    reason: str = Field(min_length=1, description="Why; stored with every label move.")
    actor: str = Field(min_length=1, description="Who asks for it; stored with every label move.")

    @field_validator("prompt_name")
    @classmethod
    def _bare_name(cls, name: str) -> str:
        return prompt_name_from(name)

    @field_validator("steps")
    @classmethod
    def _steps_increase_to_100(cls, steps: list[float] | None) -> list[float] | None:
        if not steps:
            return None
        if any(not 0 < step <= 100 for step in steps):
            raise ValueError(f"each step is a traffic share above 0 and at most 100 %, got {steps}")
        if any(later <= earlier for earlier, later in zip(steps, steps[1:], strict=False)):
            raise ValueError(f"steps must increase, got {steps}")
        if steps[-1] != 100:
            raise ValueError(f"the last step must be 100 (the candidate serves everyone), got {steps}")
        return steps

    @model_validator(mode="after")
    def _steps_fit_the_strategy(self) -> PromotionRequest:
        if self.steps and self.strategy in ("immediate", "ab"):
            raise ValueError(f"steps apply to canary and blue_green; {self.strategy} does not take them")
        return self

    def plan(self) -> RolloutPlan:
        """The steps this request expands to; stored with the rollout, so later edits of defaults do not move it."""
        if self.strategy == "immediate":
            steps = [PlanStep(traffic_percent=100, min_minutes=0, min_requests=0)]
        elif self.strategy == "ab":
            minutes = self.ab_duration_hours * 60
            steps = [PlanStep(traffic_percent=self.ab_split, min_minutes=minutes, min_requests=self.min_requests_per_step)]
        else:
            steps = [
                PlanStep(traffic_percent=share, min_minutes=self.min_step_minutes, min_requests=self.min_requests_per_step)
                for share in self.steps or DEFAULT_STEPS[self.strategy]
            ]
        return RolloutPlan(
            strategy=self.strategy,
            steps=steps,
            require_approval=self.require_approval,
            force_without_eval=self.force_without_eval,
            tolerances=self.tolerances,
            git_tag=self.git_tag,
            reason=self.reason,
        )


class RolloutPlan(BaseModel):
    """The stored plan (``rollouts.plan``)."""

    strategy: Strategy
    steps: list[PlanStep]
    require_approval: bool
    force_without_eval: bool
    tolerances: Tolerances
    git_tag: bool
    reason: str


def prompt_name_from(value: str) -> str:
    """A prompt name from itself or from an event's resource id ``llmops.prompt.<name>``."""
    return value.strip().removeprefix(RESOURCE_PREFIX)


def resource_id(prompt_name: str) -> str:
    """The Prefect event resource id of a prompt, which automations match on."""
    return f"{RESOURCE_PREFIX}{prompt_name}"


# -- gates ---------------------------------------------------------------------------------------


def _checked_eval(gate: EvalGate, context: EvalGateContext, force: bool) -> GateResult:
    result = gate(context)
    if result.verdict == "missing" and force:
        return replace(result, verdict="forced", summary=f"{result.summary}; promoted anyway (force_without_eval)")
    return result


TRACE_COLUMNS = (
    Trace.prompt_version,
    Trace.user_id,
    Trace.status,
    Trace.latency_ms,
    Trace.cost_usd,
    Trace.user_feedback,
    Trace.automated_eval_score,
    Trace.metadata_.label("metadata"),
)


def read_arm(
    engine: Engine,
    prompt_name: str,
    version: str,
    environment: str,
    start: datetime,
    end: datetime,
    outcomes: Sequence[str] = (),
) -> ArmSample:
    """One version's calls over ``[start, end]`` from the ``traces`` table (index ix_traces_prompt),
    with the named numeric outcomes from trace metadata."""
    query = select(*TRACE_COLUMNS).where(
        Trace.prompt_name == prompt_name,
        Trace.prompt_version == version,
        Trace.environment == environment,
        Trace.timestamp >= start,
        Trace.timestamp <= end,
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return arm_samples_from_traces(rows, outcomes).get(version, ArmSample())


def _calls(arm: ArmSample) -> int:
    return len(arm.errors)


def trace_gate(engine: Engine, rollout: Rollout, now: datetime) -> GateResult:
    """Candidate vs control over the current step's window, within the plan's tolerances.

    Control is the baseline in the same window; on a 100 % step (blue-green's last) the baseline
    serves nobody, so it is the baseline over the same length of time just before the step.
    A failure counts at once (its interval already excludes noise); a pass needs the step's
    minimum candidate traffic too.
    """
    if rollout.baseline is None:
        raise RolloutError(f"{_describe(rollout)} has no baseline to compare with")
    step, start, tolerances = rollout.step, rollout.step_started_at, rollout.plan.tolerances
    outcomes = sorted(tolerances.outcomes)
    control_start, control_end = (start - (now - start), start) if step.traffic_percent >= 100 else (start, now)
    candidate = read_arm(engine, rollout.prompt_name, rollout.candidate, rollout.environment, start, now, outcomes)
    control = read_arm(engine, rollout.prompt_name, rollout.baseline, rollout.environment, control_start, control_end, outcomes)
    comparisons = compare_arms(control, candidate, tolerances)
    rows = [comparison.as_dict() for comparison in comparisons]
    counts = f"{_calls(candidate)} candidate / {_calls(control)} control requests"
    verdict = gate_verdict(comparisons)
    if verdict == "fail":
        worse = ", ".join(_failure(comparison) for comparison in comparisons if comparison.verdict == "fail")
        return GateResult("traces", "fail", f"candidate worse than control beyond tolerance: {worse} ({counts})", rows)
    if _calls(candidate) < step.min_requests:
        return GateResult(
            "traces", "wait", f"waiting for traffic: {counts}, the step needs {step.min_requests} candidate requests", rows
        )
    if verdict == "not_enough_data":
        return GateResult(
            "traces",
            "wait",
            f"not enough data to compare yet ({counts}; the gate needs {tolerances.min_samples_per_arm} per arm)",
            rows,
        )
    return GateResult("traces", "pass", f"within tolerances ({counts})", rows)


def _failure(comparison: MetricComparison) -> str:
    control, candidate = _value(comparison.control_value), _value(comparison.candidate_value)
    return f"{comparison.metric} {control} → {candidate} (tolerance {comparison.tolerance})"


def _value(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


# -- the rollout as stored ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rollout:
    """A snapshot of one ``rollouts`` row."""

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
        return self.plan.steps[self.current_step]

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def is_last_step(self) -> bool:
        return self.current_step == len(self.plan.steps) - 1

    @property
    def gate_status(self) -> str:
        """The gates in one cell: ``evaluation forced, traces wait``."""
        return ", ".join(f"{gate.gate} {gate.verdict}" for gate in self.last_gate_results) or "–"

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
    """What one call did; ``production_changed_to`` tells the caller to tag the release."""

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


@dataclass(frozen=True, slots=True)
class RollbackResult:
    """What a rollback did; ``restored`` is None when there was nothing to do."""

    prompt_name: str
    environment: str
    restored: str | None
    replaced: str | None
    ended_rollout: Rollout | None
    message: str


def _now() -> datetime:
    return datetime.now(UTC)


def _registry(engine: Engine) -> Registry:
    """The process-wide registry of this store when it runs on this engine, so resolve caches see moves."""
    registry = get_registry(engine.url.render_as_string(hide_password=False))
    return registry if registry.engine is engine else Registry(engine)


def get_rollout(engine: Engine, rollout_id: int) -> Rollout:
    with engine.connect() as connection:
        row = connection.execute(select(ROLLOUTS).where(ROLLOUTS.c.id == rollout_id)).one_or_none()
    if row is None:
        raise RolloutError(f"no rollout with id {rollout_id}")
    return Rollout.from_row(row)


def live_rollouts(engine: Engine) -> list[Rollout]:
    """Every rollout not ended yet, oldest first."""
    with engine.connect() as connection:
        rows = connection.execute(select(ROLLOUTS).where(ROLLOUTS.c.status.in_(LIVE_STATUSES)).order_by(ROLLOUTS.c.id))
        return [Rollout.from_row(row) for row in rows]


def live_rollout(engine: Engine, prompt_name: str, environment: str) -> Rollout | None:
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
    """The live rollout of the prompt, else its most recent one."""
    with engine.connect() as connection:
        row = connection.execute(
            select(ROLLOUTS)
            .where(ROLLOUTS.c.prompt_name == prompt_name, ROLLOUTS.c.environment == environment)
            .order_by(ROLLOUTS.c.id.desc())
            .limit(1)
        ).one_or_none()
    return None if row is None else Rollout.from_row(row)


def _describe(rollout: Rollout) -> str:
    return (
        f"rollout {rollout.id} of {rollout.prompt_name} {rollout.candidate} in {rollout.environment} "
        f"({rollout.strategy}, step {rollout.current_step + 1}/{len(rollout.plan.steps)} at "
        f"{rollout.step.traffic_percent:g} %, {rollout.status}, started by {rollout.created_by})"
    )


def _audit_reason(rollout: Rollout, what: str, gates: Sequence[GateResult] = ()) -> str:
    gate_text = "; ".join(f"{gate.gate} gate {gate.verdict}: {gate.summary}" for gate in gates)
    return f"{what} [rollout {rollout.id}, {rollout.strategy}: {rollout.plan.reason}]" + (f" — {gate_text}" if gate_text else "")


# -- label moves, inside the caller's transaction ----------------------------------------------


def _expected_labels(rollout: Rollout) -> dict[str, tuple[str | None, float | None]]:
    """What the registry holds while the rollout is at its current step."""
    share = rollout.step.traffic_percent
    fallback = rollout.baseline if rollout.strategy == "blue_green" else None
    if share >= 100:
        return {PRODUCTION: (rollout.candidate, None), CANARY: (None, None), STAGING: (fallback, None)}
    expected = {PRODUCTION: (rollout.baseline, None), CANARY: (rollout.candidate, share)}
    if fallback:
        expected[STAGING] = (fallback, None)
    return expected


def _label_drift(rollout: Rollout, labels: LabelState) -> list[str]:
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


def _apply_step(
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
    """Move the labels to serve the candidate at ``share`` (default: the current step's); True when
    production moved. Blue-green keeps the baseline as ``staging`` throughout."""
    name, environment = rollout.prompt_name, rollout.environment
    common = {"environment": environment, "actor": actor, "reason": reason, "flow_run_id": flow_run_id, "connection": connection}
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


def _restore(
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
    """Production = ``target``; no canary; the blue-green fallback released."""
    common = {"environment": environment, "actor": actor, "reason": reason, "flow_run_id": flow_run_id, "connection": connection}
    if labels.production != target:
        registry.set_label(
            name, PRODUCTION, target, action="rollback", expected_revision=labels.slot(PRODUCTION).revision, **common
        )
    if labels.canary is not None:
        registry.clear_label(name, CANARY, action="rollback", expected_revision=labels.slot(CANARY).revision, **common)
    if clear_staging and labels.staging is not None:
        registry.clear_label(name, STAGING, expected_revision=labels.slot(STAGING).revision, **common)


@contextmanager
def _transaction(engine: Engine) -> Iterator[Connection]:
    """One decision's transaction; a label moved by someone else meanwhile undoes all of it."""
    try:
        with engine.begin() as connection:
            yield connection
    except ConcurrentUpdateError as exc:
        raise RolloutConflictError(str(exc)) from exc


def _lock(connection: Connection, rollout: Rollout) -> None:
    """Lock the row and make sure nobody moved it since ``rollout`` was read."""
    row = connection.execute(select(ROLLOUTS).where(ROLLOUTS.c.id == rollout.id).with_for_update()).one()
    if row.revision != rollout.revision:
        current = Rollout.from_row(row)
        raise RolloutConflictError(f"{_describe(current)} changed while this decision was being made; nothing was done")


def _write(connection: Connection, rollout: Rollout, now: datetime, **values: Any) -> Rollout:
    if "last_gate_results" in values:
        values["last_gate_results"] = [gate.to_dict() for gate in values["last_gate_results"]]
    updated = connection.execute(
        update(ROLLOUTS)
        .where(ROLLOUTS.c.id == rollout.id, ROLLOUTS.c.revision == rollout.revision)
        .values(updated_at=now, revision=rollout.revision + 1, **values)
        .returning(*ROLLOUTS.c)
    ).one_or_none()
    if updated is None:
        raise RolloutConflictError(f"{_describe(rollout)} changed while this decision was being made; nothing was done")
    return Rollout.from_row(updated)


# -- starting ----------------------------------------------------------------------------------


def ensure_registered(registry: Registry, prompt_name: str, version: str, actor: str) -> None:
    """Register the version from its file when the prompts directory has it (an edited released
    file is refused by the registry); a version only in the store is fine as it is."""
    try:
        prompt = get_prompt(prompt_name, version)
    except PromptFileError as exc:
        raise RolloutError(f"the prompt files have errors; fix them before promoting:\n{exc}") from None
    except (PromptNotFoundError, FileNotFoundError):
        if not any(known.version == version for known in registry.versions(prompt_name)):
            raise RolloutError(
                f"{prompt_name} {version} is neither registered nor in {settings.prompts_dir()}/{prompt_name}/{version}.yaml"
            ) from None
        return
    try:
        registry.register(prompt, actor=actor)
    except ImmutableVersionError as exc:
        raise RolloutError(str(exc)) from None


def start_rollout(
    engine: Engine,
    request: PromotionRequest,
    *,
    flow_run_id: str | None = None,
    eval_gate: EvalGate = evaluation_gate,
    now: datetime | None = None,
) -> RolloutOutcome:
    """Check the evaluation gate, record the plan and move the labels of the first step.

    Refused (``RolloutConflictError``) while another rollout of the prompt and environment is
    live; ``RolloutError`` for a request that cannot work (nothing to canary against, the
    version already serving, a failed evaluation gate).
    """
    now = now or _now()
    name, environment, version = request.prompt_name, request.environment, request.version
    registry = _registry(engine)
    ensure_registered(registry, name, version, request.actor)
    live = live_rollout(engine, name, environment)
    if live is not None:
        raise RolloutConflictError(
            f"{name} already has a live {_describe(live)}; finish it, approve it or roll it back "
            f"(llmops rollback {name}) before promoting {version}"
        )
    labels = registry.labels(name, environment)
    baseline = labels.production
    if baseline == version:
        raise RolloutError(f"{name} {version} already holds production in {environment}; nothing to promote")
    if baseline is None and request.strategy != "immediate":
        raise RolloutError(
            f"{name} has no production version in {environment} to compare a {request.strategy} against; "
            "release the first version with strategy immediate"
        )
    context = EvalGateContext(engine, name, version, baseline, environment)
    evaluation = _checked_eval(eval_gate, context, request.force_without_eval)
    if evaluation.verdict in ("fail", "missing"):
        hint = (
            " (pass force_without_eval to promote anyway; it is recorded in the audit log)"
            if evaluation.verdict == "missing"
            else ""
        )
        raise RolloutError(f"evaluation gate refused {name} {version}: {evaluation.summary}{hint}")

    plan = request.plan()
    try:
        with _transaction(engine) as connection:
            row = connection.execute(
                ROLLOUTS.insert()
                .values(
                    prompt_name=name,
                    environment=environment,
                    candidate=version,
                    baseline=baseline,
                    strategy=request.strategy,
                    plan=plan.model_dump(mode="json"),
                    current_step=0,
                    step_started_at=now,
                    status="active",
                    status_reason=None,
                    last_gate_results=[evaluation.to_dict()],
                    created_by=request.actor,
                    created_at=now,
                    updated_at=now,
                    ended_at=None,
                    flow_run_id=flow_run_id,
                    revision=0,
                )
                .returning(*ROLLOUTS.c)
            ).one()
            rollout = Rollout.from_row(row)
            what = f"{request.strategy} promotion of {version}, step 1/{len(plan.steps)} at {rollout.step.traffic_percent:g} %"
            reason = _audit_reason(rollout, what, [evaluation])
            production_moved = _apply_step(
                connection, registry, rollout, labels, actor=request.actor, reason=reason, flow_run_id=flow_run_id
            )
            if request.strategy in ("immediate", "canary") and rollout.step.traffic_percent >= 100:
                rollout = _write(connection, rollout, now, status="completed", ended_at=now, status_reason="promoted at once")
    except IntegrityError:
        live = live_rollout(engine, name, environment)
        raise RolloutConflictError(
            f"{name} got another live rollout at the same moment"
            + (f": {_describe(live)}" if live else "")
            + f"; {version} was not promoted"
        ) from None
    action: Action = "completed" if rollout.status == "completed" else "started"
    message = f"{name} {version}: " + (
        f"production in {environment}"
        if action == "completed"
        else f"{request.strategy} started at {rollout.step.traffic_percent:g} %"
    )
    return RolloutOutcome(rollout, action, message, [evaluation], version if production_moved else None)


# -- advancing ---------------------------------------------------------------------------------


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


def ab_decision(report: ABReport, baseline: str, candidate: str) -> Literal["candidate", "baseline", "undecided"]:
    """Which way an A/B report points: a version that wins at least one metric while the other
    wins none; mixed or no winners leave it to a person."""
    winners = {metric.winner for metric in report.metrics if metric.verdict == "winner"}
    if winners == {candidate}:
        return "candidate"
    if winners == {baseline}:
        return "baseline"
    return "undecided"


def _ab_gate(report: ABReport, direction: str) -> GateResult:
    rows = [{"metric": metric.metric, "verdict": metric.verdict, "winner": metric.winner} for metric in report.metrics]
    won = [f"{metric.winner} on {metric.label}" for metric in report.metrics if metric.winner]
    summary = f"{'; '.join(won) or 'no winner on any metric'} → {direction}"
    return GateResult("ab_report", "pass" if direction == "candidate" else "wait", summary, rows)


def advance_rollout(
    engine: Engine,
    rollout_id: int,
    *,
    actor: str = "advance-rollouts",
    flow_run_id: str | None = None,
    eval_gate: EvalGate = evaluation_gate,
    now: datetime | None = None,
) -> RolloutOutcome:
    """Look at an active rollout's current step once and act on it (see the module docstring)."""
    now = now or _now()
    rollout = get_rollout(engine, rollout_id)
    if rollout.status != "active":
        return RolloutOutcome(rollout, "unchanged", f"{_describe(rollout)}: nothing to do until it is active")
    registry = _registry(engine)
    labels = registry.labels(rollout.prompt_name, rollout.environment)
    drift = _label_drift(rollout, labels)
    if drift:
        message = "labels changed outside the rollout: " + "; ".join(drift) + " (approve to re-apply the step, or roll back)"
        with _transaction(engine) as connection:
            _lock(connection, rollout)
            paused = _write(connection, rollout, now, status="paused", status_reason=message)
        return RolloutOutcome(paused, "paused", message)

    context = EvalGateContext(engine, rollout.prompt_name, rollout.candidate, rollout.baseline, rollout.environment)
    gates = [_checked_eval(eval_gate, context, rollout.plan.force_without_eval), trace_gate(engine, rollout, now)]
    failed = [gate for gate in gates if gate.verdict in ("fail", "missing")]
    if failed:
        reason = _audit_reason(rollout, "gate failed, rolled back", failed)
        return _roll_back_live(engine, registry, rollout, labels, reason, actor, flow_run_id, now, gates)

    elapsed = _minutes(now - rollout.step_started_at)
    waiting = [gate.summary for gate in gates if gate.verdict == "wait"]
    if elapsed < rollout.step.min_minutes:
        waiting.append(f"step has run {elapsed:.0f} of {rollout.step.min_minutes:g} minutes")
    if waiting:
        message = "; ".join(waiting)
        with _transaction(engine) as connection:
            _lock(connection, rollout)
            updated = _write(connection, rollout, now, last_gate_results=gates, status_reason=message)
        return RolloutOutcome(updated, "waiting", message, gates)

    if rollout.strategy == "ab":
        report = rollout_ab_report(engine, rollout, now)
        direction = ab_decision(report, rollout.baseline or "", rollout.candidate)
        gates.append(_ab_gate(report, direction))
        if direction == "baseline":
            reason = _audit_reason(rollout, f"A/B report: {rollout.baseline} won, rolled back", gates[-1:])
            return replace(
                _roll_back_live(engine, registry, rollout, labels, reason, actor, flow_run_id, now, gates), ab_report=report
            )
        if direction == "undecided" or rollout.plan.require_approval:
            return replace(_await_approval(engine, rollout, now, gates, f"A/B report: {gates[-1].summary}"), ab_report=report)
        return replace(_enter_final(engine, registry, rollout, labels, actor, flow_run_id, now, gates), ab_report=report)

    if rollout.is_last_step:
        return _complete(engine, registry, rollout, labels, actor, flow_run_id, now, gates)
    if rollout.plan.require_approval:
        return _await_approval(engine, rollout, now, gates, f"step {rollout.current_step + 1} passed its gates")
    return _next_step(engine, registry, rollout, labels, actor, flow_run_id, now, gates)


def _await_approval(engine: Engine, rollout: Rollout, now: datetime, gates: list[GateResult], why: str) -> RolloutOutcome:
    message = f"{why}; waiting for approval (llmops rollout approve {rollout.prompt_name})"
    with _transaction(engine) as connection:
        _lock(connection, rollout)
        updated = _write(connection, rollout, now, status="awaiting_approval", status_reason=message, last_gate_results=gates)
    return RolloutOutcome(updated, "awaiting_approval", message, gates)


def _next_step(
    engine: Engine,
    registry: Registry,
    rollout: Rollout,
    labels: LabelState,
    actor: str,
    flow_run_id: str | None,
    now: datetime,
    gates: list[GateResult],
) -> RolloutOutcome:
    """Enter the next step; a canary's 100 % step is production, which ends it."""
    with _transaction(engine) as connection:
        _lock(connection, rollout)
        moved = _write(
            connection,
            rollout,
            now,
            current_step=rollout.current_step + 1,
            step_started_at=now,
            status="active",
            status_reason=None,
            last_gate_results=gates,
        )
        share = moved.step.traffic_percent
        what = f"step {moved.current_step + 1}/{len(moved.plan.steps)}: {moved.candidate} at {share:g} %"
        production_moved = _apply_step(
            connection, registry, moved, labels, actor=actor, reason=_audit_reason(moved, what, gates), flow_run_id=flow_run_id
        )
        if share >= 100 and moved.strategy != "blue_green":
            moved = _write(
                connection, moved, now, status="completed", ended_at=now, status_reason=f"{moved.candidate} is production"
            )
    action: Action = "completed" if moved.status == "completed" else "advanced"
    return RolloutOutcome(moved, action, what, gates, moved.candidate if production_moved else None)


def _enter_final(
    engine: Engine,
    registry: Registry,
    rollout: Rollout,
    labels: LabelState,
    actor: str,
    flow_run_id: str | None,
    now: datetime,
    gates: list[GateResult],
) -> RolloutOutcome:
    """An A/B rollout decided for the candidate: production, and done."""
    what = f"A/B decided for {rollout.candidate}: production"
    with _transaction(engine) as connection:
        _lock(connection, rollout)
        production_moved = _apply_step(
            connection,
            registry,
            rollout,
            labels,
            actor=actor,
            reason=_audit_reason(rollout, what, gates),
            flow_run_id=flow_run_id,
            share=100,
        )
        done = _write(connection, rollout, now, status="completed", ended_at=now, status_reason=what, last_gate_results=gates)
    return RolloutOutcome(done, "completed", what, gates, rollout.candidate if production_moved else None)


def _complete(
    engine: Engine,
    registry: Registry,
    rollout: Rollout,
    labels: LabelState,
    actor: str,
    flow_run_id: str | None,
    now: datetime,
    gates: list[GateResult],
) -> RolloutOutcome:
    """Blue-green's 100 % step passed: release the fallback and end the rollout."""
    what = f"{rollout.candidate} passed its last step; fallback {rollout.baseline} released"
    with _transaction(engine) as connection:
        _lock(connection, rollout)
        if labels.staging is not None:
            registry.clear_label(
                rollout.prompt_name,
                STAGING,
                environment=rollout.environment,
                actor=actor,
                reason=_audit_reason(rollout, what, gates),
                flow_run_id=flow_run_id,
                expected_revision=labels.slot(STAGING).revision,
                connection=connection,
            )
        done = _write(connection, rollout, now, status="completed", ended_at=now, status_reason=what, last_gate_results=gates)
    return RolloutOutcome(done, "completed", what, gates)


def _roll_back_live(
    engine: Engine,
    registry: Registry,
    rollout: Rollout,
    labels: LabelState,
    reason: str,
    actor: str,
    flow_run_id: str | None,
    now: datetime,
    gates: list[GateResult],
    target: str | None = None,
) -> RolloutOutcome:
    target = target or rollout.baseline
    with _transaction(engine) as connection:
        _lock(connection, rollout)
        if target is not None:
            _restore(
                connection,
                registry,
                rollout.prompt_name,
                rollout.environment,
                target,
                labels,
                actor=actor,
                reason=reason,
                flow_run_id=flow_run_id,
                clear_staging=True,
            )
        ended = _write(
            connection,
            rollout,
            now,
            status="rolled_back",
            ended_at=now,
            status_reason=reason,
            **({"last_gate_results": gates} if gates else {}),
        )
    return RolloutOutcome(ended, "rolled_back", reason, gates)


# -- people: approve, roll back ----------------------------------------------------------------


def approve(
    engine: Engine,
    prompt_name: str,
    *,
    environment: str = PRODUCTION,
    actor: str,
    flow_run_id: str | None = None,
    now: datetime | None = None,
) -> RolloutOutcome:
    """Let a rollout that waits for a person go on (next step, or production after an A/B), or
    resume a paused one by re-applying its current step with a fresh window."""
    now = now or _now()
    prompt_name = prompt_name_from(prompt_name)
    rollout = live_rollout(engine, prompt_name, environment)
    if rollout is None:
        raise RolloutError(f"{prompt_name} has no live rollout in {environment} to approve")
    registry = _registry(engine)
    labels = registry.labels(prompt_name, environment)
    approval = GateResult("approval", "pass", f"approved by {actor}")
    if rollout.status == "paused":
        what = f"resumed by {actor}: step {rollout.current_step + 1} re-applied"
        with _transaction(engine) as connection:
            _lock(connection, rollout)
            resumed = _write(connection, rollout, now, status="active", status_reason=what, step_started_at=now)
            _apply_step(
                connection, registry, resumed, labels, actor=actor, reason=_audit_reason(resumed, what), flow_run_id=flow_run_id
            )
        return RolloutOutcome(resumed, "advanced", what, [approval])
    if rollout.status != "awaiting_approval":
        raise RolloutError(f"{_describe(rollout)} does not wait for approval; {rollout.status_reason or 'its gates decide'}")
    gates = [*rollout.last_gate_results, approval]
    if rollout.strategy == "ab":
        return _enter_final(engine, registry, rollout, labels, actor, flow_run_id, now, gates)
    return _next_step(engine, registry, rollout, labels, actor, flow_run_id, now, gates)


def rollback(
    engine: Engine,
    prompt_name: str,
    *,
    reason: str,
    actor: str,
    environment: str = PRODUCTION,
    to_version: str | None = None,
    only_if_serving: str | None = None,
    flow_run_id: str | None = None,
    now: datetime | None = None,
) -> RollbackResult:
    """Restore the version before the current one (or ``to_version``), ending any live rollout.

    During a rollout "the version before" is its baseline; otherwise the registry's previous
    production version. ``only_if_serving`` makes it a no-op unless that version still serves
    (production or canary): an automation reacting to an old event never rolls back twice.
    """
    now = now or _now()
    name = prompt_name_from(prompt_name)
    if not reason.strip():
        raise RolloutError("a rollback needs a reason; it is stored in the audit log")
    registry = _registry(engine)
    labels = registry.labels(name, environment)
    if only_if_serving and only_if_serving not in (labels.production, labels.canary):
        return RollbackResult(
            name,
            environment,
            None,
            None,
            None,
            f"{name} {only_if_serving} no longer serves in {environment}; nothing to roll back",
        )
    if to_version is not None:
        ensure_registered(registry, name, to_version, actor)
    live = live_rollout(engine, name, environment)
    if live is not None:
        target = to_version or live.baseline or labels.production
        if target is None:
            raise RolloutError(f"{name} has no version to roll back to in {environment}")
        replaced = labels.canary if labels.production == target else labels.production
        ended = _roll_back_live(
            engine,
            registry,
            live,
            labels,
            _audit_reason(live, f"rolled back by {actor}: {reason}"),
            actor,
            flow_run_id,
            now,
            [],
            target,
        )
        return RollbackResult(
            name, environment, target, replaced, ended.rollout, f"{name}: {target} restored in {environment}; {ended.message}"
        )
    target = to_version or registry.previous_production(name, environment)
    if target is None:
        raise RolloutError(f"{name} has no earlier production version in {environment}; name one with --to VERSION")
    if labels.production == target and labels.canary is None:
        return RollbackResult(name, environment, None, None, None, f"{name} {target} already serves all of {environment}")
    with _transaction(engine) as connection:
        _restore(
            connection,
            registry,
            name,
            environment,
            target,
            labels,
            actor=actor,
            reason=f"rolled back by {actor}: {reason}",
            flow_run_id=flow_run_id,
            clear_staging=False,
        )
    replaced = labels.production if labels.production != target else labels.canary
    return RollbackResult(
        name, environment, target, replaced, None, f"{name}: {target} restored in {environment} (was {replaced})"
    )


# -- A/B report ----------------------------------------------------------------------------------


def rollout_ab_report(engine: Engine, rollout: Rollout, now: datetime | None = None, outcomes: Sequence[str] = ()) -> ABReport:
    """Baseline vs candidate over the rollout's life so far (an A/B, or any canary), with the
    outcomes its tolerances name and ``outcomes`` from trace metadata."""
    end = rollout.ended_at or now or _now()
    names = sorted(set(rollout.plan.tolerances.outcomes) | set(outcomes))
    arms = {
        version: read_arm(engine, rollout.prompt_name, version, rollout.environment, rollout.created_at, end, names)
        for version in (rollout.baseline, rollout.candidate)
        if version is not None
    }
    return ab_report(arms, rollout.plan.tolerances)


# -- git ---------------------------------------------------------------------------------------


def tag_release(prompt_name: str, version: str, directory: Path | None = None) -> str | None:
    """Tag ``prompt/<name>/<version>`` at HEAD of the git checkout holding the prompt files.

    Returns the tag, or None outside a git checkout, before its first commit, or when the tag
    exists already (a version promoted again after a rollback keeps its first tag).
    """
    directory = directory or settings.prompts_dir()
    tag = f"prompt/{prompt_name}/{version}"

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=TAG_TIMEOUT_SECONDS)

    try:
        inside = git("rev-parse", "--is-inside-work-tree")
    except (FileNotFoundError, NotADirectoryError, subprocess.TimeoutExpired):
        return None
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return None
    if git("rev-parse", "--verify", "--quiet", "HEAD").returncode != 0:
        return None
    if git("rev-parse", "--verify", "--quiet", f"refs/tags/{tag}").returncode == 0:
        return None
    created = git("tag", tag)
    if created.returncode != 0:
        raise RolloutError(f"could not create git tag {tag} in {directory}: {created.stderr.strip()}")
    return tag


def tag_if_released(outcome: RolloutOutcome) -> str | None:
    """Tag the release when production moved in the production environment and the plan wants tags."""
    rollout = outcome.rollout
    if outcome.production_changed_to is None or rollout.environment != PRODUCTION or not rollout.plan.git_tag:
        return None
    return tag_release(rollout.prompt_name, outcome.production_changed_to)


def default_actor() -> str:
    """Who runs the CLI: the login name."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# -- tables for artifacts and the CLI ----------------------------------------------------------


def plan_table(rollout: Rollout) -> list[dict[str, Any]]:
    """One row per step, with where the rollout stands."""
    rows = []
    for index, step in enumerate(rollout.plan.steps):
        if index < rollout.current_step or (index == rollout.current_step and rollout.status == "completed"):
            state = "done"
        elif index == rollout.current_step:
            state = rollout.status
        else:
            state = "to do" if rollout.is_live else "skipped"
        rows.append({
            "step": index + 1,
            "traffic_percent": step.traffic_percent,
            "min_minutes": step.min_minutes,
            "min_requests": step.min_requests,
            "state": state,
        })  # fmt: skip
    return rows


def _interval_text(row: dict[str, Any]) -> str:
    low, high = row.get("ci_low"), row.get("ci_high")
    if low is None or high is None:
        return f"n {row.get('control_n', 0)}/{row.get('candidate_n', 0)}, too few to judge"
    shown = f"×{low:.3g} … ×{high:.3g}" if row.get("scale") == "ratio" else f"{low:+.3g} … {high:+.3g}"
    return f"{shown} (tolerance {row.get('tolerance')}; n {row.get('control_n')}/{row.get('candidate_n')})"


def _detail(gate: str, row: dict[str, Any]) -> str:
    if gate == "traces":
        return _interval_text(row)
    if gate == "evaluation" and row.get("delta") is not None:
        return f"{row['dataset']}: Δ {row['delta']:+.3f} {row['interval'] or ''} (n {row['pairs']})"
    if gate == "ab_report":
        return f"winner {row['winner']}" if row.get("winner") else ""
    return ""


def gate_table(gates: Sequence[GateResult]) -> list[dict[str, Any]]:
    """Every gate's metrics as one table (interval, tolerance and counts for trace metrics); a gate
    without metrics is one line with its summary."""
    rows: list[dict[str, Any]] = []
    for gate in gates:
        if not gate.rows:
            rows.append(
                {
                    "gate": gate.gate,
                    "metric": "–",
                    "control": None,
                    "candidate": None,
                    "detail": gate.summary,
                    "verdict": gate.verdict,
                }
            )
        for row in gate.rows:
            rows.append({
                "gate": gate.gate,
                "metric": row["metric"],
                "control": row.get("control_value", row.get("control", row.get("baseline"))),
                "candidate": row.get("candidate_value", row.get("candidate")),
                "detail": _detail(gate.gate, row),
                "verdict": row["verdict"],
            })  # fmt: skip
    return rows
