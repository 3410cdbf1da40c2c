"""The numbers of the daily digest: what a day cost, how it behaved, and what changed.

Everything comes from the daily rollups (a few hundred rows for a month, whatever the
traffic), except the caching estimate (``llmops.report.caching``, one day of traces grouped
in SQL) and the sections other features record — registry moves, the day's evaluation runs
with their verdicts, drift findings and labels (``llmops.report.activity``), left out when the
store lacks their tables.

Changes are given against the previous day and against the 7 days before: sums as a daily
average over the days with data, rates pooled over the week, latency quantiles from the
week's merged t-digest. The result is plain data (``llmops.report.digest_data``), re-exported
here with ``compute_digest``.
"""

from __future__ import annotations

import calendar
import json
from collections import defaultdict
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select

from llmops import settings
from llmops.days import day_bounds, default_day
from llmops.money import pico_to_usd
from llmops.release.registry import PRODUCTION
from llmops.report.activity import day_alerts, drift_findings, eval_verdicts, label_changes, version_labels
from llmops.report.caching import CACHING_METHOD, CachingEstimate, caching_estimate
from llmops.report.digest_data import Budget, Digest, FeatureLine, Finding, Metric, ModelCost, VersionQuality
from llmops.store.models import StoreSetting
from llmops.store.rollups import RollupTotals
from llmops.store.tables import ROLLUPS
from llmops.store.writer import ROLLUP_TIMEZONE_KEY

__all__ = [
    "CACHING_METHOD",
    "DEFAULT_TOP_FEATURES",
    "Budget",
    "CachingEstimate",
    "Digest",
    "FeatureLine",
    "Finding",
    "Metric",
    "VersionQuality",
    "compute_digest",
    "feature_owners",
    "monthly_budget",
]

DEFAULT_TOP_FEATURES = 6
WEEK_DAYS = 7
CHART_DAYS = 30
CHART_SERIES = 6
EXPENSIVE_SHARE = 0.05
"""A feature with at least this share of the day's cost is "expensive" enough to watch its growth."""
GROWTH_THRESHOLD = 0.50
"""Above the weekday/weekend swing (weekends carry ~40 % of a weekday's traffic)."""
LATENCY_THRESHOLD = 0.20
ERROR_RATE_POINTS = 0.02
MIN_REQUESTS = 20
"""Fewer calls than this in a day make a feature's latency or error rate too noisy to flag."""
MAX_GROWING = 3
MAX_DRIFT_ROWS = 500
"""The most drift findings of a day read (they are grouped into incidents; the thread lists them)."""


def _per_day(value: float | int | None, days: int) -> float | None:
    return None if value is None or not days else value / days


def _metrics(today: RollupTotals, previous: RollupTotals, week: RollupTotals, week_days: int) -> dict[str, Metric]:
    def additive(name: str) -> Metric:
        return Metric(
            getattr(today, name), getattr(previous, name) if previous.requests else None, _per_day(getattr(week, name), week_days)
        )

    def ratio(name: str, points: bool = False) -> Metric:
        return Metric(getattr(today, name), getattr(previous, name), getattr(week, name), points)

    def quantile(q: float) -> Metric:
        return Metric(today.quantile(q), previous.quantile(q), week.quantile(q))

    return {
        "cost_usd": additive("cost_usd"),
        "requests": additive("requests"),
        "avg_cost_per_request": ratio("avg_cost"),
        "input_tokens": additive("input_tokens"),
        "output_tokens": additive("output_tokens"),
        "cache_read_share": ratio("cache_read_share", points=True),
        "error_rate": ratio("error_rate", points=True),
        "p50_latency_ms": quantile(0.50),
        "p95_latency_ms": quantile(0.95),
    }


def monthly_budget() -> float | None:
    """The monthly budget from ``LLMOPS_MONTHLY_BUDGET_USD``, which the digest's projection is held against.

    Returns:
        The budget in dollars, or None when the variable is unset.

    Raises:
        ValueError: When it is not a number, or not positive.

    Example:
        >>> import os
        >>> os.environ["LLMOPS_MONTHLY_BUDGET_USD"] = "250"
        >>> monthly_budget()
        250.0
        >>> del os.environ["LLMOPS_MONTHLY_BUDGET_USD"]
    """
    raw = settings.env(settings.LLMOPS_MONTHLY_BUDGET_USD)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{settings.LLMOPS_MONTHLY_BUDGET_USD}={raw!r} is not a number of dollars") from None
    if value <= 0:
        raise ValueError(f"{settings.LLMOPS_MONTHLY_BUDGET_USD} must be positive, got {raw}")
    return value


