"""The digest's lead: drift findings grouped into incidents, one per feature and cause.

A slow night on one feature shows up as many findings — p50, p95, per-token latency and time
to first token, on every model the feature calls — which are one incident for the reader.
``group_incidents`` folds the day's trace findings (``drift_reports``, kind ``trace``) and the
digest's own rollup findings into one ``Incident`` per (environment, feature, cause), where the
cause is the family of the metric (latency, errors, tokens, cost, quality, finish reasons).
The headline gives the typical change (the median over its findings) and which metrics and
models moved; every finding stays in ``details`` for the message's thread.

Pinning notes (kind ``pinning``) repeat night after night while a call site stays on an alias;
``llmops.report.activity.drift_findings`` marks those first seen on an earlier day
(``seen_before``) and the digest shows only the new ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import median
from typing import Any

CAUSES: dict[str, str] = {
    "latency_p50": "latency",
    "latency_p95": "latency",
    "latency_p99": "latency",
    "latency_per_output_token": "latency",
    "ttft_p50": "latency",
    "p95_latency_ms": "latency",
    "error_rate": "errors",
    "input_tokens": "tokens",
    "output_tokens": "tokens",
    "cost_per_request": "cost",
    "user_feedback": "quality",
    "eval_score": "quality",
}
"""A drift metric's cause family; ``finish_reason:*`` is ``finish reasons``, anything else its own name."""
SHORT_NAMES: dict[str, str] = {
    "latency_p50": "p50",
    "latency_p95": "p95",
    "latency_p99": "p99",
    "p95_latency_ms": "p95",
    "latency_per_output_token": "per token",
    "ttft_p50": "TTFT",
    "error_rate": "error rate",
    "input_tokens": "input",
    "output_tokens": "output",
    "cost_per_request": "per request",
    "user_feedback": "feedback",
    "eval_score": "eval score",
}
POINT_CAUSES = frozenset({"errors", "finish reasons"})
"""Causes whose changes are differences of shares (shown in percentage points), not ratios."""


def cause_of(metric: str) -> str:
    """The cause family of a drift or digest metric.

    Example:
        >>> cause_of("ttft_p50"), cause_of("finish_reason:max_tokens"), cause_of("new_metric")
        ('latency', 'finish reasons', 'new_metric')
    """
    if metric.startswith("finish_reason:"):
        return "finish reasons"
    return CAUSES.get(metric, metric)


def short_name(metric: str) -> str:
    """How a metric is named inside an incident's headline (``p95``, ``TTFT``, ``max_tokens``)."""
    if metric.startswith("finish_reason:"):
        return metric.split(":", 1)[1]
    return SHORT_NAMES.get(metric, metric)


@dataclass
class Incident:
    """One feature's one cause on the day, with every finding it folds.

    Attributes:
        environment: Where it happened ('' when mixed or unknown).
        feature: The feature ('' for calls without one).
        cause: ``latency``, ``errors``, ``tokens``, ``cost``, ``quality``, ``finish reasons``…
        change: The median change over its findings (relative, or points for rates), None if none had one.
        metrics: The metrics that moved, in first-seen order.
        models: The models they moved on, in first-seen order.
        details: The findings' rows (drift rows as stored; rollup findings as dicts).

    Example:
        >>> incident = Incident("production", "chat", "latency", 0.6, ["latency_p95"], ["m1", "m2"])
        >>> incident.scope
        'both models'
    """

    environment: str
    feature: str
    cause: str
    change: float | None
    metrics: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)

    @property
    def points(self) -> bool:
        """Whether ``change`` is in percentage points."""
        return self.cause in POINT_CAUSES

    @property
    def scope(self) -> str:
        """Which models: ``both models``, ``3 models``, the one model's name, or ''."""
        if len(self.models) == 2:
            return "both models"
        if len(self.models) > 2:
            return f"{len(self.models)} models"
        return self.models[0] if self.models else ""

    def as_dict(self) -> dict[str, Any]:
        """The incident for JSON."""
        return {
            "environment": self.environment,
            "feature": self.feature,
            "cause": self.cause,
            "change": self.change,
            "change_in": "points" if self.points else "ratio",
            "metrics": self.metrics,
            "models": self.models,
            "findings": len(self.details),
        }


def group_incidents(drift: Sequence[dict[str, Any]] | None, findings: Sequence[dict[str, Any]] = ()) -> list[Incident]:
    """Fold the day's trace drift findings and rollup findings into incidents, largest change first.

    Args:
        drift: Stored drift rows (``kind``, ``environment``, ``feature``, ``model``, ``metric``,
            ``change``…); only kind ``trace`` is grouped (pinned and pinning rows are left out).
        findings: The digest's rollup findings as dicts (``feature``, ``metric``, ``change``),
            folded into the drift incident of the same feature and cause, or their own.

    Returns:
        One incident per (environment, feature, cause); a rollup finding takes the environment of
        a drift incident of its feature and cause when there is one.

    Example:
        >>> rows = [
        ...     {"kind": "trace", "environment": "prod", "feature": "chat", "model": model, "metric": metric, "change": change}
        ...     for model in ("m1", "m2") for metric, change in (("latency_p50", 0.58), ("latency_p95", 0.62))
        ... ]
        >>> [(i.feature, i.cause, round(i.change, 2), i.metrics, i.scope) for i in group_incidents(rows)]
        [('chat', 'latency', 0.6, ['latency_p50', 'latency_p95'], 'both models')]
    """
    incidents: dict[tuple[str, str, str], Incident] = {}
    changes: dict[tuple[str, str, str], list[float]] = {}

    def add(key: tuple[str, str, str], row: dict[str, Any], metric: str, model: str | None) -> None:
        incident = incidents.setdefault(key, Incident(key[0], key[1], key[2], None))
        if metric not in incident.metrics:
            incident.metrics.append(metric)
        if model and model not in incident.models:
            incident.models.append(model)
        incident.details.append(row)
        if isinstance(row.get("change"), int | float):
            changes.setdefault(key, []).append(float(row["change"]))

    for row in drift or []:
        if row.get("kind") != "trace":
            continue
        metric = str(row.get("metric") or "")
        add((str(row.get("environment") or ""), str(row.get("feature") or ""), cause_of(metric)), row, metric, row.get("model"))
    for row in findings:
        metric, feature = str(row["metric"]), str(row["feature"])
        cause = cause_of(metric)
        key = next((k for k in incidents if k[1] == feature and k[2] == cause), ("", feature, cause))
        add(key, {**row, "kind": "rollup"}, metric, None)
    for key, incident in incidents.items():
        incident.change = median(changes[key]) if key in changes else None
    return sorted(incidents.values(), key=lambda incident: -abs(incident.change or 0.0))
