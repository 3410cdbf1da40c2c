"""What people and the schedule do to a rollout: start it, advance it, approve it, roll it back.

Each action reads the rollout and the labels, asks the gates, decides, and hands the decision to
``steps.Decision``, which commits it. Nothing here waits: ``advance_rollout`` looks at the
current step once (the ``advance-rollouts`` flow calls it every 15 minutes), so a rollout that
lasts days holds no process. A failed gate rolls back at once; passing needs the step's minimum
time and traffic too: fail fast, pass slowly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from llmops import settings
from llmops.prompts import PromptFileError, PromptNotFoundError, get_prompt
from llmops.release.experiments import ABReport, ab_report, with_history
from llmops.release.gates import (
    EvalGate,
    EvalGateContext,
    GateResult,
    TraceGateContext,
    ab_decision,
    ab_gate,
    checked_eval_gate,
    read_arm,
    read_user_history,
    trace_gate,
)
from llmops.release.gates import eval_gate as evaluation_gate
from llmops.release.registry import PRODUCTION, ImmutableVersionError, Registry, get_registry
from llmops.release.rollouts.plan import PromotionRequest, prompt_name_from
from llmops.release.rollouts.state import (
    Action,
    RollbackResult,
    Rollout,
    RolloutConflictError,
    RolloutError,
    RolloutOutcome,
    get_rollout,
    insert_rollout,
    live_rollout,
    transaction,
    write,
)
from llmops.release.rollouts.steps import Decision, apply_step, label_drift, restore


def _now() -> datetime:
    return datetime.now(UTC)


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


def _registry(engine: Engine) -> Registry:
    """The process-wide registry of this store when it runs on this engine, so resolve caches see moves."""
    registry = get_registry(engine.url.render_as_string(hide_password=False))
    return registry if registry.engine is engine else Registry(engine)


def ensure_registered(registry: Registry, prompt_name: str, version: str, actor: str) -> None:
    """Register the version from its file when the prompts directory has it.

    A version only in the store is fine as it is; an edited released file is refused by the
    registry.

    Args:
        registry: Where to register it.
        prompt_name: The prompt.
        version: The version to promote or roll back to.
        actor: Who asks, for the audit log.

    Raises:
        RolloutError: The prompt files have errors, the version is neither a file nor
            registered, or its file changed since it was released.

    Example:
        ```python
        ensure_registered(Registry(engine), "support-chat", "1.3.0", actor="alice")
        ```
    """
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


# -- starting --------------------------------------------------------------------------------------


def start_rollout(
    engine: Engine,
    request: PromotionRequest,
    *,
    flow_run_id: str | None = None,
    eval_gate: EvalGate = evaluation_gate,
    now: datetime | None = None,
) -> RolloutOutcome:
    """Check the evaluation gate, record the plan and move the labels of the first step.

    An ``immediate`` promotion (or a canary whose first step is 100 %) completes at once.

    Args:
        engine: The store.
        request: What to promote, and how.
        flow_run_id: The Prefect flow run, stored with the rollout and every label move.
        eval_gate: The evaluation gate; ``llmops.release.gates.eval_gate`` by default.
        now: The time to record; the current time by default.

    Returns:
        ``started``, or ``completed`` when the candidate is production already;
        ``production_changed_to`` names it then.

    Raises:
        RolloutConflictError: Another rollout of the prompt and environment is live.
        RolloutError: The request cannot work: nothing to canary against, the version already
            serving, a failed or missing evaluation, a version that cannot be registered.

    Example:
        ```python
        request = PromotionRequest(prompt_name="support-chat", version="1.3.0", reason="shorter answers", actor="alice")
        outcome = start_rollout(engine, request)
        outcome.message  # "support-chat 1.3.0: canary started at 5 %"
        ```
    """
    now = now or _now()
    name, environment, version = request.prompt_name, request.environment, request.version
    registry = _registry(engine)
    ensure_registered(registry, name, version, request.actor)
    live = live_rollout(engine, name, environment)
    if live is not None:
        raise RolloutConflictError(
            f"{name} already has a live {live.describe()}; finish it, approve it or roll it back "
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
    evaluation = checked_eval_gate(eval_gate, context, request.force_without_eval)
    if evaluation.verdict in ("fail", "missing"):
        hint = (
            " (to promote anyway: `llmops promote --force-without-eval`, or force_without_eval in the "
            "promote-prompt form; it is recorded in the audit log)"
            if evaluation.verdict == "missing"
            else ""
        )
        raise RolloutError(f"evaluation gate refused {name} {version}: {evaluation.summary}{hint}")

    plan = request.plan()
    try:
        with transaction(engine) as connection:
            rollout = insert_rollout(
                connection,
                prompt_name=name,
                environment=environment,
                candidate=version,
                baseline=baseline,
                plan=plan,
                gates=[evaluation],
                created_by=request.actor,
                flow_run_id=flow_run_id,
                now=now,
            )
            what = f"{request.strategy} promotion of {version}, step 1/{len(plan.steps)} at {rollout.step.traffic_percent:g} %"
            reason = rollout.audit_reason(what, [evaluation])
            production_moved = apply_step(
                connection, registry, rollout, labels, actor=request.actor, reason=reason, flow_run_id=flow_run_id
            )
            if request.strategy in ("immediate", "canary") and rollout.step.traffic_percent >= 100:
                rollout = write(connection, rollout, now, status="completed", ended_at=now, status_reason="promoted at once")
    except IntegrityError:
        live = live_rollout(engine, name, environment)
        raise RolloutConflictError(
            f"{name} got another live rollout at the same moment"
            + (f": {live.describe()}" if live else "")
            + f"; {version} was not promoted"
        ) from None
    action: Action = "completed" if rollout.status == "completed" else "started"
    message = f"{name} {version}: " + (
        f"production in {environment}"
        if action == "completed"
        else f"{request.strategy} started at {rollout.step.traffic_percent:g} %"
    )
    return RolloutOutcome(rollout, action, message, [evaluation], version if production_moved else None)


# -- advancing -------------------------------------------------------------------------------------


def _trace_gate(engine: Engine, rollout: Rollout, now: datetime) -> GateResult:
    """The trace gate on the rollout's current step."""
    if rollout.baseline is None:
        raise RolloutError(f"{rollout.describe()} has no baseline to compare with")
    step = rollout.step
    context = TraceGateContext(
        engine,
        rollout.prompt_name,
        rollout.candidate,
        rollout.baseline,
        rollout.environment,
        step_started_at=rollout.step_started_at,
        traffic_percent=step.traffic_percent,
        min_requests=step.min_requests,
        tolerances=rollout.plan.tolerances,
        rollout_started_at=rollout.created_at,
    )
    return trace_gate(context, now)