def feature_owners() -> dict[str, str]:
    """Who owns each feature, from ``LLMOPS_FEATURE_OWNERS``: ``feature=owner,…`` or a JSON object.

    Returns:
        Feature → owner as written (a Slack id such as ``U024BE7LH`` is a mention when rendered;
        ``@alice`` is plain text); empty when the variable is unset.

    Raises:
        ValueError: When the value is neither form.

    Example:
        >>> import os
        >>> os.environ["LLMOPS_FEATURE_OWNERS"] = "chat_response=U024BE7LH, code_review = @bob"
        >>> feature_owners()
        {'chat_response': 'U024BE7LH', 'code_review': '@bob'}
        >>> os.environ["LLMOPS_FEATURE_OWNERS"] = '{"chat_response": "@alice"}'
        >>> feature_owners()
        {'chat_response': '@alice'}
        >>> del os.environ["LLMOPS_FEATURE_OWNERS"]
    """
    raw = (settings.env(settings.LLMOPS_FEATURE_OWNERS) or "").strip()
    if not raw:
        return {}
    if raw.startswith("{"):
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
            raise ValueError(f"{settings.LLMOPS_FEATURE_OWNERS} must be a JSON object of feature to owner, got {raw[:80]!r}")
        return {str(k).strip(): v.strip() for k, v in parsed.items() if v.strip()}
    owners = {}
    for part in raw.split(","):
        if not part.strip():
            continue
        feature, sep, owner = part.partition("=")
        if not sep or not feature.strip() or not owner.strip():
            raise ValueError(f"{settings.LLMOPS_FEATURE_OWNERS} expects feature=owner pairs separated by commas, got {part!r}")
        owners[feature.strip()] = owner.strip()
    return owners


def _models(by_model: dict[str, RollupTotals], total_cost: float) -> list[ModelCost]:
    ranked = sorted(by_model.items(), key=lambda item: -item[1].cost_picodollars)
    return [
        ModelCost(model or "(none)", totals.requests, totals.cost_usd, totals.cost_usd / total_cost if total_cost else 0.0)
        for model, totals in ranked
    ]


def _rollup_timezone(connection: Connection) -> str | None:
    return connection.execute(select(StoreSetting.value).where(StoreSetting.key == ROLLUP_TIMEZONE_KEY)).scalar()


def _feature_lines(
    today: dict[str, RollupTotals],
    previous: dict[str, RollupTotals],
    week: dict[str, RollupTotals],
    week_days: int,
    total_cost: float,
) -> list[FeatureLine]:
    lines = []
    for feature, totals in sorted(today.items(), key=lambda item: -item[1].cost_picodollars):
        metrics = _metrics(totals, previous.get(feature, RollupTotals()), week.get(feature, RollupTotals()), week_days)
        lines.append(
            FeatureLine(
                feature=feature,
                requests=totals.requests,
                cost_usd=totals.cost_usd,
                share=totals.cost_usd / total_cost if total_cost else 0.0,
                cost=metrics["cost_usd"],
                p95_latency_ms=metrics["p95_latency_ms"],
                error_rate=metrics["error_rate"],
                unpriced=totals.unpriced,
            )
        )
    return lines


def _top_with_other(lines: list[FeatureLine], top: int) -> list[FeatureLine]:
    """The ``top`` most expensive features, the rest folded into one "other" line (costs only)."""
    if len(lines) <= top:
        return lines
    rest = lines[top:]
    cost = sum(line.cost_usd for line in rest)
    other = FeatureLine(
        feature=f"other ({len(rest)} features)",
        requests=sum(line.requests for line in rest),
        cost_usd=cost,
        share=sum(line.share for line in rest),
        cost=Metric(cost, None, None),
        p95_latency_ms=Metric(None, None, None),
        error_rate=Metric(None, None, None, points=True),
        unpriced=sum(line.unpriced for line in rest),
    )
    return [*lines[:top], other]


def _finding(feature: str, metric_name: str, metric: Metric, threshold: float) -> Finding | None:
    """A finding when ``metric`` moved at least ``threshold`` against the week (a change implies both values)."""
    change = metric.vs_week
    if change is None or change < threshold or metric.value is None or metric.week is None:
        return None
    return Finding(feature, metric_name, metric.value, metric.week, change)


