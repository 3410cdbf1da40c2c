"""Trace drift on the store: each group's days from the rollups, the detector, the findings table.

The rollups already hold every group's day (calls, errors, token and cost sums, latency and
time-to-first-token sketches, feedback and eval sums), so a night reads about fifteen rows
per group instead of its traces. The one thing they do not keep is the finish-reason mix:
that is a single grouped query over the window's traces. The statistics themselves live in
``llmops.drift.trace``; this module feeds them, adds the pinning audit (``llmops.drift.pinning``) and
keeps what was found in ``drift_reports``, one night replacing its own earlier findings.

What leaves the store: the alert's text, and one event per affected prompt version
(``DriftEvent``), with the label (canary, production) it holds in the registry so that an
automation can tell a canary to roll back from production to investigate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, case, delete, func, insert, select

from llmops import settings
from llmops.days import day_bounds, default_day
from llmops.drift.pinning import TRACES, PinningFinding, audit_pinning, pinned_models, trace_group_columns
from llmops.drift.trace import DayStats, DriftFinding, TraceDriftConfig, TraceDriftReport, TraceGroup, assess_trace_drift
from llmops.release.registry import Registry
from llmops.store.drift_models import DriftReportRow
from llmops.store.engine import read_only
from llmops.store.models import StoreSetting, TraceRollup
from llmops.store.writer import ROLLUP_TIMEZONE_KEY

ROLLUPS = TraceRollup.__table__
REPORTS = DriftReportRow.__table__
GROUP_FIELDS = TraceGroup._fields
ALERT_LINES = 15
"""Findings listed in an alert; the rest are counted (the artifact and ``llmops drift`` list all)."""

Kind = Literal["trace", "pinning", "pinned"]
DRIFT_KINDS = ("trace", "pinned")
"""Findings that are drift of a prompt version: they alert as warnings and emit events."""
STANDING_KINDS = ("pinning", "pinned")


@dataclass(frozen=True)
class Finding:
    """One row of ``drift_reports``: a drifted metric or a pinning problem of one group and day."""

    kind: Kind
    day: date
    group: TraceGroup
    metric: str
    summary: str
    calls: int
    value: float | None = None
    reference: float | None = None
    reference_spread: float | None = None
    change: float | None = None
    statistic: float | None = None
    statistic_name: str | None = None
    threshold: float | None = None
    p_value: float | None = None
    adjusted_p_value: float | None = None
    reference_days: int | None = None
    details: dict[str, Any] | None = None

    @property
    def identity(self) -> tuple[Kind, TraceGroup, str, str | None]:
        """What makes two findings the same problem: a pinned version checked on two datasets has
        two ``pinned:similarity`` findings, and one must not hide the other."""
        return self.kind, self.group, self.metric, (self.details or {}).get("dataset")

    @classmethod
    def from_trace(cls, finding: DriftFinding) -> Finding:
        return cls(
            kind="trace",
            day=finding.day,
            group=finding.group,
            metric=finding.metric,
            summary=finding.summary,
            calls=finding.calls,
            value=finding.value,
            reference=finding.reference_value,
            reference_spread=finding.reference_spread,
            change=finding.relative_change,
            statistic=finding.statistic,
            statistic_name=finding.statistic_name,
            threshold=finding.threshold,
            p_value=finding.p_value,
            adjusted_p_value=finding.adjusted_p_value,
            reference_days=finding.reference_days,
        )

    @classmethod
    def from_pinning(cls, day: date, finding: PinningFinding) -> Finding:
        """``value`` = calls with the problem, ``reference`` = the calls it is a share of, ``change`` = the share."""
        return cls(
            kind="pinning",
            day=day,
            group=finding.group,
            metric=finding.problem,
            summary=finding.summary,
            calls=finding.out_of,
            value=float(finding.calls),
            reference=float(finding.out_of),
            change=finding.share,
            details={"examples": finding.examples, "pinned_model": finding.pinned_model, "served_by": finding.served_by},
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "day": self.day.isoformat(),
            **self.group._asdict(),
            "metric": self.metric,
            "summary": self.summary,
            "calls": self.calls,
            "value": self.value,
            "reference": self.reference,
            "reference_spread": self.reference_spread,
            "change": self.change,
            "statistic": self.statistic,
            "statistic_name": self.statistic_name,
            "threshold": self.threshold,
            "p_value": self.p_value,
            "adjusted_p_value": self.adjusted_p_value,
            "reference_days": self.reference_days,
            "details": self.details,
        }


@dataclass
class DriftCheck:
    """One night: every trace test (drifted or not), what was skipped, and the pinning problems."""

    day: date
    report: TraceDriftReport
    pinning: list[PinningFinding]

    @property
    def findings(self) -> list[Finding]:
        return findings_of(self.day, self.report, self.pinning)


def findings_of(
    day: date, report: TraceDriftReport, pinning: Sequence[PinningFinding], pinned: Sequence[Finding] = ()
) -> list[Finding]:
    """Drifted metrics (strongest evidence first), pinned-model drift, then pinning problems (most calls first)."""
    drifted = sorted(report.findings, key=lambda f: (f.adjusted_p_value, f.p_value, f.group, f.metric))
    problems = sorted(pinning, key=lambda p: (-p.calls, p.group, p.problem))
    return [Finding.from_trace(f) for f in drifted] + list(pinned) + [Finding.from_pinning(day, p) for p in problems]


# -- reading the night's data ---------------------------------------------------------------------


def store_timezone(connection: Connection) -> ZoneInfo:
    """The zone the rollup days were cut in (``LLMOPS_TIMEZONE`` for a store not written yet)."""
    stored = connection.execute(select(StoreSetting.value).where(StoreSetting.key == ROLLUP_TIMEZONE_KEY)).scalar()
    return ZoneInfo(stored) if stored else settings.timezone()


def night_to_check(engine: Engine, day: date | None = None) -> tuple[date, ZoneInfo]:
    """``day`` (default: yesterday in the store's zone) and that zone."""
    with read_only(engine).connect() as connection:
        zone = store_timezone(connection)
    return day or default_day(zone), zone


def finish_reason_counts(
    connection: Connection, first: date, last: date, zone: ZoneInfo
) -> dict[tuple[date, TraceGroup], dict[str, int]]:
    """Finish reasons per local day and group, ``first``..``last``, in one query over the traces."""
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    starts = [day_bounds(day, zone)[0] for day in days] + [day_bounds(last, zone)[1]]
    day_index = case(*((TRACES.c.timestamp < end, index) for index, end in enumerate(starts[1:])))
    group_columns = (column.label(name) for column, name in zip(trace_group_columns(), GROUP_FIELDS, strict=True))
    per_call = (  # grouped outside: PostgreSQL would not match a CASE with bound parameters in GROUP BY
        select(day_index.label("day_index"), *group_columns, TRACES.c.finish_reason)
        .where(TRACES.c.timestamp >= starts[0], TRACES.c.timestamp < starts[-1], TRACES.c.finish_reason.is_not(None))
        .subquery()
    )
    keys = [per_call.c.day_index, *(per_call.c[name] for name in GROUP_FIELDS), per_call.c.finish_reason]
    counts: dict[tuple[date, TraceGroup], dict[str, int]] = defaultdict(dict)
    for index, *group, reason, count in connection.execute(select(*keys, func.count()).group_by(*keys)):
        counts[(days[index], TraceGroup(*group))][reason] = count
    return counts


def _group(row: Any) -> TraceGroup:
    return TraceGroup(*(getattr(row, name) for name in GROUP_FIELDS))


def load_history(engine: Engine, day: date, reference_days: int) -> dict[TraceGroup, list[DayStats]]:
    """``DayStats`` of ``day`` and the ``reference_days`` before it, for every group with traffic on ``day``."""
    first = day - timedelta(days=reference_days)
    with read_only(engine).connect() as connection:
        zone = store_timezone(connection)
        rows = connection.execute(select(ROLLUPS).where(ROLLUPS.c.day.between(first, day))).all()
        reasons = finish_reason_counts(connection, first, day, zone)
    checked = {_group(row) for row in rows if row.day == day and row.requests}
    history: dict[TraceGroup, list[DayStats]] = defaultdict(list)
    for row in rows:
        group = _group(row)
        if group in checked:
            history[group].append(DayStats.from_rollup(row, reasons.get((row.day, group))))
    return dict(history)


def assess_day(engine: Engine, day: date, config: TraceDriftConfig | None = None) -> TraceDriftReport:
    """Every group's trace drift tests for ``day``, corrected together for the night's many tests."""
    config = config or TraceDriftConfig()
    return assess_trace_drift(load_history(engine, day, config.reference_days), day, config)


def audit_day(engine: Engine, day: date, prompts_dir: Path | str | None = None) -> list[PinningFinding]:
    """The pinning audit of ``day``, cut in the store's zone."""
    with read_only(engine).connect() as connection:
        zone = store_timezone(connection)
    return audit_pinning(engine, day, zone, pinned_models(engine, prompts_dir))


def check_day(
    engine: Engine, day: date | None = None, config: TraceDriftConfig | None = None, prompts_dir: Path | str | None = None
) -> DriftCheck:
    """Trace drift and the pinning audit of ``day`` (default: yesterday), without storing anything."""
    day, _ = night_to_check(engine, day)
    return DriftCheck(day, assess_day(engine, day, config), audit_day(engine, day, prompts_dir))


# -- the findings table -----------------------------------------------------------------------------


def save_findings(engine: Engine, day: date, findings: Iterable[Finding], flow_run_id: str | None = None) -> int:
    """Replace ``day``'s stored findings with ``findings`` (one transaction); returns how many."""
    now = datetime.now(UTC)
    rows = [
        {
            "day": day,
            "kind": finding.kind,
            **finding.group._asdict(),
            "metric": finding.metric,
            "value": finding.value,
            "reference": finding.reference,
            "reference_spread": finding.reference_spread,
            "change": finding.change,
            "statistic": finding.statistic,
            "statistic_name": finding.statistic_name,
            "threshold": finding.threshold,
            "p_value": finding.p_value,
            "adjusted_p_value": finding.adjusted_p_value,
            "calls": finding.calls,
            "reference_days": finding.reference_days,
            "summary": finding.summary,
            "details": finding.details,
            "created_at": now,
            "flow_run_id": flow_run_id,
        }
        for finding in findings
    ]
    with engine.begin() as connection:
        connection.execute(delete(REPORTS).where(REPORTS.c.day == day))
        if rows:
            connection.execute(insert(REPORTS), rows)
    return len(rows)


def stored_findings(engine: Engine, day: date, kind: Kind | None = None) -> list[Finding]:
    """``day``'s findings as stored, in the order they were saved."""
    query = select(REPORTS).where(REPORTS.c.day == day).order_by(REPORTS.c.id)
    if kind is not None:
        query = query.where(REPORTS.c.kind == kind)
    with read_only(engine).connect() as connection:
        rows = connection.execute(query).all()
    return [
        Finding(
            kind=row.kind,
            day=row.day,
            group=_group(row),
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
    """The findings worth an alert: not stored for this night by an earlier run (a rerun alerts
    only on what it adds), and no pinning problem or pinned-model drift stored for the night
    before (judged against a fixed reference, they are standing problems, alerted on the night
    they appear; drifted trace metrics are judged against the days before, so they are news
    every night they hold)."""
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
    title: str
    details: str
    severity: Literal["info", "warning"]


def alert_for(day: date, findings: Sequence[Finding]) -> Alert | None:
    """The Slack alert of the night's new findings, or None when there is nothing to say."""
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
    """What ``llmops.drift.detected`` says about one prompt version in one environment."""

    prompt_name: str
    version: str
    environment: str
    label: str | None
    metric: str
    summary: str
    findings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def payload(self) -> dict[str, Any]:
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
    labels = registry.labels(name, environment)
    return next((label for label, slot in labels.slots.items() if slot.version == version), None)


def drift_events(engine: Engine, findings: Sequence[Finding]) -> list[DriftEvent]:
    """One event per prompt version and environment with drifted metrics or pinned-model drift
    (pinning problems are not drift of the prompt and roll nothing back); the strongest finding
    names the metric."""
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
    """The findings as table rows (Prefect artifact, ``llmops drift``)."""

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
