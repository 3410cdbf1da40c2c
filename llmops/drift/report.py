"""The night's drift check on the store: run the detectors, keep the findings, say what is new.

Trace drift (``llmops.drift.trace`` on the days ``llmops.drift.history`` reads) and the pinning
audit (``llmops.drift.pinning``) are run here for a day of the store; what they and pinned-model
drift (``llmops.drift.pinned``) found is kept in ``drift_reports``, one night replacing its own
earlier findings. What leaves the store: the alert's text for the findings not reported before,
and one event per affected prompt version (``DriftEvent``), with the label (canary, production)
it holds in the registry so that an automation can tell a canary to roll back from production to
investigate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, delete, insert, select

from llmops.days import default_day
from llmops.drift.findings import Finding, Kind
from llmops.drift.history import TraceGroup, load_history, store_timezone
from llmops.drift.pinning import PinningFinding, audit_pinning, pinned_models
from llmops.drift.trace import TraceDriftConfig, TraceDriftReport, assess_trace_drift
from llmops.release.registry import Registry
from llmops.store.engine import read_only
from llmops.store.tables import DRIFT_REPORTS

__all__ = [  # Finding lives in llmops.drift.findings; it stays importable from here, where the tasks import it
    "ALERT_LINES",
    "DRIFT_KINDS",
    "STANDING_KINDS",
    "Alert",
    "DriftCheck",
    "DriftEvent",
    "Finding",
    "alert_for",
    "assess_day",
    "audit_day",
    "check_day",
    "drift_events",
    "finding_rows",
    "findings_of",
    "night_to_check",
    "not_yet_reported",
    "save_findings",
    "stored_findings",
]

ALERT_LINES = 15
"""Findings listed in an alert; the rest are counted (the artifact and ``llmops drift`` list all)."""

DRIFT_KINDS = ("trace", "pinned")
"""Findings that are drift of a prompt version: they alert as warnings and emit events."""
STANDING_KINDS = ("pinning", "pinned")
"""Findings judged against a fixed reference: a problem that stands is alerted on the night it appears."""


@dataclass
class DriftCheck:
    """One night: every trace test (drifted or not), what was skipped, and the pinning problems.

    Attributes:
        day: The checked day.
        report: The trace drift tests.
        pinning: The pinning audit's problems.

    Example:
        ```python
        check = check_day(engine)
        print(f"{check.day}: {len(check.findings)} findings of {len(check.report.tests)} tests")
        ```
    """

    day: date
    report: TraceDriftReport
    pinning: list[PinningFinding]

    @property
    def findings(self) -> list[Finding]:
        """The night's findings, ordered as ``findings_of`` orders them."""
        return findings_of(self.day, self.report, self.pinning)


def findings_of(
    day: date, report: TraceDriftReport, pinning: Sequence[PinningFinding], pinned: Sequence[Finding] = ()
) -> list[Finding]:
    """The night's findings in the order alerts and tables list them.

    Args:
        day: The checked day.
        report: The night's trace drift tests.
        pinning: The pinning audit's problems.
        pinned: Pinned-model drift findings (``pinned_findings``), kept in their order.

    Returns:
        Drifted metrics (strongest evidence first), pinned-model drift, then pinning problems
        (most calls first).

    Example:
        ```python
        findings = findings_of(day, assess_day(engine, day), audit_day(engine, day), pinned_findings(day, env, checks))
        ```
    """
    drifted = sorted(report.findings, key=lambda f: (f.adjusted_p_value, f.p_value, f.group, f.metric))
    problems = sorted(pinning, key=lambda p: (-p.calls, p.group, p.problem))
    return [Finding.from_trace(f) for f in drifted] + list(pinned) + [Finding.from_pinning(day, p) for p in problems]


# -- reading the night's data ---------------------------------------------------------------------