def rollout_ab_report(engine: Engine, rollout: Rollout, now: datetime | None = None, outcomes: Sequence[str] = ()) -> ABReport:
    """Baseline vs candidate over the rollout's life so far (an A/B, or any canary), narrowed by each
    user's calls before the rollout (``history_days``).

    Args:
        engine: The store.
        rollout: The rollout whose versions to compare, from its start to its end (or ``now``).
        now: The end of the window for a live rollout; the current time by default.
        outcomes: Numeric outcomes from trace metadata to compare too, besides those the
            plan's tolerances name.

    Returns:
        The A/B report of the two versions under the plan's tolerances.

    Example:
        ```python
        report = rollout_ab_report(engine, latest_rollout(engine, "support-chat", "production"), outcomes=["escalated"])
        print(report.to_markdown())
        ```
    """
    end = rollout.ended_at or now or _now()
    names = sorted(set(rollout.plan.tolerances.outcomes) | set(outcomes))
    tolerances = rollout.plan.tolerances
    history = read_user_history(engine, rollout.prompt_name, rollout.environment, rollout.created_at, tolerances.history_days)
    arms = {
        version: with_history(
            read_arm(engine, rollout.prompt_name, version, rollout.environment, rollout.created_at, end, names), history
        )
        for version in (rollout.baseline, rollout.candidate)
        if version is not None
    }
    return ab_report(arms, tolerances)


