"""What the other features recorded for the digest's day: registry moves, evaluation runs, drift, labels.

These sections read the tables of the registry (``label_events``, ``prompt_labels``), the
evaluations (``eval_runs``) and drift detection (``drift_reports``) through their models in
``llmops.store``, with the columns those models declare; the day's eval runs are judged against
their baselines the way ``llmops eval run`` and the release gates judge them. A store that has not been migrated
that far lacks a table: its section is then None (left out of the message), which is not the
same as a day on which nothing happened (an empty list). Rows come back as JSON-ready dicts,
at most ``MAX_ROWS`` of each.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, func, inspect, select

from llmops.evals.store import RunRecord, get_run, is_versions_own_run
from llmops.evals.verdicts import Comparison, MetricComparison, compare_runs
from llmops.release.gates import baseline_run
from llmops.release.registry import LABEL_ACTIONS, PRODUCTION, Registry
from llmops.store.drift_models import DriftReportRow
from llmops.store.eval_models import EvalRun
from llmops.store.models import Base, table_of
from llmops.store.outbox_models import AlertRecord
from llmops.store.registry_models import LabelEventRow, PromptLabel

MAX_ROWS = 10
"""The most rows one section shows."""


def _present(connection: Connection, model: type[Base]) -> bool:
    """Whether the store has ``model``'s table (a store migrated only partly may not)."""
    return inspect(connection).has_table(table_of(model).name)


def plain(value: Any) -> Any:
    """A value of a stored row in a JSON-friendly form.

    Args:
        value: A column value: datetimes, decimals and UUIDs become strings or floats.

    Returns:
        Datetimes as ISO 8601 in UTC (naive ones are taken as UTC), decimals as floats, JSON
        types unchanged, anything else as its string.

    Example:
        >>> plain(datetime(2026, 11, 26, 12)), plain(Decimal("0.5")), plain(date(2026, 11, 26))
        ('2026-11-26T12:00:00+00:00', 0.5, '2026-11-26')
    """
    if isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or UTC).isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    return str(value)


def label_changes(connection: Connection, start: datetime, end: datetime) -> list[dict[str, Any]] | None:
    """The registry moves in ``[start, end)`` that changed what serves traffic, oldest first.

    Args:
        connection: A connection to the store.
        start: The day's start (timezone-aware).
        end: The day's end, excluded.

    Returns:
        Up to ``MAX_ROWS`` label moves (``LABEL_ACTIONS``: not registrations) with ``time``, ``prompt_name``,
        ``action``, ``to_version``, ``from_version``, ``environment``, ``label``, ``actor``,
        ``reason`` and ``flow_run_id``; None when the store has no ``label_events`` table.

    Example:
        ```python
        start, end = day_bounds(date(2026, 11, 26), ZoneInfo("UTC"))
        with engine.connect() as connection:
            for event in label_changes(connection, start, end) or []:
                print(event["action"], event["prompt_name"], event["to_version"])
        ```
    """
    if not _present(connection, LabelEventRow):
        return None
    event = LabelEventRow
    rows = connection.execute(
        select(
            event.time,
            event.name.label("prompt_name"),
            event.action,
            event.to_version,
            event.from_version,
            event.environment,
            event.label,
            event.actor,
            event.reason,
            event.flow_run_id,
        )
        .where(event.time >= start, event.time < end, event.action.in_(LABEL_ACTIONS))
        .order_by(event.time)
        .limit(MAX_ROWS)
    ).mappings()
    return [{key: plain(value) for key, value in row.items()} for row in rows]


