"""The daily digest as plain data: what ``compute_digest`` returns and the renderers read.

Kept apart from the computation so that rendering, the command line's ``--json`` and tests
depend only on the shape of a digest, not on how the rollups are read. Every value is a
number, a date or a string; ``as_dict`` gives the JSON form.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from llmops.report.caching import CachingEstimate


@dataclass(frozen=True)
class Metric:
    """A day's value with the previous day's and the 7-day average, and how it changed against both.

    Sums and averages change as a ratio (``+0.12`` is 12 % more); rates change in points
    (``points=True``: ``+0.013`` is 1.3 percentage points more).

    Attributes:
        value: The day's value, or None when the day has no data for it.
        previous: The previous day's value.
        week: The average of the 7 days before (or the week's pooled rate or quantile).
        points: Whether changes are differences (rates) rather than ratios.

    Example:
        >>> Metric(12.0, 10.0, 8.0).vs_week
        0.5
    """

    value: float | None
    previous: float | None
    week: float | None
    points: bool = False

    def _change(self, base: float | None) -> float | None:
        if self.value is None or base is None:
            return None
        if self.points:
            return self.value - base
        return None if base == 0 else self.value / base - 1

    @property
    def vs_previous(self) -> float | None:
        """The change against the previous day (None when either side is missing or the base is 0)."""
        return self._change(self.previous)

    @property
    def vs_week(self) -> float | None:
        """The change against the 7 days before (None when either side is missing or the base is 0)."""
        return self._change(self.week)

    def as_dict(self) -> dict[str, Any]:
        """The metric with both changes, for JSON."""
        return {
            "value": self.value,
            "previous_day": self.previous,
            "week_average": self.week,
            "change_vs_previous_day": self.vs_previous,
            "change_vs_week": self.vs_week,
            "change_in": "points" if self.points else "ratio",
        }


@dataclass(frozen=True)
class FeatureLine:
    """One feature's day: its cost and share of the day's cost, and how cost, latency and errors moved.

    Attributes:
        feature: The feature's name (``(none)`` for calls without one, ``other (n features)`` for the rest).
        requests: Calls of the day.
        cost_usd: The day's priced cost.
        share: ``cost_usd`` as a share of the day's total cost.
        cost: The cost against the previous day and the 7-day average.
        p95_latency_ms: The day's p95 latency against the previous day and the week's.
        error_rate: The day's error rate, its changes in points.
        unpriced: Calls of the day without a known price (not in ``cost_usd``).

    Example:
        >>> cost, p95, errors = Metric(3.0, 2.5, 2.0), Metric(900.0, 850.0, 800.0), Metric(0.01, 0.0, 0.0, points=True)
        >>> FeatureLine("chat", 120, 3.0, 0.4, cost, p95, errors, unpriced=0).as_dict()["cost"]["change_vs_week"]
        0.5
    """

    feature: str
    requests: int
    cost_usd: float
    share: float
    cost: Metric
    p95_latency_ms: Metric
    error_rate: Metric
    unpriced: int

    def as_dict(self) -> dict[str, Any]:
        """The line for JSON."""
        return {
            "feature": self.feature,
            "requests": self.requests,
            "cost_usd": self.cost_usd,
            "share": self.share,
            "cost": self.cost.as_dict(),
            "p95_latency_ms": self.p95_latency_ms.as_dict(),
            "error_rate": self.error_rate.as_dict(),
            "unpriced_requests": self.unpriced,
        }


@dataclass(frozen=True)
class Finding:
    """Something that moved beyond its threshold against the 7-day average.

    Attributes:
        feature: The feature it happened in.
        metric: ``p95_latency_ms`` or ``error_rate``.
        value: The day's value.
        baseline: The 7-day value it is compared with.
        change: The relative change (latency) or the change in points (error rate).

    Example:
        >>> Finding("chat", "p95_latency_ms", 1500.0, 1000.0, 0.5).change
        0.5
    """

    feature: str
    metric: str
    value: float
    baseline: float
    change: float


@dataclass(frozen=True)
class ModelCost:
    """One model's share of the day's cost.

    Attributes:
        model: The model the calls asked for.
        requests: Its calls of the day.
        cost_usd: Their priced cost.
        share: ``cost_usd`` as a share of the day's total cost.

    Example:
        >>> ModelCost("claude-3-5-haiku", 900, 1.5, 0.25).share
        0.25
    """

    model: str
    requests: int
    cost_usd: float
    share: float


@dataclass(frozen=True)
class Budget:
    """Month-to-date spend, and where the month ends at the last week's daily rate.

    Attributes:
        month_to_date_usd: Cost from the 1st up to and including the day.
        days_elapsed: The day of the month.
        days_in_month: Days in the month.
        daily_run_rate_usd: The 7-day average cost (the month-to-date average without a week of data).
        projected_usd: Month to date plus the run rate for the days left.
        budget_usd: ``LLMOPS_MONTHLY_BUDGET_USD``, or None when no budget is set.

    Example:
        >>> Budget(20.0, 10, 30, 2.0, 60.0, 100.0).projected_share
        0.6
    """

    month_to_date_usd: float
    days_elapsed: int
    days_in_month: int
    daily_run_rate_usd: float
    projected_usd: float
    budget_usd: float | None

    @property
    def used_share(self) -> float | None:
        """The share of the budget spent so far (None without a budget)."""
        return self.month_to_date_usd / self.budget_usd if self.budget_usd else None

    @property
    def projected_share(self) -> float | None:
        """The share of the budget the month is projected to spend (None without a budget)."""
        return self.projected_usd / self.budget_usd if self.budget_usd else None


@dataclass(frozen=True)
class VersionQuality:
    """Online quality of one prompt version from its traces: automated eval score and user feedback.

    Attributes:
        prompt_name: The prompt.
        prompt_version: Its version.
        requests: Calls of the day on that version.
        eval_score: The mean automated eval score, against the previous day and the week.
        feedback: The mean user feedback (-1 to 1), against the previous day and the week.
        labels: The registry labels the version holds now, e.g. ``production``, ``canary 10%``.

    Example:
        >>> VersionQuality("support-chat", "2.3.1", 40, Metric(0.8, 0.8, 0.8), Metric(None, None, None)).labels
        ()
    """

    prompt_name: str
    prompt_version: str
    requests: int
    eval_score: Metric
    feedback: Metric
    labels: tuple[str, ...] = ()


@dataclass
class Digest:
    """Everything one daily message reports, as plain data (``as_dict`` for ``--json``).

    The sections read from other features' tables (``label_changes``, ``eval_verdicts``,
    ``drift``) are None when the store has no such table, and empty when it has nothing for
    the day.

    Attributes:
        day: The local calendar day reported.
        timezone: The zone the day is cut in (the store's rollup timezone).
        environment: The environment reported, or None for all.
        totals: The day's totals by name (``cost_usd``, ``requests``, ``p95_latency_ms``, …).
        features: The most expensive features, the rest folded into one ``other`` line.
        growing: Expensive features whose cost grew past the threshold against the week.
        findings: Latency and error-rate moves past their thresholds, largest first.
        unpriced_requests: Calls of the day without a known price.
        unpriced_models: The models of those calls.
        budget: Month-to-date spend and its projection.
        caching: What a response cache would have saved on the day.
        quality: Per prompt version quality, busiest first.
        chart_days: The days of the cost chart, oldest first.
        chart_series: Cost per day for each charted feature (and ``other``).
        label_changes: The day's registry moves (promotions, rollbacks, traffic, clears).
        eval_verdicts: The day's evaluation runs, each with its verdict against its baseline run.
        drift: The day's stored drift findings (trace, pinned model, pinning), the first few.
        drift_total: How many drift findings the day has in all.
        warnings: Notes for the reader, e.g. a store cut in another timezone.
        models: Cost per model of the day, most expensive first.
        owners: Who owns each feature (``LLMOPS_FEATURE_OWNERS``), shown beside its incidents.
        ui_url: The Prefect UI (``PREFECT_UI_URL``) the message links to, or None.
        alerts: The day's alerts (kind, severity, title, the flow run's link); None without an ``alerts`` table.
        store: The store the digest was read from, password masked (named in the footer), or None.

    Example:
        ```python
        from llmops.report.digest import compute_digest

        digest = compute_digest(engine, date(2026, 11, 26))
        if digest.has_traffic:
            print(digest.totals["cost_usd"].value, digest.as_dict()["budget"]["projected_usd"])
        ```
    """

    day: date
    timezone: str
    environment: str | None
    totals: dict[str, Metric]
    features: list[FeatureLine]
    growing: list[FeatureLine]
    findings: list[Finding]
    unpriced_requests: int
    unpriced_models: list[str]
    budget: Budget
    caching: CachingEstimate
    quality: list[VersionQuality]
    chart_days: list[date]
    chart_series: dict[str, list[float]]
    label_changes: list[dict[str, Any]] | None = None
    eval_verdicts: list[dict[str, Any]] | None = None
    drift: list[dict[str, Any]] | None = None
    drift_total: int = 0
    warnings: list[str] = field(default_factory=list)
    models: list[ModelCost] = field(default_factory=list)
    owners: dict[str, str] = field(default_factory=dict)
    ui_url: str | None = None
    alerts: list[dict[str, Any]] | None = None
    store: str | None = None

    @property
    def has_traffic(self) -> bool:
        """Whether the day had any LLM calls."""
        return bool(self.totals["requests"].value)

    def as_dict(self) -> dict[str, Any]:
        """The digest as JSON-ready data (dates as ISO strings)."""
        return {
            "day": self.day.isoformat(),
            "timezone": self.timezone,
            "environment": self.environment or "all",
            "totals": {name: metric.as_dict() for name, metric in self.totals.items()},
            "features": [line.as_dict() for line in self.features],
            "growing_features": [line.feature for line in self.growing],
            "findings": [asdict(finding) for finding in self.findings],
            "unpriced_requests": self.unpriced_requests,
            "unpriced_models": self.unpriced_models,
            "budget": {
                **asdict(self.budget),
                "used_share": self.budget.used_share,
                "projected_share": self.budget.projected_share,
            },
            "caching": asdict(self.caching),
            "quality": [
                {
                    "prompt_name": item.prompt_name,
                    "prompt_version": item.prompt_version,
                    "labels": list(item.labels),
                    "requests": item.requests,
                    "eval_score": item.eval_score.as_dict(),
                    "feedback": item.feedback.as_dict(),
                }
                for item in self.quality
            ],
            "chart": {"days": [day.isoformat() for day in self.chart_days], "cost_usd": self.chart_series},
            "label_changes": self.label_changes,
            "eval_verdicts": self.eval_verdicts,
            "drift": self.drift,
            "drift_total": self.drift_total,
            "warnings": self.warnings,
            "models": [asdict(model) for model in self.models],
            "owners": self.owners,
            "ui_url": self.ui_url,
            "alerts": self.alerts,
            "store": self.store,
        }
