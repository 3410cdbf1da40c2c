"""Drift detection as Prefect tasks, and the ``llmops.drift.detected`` event automations listen to.

The statistics live in ``llmops.drift`` and the store side in ``llmops.drift_report``. Reading
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
from prefect.runtime import flow_run
from sqlalchemy import Engine

from blocks.store import TraceStore
from llmops.drift import TraceDriftConfig, TraceDriftReport
from llmops.drift_report import (
    DriftEvent,
    Finding,
    assess_day,
    audit_day,
    drift_events,
    night_to_check,
    not_yet_reported,
    save_findings,
)
from llmops.pinning import PinningFinding
from llmops.rollouts import resource_id
from llmops.store.engine import get_engine

DRIFT_EVENT = "llmops.drift.detected"


def _engine(store: TraceStore | None) -> Engine:
    return store.get_engine() if store is not None else get_engine()


def _flow_run_id() -> str | None:
    return str(flow_run.id) if flow_run.id else None


@task(name="assess-trace-drift", retries=2, retry_delay_seconds=[10, 60], cache_policy=NO_CACHE)
def assess_trace_drift_task(day: date | None, config: TraceDriftConfig, store: TraceStore | None = None) -> TraceDriftReport:
    """Every group's day (default: yesterday in the store's zone) against its reference window."""
    engine = _engine(store)
    night, _ = night_to_check(engine, day)
    report = assess_day(engine, night, config)
    get_run_logger().info(
        "%s: %d tests, %d skipped, %d drifted", night, len(report.tests), len(report.skipped), len(report.findings)
    )
    return report


@task(name="audit-pinning", retries=2, retry_delay_seconds=[10, 60], cache_policy=NO_CACHE)
def audit_pinning_task(day: date, store: TraceStore | None = None) -> list[PinningFinding]:
    """Calls of ``day`` on an alias, off their version's pinned model, or answered by another model."""
    return audit_day(_engine(store), day)


@task(name="unreported-drift-findings", retries=2, retry_delay_seconds=[10, 60], cache_policy=NO_CACHE)
def unreported_findings_task(findings: list[Finding], store: TraceStore | None = None) -> list[Finding]:
    """The findings no earlier run of this night stored, nor the night before as a standing problem."""
    return not_yet_reported(_engine(store), findings)


@task(name="save-drift-findings", retries=2, retry_delay_seconds=[10, 60], cache_policy=NO_CACHE)
def save_findings_task(day: date, findings: list[Finding], store: TraceStore | None = None) -> int:
    """Replace the night's stored findings (a retry writes the same rows)."""
    return save_findings(_engine(store), day, findings, flow_run_id=_flow_run_id())


@task(name="emit-drift-events", cache_policy=NO_CACHE)
def emit_drift_events(findings: list[Finding], store: TraceStore | None = None) -> list[DriftEvent]:
    """``llmops.drift.detected`` on ``llmops.prompt.<name>`` per drifted prompt version and environment.

    The resource carries the version and, when the version holds one, its label: the rollback
    automation matches ``llmops.prompt.label: canary``.
    """
    events = drift_events(_engine(store), findings)
    run_id = _flow_run_id()
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
