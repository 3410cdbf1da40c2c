"""Drift detection as Prefect tasks, and the ``llmops.drift.detected`` event automations listen to.

The statistics live in ``llmops.drift.trace`` and the store side in ``llmops.drift.report``. Reading
and saving retry (a store restarting): saving replaces the night's findings as a whole, so a
retry after a lost commit leaves the same rows. Emitting is not retried: each run announces
once (a rerun announces again, and the rollback a canary's event starts is a no-op for a
version that no longer serves).
"""

from __future__ import annotations

from datetime import date

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from llmops.drift.pinned import PinnedCheck, PinnedDriftConfig, run_pinned_checks, serving_versions
from llmops.drift.pinning import PinningFinding
from llmops.drift.report import (
    DriftEvent,
    Finding,
    assess_day,
    audit_day,
    drift_events,
    night_to_check,
    not_yet_reported,
    save_findings,
)
from llmops.drift.trace import TraceDriftConfig, TraceDriftReport
from llmops.evals.runner import ModelUnavailable
from llmops.prompts import prompt_names
from llmops.release.registry import Registry
from llmops.release.rollouts import RolloutOutcome, resource_id
from prefect_llmops.blocks.model import AnthropicModel
from prefect_llmops.blocks.store import TraceStore
from prefect_llmops.tasks.common import STORE, current_flow_run_id, store_engine

DRIFT_EVENT = "llmops.drift.detected"


@task(name="assess-trace-drift", **STORE.options(), cache_policy=NO_CACHE)
def assess_trace_drift_task(day: date | None, config: TraceDriftConfig, store: TraceStore | None = None) -> TraceDriftReport:
    """Every group's day (default: yesterday in the store's zone) against its reference window."""
    engine = store_engine(store)
    night, _ = night_to_check(engine, day)
    report = assess_day(engine, night, config)
    get_run_logger().info(
        "%s: %d tests, %d skipped, %d drifted", night, len(report.tests), len(report.skipped), len(report.findings)
    )
    return report


@task(name="audit-pinning", **STORE.options(), cache_policy=NO_CACHE)
def audit_pinning_task(day: date, store: TraceStore | None = None) -> list[PinningFinding]:
    """Calls of ``day`` on an alias, off their version's pinned model, or answered by another model."""
    return audit_day(store_engine(store), day)


@task(name="unreported-drift-findings", **STORE.options(), cache_policy=NO_CACHE)
def unreported_findings_task(findings: list[Finding], store: TraceStore | None = None) -> list[Finding]:
    """The findings no earlier run of this night stored, nor the night before as a standing problem."""
    return not_yet_reported(store_engine(store), findings)


@task(name="save-drift-findings", **STORE.options(), cache_policy=NO_CACHE)
def save_findings_task(day: date, findings: list[Finding], store: TraceStore | None = None) -> int:
    """Replace the night's stored findings (a retry writes the same rows)."""
    return save_findings(store_engine(store), day, findings, flow_run_id=current_flow_run_id())


@task(name="emit-drift-events", cache_policy=NO_CACHE)
def emit_drift_events(findings: list[Finding], store: TraceStore | None = None) -> list[DriftEvent]:
    """``llmops.drift.detected`` on ``llmops.prompt.<name>`` per drifted prompt version and environment.

    The resource carries the version and, when the version holds one, its label: the rollback
    automation matches ``llmops.prompt.label: canary``.
    """
    events = drift_events(store_engine(store), findings)
    run_id = current_flow_run_id()
    related = [{"prefect.resource.id": f"prefect.flow-run.{run_id}", "prefect.resource.role": "flow-run"}] if run_id else []
    for event in events:
        resource = {
            "prefect.resource.id": resource_id(event.prompt_name),
            "prefect.resource.name": event.prompt_name,
            "llmops.environment": event.environment,
            "llmops.prompt.version": event.version,
        }
        if event.label is not None:
            resource["llmops.prompt.label"] = event.label
        emit_event(event=DRIFT_EVENT, resource=resource, related=related, payload=event.payload)
        get_run_logger().info(
            "%s for %s %s (%s): %s", DRIFT_EVENT, event.prompt_name, event.version, event.label or "no label", event.summary
        )
    return events


def _model_access(model: AnthropicModel | None) -> dict[str, str | None]:
    """The block's key and endpoint (each version runs its own pinned model); unset: the environment's."""
    if model is None:
        return {}
    return {"api_key": model.api_key.get_secret_value() if model.api_key else None, "base_url": model.base_url}


@task(name="pinned-model-drift", cache_policy=NO_CACHE)
def pinned_drift_task(
    environment: str,
    config: PinnedDriftConfig,
    store: TraceStore | None = None,
    model: AnthropicModel | None = None,
) -> list[PinnedCheck]:
    """Every production and canary version's pinned subsets asked again and compared with their
    references; a version without one gets it captured tonight. Not retried: a rerun pays for
    every call again. No model configured: nothing checked (logged), the rest of the night runs."""
    logger = get_run_logger()
    engine = store_engine(store)
    targets = serving_versions(Registry(engine), prompt_names(), environment)
    if not targets:
        return []
    try:
        checks = run_pinned_checks(engine, targets, config=config, **_model_access(model))
    except ModelUnavailable as exc:
        logger.warning("pinned-model drift not checked: %s", exc)
        return []
    for check in checks:
        (logger.warning if check.status == "failed" else logger.info)("%s", check.line())
    return checks


@task(name="capture-pinned-reference", task_run_name="capture-{prompt_name}-{version}", cache_policy=NO_CACHE)
def capture_pinned_reference(
    prompt_name: str, version: str, store: TraceStore | None = None, model: AnthropicModel | None = None
) -> list[PinnedCheck]:
    """Keep ``version``'s answers on its pinned subsets as the reference nightly checks compare with
    (a version that has one keeps it). No model or no eval dataset: nothing to keep (logged)."""
    logger = get_run_logger()
    try:
        checks = run_pinned_checks(
            store_engine(store), [(prompt_name, version, None)], capture_only=True, captured_by=current_flow_run_id() or "promotion",
            **_model_access(model),
        )  # fmt: skip
    except ModelUnavailable as exc:
        logger.info(
            "no pinned reference for %s %s: %s; drift-detection captures it when a model is configured", prompt_name, version, exc
        )
        return []
    for check in checks:
        logger.info("%s", check.line())
    return checks


def capture_when_serving(outcome: RolloutOutcome, store: TraceStore | None = None) -> None:
    """After a rollout step that makes its candidate serve, keep the candidate's pinned reference.

    A failure is a warning: the promotion stands, and the drift-detection flow captures a missing
    reference on its next night.
    """
    if outcome.action not in ("started", "completed"):
        return
    state = capture_pinned_reference(outcome.rollout.prompt_name, outcome.rollout.candidate, store, return_state=True)
    if state.is_failed():
        get_run_logger().warning("pinned reference of %s %s not captured: %s", outcome.rollout.prompt_name,
                                 outcome.rollout.candidate, state.message)  # fmt: skip