def night_to_check(engine: Engine, day: date | None = None) -> tuple[date, ZoneInfo]:
    """The day a night checks, and the zone the store cuts days in.

    Args:
        engine: The store.
        day: The day asked for; None for yesterday in the store's zone.

    Returns:
        ``(day, zone)``.

    Example:
        ```python
        day, zone = night_to_check(engine)  # yesterday, in the zone the rollups were cut in
        ```
    """
    with read_only(engine).connect() as connection:
        zone = store_timezone(connection)
    return day or default_day(zone), zone


def assess_day(engine: Engine, day: date, config: TraceDriftConfig | None = None) -> TraceDriftReport:
    """Every group's trace drift tests for ``day``, corrected together for the night's many tests.

    Args:
        engine: The store.
        day: The checked day.
        config: Thresholds; the defaults when None.

    Returns:
        The night's trace drift report, read from the rollups.

    Example:
        ```python
        report = assess_day(engine, date(2025, 3, 19))
        ```
    """
    config = config or TraceDriftConfig()
    return assess_trace_drift(load_history(engine, day, config.window_days), day, config)


def audit_day(engine: Engine, day: date, prompts_dir: Path | str | None = None) -> list[PinningFinding]:
    """The pinning audit of ``day``, cut in the store's zone.

    Args:
        engine: The store.
        day: The audited day.
        prompts_dir: Where the prompt files are, for versions not registered yet.

    Returns:
        The day's pinning problems.

    Example:
        ```python
        problems = audit_day(engine, date(2025, 3, 19))
        ```
    """
    with read_only(engine).connect() as connection:
        zone = store_timezone(connection)
    return audit_pinning(engine, day, zone, pinned_models(engine, prompts_dir))


def check_day(
    engine: Engine, day: date | None = None, config: TraceDriftConfig | None = None, prompts_dir: Path | str | None = None
) -> DriftCheck:
    """Trace drift and the pinning audit of ``day``, without storing anything (``llmops drift``).

    Args:
        engine: The store.
        day: The checked day; None for yesterday in the store's zone.
        config: Trace drift thresholds; the defaults when None.
        prompts_dir: Where the prompt files are, for the pinning audit.

    Returns:
        The night's check.

    Example:
        ```python
        for row in finding_rows(check_day(engine).findings):
            print(row["group"], row["summary"])
        ```
    """
    day, _ = night_to_check(engine, day)
    return DriftCheck(day, assess_day(engine, day, config), audit_day(engine, day, prompts_dir))


# -- the findings table -----------------------------------------------------------------------------


def save_findings(engine: Engine, day: date, findings: Iterable[Finding], flow_run_id: str | None = None) -> int:
    """Replace ``day``'s stored findings with ``findings``, in one transaction.

    Args:
        engine: The store.
        day: The night's day (every finding is stored under it).
        findings: All of the night's findings (earlier ones of the day are dropped).
        flow_run_id: The Prefect flow run that found them, if any.

    Returns:
        How many were stored.

    Example:
        ```python
        save_findings(engine, day, findings_of(day, report, pinning), flow_run_id=str(run.id))
        ```
    """
    now = datetime.now(UTC)
    rows = [{**finding.as_dict(), "day": day, "created_at": now, "flow_run_id": flow_run_id} for finding in findings]
    with engine.begin() as connection:
        connection.execute(delete(DRIFT_REPORTS).where(DRIFT_REPORTS.c.day == day))
        if rows:
            connection.execute(insert(DRIFT_REPORTS), rows)
    return len(rows)


