"""The ``drift-detection`` flow: last night's traces against the days before, serving versions'
pinned-model answers against their references, and the pinning audit."""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from llmops.drift.pinned import PinnedCheck, PinnedDriftConfig, pinned_findings
from llmops.drift.report import alert_for, finding_rows, findings_of
from llmops.drift.trace import TraceDriftConfig
from llmops.release.registry import PRODUCTION
from prefect_llmops.blocks.model import AnthropicModel
from prefect_llmops.blocks.slack import SlackDigest
from prefect_llmops.blocks.store import TraceStore
from prefect_llmops.tasks.digest import send_alert
from prefect_llmops.tasks.drift import (
    assess_trace_drift_task,
    audit_pinning_task,
    emit_drift_events,
    pinned_drift_task,
    save_findings_task,
    unreported_findings_task,
)

ARTIFACT_KEY = "drift-detection"
ALERT_KIND = "drift"


def pinned_checks(
    environment: str, config: PinnedDriftConfig, store: TraceStore | None, model: AnthropicModel | None
) -> list[PinnedCheck]:
    """The pinned-model checks; when they fail (an embedding model missing, the provider down) the
    night's trace drift and pinning audit are still saved and alerted."""
    state = pinned_drift_task(environment, config, store, model, return_state=True)
    if state.is_failed():
        get_run_logger().warning("pinned-model drift not checked: %s", state.message)
        return []
    return state.result()


@flow(
    name="drift-detection",
    description="Trace drift per feature, prompt version and model; pinned-model drift; pinning audit; alert and events.",
)
def drift_detection(
    day: date | None = None,
    config: TraceDriftConfig | None = None,
    pinned: bool = True,
    pinned_config: PinnedDriftConfig | None = None,
    environment: str = PRODUCTION,
    slack_block: str | None = None,
    store_block: str | None = None,
    model_block: str | None = None,
) -> dict[str, Any]:
    """Check ``day`` (default: yesterday in LLMOPS_TIMEZONE) against its reference window and, with
    ``pinned``, re-run every serving version of ``environment`` on its pinned eval subsets.

    Stores the findings in ``drift_reports`` (a rerun replaces the day's), publishes them as a
    table artifact, alerts Slack through the outbox on what no earlier run reported, and emits
    ``llmops.drift.detected`` per drifted prompt version (a canary's triggers its rollback).
    """
    slack = SlackDigest.load(slack_block) if slack_block else None
    store = TraceStore.load(store_block) if store_block else None
    model = AnthropicModel.load(model_block) if model_block else None
    report = assess_trace_drift_task(day, config or TraceDriftConfig(), store)
    pinning = audit_pinning_task(report.day, store)
    pinned_config = pinned_config or PinnedDriftConfig()
    checks = pinned_checks(environment, pinned_config, store, model) if pinned else []
    findings = findings_of(report.day, report, pinning, pinned_findings(report.day, environment, checks, pinned_config))
    # Alert before saving: a run that dies in between alerts again on its rerun rather than never.
    alert = alert_for(report.day, unreported_findings_task(findings, store))
    entry = send_alert(ALERT_KIND, alert.title, alert.details, alert.severity, slack, store) if alert else None
    save_findings_task(report.day, findings, store)
    drifted = sum(finding.kind == "trace" for finding in findings)
    pinned_drifted = sum(finding.kind == "pinned" for finding in findings)
    create_table_artifact(
        key=ARTIFACT_KEY,
        table=finding_rows(findings),
        description=(
            f"Drift of {report.day}: {drifted} drifted metrics, {pinned_drifted} pinned-model drift findings, "
            f"{len(findings) - drifted - pinned_drifted} pinning problems "
            f"({len(report.tests)} tests, {len(report.skipped)} skipped for too few calls or reference days). "
            f"Pinned subsets: {'; '.join(check.line() for check in checks) or 'none checked'}"
        ),
    )
    events = emit_drift_events(findings, store)
    return {
        "day": report.day.isoformat(),
        "tests": len(report.tests),
        "skipped": len(report.skipped),
        "findings": [finding.as_dict() for finding in findings],
        "pinned": [check.line() for check in checks],
        "alert": entry.dedupe_key if entry else None,
        "events": [event.payload for event in events],
    }
