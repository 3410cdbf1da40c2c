"""A drift series and its days: the group it is about (``TraceGroup``), one day of it (``DayStats``), read from the store.

Drift is judged per group (environment × feature × prompt version × model), one local day at a
time. The daily rollups already hold every group's day (calls, errors, token and cost sums,
latency and time-to-first-token sketches, feedback and eval sums), so a night reads about fifteen
rows per group instead of its traces; the one thing they do not keep is the finish-reason mix,
which is a single grouped query over the window's traces. This module owns that reading, and the
group's key both as a Python value and as SQL expressions over the traces (the pinning audit groups
by the same key). What is tested of the days lives in ``llmops.drift.trace_metrics`` and
``llmops.drift.trace``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from fastdigest import TDigest
from sqlalchemy import ColumnClause, ColumnElement, Connection, Engine, case, func, literal_column, select

from llmops import settings
from llmops.days import day_bounds
from llmops.store.engine import read_only
from llmops.store.models import StoreSetting
from llmops.store.rollups import SQUARE_SUM_COLUMNS, RollupTotals
from llmops.store.tables import ROLLUPS, TRACES
from llmops.store.writer import ROLLUP_TIMEZONE_KEY

WEEKEND_DAYS = frozenset({5, 6})
NONE: ColumnClause[str] = literal_column("''")
"""'' inlined, not bound: PostgreSQL must see the same expression in SELECT and GROUP BY."""


class TraceGroup(NamedTuple):
    """What one drift series is about: the rollup key without its day.

    '' stands for "none" (no feature, no prompt), as in the rollups and ``drift_reports``.

    Attributes:
        environment: Where the calls ran (``production``, ``staging``…).
        feature: The application feature that made them.
        prompt_name: The prompt, '' for calls without one.
        prompt_version: Its version.
        model: The model the calls asked for.

    Example:
        >>> TraceGroup("production", "chat", "support-chat", "2.3.1", "claude-3-5-sonnet-20241022").label
        'production/chat/support-chat@2.3.1/claude-3-5-sonnet-20241022'
    """

    environment: str
    feature: str
    prompt_name: str
    prompt_version: str
    model: str

    @classmethod
    def from_row(cls, row: Any) -> TraceGroup:
        """The group of a store row with the key's columns (a rollup, a ``drift_reports`` row).

        Args:
            row: Anything with attributes named as ``TraceGroup``'s fields.

        Returns:
            Its group.

        Example:
            >>> from types import SimpleNamespace
            >>> TraceGroup.from_row(SimpleNamespace(environment="dev", feature="", prompt_name="", prompt_version="", model="m"))
            TraceGroup(environment='dev', feature='', prompt_name='', prompt_version='', model='m')
        """
        return cls(*(getattr(row, name) for name in cls._fields))

    @property
    def label(self) -> str:
        """``environment/feature/prompt@version/model``: the group in one line of an alert."""
        prompt = f"{self.prompt_name}@{self.prompt_version}" if self.prompt_name else self.prompt_version or "-"
        return f"{self.environment}/{self.feature or '-'}/{prompt}/{self.model}"


@dataclass(frozen=True)
class DayStats:
    """One group's day, as the daily rollups (plus a count of finish reasons) describe it.

    Sums rather than means, so rollup rows map onto it field by field. ``input_tokens`` counts
    cached prompt tokens too: the prompt's size, not the cache's luck. The optional sums of
    squares let a day's own sampling noise be known (a weekend's few calls are noisier than a
    weekday's many); without them that noise is folded into the day-to-day spread.

    Attributes:
        day: The local day.
        calls: Calls that day; ``errors`` of them failed.
        input_tokens: Prompt tokens of the successful calls, cached ones included.
        output_tokens: Output tokens of the successful calls.
        cost_usd: Cost of the ``priced_calls`` (calls whose model has a price).
        latency: t-digest of every call's latency (ms), ``ttft`` of the time to first token.
        feedback_sum: Sum of the ``feedback_count`` user ratings; ``eval_score_*`` likewise.
        finish_reasons: Successful calls per finish reason.
        input_tokens_sq_sum: Sums of squares of the per-call values (None when unknown).

    Example:
        >>> from datetime import date
        >>> day = DayStats(date(2025, 3, 22), calls=900, errors=9, output_tokens=180_000)
        >>> day.is_weekend, day.successful_calls
        (True, 891)
    """

    day: date
    calls: int
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    priced_calls: int = 0
    latency: TDigest | None = None
    ttft: TDigest | None = None
    feedback_sum: float = 0.0
    feedback_count: int = 0
    eval_score_sum: float = 0.0
    eval_score_count: int = 0
    finish_reasons: Mapping[str, int] = field(default_factory=dict)
    input_tokens_sq_sum: float | None = None
    output_tokens_sq_sum: float | None = None
    cost_usd_sq_sum: float | None = None
    feedback_sq_sum: float | None = None
    eval_score_sq_sum: float | None = None

    @classmethod
    def from_rollup(cls, row: Any, finish_reasons: Mapping[str, int] | None = None) -> DayStats:
        """One ``trace_rollups`` row as a day of its group.

        Sums of squares are NULL on rows older than migration 0008 (until ``llmops db
        rebuild-rollups``): such days are tested without them.

        Args:
            row: A rollup row (attributes named as its columns).
            finish_reasons: That day's ``finish_reason`` counts for the same key.

        Returns:
            The day's statistics.

        Example:
            ```python
            with engine.connect() as connection:
                row = connection.execute(select(ROLLUPS).where(ROLLUPS.c.day == day)).first()
            stats = DayStats.from_rollup(row, {"end_turn": 880, "max_tokens": 11})
            ```
        """
        totals = RollupTotals()
        totals.add(row)
        return cls(
            day=row.day,
            calls=totals.requests,
            errors=totals.errors,
            input_tokens=totals.total_input_tokens,
            output_tokens=totals.output_tokens,
            cost_usd=totals.cost_usd,
            priced_calls=totals.priced,
            latency=totals.latency,
            ttft=totals.ttft,
            feedback_sum=totals.feedback_sum,
            feedback_count=totals.feedback_count,
            eval_score_sum=totals.eval_score_sum,
            eval_score_count=totals.eval_score_count,
            finish_reasons=dict(finish_reasons or {}),
            **{name: getattr(totals, name) for name in SQUARE_SUM_COLUMNS},
        )

    @property
    def is_weekend(self) -> bool:
        """Saturday or Sunday: weekends are compared with weekends when there are enough."""
        return self.day.weekday() in WEEKEND_DAYS

    @property
    def successful_calls(self) -> int:
        """Calls that did not fail: what token counts are per."""
        return self.calls - self.errors


def trace_group_columns() -> list[ColumnElement[str]]:
    """A trace's ``TraceGroup`` as SQL expressions, '' for none as in the rollups.

    Returns:
        One expression per field of ``TraceGroup``, in its order: select or group by them.

    Example:
        ```python
        keys = trace_group_columns()
        query = select(*keys, func.count()).group_by(*keys)
        counts = {TraceGroup(*key): n for *key, n in connection.execute(query)}
        ```
    """
    return [
        TRACES.c.environment,
        func.coalesce(TRACES.c.feature, NONE),
        func.coalesce(TRACES.c.prompt_name, NONE),
        func.coalesce(TRACES.c.prompt_version, NONE),
        TRACES.c.model,
    ]


def store_timezone(connection: Connection) -> ZoneInfo:
    """The zone the rollup days were cut in.

    Args:
        connection: A connection to the store.

    Returns:
        The zone recorded by the writer, or ``LLMOPS_TIMEZONE`` for a store not written yet.

    Example:
        ```python
        with read_only(engine).connect() as connection:
            zone = store_timezone(connection)
        ```
    """
    stored = connection.execute(select(StoreSetting.value).where(StoreSetting.key == ROLLUP_TIMEZONE_KEY)).scalar()
    return ZoneInfo(stored) if stored else settings.timezone()


def finish_reason_counts(
    connection: Connection, first: date, last: date, zone: ZoneInfo
) -> dict[tuple[date, TraceGroup], dict[str, int]]:
    """Finish reasons per local day and group, ``first``..``last``, in one query over the traces.

    Args:
        connection: A connection to the store.
        first: The first local day (inclusive).
        last: The last local day (inclusive).
        zone: Where the days are cut.

    Returns:
        ``{(day, group): {finish reason: calls}}``; days and groups without any are absent.

    Example:
        ```python
        counts = finish_reason_counts(connection, date(2025, 3, 5), date(2025, 3, 19), zone)
        counts[(date(2025, 3, 19), group)]  # {"end_turn": 880, "max_tokens": 11}
        ```
    """
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    starts = [day_bounds(day, zone)[0] for day in days] + [day_bounds(last, zone)[1]]
    day_index = case(*((TRACES.c.timestamp < end, index) for index, end in enumerate(starts[1:])))
    fields = TraceGroup._fields
    group_columns = (column.label(name) for column, name in zip(trace_group_columns(), fields, strict=True))
    per_call = (  # grouped outside: PostgreSQL would not match a CASE with bound parameters in GROUP BY
        select(day_index.label("day_index"), *group_columns, TRACES.c.finish_reason)
        .where(TRACES.c.timestamp >= starts[0], TRACES.c.timestamp < starts[-1], TRACES.c.finish_reason.is_not(None))
        .subquery()
    )
    keys = [per_call.c.day_index, *(per_call.c[name] for name in fields), per_call.c.finish_reason]
    counts: dict[tuple[date, TraceGroup], dict[str, int]] = defaultdict(dict)
    for index, *group, reason, count in connection.execute(select(*keys, func.count()).group_by(*keys)):
        counts[(days[index], TraceGroup(*group))][reason] = count
    return counts


def load_history(engine: Engine, day: date, reference_days: int) -> dict[TraceGroup, list[DayStats]]:
    """The days trace drift judges ``day`` by, for every group with traffic on ``day``.

    Args:
        engine: The store.
        day: The checked local day.
        reference_days: How many days before it to read (``TraceDriftConfig.window_days``).

    Returns:
        ``{group: [DayStats of day and of the days before it that the group had traffic]}``.

    Example:
        ```python
        history = load_history(engine, date(2025, 3, 19), 14)
        report = assess_trace_drift(history, date(2025, 3, 19))
        ```
    """
    first = day - timedelta(days=reference_days)
    with read_only(engine).connect() as connection:
        zone = store_timezone(connection)
        rows = connection.execute(select(ROLLUPS).where(ROLLUPS.c.day.between(first, day))).all()
        reasons = finish_reason_counts(connection, first, day, zone)
    checked = {TraceGroup.from_row(row) for row in rows if row.day == day and row.requests}
    history: dict[TraceGroup, list[DayStats]] = defaultdict(list)
    for row in rows:
        group = TraceGroup.from_row(row)
        if group in checked:
            history[group].append(DayStats.from_rollup(row, reasons.get((row.day, group))))
    return dict(history)