def stored_findings(engine: Engine, day: date, kind: Kind | None = None) -> list[Finding]:
    """``day``'s findings as stored, in the order they were saved.

    Args:
        engine: The store.
        day: The night's day.
        kind: Only this detector's findings; all when None.

    Returns:
        The findings.

    Example:
        ```python
        pinning_problems = stored_findings(engine, date(2025, 3, 19), kind="pinning")
        ```
    """
    query = select(DRIFT_REPORTS).where(DRIFT_REPORTS.c.day == day).order_by(DRIFT_REPORTS.c.id)
    if kind is not None:
        query = query.where(DRIFT_REPORTS.c.kind == kind)
    with read_only(engine).connect() as connection:
        rows = connection.execute(query).all()
    return [
        Finding(
            kind=row.kind,
            day=row.day,
            group=TraceGroup.from_row(row),
            metric=row.metric,
            summary=row.summary,
            calls=row.calls,
            value=row.value,
            reference=row.reference,
            reference_spread=row.reference_spread,
            change=row.change,
            statistic=row.statistic,
            statistic_name=row.statistic_name,
            threshold=row.threshold,
            p_value=row.p_value,
            adjusted_p_value=row.adjusted_p_value,
            reference_days=row.reference_days,
            details=row.details,
        )
        for row in rows
    ]


def not_yet_reported(engine: Engine, findings: Sequence[Finding]) -> list[Finding]:
    """The findings worth an alert: those not reported already.

    Not stored for this night by an earlier run (a rerun alerts only on what it adds), and no
    pinning problem or pinned-model drift stored for the night before (judged against a fixed
    reference, they are standing problems, alerted on the night they appear; drifted trace
    metrics are judged against the days before, so they are news every night they hold). Call it
    before ``save_findings`` replaces the night's rows.

    Args:
        engine: The store.
        findings: The night's findings (all of one day).

    Returns:
        The new ones, in their order.

    Example:
        ```python
        alert = alert_for(day, not_yet_reported(engine, findings))  # before saving: a rerun alerts again
        save_findings(engine, day, findings)
        ```
    """
    if not findings:
        return []
    day = findings[0].day
    tonight = {f.identity for f in stored_findings(engine, day)}
    standing = {f.identity for f in stored_findings(engine, day - timedelta(days=1)) if f.kind in STANDING_KINDS}
    known = tonight | standing
    return [f for f in findings if f.identity not in known]


# -- what leaves the store: alert, events, tables ------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """A Slack alert: a one-line title, a line per finding, and how loud.

    Example:
        >>> Alert("2025-03-19: 1 new pinning problem", "…", "info").severity
        'info'
    """

    title: str
    details: str
    severity: Literal["info", "warning"]


def alert_for(day: date, findings: Sequence[Finding]) -> Alert | None:
    """The Slack alert of the night's new findings.

    A warning when a prompt version drifted (trace or pinned-model drift), else information;
    the first ``ALERT_LINES`` findings are listed, the rest counted.

    Args:
        day: The night's day.
        findings: The new findings (``not_yet_reported``), in the order to list them.

    Returns:
        The alert, or None when there is nothing to say.

    Example:
        ```python
        if (alert := alert_for(day, not_yet_reported(engine, findings))) is not None:
            print(f"[{alert.severity}] {alert.title}\n{alert.details}")
        ```
    """
    if not findings:
        return None
    drifted = [f for f in findings if f.kind == "trace"]
    pinned = [f for f in findings if f.kind == "pinned"]
    pinning = [f for f in findings if f.kind == "pinning"]
    parts = []
    for found, what in ((drifted, "drifted metric"), (pinned, "pinned-model drift finding")):
        if found:
            prompts = sorted({f"{f.group.prompt_name}@{f.group.prompt_version}" for f in found if f.group.prompt_name})
            named = f" ({', '.join(prompts)})" if prompts else ""
            parts.append(f"{len(found)} {what}{'s' if len(found) != 1 else ''}{named}")
    if pinning:
        parts.append(f"{len(pinning)} new pinning problem{'s' if len(pinning) != 1 else ''}")
    lines = [f"{f.group.label}: {f.summary}" for f in findings[:ALERT_LINES]]
    if len(findings) > ALERT_LINES:
        lines.append(f"… and {len(findings) - ALERT_LINES} more in the flow run's artifact (or `llmops drift --date {day}`)")
    return Alert(f"{day}: {' and '.join(parts)}", "\n".join(lines), "warning" if drifted or pinned else "info")


@dataclass(frozen=True)
class DriftEvent:
    """What ``llmops.drift.detected`` says about one prompt version in one environment.

    Attributes:
        prompt_name: The prompt; ``version`` its drifted version.
        environment: Where it drifted.
        label: The label the version holds there (``canary``, ``production``), if any.
        metric: The strongest finding's metric; ``summary`` its words.
        findings: Every finding of the version: metric, feature, model and summary.

    Example:
        ```python
        for event in drift_events(engine, findings):
            emit_event(event="llmops.drift.detected", resource=resource_of(event), payload=event.payload)
        ```
    """

    prompt_name: str
    version: str
    environment: str
    label: str | None
    metric: str
    summary: str
    findings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def payload(self) -> dict[str, Any]:
        """The event's payload (``label`` only when the version holds one)."""
        payload: dict[str, Any] = {
            "metric": self.metric,
            "summary": self.summary,
            "version": self.version,
            "environment": self.environment,
            "findings": self.findings,
        }
        if self.label is not None:
            payload["label"] = self.label
        return payload


