"""The numbers of the daily digest: what a day cost, how it behaved, and what changed.

Everything comes from the daily rollups (a few hundred rows for a month, whatever the
traffic), except the caching estimate, which groups one day of traces in SQL through the
timestamp index. Registry changes and evaluation verdicts are read from the tables of those
features when they exist (``label_events``, ``eval_runs``, ``prompt_labels``); without
them the sections are left out. The columns each section needs are in ``OPTIONAL_TABLES``.

Changes are given against the previous day and against the 7 days before: sums as a daily
average over the days with data, rates pooled over the week, latency quantiles from the
week's merged t-digest.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from fastdigest import TDigest
from sqlalchemy import BigInteger, Connection, Engine, MetaData, Table, func, inspect, or_, select

from llmops import settings
from llmops.days import day_bounds, default_day
from llmops.evals.store import NOT_A_VERSIONS_OWN_RUN
from llmops.store.models import StoreSetting, Trace, TraceRollup, pico_to_usd
from llmops.store.writer import ROLLUP_TIMEZONE_KEY

ROLLUPS: Table = TraceRollup.__table__  # type: ignore[assignment]
TRACES: Table = Trace.__table__  # type: ignore[assignment]
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
MAX_OPTIONAL_ROWS = 10
LABEL_CHANGE_ACTIONS = ("promote", "rollback", "set_traffic", "clear")
"""Registry audit actions that change what serves traffic (registering a version does not)."""
CACHING_METHOD = (
    "Calls of the day with the same model, system prompt hash, user message length and total input "
    "tokens are counted as repeats that a response cache keyed on (system prompt, input) would have "
    "answered; the store keeps no hash of the input itself, so this is an upper bound."
)
OPTIONAL_TABLES: dict[str, dict[str, tuple[str, ...]]] = {
    "label_events": {
        "time": ("time", "created_at", "occurred_at", "timestamp"),
        "prompt_name": ("name", "prompt_name"),
        "action": ("action",),
        "to_version": ("to_version", "version", "new_version"),
    },
    "eval_runs": {
        "time": ("finished_at", "completed_at", "created_at", "started_at"),
        "prompt_name": ("prompt_name",),
        "prompt_version": ("prompt_version", "version"),
    },
    "prompt_labels": {
        "prompt_name": ("name", "prompt_name"),
        "label": ("label",),
        "version": ("version", "prompt_version"),
    },
    "drift_reports": {
        "day": ("day",),
        "kind": ("kind",),
        "summary": ("summary",),
    },
}
"""Required columns of the other features' tables (first present name wins); a table without
them is treated as absent."""
OPTIONAL_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "label_events": {
        "from_version": ("from_version", "previous_version", "old_version"),
        "environment": ("environment",),
        "label": ("label",),
        "actor": ("actor",),
        "reason": ("reason",),
        "flow_run_id": ("flow_run_id",),
    },
    "eval_runs": {
        "verdict": ("verdict",),
        "status": ("status",),
        "score": ("mean_score", "score", "aggregate_score"),
        "dataset": ("dataset", "dataset_name"),
        "created_by": ("created_by",),
    },
    "prompt_labels": {"environment": ("environment",), "traffic_percent": ("traffic_percent", "traffic")},
    "drift_reports": {
        "environment": ("environment",),
        "feature": ("feature",),
        "prompt_name": ("prompt_name",),
        "prompt_version": ("prompt_version",),
        "model": ("model",),
        "metric": ("metric",),
        "id": ("id",),
    },
}


@dataclass(frozen=True)
class Metric:
    """A day's value with the previous day's and the 7-day average; rates change in points."""

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
        return self._change(self.previous)

    @property
    def vs_week(self) -> float | None:
        return self._change(self.week)

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "previous_day": self.previous,
            "week_average": self.week,
            "change_vs_previous_day": self.vs_previous,
            "change_vs_week": self.vs_week,
            "change_in": "points" if self.points else "ratio",
        }


@dataclass
class _Totals:
    """Sums of rollup rows, with the latency sketch merged only where a quantile is needed."""

    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read: int = 0
    cache_write: int = 0
    cost_pico: int = 0
    unpriced: int = 0
    feedback_sum: float = 0.0
    feedback_count: int = 0
    eval_sum: float = 0.0
    eval_count: int = 0
    latency: TDigest | None = None

    def add(self, row: Any, sketch: bool) -> None:
        self.requests += row.requests
        self.errors += row.errors
        self.input_tokens += row.input_tokens
        self.output_tokens += row.output_tokens
        self.cache_read += row.cache_read_input_tokens
        self.cache_write += row.cache_creation_input_tokens
        self.cost_pico += row.cost_picodollars
        self.unpriced += row.unpriced
        self.feedback_sum += row.feedback_sum
        self.feedback_count += row.feedback_count
        self.eval_sum += row.eval_score_sum
        self.eval_count += row.eval_score_count
        if sketch and row.latency_sketch is not None:
            digest = TDigest.from_bytes(row.latency_sketch)
            self.latency = digest if self.latency is None else self.latency.merge(digest)

    @property
    def cost(self) -> float:
        return float(pico_to_usd(self.cost_pico))

    def quantile(self, q: float) -> float | None:
        return None if self.latency is None else round(self.latency.quantile(q), 1)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def avg_cost(self) -> float | None:
        priced = self.requests - self.unpriced
        return self.cost / priced if priced else None

    @property
    def cache_read_share(self) -> float | None:
        total = self.input_tokens + self.cache_read + self.cache_write
        return self.cache_read / total if total else None

    @property
    def eval_score(self) -> float | None:
        return self.eval_sum / self.eval_count if self.eval_count else None

    @property
    def feedback(self) -> float | None:
        return self.feedback_sum / self.feedback_count if self.feedback_count else None


def _per_day(value: float | int | None, days: int) -> float | None:
    return None if value is None or not days else value / days


def _metrics(today: _Totals, previous: _Totals, week: _Totals, week_days: int) -> dict[str, Metric]:
    def additive(name: str) -> Metric:
        return Metric(
            getattr(today, name), getattr(previous, name) if previous.requests else None, _per_day(getattr(week, name), week_days)
        )

    def ratio(name: str, points: bool = False) -> Metric:
        return Metric(getattr(today, name), getattr(previous, name), getattr(week, name), points)

    def quantile(q: float) -> Metric:
        return Metric(today.quantile(q), previous.quantile(q), week.quantile(q))

    return {
        "cost_usd": additive("cost"),
        "requests": additive("requests"),
        "avg_cost_per_request": ratio("avg_cost"),
        "input_tokens": additive("input_tokens"),
        "output_tokens": additive("output_tokens"),
        "cache_read_share": ratio("cache_read_share", points=True),
        "error_rate": ratio("error_rate", points=True),
        "p50_latency_ms": quantile(0.50),
        "p95_latency_ms": quantile(0.95),
    }


@dataclass(frozen=True)
class FeatureLine:
    """One feature's day: its cost and share, and how cost, latency and errors moved."""

    feature: str
    requests: int
    cost_usd: float
    share: float
    cost: Metric
    p95_latency_ms: Metric
    error_rate: Metric
    unpriced: int

    def as_dict(self) -> dict[str, Any]:
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
    """Something that moved beyond its threshold against the 7-day average."""

    feature: str
    metric: str
    value: float
    baseline: float
    change: float


