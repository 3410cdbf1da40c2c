"""What the other features recorded for the digest's day: registry moves, evaluation runs, drift, labels.

These sections read the tables of the registry (``label_events``, ``prompt_labels``), the
evaluations (``eval_runs``) and drift detection (``drift_reports``) through their models in
``llmops.store``, with the columns those models declare. A store that has not been migrated
that far lacks a table: its section is then None (left out of the message), which is not the
same as a day on which nothing happened (an empty list). Rows come back as JSON-ready dicts,
at most ``MAX_ROWS`` of each.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, inspect, select

from llmops.evals.store import is_versions_own_run
from llmops.release.registry import LABEL_ACTIONS
from llmops.store.drift_models import DriftReportRow
from llmops.store.eval_models import EvalRun
from llmops.store.models import Base
from llmops.store.outbox_models import AlertRecord
from llmops.store.registry_models import LabelEventRow, PromptLabel

MAX_ROWS = 10
"""The most rows one section shows."""


def _present(connection: Connection, model: type[Base]) -> bool:
    """Whether the store has ``model``'s table (a store migrated only partly may not)."""
    return inspect(connection).has_table(model.__tablename__)


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


def eval_verdicts(connection: Connection, start: datetime, end: datetime) -> list[dict[str, Any]] | None:
    """The latest evaluation run of each prompt version that finished in ``[start, end)``.

    Runs that do not judge a version on its own dataset (pinned-model drift's nightly re-runs
    of a subset, compression candidates) are left out, as the release gates leave them out.

    Args:
        connection: A connection to the store.
        start: The window's start (the digest uses the week before the day's end).
        end: The window's end, excluded.

    Returns:
        Up to ``MAX_ROWS`` runs, latest version first, with ``time`` (when it finished),
        ``prompt_name``, ``prompt_version``, ``status`` and ``dataset``; None when the store has
        no ``eval_runs`` table.

    Example:
        ```python
        with engine.connect() as connection:
            for run in eval_verdicts(connection, end - timedelta(days=7), end) or []:
                print(f"{run['prompt_name']}@{run['prompt_version']}: {run['status']} on {run['dataset']}")
        ```
    """
    if not _present(connection, EvalRun):
        return None
    rows = connection.execute(
        select(
            EvalRun.finished_at.label("time"),
            EvalRun.prompt_name,
            EvalRun.prompt_version,
            EvalRun.status,
            EvalRun.dataset_name.label("dataset"),
        )
        .where(EvalRun.finished_at < end, EvalRun.finished_at >= start, is_versions_own_run())
        .order_by(EvalRun.finished_at.desc())
    ).mappings()
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        latest.setdefault((row["prompt_name"], row["prompt_version"]), {key: plain(value) for key, value in row.items()})
    return list(latest.values())[:MAX_ROWS]


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
