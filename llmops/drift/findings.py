"""The finding every drift detector reports in: one row of ``drift_reports``.

Trace drift (a metric of a group's day moved against its reference window), the pinning audit
(calls off their version's pinned model) and pinned-model drift (a serving version's answers moved
against their reference) each find something different, but a night stores, alerts on and emits
events for all of them the same way. ``Finding`` is that common shape, kept apart from the
detectors and from the store so each can use it without importing the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from llmops.drift.history import TraceGroup
from llmops.drift.pinning import PinningFinding
from llmops.drift.trace import DriftFinding

Kind = Literal["trace", "pinning", "pinned"]
"""Which detector found it: trace drift, the pinning audit, or pinned-model drift."""


@dataclass(frozen=True)
class Finding:
    """One row of ``drift_reports``: a drifted metric or a pinning problem of one group and day.

    What the numbers mean depends on ``kind`` (see ``from_trace``, ``from_pinning`` and
    ``llmops.drift.pinned.pinned_findings``); fields a detector has nothing for stay None.

    Attributes:
        kind: Which detector found it.
        day: The checked day.
        group: The group (for pinned-model drift: environment, prompt version and model, no feature).
        metric: What moved (``latency_p95``, ``pinned:similarity``) or the pinning problem.
        summary: The finding in words, as alerts show it.
        calls: The calls (or paired examples) behind it.
        value: The day's value; ``reference`` what was expected, ``reference_spread`` how much it varies.
        change: The change against the reference (relative, or a share).
        statistic: The test statistic, named by ``statistic_name``; ``threshold`` what it needed.
        p_value: The test's p-value; ``adjusted_p_value`` after the night's correction.
        reference_days: The reference days a trace test used.
        details: Anything else worth keeping (example trace ids, the dataset, notes).

    Example:
        >>> from datetime import date
        >>> group = TraceGroup("production", "chat", "support-chat", "2.3.1", "claude-3-5-sonnet-20241022")
        >>> Finding("trace", date(2025, 3, 19), group, "latency_p95", "p95 latency 2,140 ms, +34 % …", 900).identity[2]
        'latency_p95'
    """

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
        """What makes two findings the same problem: kind, group, metric and dataset.

        A pinned version checked on two datasets has two ``pinned:similarity`` findings, and one
        must not hide the other.
        """
        return self.kind, self.group, self.metric, (self.details or {}).get("dataset")

    @classmethod
    def from_trace(cls, finding: DriftFinding) -> Finding:
        """A drifted trace metric as a finding.

        Args:
            finding: A test of ``assess_trace_drift``.

        Returns:
            The finding; ``change`` is the relative change.

        Example:
            ```python
            findings = [Finding.from_trace(f) for f in assess_trace_drift(history, day).findings]
            ```
        """
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
        """A pinning problem of ``day`` as a finding.

        Args:
            day: The audited day.
            finding: A problem of ``audit_pinning``.

        Returns:
            The finding: ``value`` = calls with the problem, ``reference`` = the calls it is a share
            of, ``change`` = the share; ``details`` keeps the example trace ids and the models.

        Example:
            ```python
            findings = [Finding.from_pinning(day, p) for p in audit_pinning(engine, day, zone)]
            ```
        """
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
        """Plain JSON-ready values, the group's fields flattened: a ``drift_reports`` row's columns.

        Returns:
            ``{"kind", "day" (ISO), environment… model, "metric", "summary", …, "details"}``.

        Example:
            >>> from datetime import date
            >>> group = TraceGroup("dev", "", "", "", "m")
            >>> Finding("pinning", date(2025, 3, 19), group, "unpinned_model", "…", 3).as_dict()["day"]
            '2025-03-19'
        """
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