@dataclass(frozen=True)
class Budget:
    """Month-to-date spend and where the month ends at the last week's daily rate."""

    month_to_date_usd: float
    days_elapsed: int
    days_in_month: int
    daily_run_rate_usd: float
    projected_usd: float
    budget_usd: float | None

    @property
    def used_share(self) -> float | None:
        return self.month_to_date_usd / self.budget_usd if self.budget_usd else None

    @property
    def projected_share(self) -> float | None:
        return self.projected_usd / self.budget_usd if self.budget_usd else None


@dataclass(frozen=True)
class CachingEstimate:
    """Repeated (system prompt, input) calls of the day and what a response cache would have saved."""

    repeated_requests: int
    savings_usd: float
    method: str = CACHING_METHOD


@dataclass(frozen=True)
class VersionQuality:
    """Online quality of one prompt version from its traces: automated eval score and user feedback."""

    prompt_name: str
    prompt_version: str
    requests: int
    eval_score: Metric
    feedback: Metric
    labels: tuple[str, ...] = ()


@dataclass
class Digest:
    """Everything one daily message reports, as plain data (``as_dict`` for ``--json``)."""

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
    """The day's stored drift findings (trace, pinned model, pinning), as the drift-detection flow saved them."""
    drift_total: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def has_traffic(self) -> bool:
        return bool(self.totals["requests"].value)

    def as_dict(self) -> dict[str, Any]:
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
        }