def advance_rollout(
    engine: Engine,
    rollout_id: int,
    *,
    actor: str = "advance-rollouts",
    flow_run_id: str | None = None,
    eval_gate: EvalGate = evaluation_gate,
    now: datetime | None = None,
) -> RolloutOutcome:
    """Look at an active rollout's current step once and act on it.

    Labels moved by hand pause it. Otherwise the gates decide: a failed gate rolls back; a
    waiting gate or a step younger than its minimum time waits; else the rollout moves on:
    the next step, approval first when the plan wants it, or the end. An A/B split's end asks
    the A/B report: the candidate wins → production; the baseline wins → rolled back; no
    difference → a person decides.

    Args:
        engine: The store.
        rollout_id: The rollout.
        actor: Who acts, for the audit log.
        flow_run_id: The Prefect flow run, for the audit log.
        eval_gate: The evaluation gate; ``llmops.release.gates.eval_gate`` by default.
        now: The time of the look; the current time by default.

    Returns:
        What was done; ``unchanged`` for a rollout that is not active (paused, awaiting
        approval, ended).

    Raises:
        RolloutError: No rollout has that id.
        RolloutConflictError: Someone else changed the rollout or its labels meanwhile; nothing was done.

    Example:
        ```python
        for rollout in live_rollouts(engine):
            print(advance_rollout(engine, rollout.id).message)
        ```
    """
    now = now or _now()
    rollout = get_rollout(engine, rollout_id)
    if rollout.status != "active":
        return RolloutOutcome(rollout, "unchanged", f"{rollout.describe()}: nothing to do until it is active")
    registry = _registry(engine)
    labels = registry.labels(rollout.prompt_name, rollout.environment)
    decision = Decision(engine, registry, rollout, labels, actor, flow_run_id, now)
    drift = label_drift(rollout, labels)
    if drift:
        return decision.pause(
            "labels changed outside the rollout: " + "; ".join(drift) + " (approve to re-apply the step, or roll back)"
        )

    context = EvalGateContext(engine, rollout.prompt_name, rollout.candidate, rollout.baseline, rollout.environment)
    gates = [checked_eval_gate(eval_gate, context, rollout.plan.force_without_eval), _trace_gate(engine, rollout, now)]
    failed = [gate for gate in gates if gate.verdict in ("fail", "missing")]
    if failed:
        return decision.roll_back(rollout.audit_reason("gate failed, rolled back", failed), gates)

    elapsed = _minutes(now - rollout.step_started_at)
    waiting = [gate.summary for gate in gates if gate.verdict == "wait"]
    if elapsed < rollout.step.min_minutes:
        waiting.append(f"step has run {elapsed:.0f} of {rollout.step.min_minutes:g} minutes")
    if waiting:
        return decision.wait(gates, "; ".join(waiting))

    if rollout.strategy == "ab":
        report = rollout_ab_report(engine, rollout, now)
        direction = ab_decision(report, rollout.baseline or "", rollout.candidate)
        gates.append(ab_gate(report, direction))
        if direction == "baseline":
            reason = rollout.audit_reason(f"A/B report: {rollout.baseline} won, rolled back", gates[-1:])
            return replace(decision.roll_back(reason, gates), ab_report=report)
        if direction == "undecided" or rollout.plan.require_approval:
            return replace(decision.await_approval(gates, f"A/B report: {gates[-1].summary}"), ab_report=report)
        return replace(decision.enter_final(gates), ab_report=report)

    if rollout.is_last_step:
        return decision.complete(gates)
    if rollout.plan.require_approval:
        return decision.await_approval(gates, f"step {rollout.current_step + 1} passed its gates")
    return decision.next_step(gates)


# -- people: approve, roll back --------------------------------------------------------------------


def _check_revision(rollout: Rollout, expected_revision: int | None) -> None:
    """Refuse a decision taken on an older state of ``rollout`` (its row changed since)."""
    if expected_revision is not None and rollout.revision != expected_revision:
        raise RolloutConflictError(
            f"{rollout.describe()} moved on since this decision was asked for "
            f"(revision {expected_revision}, now {rollout.revision}: {rollout.status_reason or rollout.status}); nothing was done"
        )