def _findings(lines: list[FeatureLine]) -> list[Finding]:
    found = []
    for line in lines:
        if line.requests < MIN_REQUESTS:
            continue
        for finding in (
            _finding(line.feature, "p95_latency_ms", line.p95_latency_ms, LATENCY_THRESHOLD),
            _finding(line.feature, "error_rate", line.error_rate, ERROR_RATE_POINTS),
        ):
            if finding is not None:
                found.append(finding)
    return sorted(found, key=lambda finding: -finding.change)


def _growing(lines: list[FeatureLine]) -> list[FeatureLine]:
    """Expensive features whose cost grew past ``GROWTH_THRESHOLD`` against the week, fastest first."""
    growth = [(line, line.cost.vs_week) for line in lines if line.share >= EXPENSIVE_SHARE]
    growing = [(line, change) for line, change in growth if change is not None and change >= GROWTH_THRESHOLD]
    return [line for line, _ in sorted(growing, key=lambda pair: -pair[1])][:MAX_GROWING]


def _chart(by_day_feature: dict[tuple[date, str], RollupTotals], days: list[date]) -> dict[str, list[float]]:
    """Daily cost per feature over the chart window: the most expensive features, the rest as "other"."""
    cost_by_feature: dict[str, int] = defaultdict(int)
    for (day, feature), totals in by_day_feature.items():
        if day >= days[0]:
            cost_by_feature[feature] += totals.cost_picodollars
    ranked = sorted(cost_by_feature, key=lambda feature: -cost_by_feature[feature])
    shown, rest = ranked[:CHART_SERIES], ranked[CHART_SERIES:]
    series = {feature: [by_day_feature.get((day, feature), RollupTotals()).cost_usd for day in days] for feature in shown}
    if rest:
        series["other"] = [sum(by_day_feature.get((day, f), RollupTotals()).cost_usd for f in rest) for day in days]
    return series


def _budget(
    by_day: dict[date, RollupTotals], day: date, week_total: RollupTotals, week_days: int, budget_usd: float | None
) -> Budget:
    """Month to date, and the month's end at the week's daily rate (the month's own rate without a week of data)."""
    month_pico = sum(totals.cost_picodollars for d, totals in by_day.items() if day.replace(day=1) <= d <= day)
    month_to_date = float(pico_to_usd(month_pico))
    days_in_month = calendar.monthrange(day.year, day.month)[1]
    run_rate = week_total.cost_usd / week_days if week_days else month_to_date / day.day
    return Budget(
        month_to_date_usd=month_to_date,
        days_elapsed=day.day,
        days_in_month=days_in_month,
        daily_run_rate_usd=run_rate,
        projected_usd=month_to_date + run_rate * (days_in_month - day.day),
        budget_usd=budget_usd,
    )


def _version_quality(
    key: tuple[str, str],
    today: RollupTotals,
    previous: RollupTotals,
    week: RollupTotals,
    labels: dict[tuple[str, str], tuple[str, ...]],
) -> VersionQuality:
    return VersionQuality(
        prompt_name=key[0],
        prompt_version=key[1],
        requests=today.requests,
        eval_score=Metric(today.eval_score, previous.eval_score, week.eval_score),
        feedback=Metric(today.feedback, previous.feedback, week.feedback),
        labels=labels.get(key, ()),
    )