def monthly_budget() -> float | None:
    """``LLMOPS_MONTHLY_BUDGET_USD`` as a number, or None when unset."""
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


def _rollup_timezone(connection: Connection) -> str | None:
    return connection.execute(select(StoreSetting.value).where(StoreSetting.key == ROLLUP_TIMEZONE_KEY)).scalar()


def _caching_estimate(connection: Connection, day: date, zone: ZoneInfo, environment: str | None) -> CachingEstimate:
    start, end = day_bounds(day, zone)
    total_input = TRACES.c.input_tokens + TRACES.c.cache_read_input_tokens + TRACES.c.cache_creation_input_tokens
    query = (
        select(func.count().label("n"), func.sum(TRACES.c.cost_usd, type_=BigInteger).label("pico"))
        .where(
            TRACES.c.timestamp >= start,
            TRACES.c.timestamp < end,
            TRACES.c.status == "ok",
            TRACES.c.system_prompt_hash.is_not(None),
            TRACES.c.user_message_length.is_not(None),
            TRACES.c.cost_usd.is_not(None),
        )
        .group_by(TRACES.c.model, TRACES.c.system_prompt_hash, TRACES.c.user_message_length, total_input)
        .having(func.count() > 1)
    )
    if environment:
        query = query.where(TRACES.c.environment == environment)
    repeated, saved = 0, Decimal(0)
    for n, pico in connection.execute(query):
        repeated += n - 1
        saved += pico_to_usd(int(pico or 0)) * (n - 1) / n
    return CachingEstimate(repeated, float(round(saved, 6)))