def eval_verdicts(engine: Engine, start: datetime, end: datetime, environment: str = PRODUCTION) -> list[dict[str, Any]] | None:
    """The evaluation runs that finished in ``[start, end)``, each with its verdict against its baseline.

    The baseline and the verdict are the ones ``llmops eval run`` and the rollouts' evaluation
    gate give: ``baseline_run`` (production's latest complete run on the same dataset content,
    or a production version's own first run) and the paired comparison of ``compare_runs``.
    Runs that do not judge a version on its own dataset (pinned-model drift's nightly re-runs
    of a subset, compression candidates) are left out, as the release gates leave them out.

    Args:
        engine: The store.
        start: The day's start (timezone-aware).
        end: The day's end, excluded.
        environment: Whose production version is the baseline.

    Returns:
        Up to ``MAX_ROWS`` runs, oldest first, with ``time`` (when it finished), ``run_id``,
        ``prompt_name``, ``prompt_version``, ``status``, ``dataset``, ``flow_run_id``, ``verdict``
        (``regression``, ``no_difference``, ``improvement``, ``inconclusive``; None without a
        baseline run), ``baseline_run``, ``baseline_version``, ``reason``, and the headline
        metric (``headline_metric``) as ``metric``, ``delta`` and ``interval`` (``[low, high]``);
        None when the store has no ``eval_runs`` table.

    Example:
        ```python
        for run in eval_verdicts(engine, start, end) or []:
            print(f"{run['prompt_name']} {run['prompt_version']} on {run['dataset']}: {run['verdict']}")
        ```
    """
    with engine.connect() as connection:
        if not _present(connection, EvalRun):
            return None
        registry = Registry(engine) if _present(connection, PromptLabel) else None
        run_ids = connection.scalars(
            select(EvalRun.id)
            .where(EvalRun.finished_at < end, EvalRun.finished_at >= start, is_versions_own_run())
            .order_by(EvalRun.finished_at, EvalRun.id)
            .limit(MAX_ROWS)
        ).all()
    return [_verdict(engine, get_run(engine, run_id), registry, environment) for run_id in run_ids]


def headline_metric(comparison: Comparison) -> MetricComparison | None:
    """The metric a verdict's one line shows: of those that decided the verdict, the one that moved most.

    Example:
        ```python
        metric = headline_metric(compare_runs(engine, 41, 42))
        print(metric.metric, metric.delta, metric.interval)  # quality -0.12 Interval(low=-0.15, high=-0.09)
        ```
    """
    moved = [metric for metric in comparison.metrics if metric.delta is not None]
    deciding = [metric for metric in moved if metric.verdict == comparison.verdict] or moved
    return max(deciding, key=lambda metric: abs(metric.delta or 0.0), default=None)


def _verdict(engine: Engine, run: RunRecord, registry: Registry | None, environment: str) -> dict[str, Any]:
    baseline = baseline_run(engine, run, registry, environment) if registry is not None else None
    comparison = compare_runs(engine, baseline.id, run.id) if baseline is not None else None
    headline = headline_metric(comparison) if comparison is not None else None
    return {
        "time": plain(run.finished_at),
        "run_id": run.id,
        "prompt_name": run.prompt_name,
        "prompt_version": run.prompt_version,
        "status": run.status,
        "dataset": run.dataset_name,
        "flow_run_id": run.details.get("flow_run_id"),
        "verdict": comparison.verdict if comparison else None,
        "baseline_run": baseline.id if baseline else None,
        "baseline_version": baseline.prompt_version if baseline else None,
        "reason": comparison.reason if comparison else f"no {environment} run on the same dataset content to compare with",
        "metric": headline.metric if headline else None,
        "delta": headline.delta if headline else None,
        "interval": list(headline.interval) if headline and headline.interval else None,
    }


PINNING_MEMORY_DAYS = 30
"""How far back a pinning note counts as already reported."""


def drift_findings(
    connection: Connection, day: date, environment: str | None, limit: int = MAX_ROWS
) -> tuple[list[dict[str, Any]], int] | None:
    """The first drift findings stored for ``day``, and how many there are in all.

    Drifted metrics and pinned models come before pinning problems, each in the order the
    drift-detection flow saved them.

    Args:
        connection: A connection to the store.
        day: The night's calendar day.
        environment: Only this environment's findings, or None for all.
        limit: The most rows returned.

    Returns:
        Up to ``limit`` findings with ``day``, ``kind``, ``summary``, ``environment``,
        ``feature``, ``prompt_name``, ``prompt_version``, ``model``, ``metric``, ``value``,
        ``reference`` and ``change``, and ``seen_before`` (a pinning note stored for the same
        group and metric on one of the ``PINNING_MEMORY_DAYS`` days before: the earliest such
        day, already reported; None otherwise), and the day's total; None when the store has
        no ``drift_reports`` table.

    Example:
        ```python
        with engine.connect() as connection:
            rows, total = drift_findings(connection, date(2026, 11, 26), None) or ([], 0)
        ```
    """
    if not _present(connection, DriftReportRow):
        return None
    report = DriftReportRow
    query = select(
        report.day,
        report.kind,
        report.summary,
        report.environment,
        report.feature,
        report.prompt_name,
        report.prompt_version,
        report.model,
        report.metric,
        report.value,
        report.reference,
        report.change,
    ).where(report.day == day)
    if environment:
        query = query.where(report.environment == environment)
    rows = connection.execute(query.order_by(report.kind == "pinning", report.id)).mappings()
    found = [{key: plain(value) for key, value in row.items()} for row in rows]
    earlier = _pinning_first_seen(connection, day, environment) if any(r["kind"] == "pinning" for r in found) else {}
    for row in found:
        row["seen_before"] = earlier.get(_pinning_key(row)) if row["kind"] == "pinning" else None
    return found[:limit], len(found)