def approve(
    engine: Engine,
    prompt_name: str,
    *,
    environment: str = PRODUCTION,
    actor: str,
    flow_run_id: str | None = None,
    now: datetime | None = None,
    reason: str | None = None,
    expected_revision: int | None = None,
) -> RolloutOutcome:
    """Let a rollout that waits for a person go on, or resume a paused one.

    A rollout awaiting approval enters its next step (production after an A/B); a paused one
    gets its current step re-applied, with a fresh window.

    Args:
        engine: The store.
        prompt_name: The prompt, or its event resource id.
        environment: The registry environment.
        actor: Who approves, for the audit log.
        flow_run_id: The Prefect flow run, for the audit log.
        now: The time of the approval; the current time by default.
        reason: Why, recorded with the approval gate in the audit log.
        expected_revision: Approve only the rollout as it was at this revision (an approval form
            answered after the rollout moved on must not apply).

    Returns:
        What was done: ``advanced`` or ``completed``.

    Raises:
        RolloutError: The prompt has no live rollout there, or it does not wait for approval.
        RolloutConflictError: Someone else changed the rollout or its labels meanwhile.

    Example:
        ```python
        approve(engine, "support-chat", actor="alice").message  # "step 2/3: 1.3.0 at 25 %"
        ```
    """
    now = now or _now()
    prompt_name = prompt_name_from(prompt_name)
    rollout = live_rollout(engine, prompt_name, environment)
    if rollout is None:
        raise RolloutError(f"{prompt_name} has no live rollout in {environment} to approve")
    _check_revision(rollout, expected_revision)
    registry = _registry(engine)
    labels = registry.labels(prompt_name, environment)
    decision = Decision(engine, registry, rollout, labels, actor, flow_run_id, now)
    approval = GateResult("approval", "pass", f"approved by {actor}" + (f": {reason}" if reason else ""))
    if rollout.status == "paused":
        return decision.resume(f"resumed by {actor}: step {rollout.current_step + 1} re-applied", [approval])
    if rollout.status != "awaiting_approval":
        raise RolloutError(f"{rollout.describe()} does not wait for approval; {rollout.status_reason or 'its gates decide'}")
    gates = [*rollout.last_gate_results, approval]
    if rollout.strategy == "ab":
        return decision.enter_final(gates)
    return decision.next_step(gates)


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
    expected_revision: int | None = None,
) -> RollbackResult:
    """Restore the version before the current one (or ``to_version``), ending any live rollout.

    During a rollout "the version before" is its baseline; otherwise the registry's previous
    production version. ``only_if_serving`` makes it a no-op unless that version still serves
    (production or canary): an automation reacting to an old event never rolls back twice.

    Args:
        engine: The store.
        prompt_name: The prompt, or its event resource id.
        reason: Why; stored in the audit log.
        actor: Who rolls back, for the audit log.
        environment: The registry environment.
        to_version: The version to restore; registered from its file if needed.
        only_if_serving: Roll back only while this version serves.
        flow_run_id: The Prefect flow run, for the audit log.
        now: The time of the rollback; the current time by default.
        expected_revision: Roll back only the live rollout as it was at this revision (a
            rejection answered after the rollout moved on must not apply).

    Returns:
        What was restored and what it replaced; ``restored`` is None when there was nothing to do.

    Raises:
        RolloutError: No reason, or no version to roll back to.
        RolloutConflictError: Someone else changed the rollout or its labels meanwhile.

    Example:
        ```python
        rollback(engine, "support-chat", reason="answers too long", actor="alice").message
        # "support-chat: 1.2.0 restored in production (was 1.3.0)"
        ```
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
    if expected_revision is not None:
        if live is None:
            raise RolloutConflictError(f"{name} has no live rollout in {environment} any more; nothing was done")
        _check_revision(live, expected_revision)
    if live is not None:
        target = to_version or live.baseline or labels.production
        if target is None:
            raise RolloutError(f"{name} has no version to roll back to in {environment}")
        replaced = labels.canary if labels.production == target else labels.production
        decision = Decision(engine, registry, live, labels, actor, flow_run_id, now)
        ended = decision.roll_back(live.audit_reason(f"rolled back by {actor}: {reason}"), [], target)
        return RollbackResult(
            name, environment, target, replaced, ended.rollout, f"{name}: {target} restored in {environment}; {ended.message}"
        )
    target = to_version or registry.previous_production(name, environment)
    if target is None:
        raise RolloutError(f"{name} has no earlier production version in {environment}; name one with --to VERSION")
    if labels.production == target and labels.canary is None:
        return RollbackResult(name, environment, None, None, None, f"{name} {target} already serves all of {environment}")
    with transaction(engine) as connection:
        restore(
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