def _label_of(registry: Registry, name: str, environment: str, version: str) -> str | None:
    """The label ``version`` holds in ``environment``, if any."""
    labels = registry.labels(name, environment)
    return next((label for label, slot in labels.slots.items() if slot.version == version), None)


def drift_events(engine: Engine, findings: Sequence[Finding]) -> list[DriftEvent]:
    """One event per prompt version and environment with drifted metrics or pinned-model drift.

    Pinning problems are not drift of the prompt and roll nothing back; the strongest finding
    (smallest adjusted p-value) names the event's metric.

    Args:
        engine: The store (its registry says which label each version holds).
        findings: The night's new findings.

    Returns:
        The events, by prompt, version and environment.

    Example:
        ```python
        canaries = [event for event in drift_events(engine, new) if event.label == "canary"]
        ```
    """
    by_version: dict[tuple[str, str, str], list[Finding]] = defaultdict(list)
    for finding in findings:
        if finding.kind in DRIFT_KINDS and finding.group.prompt_name:
            by_version[(finding.group.prompt_name, finding.group.prompt_version, finding.group.environment)].append(finding)
    registry = Registry(engine)
    events = []
    for (name, version, environment), found in sorted(by_version.items()):
        strongest = min(found, key=lambda f: f.adjusted_p_value if f.adjusted_p_value is not None else 1.0)
        events.append(
            DriftEvent(
                prompt_name=name,
                version=version,
                environment=environment,
                label=_label_of(registry, name, environment, version),
                metric=strongest.metric,
                summary=strongest.summary,
                findings=[
                    {"metric": f.metric, "feature": f.group.feature, "model": f.group.model, "summary": f.summary} for f in found
                ],
            )
        )
    return events


def finding_rows(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    """The findings as table rows (Prefect artifact, ``llmops drift``).

    Args:
        findings: Findings in the order to list them.

    Returns:
        One dict per finding: kind, group, metric, summary, statistic vs threshold, adjusted p
        and example trace ids, all as text.

    Example:
        ```python
        create_table_artifact(key="drift-detection", table=finding_rows(findings))
        ```
    """

    def number(value: float | None) -> str:
        return "" if value is None else f"{value:.3g}"

    return [
        {
            "kind": f.kind,
            "group": f.group.label,
            "metric": f.metric,
            "summary": f.summary,
            "statistic": "" if f.statistic is None else f"{number(f.statistic)} vs {number(f.threshold)} ({f.statistic_name})",
            "adjusted_p": number(f.adjusted_p_value),
            "examples": ", ".join((f.details or {}).get("examples", [])),
        }
        for f in findings
    ]