def _pinning_key(row: Any) -> tuple[str, ...]:
    return tuple(str(row[key] or "") for key in ("environment", "feature", "prompt_name", "prompt_version", "model", "metric"))


def _pinning_first_seen(connection: Connection, day: date, environment: str | None) -> dict[tuple[str, ...], str]:
    """The pinning notes of the ``PINNING_MEMORY_DAYS`` days before ``day``, by group and metric: their first day."""
    report = DriftReportRow
    query = (
        select(
            report.environment,
            report.feature,
            report.prompt_name,
            report.prompt_version,
            report.model,
            report.metric,
            func.min(report.day).label("first"),
        )
        .where(report.kind == "pinning", report.day < day, report.day >= day - timedelta(days=PINNING_MEMORY_DAYS))
        .group_by(report.environment, report.feature, report.prompt_name, report.prompt_version, report.model, report.metric)
    )
    if environment:
        query = query.where(report.environment == environment)
    return {_pinning_key(row): plain(row["first"]) for row in connection.execute(query).mappings()}


def day_alerts(connection: Connection, start: datetime, end: datetime) -> list[dict[str, Any]] | None:
    """The alerts that fired in ``[start, end)`` (eval regressions, failed gates, rollbacks, drift), oldest first.

    Args:
        connection: A connection to the store.
        start: The day's start (timezone-aware).
        end: The day's end, excluded.

    Returns:
        Up to ``MAX_ROWS`` alerts with ``time``, ``kind``, ``severity``, ``title`` and ``link`` (the
        flow run in the Prefect UI, or None); None when the store has no ``alerts`` table.

    Example:
        ```python
        with engine.connect() as connection:
            for alert in day_alerts(connection, start, end) or []:
                print(alert["kind"], alert["title"], alert["link"])
        ```
    """
    if not _present(connection, AlertRecord):
        return None
    alert = AlertRecord
    rows = connection.execute(
        select(alert.fired_at.label("time"), alert.kind, alert.severity, alert.title, alert.link)
        .where(alert.fired_at >= start, alert.fired_at < end)
        .order_by(alert.fired_at, alert.id)
        .limit(MAX_ROWS)
    ).mappings()
    return [{key: plain(value) for key, value in row.items()} for row in rows]


def version_labels(connection: Connection) -> dict[tuple[str, str], tuple[str, ...]]:
    """Which registry labels each prompt version holds now.

    Labels outside production are prefixed with their environment, and a canary's traffic
    share follows it: ``production``, ``canary 10%``, ``staging:staging``.

    Args:
        connection: A connection to the store.

    Returns:
        ``(prompt name, version)`` → its labels, sorted; empty when the store has no
        ``prompt_labels`` table. Cleared labels hold no version and are left out.

    Example:
        ```python
        with engine.connect() as connection:
            labels = version_labels(connection)
        labels.get(("support-chat", "2.3.1"), ())  # ('canary 10%', 'production')
        ```
    """
    if not _present(connection, PromptLabel):
        return {}
    held = PromptLabel
    labels: dict[tuple[str, str], list[str]] = defaultdict(list)
    rows = connection.execute(
        select(held.name.label("prompt_name"), held.label, held.version, held.environment, held.traffic_percent)
    )
    for row in rows:
        if row.version is None:  # a cleared label
            continue
        text = str(row.label)
        if row.environment and row.environment != "production":
            text = f"{row.environment}:{text}"
        if row.traffic_percent is not None:
            text += f" {row.traffic_percent:g}%"
        labels[(row.prompt_name, str(row.version))].append(text)
    return {key: tuple(sorted(values)) for key, values in labels.items()}