def compute_digest(
    engine: Engine,
    day: date | None = None,
    *,
    environment: str | None = None,
    top_features: int = DEFAULT_TOP_FEATURES,
    budget_usd: float | None = None,
) -> Digest:
    """Compute one day's digest: totals, features, findings, budget, quality, chart and what other features recorded.

    The day is cut in the timezone the store's rollups were cut in; when that differs from
    ``LLMOPS_TIMEZONE`` the digest says so in its warnings.

    Args:
        engine: The store.
        day: The local calendar day; default yesterday in ``LLMOPS_TIMEZONE``.
        environment: Only this environment, or None for all.
        top_features: Features listed before the rest is folded into "other".
        budget_usd: The monthly budget; default ``LLMOPS_MONTHLY_BUDGET_USD`` (None: no budget).

    Returns:
        The digest as plain data.

    Raises:
        ValueError: When ``LLMOPS_MONTHLY_BUDGET_USD`` is needed and is not a positive number, or
            ``LLMOPS_FEATURE_OWNERS`` is malformed.

    Example:
        ```python
        from llmops.report.digest import compute_digest
        from llmops.store.engine import get_engine

        digest = compute_digest(get_engine(), date(2026, 11, 26), environment="production")
        print(digest.totals["cost_usd"].value, [finding.feature for finding in digest.findings])
        ```
    """
    configured = settings.timezone()
    day = day or default_day(configured)
    budget_usd = budget_usd if budget_usd is not None else monthly_budget()
    week_start, month_start = day - timedelta(days=WEEK_DAYS), day.replace(day=1)
    chart_days = [day - timedelta(days=offset) for offset in range(CHART_DAYS - 1, -1, -1)]
    first = min(chart_days[0], week_start, month_start)
    query = select(ROLLUPS).where(ROLLUPS.c.day.between(first, day))
    if environment:
        query = query.where(ROLLUPS.c.environment == environment)

    by_day: dict[date, RollupTotals] = defaultdict(RollupTotals)
    by_day_feature: dict[tuple[date, str], RollupTotals] = defaultdict(RollupTotals)
    week_feature: dict[str, RollupTotals] = defaultdict(RollupTotals)
    week_total, week_days = RollupTotals(), set()
    by_model_today: dict[str, RollupTotals] = defaultdict(RollupTotals)
    versions: dict[str, dict[tuple[str, str], RollupTotals]] = {
        "today": defaultdict(RollupTotals),
        "previous": defaultdict(RollupTotals),
        "week": defaultdict(RollupTotals),
    }
    with engine.connect() as connection:
        stored_zone = _rollup_timezone(connection)
        for row in connection.execute(query):
            sketch = row.day >= week_start
            feature = row.feature or "(none)"
            by_day[row.day].add(row, latency=sketch, ttft=False)
            by_day_feature[(row.day, feature)].add(row, latency=sketch, ttft=False)
            version_key = (row.prompt_name, row.prompt_version)
            if row.day == day:
                by_model_today[row.model].add(row, latency=False, ttft=False)
                if row.prompt_name:
                    versions["today"][version_key].add(row, latency=False, ttft=False)
            elif row.day >= week_start:
                week_total.add(row, ttft=False)
                week_feature[feature].add(row, ttft=False)
                week_days.add(row.day)
                if row.prompt_name:
                    versions["week"][version_key].add(row, latency=False, ttft=False)
                    if row.day == day - timedelta(days=1):
                        versions["previous"][version_key].add(row, latency=False, ttft=False)
        zone = ZoneInfo(stored_zone) if stored_zone else configured
        caching = caching_estimate(connection, day, zone, environment)
        start, end = day_bounds(day, zone)
        changes = label_changes(connection, start, end)
        alerts = day_alerts(connection, start, end)
        drift, drift_total = drift_findings(connection, day, environment, MAX_DRIFT_ROWS) or (None, 0)
        labels = version_labels(connection)
    verdicts = eval_verdicts(engine, start, end, environment or PRODUCTION)

    today, previous = by_day.get(day, RollupTotals()), by_day.get(day - timedelta(days=1), RollupTotals())
    n_week = len(week_days)
    today_features = {f: t for (d, f), t in by_day_feature.items() if d == day}
    previous_features = {f: t for (d, f), t in by_day_feature.items() if d == day - timedelta(days=1)}
    lines = _feature_lines(today_features, previous_features, week_feature, n_week, today.cost_usd)
    quality = [
        _version_quality(
            key, totals, versions["previous"].get(key, RollupTotals()), versions["week"].get(key, RollupTotals()), labels
        )
        for key, totals in sorted(versions["today"].items(), key=lambda item: -item[1].requests)
    ]
    warnings = []
    if stored_zone and stored_zone != configured.key:
        warnings.append(
            f"The store's days are cut in {stored_zone}, not {configured.key} ({settings.LLMOPS_TIMEZONE}); "
            "this digest uses the store's days. `llmops db rebuild-rollups` recuts them."
        )
    return Digest(
        day=day,
        timezone=zone.key,
        environment=environment,
        totals=_metrics(today, previous, week_total, n_week),
        features=_top_with_other(lines, top_features),
        growing=_growing(lines),
        findings=_findings(lines),
        unpriced_requests=today.unpriced,
        unpriced_models=sorted(model for model, t in by_model_today.items() if t.unpriced),
        budget=_budget(by_day, day, week_total, n_week, budget_usd),
        caching=caching,
        quality=quality,
        chart_days=chart_days,
        chart_series=_chart(by_day_feature, chart_days),
        label_changes=changes,
        eval_verdicts=verdicts,
        drift=drift,
        drift_total=drift_total,
        warnings=warnings,
        models=_models(by_model_today, today.cost_usd),
        owners=feature_owners(),
        alerts=alerts,
        ui_url=(settings.env(settings.PREFECT_UI_URL) or "").rstrip("/") or None,
        store=engine.url.render_as_string(hide_password=True),
    )