def _resolve(columns: set[str], wanted: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Role → the first of its candidate column names that the table has."""
    resolved = {}
    for role, names in wanted.items():
        name = next((name for name in names if name in columns), None)
        if name is not None:
            resolved[role] = name
    return resolved


def _optional_table(connection: Connection, name: str) -> tuple[Table, dict[str, str]] | None:
    """The table and its role → column map, or None when it is absent or lacks a required column."""
    inspector = inspect(connection)
    if not inspector.has_table(name):
        return None
    columns = {column["name"] for column in inspector.get_columns(name)}
    roles = _resolve(columns, OPTIONAL_TABLES[name])
    if len(roles) < len(OPTIONAL_TABLES[name]):
        return None
    roles.update(_resolve(columns, OPTIONAL_COLUMNS[name]))
    return Table(name, MetaData(), autoload_with=connection), roles


def _select_roles(table: Table, roles: dict[str, str]) -> list[Any]:
    return [table.c[column].label(role) for role, column in roles.items()]


def _label_changes(connection: Connection, start: datetime, end: datetime) -> list[dict[str, Any]] | None:
    found = _optional_table(connection, "label_events")
    if found is None:
        return None
    table, roles = found
    when = table.c[roles["time"]]
    naive = (start.replace(tzinfo=None), end.replace(tzinfo=None))  # the store keeps naive UTC
    rows = connection.execute(
        select(*_select_roles(table, roles))
        .where(when >= naive[0], when < naive[1], table.c[roles["action"]].in_(LABEL_CHANGE_ACTIONS))
        .order_by(when)
        .limit(MAX_OPTIONAL_ROWS)
    ).mappings()
    return [{key: _plain(value) for key, value in row.items()} for row in rows]


def _eval_verdicts(connection: Connection, end: datetime) -> list[dict[str, Any]] | None:
    """The latest evaluation run per prompt version finished in the week up to the day's end
    (not pinned-model drift's re-runs of a 40-example subset, which come later each night)."""
    found = _optional_table(connection, "eval_runs")
    if found is None:
        return None
    table, roles = found
    creator_column = roles.pop("created_by", None)
    when = table.c[roles["time"]]
    naive_end = end.replace(tzinfo=None)
    query = select(*_select_roles(table, roles)).where(when < naive_end, when >= naive_end - timedelta(days=WEEK_DAYS))
    if creator_column is not None:
        creator = table.c[creator_column]
        query = query.where(or_(creator.is_(None), creator.not_in(NOT_A_VERSIONS_OWN_RUN)))
    rows = connection.execute(query.order_by(when.desc())).mappings()
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        latest.setdefault((row["prompt_name"], row["prompt_version"]), {k: _plain(v) for k, v in row.items()})
    return list(latest.values())[:MAX_OPTIONAL_ROWS]


def _drift_findings(connection: Connection, day: date, environment: str | None) -> tuple[list[dict[str, Any]], int] | None:
    """The first findings the drift-detection flow stored for ``day`` (drifted metrics and pinned
    models before pinning problems, each in saved order) and how many there are in all."""
    found = _optional_table(connection, "drift_reports")
    if found is None:
        return None
    table, roles = found
    query = select(*_select_roles(table, roles)).where(table.c[roles["day"]] == day)
    if environment and "environment" in roles:
        query = query.where(table.c[roles["environment"]] == environment)
    order = [table.c[roles["kind"]] == "pinning"] + ([table.c[roles["id"]]] if "id" in roles else [])
    rows = connection.execute(query.order_by(*order)).mappings()
    found_rows = [{key: _plain(value) for key, value in row.items() if key != "id"} for row in rows]
    return found_rows[:MAX_OPTIONAL_ROWS], len(found_rows)


def _labels(connection: Connection) -> dict[tuple[str, str], tuple[str, ...]]:
    """Which registry labels each prompt version holds now, e.g. ``production``, ``staging:canary 10%``."""
    found = _optional_table(connection, "prompt_labels")
    if found is None:
        return {}
    table, roles = found
    labels: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in connection.execute(select(*_select_roles(table, roles))).mappings():
        if row["version"] is None:  # a cleared label
            continue
        text = str(row["label"])
        if row.get("environment") and row["environment"] != "production":
            text = f"{row['environment']}:{text}"
        if row.get("traffic_percent") is not None:
            text += f" {row['traffic_percent']:g}%"
        labels[(row["prompt_name"], str(row["version"]))].append(text)
    return {key: tuple(sorted(values)) for key, values in labels.items()}


def _plain(value: Any) -> Any:
    """JSON-friendly values for optional rows (datetimes, decimals, UUIDs)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or UTC).isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    return str(value)


def _feature_lines(
    today: dict[str, _Totals], previous: dict[str, _Totals], week: dict[str, _Totals], week_days: int, total_cost: float
) -> list[FeatureLine]:
    lines = []
    for feature, totals in sorted(today.items(), key=lambda item: -item[1].cost_pico):
        metrics = _metrics(totals, previous.get(feature, _Totals()), week.get(feature, _Totals()), week_days)
        lines.append(
            FeatureLine(
                feature=feature,
                requests=totals.requests,
                cost_usd=totals.cost,
                share=totals.cost / total_cost if total_cost else 0.0,
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
    empty = Metric(None, None, None)
    other = FeatureLine(
        feature=f"other ({len(rest)} features)",
        requests=sum(line.requests for line in rest),
        cost_usd=cost,
        share=sum(line.share for line in rest),
        cost=Metric(cost, None, None),
        p95_latency_ms=empty,
        error_rate=Metric(None, None, None, points=True),
        unpriced=sum(line.unpriced for line in rest),
    )
    return [*lines[:top], other]


def _findings(lines: list[FeatureLine]) -> list[Finding]:
    found = []
    for line in lines:
        if line.requests < MIN_REQUESTS:
            continue
        p95 = line.p95_latency_ms
        if p95.vs_week is not None and p95.vs_week >= LATENCY_THRESHOLD:
            found.append(Finding(line.feature, "p95_latency_ms", p95.value, p95.week, p95.vs_week))  # type: ignore[arg-type]
        errors = line.error_rate
        if errors.vs_week is not None and errors.vs_week >= ERROR_RATE_POINTS:
            found.append(Finding(line.feature, "error_rate", errors.value, errors.week, errors.vs_week))  # type: ignore[arg-type]
    return sorted(found, key=lambda finding: -finding.change)


def _growing(lines: list[FeatureLine]) -> list[FeatureLine]:
    expensive = [line for line in lines if line.share >= EXPENSIVE_SHARE and line.cost.vs_week is not None]
    growing = [line for line in expensive if line.cost.vs_week >= GROWTH_THRESHOLD]  # type: ignore[operator]
    return sorted(growing, key=lambda line: -line.cost.vs_week)[:3]  # type: ignore[operator]


def _chart(by_day_feature: dict[tuple[date, str], _Totals], days: list[date]) -> dict[str, list[float]]:
    """Daily cost per feature over the chart window: the most expensive features, the rest as "other"."""
    cost_by_feature: dict[str, int] = defaultdict(int)
    for (day, feature), totals in by_day_feature.items():
        if day >= days[0]:
            cost_by_feature[feature] += totals.cost_pico
    ranked = sorted(cost_by_feature, key=lambda feature: -cost_by_feature[feature])
    shown, rest = ranked[:CHART_SERIES], ranked[CHART_SERIES:]
    series = {feature: [by_day_feature.get((day, feature), _Totals()).cost for day in days] for feature in shown}
    if rest:
        series["other"] = [sum(by_day_feature.get((day, f), _Totals()).cost for f in rest) for day in days]
    return series


def _version_quality(
    key: tuple[str, str], today: _Totals, previous: _Totals, week: _Totals, labels: dict[tuple[str, str], tuple[str, ...]]
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
    """The digest of ``day`` (default: yesterday in ``LLMOPS_TIMEZONE``), for one environment or all.

    ``budget_usd`` defaults to ``LLMOPS_MONTHLY_BUDGET_USD``.
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

    by_day: dict[date, _Totals] = defaultdict(_Totals)
    by_day_feature: dict[tuple[date, str], _Totals] = defaultdict(_Totals)
    week_feature: dict[str, _Totals] = defaultdict(_Totals)
    week_total, week_days = _Totals(), set()
    by_model_today: dict[str, _Totals] = defaultdict(_Totals)
    versions: dict[str, dict[tuple[str, str], _Totals]] = {
        "today": defaultdict(_Totals),
        "previous": defaultdict(_Totals),
        "week": defaultdict(_Totals),
    }
    with engine.connect() as connection:
        stored_zone = _rollup_timezone(connection)
        for row in connection.execute(query):
            sketch = row.day >= week_start
            feature = row.feature or "(none)"
            by_day[row.day].add(row, sketch)
            by_day_feature[(row.day, feature)].add(row, sketch)
            version_key = (row.prompt_name, row.prompt_version)
            if row.day == day:
                by_model_today[row.model].add(row, False)
                if row.prompt_name:
                    versions["today"][version_key].add(row, False)
            elif row.day >= week_start:
                week_total.add(row, True)
                week_feature[feature].add(row, True)
                week_days.add(row.day)
                if row.prompt_name:
                    versions["week"][version_key].add(row, False)
                    if row.day == day - timedelta(days=1):
                        versions["previous"][version_key].add(row, False)
        zone = ZoneInfo(stored_zone) if stored_zone else configured
        caching = _caching_estimate(connection, day, zone, environment)
        start, end = day_bounds(day, zone)
        label_changes = _label_changes(connection, start, end)
        eval_verdicts = _eval_verdicts(connection, end)
        drift, drift_total = _drift_findings(connection, day, environment) or (None, 0)
        labels = _labels(connection)

    today, previous = by_day.get(day, _Totals()), by_day.get(day - timedelta(days=1), _Totals())
    n_week = len(week_days)
    totals = _metrics(today, previous, week_total, n_week)
    today_features = {f: t for (d, f), t in by_day_feature.items() if d == day}
    previous_features = {f: t for (d, f), t in by_day_feature.items() if d == day - timedelta(days=1)}
    lines = _feature_lines(today_features, previous_features, week_feature, n_week, today.cost)

    month_pico = sum(totals_.cost_pico for d, totals_ in by_day.items() if month_start <= d <= day)
    month_to_date = float(pico_to_usd(month_pico))
    days_in_month = calendar.monthrange(day.year, day.month)[1]
    run_rate = week_total.cost / n_week if n_week else month_to_date / day.day
    budget = Budget(
        month_to_date_usd=month_to_date,
        days_elapsed=day.day,
        days_in_month=days_in_month,
        daily_run_rate_usd=run_rate,
        projected_usd=month_to_date + run_rate * (days_in_month - day.day),
        budget_usd=budget_usd,
    )
    quality = [
        _version_quality(key, totals_, versions["previous"].get(key, _Totals()), versions["week"].get(key, _Totals()), labels)
        for key, totals_ in sorted(versions["today"].items(), key=lambda item: -item[1].requests)
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
        totals=totals,
        features=_top_with_other(lines, top_features),
        growing=_growing(lines),
        findings=_findings(lines),
        unpriced_requests=today.unpriced,
        unpriced_models=sorted(model for model, t in by_model_today.items() if t.unpriced),
        budget=budget,
        caching=caching,
        quality=quality,
        chart_days=chart_days,
        chart_series=_chart(by_day_feature, chart_days),
        label_changes=label_changes,
        eval_verdicts=eval_verdicts,
        drift=drift,
        drift_total=drift_total,
        warnings=warnings,
    )
