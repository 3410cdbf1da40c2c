"""Daily rollups: kept current on ingest, read by every cost report so none scans raw traces.

Latency and time to first token are kept as t-digests (fastdigest), which merge exactly
enough across rows for p50/p95/p99 of any grouping.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from fastdigest import TDigest
from sqlalchemy import Connection, Engine, bindparam, select, tuple_, update

from llmops.days import local_day
from llmops.money import PICO, pico_to_usd
from llmops.store.engine import dialect_insert, read_only
from llmops.store.groupings import GROUPINGS
from llmops.store.tables import ROLLUPS

KEY_COLUMNS = ("day", "environment", "feature", "prompt_name", "prompt_version", "model")
"""One rollup row per local day and these; '' stands for "none" in the text columns."""
SUM_COLUMNS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "cost_picodollars",
    "unpriced",
    "feedback_sum",
    "feedback_count",
    "eval_score_sum",
    "eval_score_count",
)
SQUARE_SUM_COLUMNS = ("input_tokens_sq_sum", "output_tokens_sq_sum", "cost_usd_sq_sum", "feedback_sq_sum", "eval_score_sq_sum")
"""NULL on rows from before they existed: adding to an unknown sum keeps it unknown."""
SKETCH_COLUMNS = ("latency_sketch", "ttft_sketch")
MAX_CENTROIDS = 300
TRACE_COLUMNS_FOR_ROLLUPS = (
    "timestamp",
    "environment",
    "feature",
    "prompt_name",
    "prompt_version",
    "model",
    "status",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "cost_usd",
    "user_feedback",
    "automated_eval_score",
    "latency_ms",
    "ttft_ms",
)

RollupKey = tuple[date, str, str, str, str, str]


class RollupRow(NamedTuple):
    """What a rollup needs of one trace: its key and its numbers (small, cheap to pickle)."""

    key: RollupKey
    is_error: bool
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int
    cost_picodollars: int | None
    user_feedback: float | None
    automated_eval_score: float | None
    latency_ms: float | None
    ttft_ms: float | None


def rollup_row(record: Any, naive_utc: datetime, cost_picodollars: int | None, timezone: str) -> RollupRow:
    """The rollup row of a trace record (or of a stored trace row with the same attributes).

    Args:
        record: A ``TraceRecord``, or a row of ``traces`` with the same attribute names.
        naive_utc: The call's time as naive UTC.
        cost_picodollars: Its cost, or None when it is unpriced.
        timezone: The IANA zone the store's days are cut in.

    Returns:
        The row's key (local day and group) and the numbers a rollup sums.
    """
    day = naive_utc.date() if timezone == "UTC" else local_day(naive_utc, timezone)
    key = (
        day,
        record.environment,
        record.feature or "",
        record.prompt_name or "",
        record.prompt_version or "",
        record.model,
    )
    return RollupRow(
        key,
        record.status == "error",
        record.input_tokens,
        record.output_tokens,
        record.cache_read_input_tokens,
        record.cache_creation_input_tokens,
        cost_picodollars,
        record.user_feedback,
        record.automated_eval_score,
        record.latency_ms,
        record.ttft_ms,
    )


@dataclass
class Partial:
    """Sums and raw samples of one rollup key from one batch."""

    sums: dict[str, Any]
    latencies: list[float]
    ttfts: list[float]


def _present(values: Iterable[Any]) -> list[Any]:
    return [value for value in values if value is not None]


def _partial(rows: list[RollupRow]) -> Partial:
    """Sum one key's rows column by column with C-level loops: this runs for every ingested row."""
    (_, errors, inputs, outputs, cache_reads, cache_writes, costs, feedbacks, eval_scores, latencies, ttfts) = zip(
        *rows, strict=True
    )
    priced = _present(costs)
    feedback, scores = _present(feedbacks), _present(eval_scores)
    all_inputs = list(map(sum, zip(inputs, cache_reads, cache_writes, strict=True)))  # as drift counts input
    sums = {
        "requests": len(rows),
        "errors": sum(errors),
        "input_tokens": sum(inputs),
        "output_tokens": sum(outputs),
        "cache_read_input_tokens": sum(cache_reads),
        "cache_creation_input_tokens": sum(cache_writes),
        "cost_picodollars": sum(priced),
        "unpriced": len(rows) - len(priced),
        "feedback_sum": float(sum(feedback)),
        "feedback_count": len(feedback),
        "eval_score_sum": float(sum(scores)),
        "eval_score_count": len(scores),
        "input_tokens_sq_sum": float(_square_sum(all_inputs)),
        "output_tokens_sq_sum": float(_square_sum(outputs)),
        "cost_usd_sq_sum": float(_square_sum(priced) / PICO**2),
        "feedback_sq_sum": float(_square_sum(feedback)),
        "eval_score_sq_sum": float(_square_sum(scores)),
    }
    return Partial(sums, _present(latencies), _present(ttfts))


def _square_sum(values: Sequence[Any]) -> Any:
    return sum(map(operator.mul, values, values))


def _aggregate(rows: Iterable[RollupRow]) -> dict[RollupKey, Partial]:
    groups: dict[RollupKey, list[RollupRow]] = defaultdict(list)
    for row in rows:
        groups[row.key].append(row)
    return {key: _partial(group) for key, group in groups.items()}


def _merge_sketch(stored: bytes | None, samples: list[float]) -> bytes | None:
    if not samples:
        return stored
    digest = TDigest.from_values(samples, max_centroids=MAX_CENTROIDS)
    if stored is not None:
        digest = TDigest.from_bytes(stored).merge(digest)
    return digest.to_bytes()


def _empty_row(key: RollupKey, now: datetime) -> dict[str, Any]:
    row: dict[str, Any] = dict(zip(KEY_COLUMNS, key, strict=True))
    row.update(dict.fromkeys(SUM_COLUMNS, 0))
    row.update(dict.fromkeys(SQUARE_SUM_COLUMNS, 0.0))
    row.update(latency_sketch=None, ttft_sketch=None, updated_at=now)
    return row


def add_rows(connection: Connection, rows: Sequence[RollupRow]) -> None:
    """Fold newly inserted traces into their rollups (the caller owns the transaction).

    Missing keys are created first, then the touched rows are locked in key order (PostgreSQL
    ``FOR UPDATE``; SQLite holds the write lock already), merged and written back.

    Args:
        connection: A connection inside the transaction that inserted the traces.
        rows: The rollup rows of the traces actually inserted (never of duplicates).

    Example:
        ```python
        with engine.begin() as connection:
            inserted = insert_new_rows(connection, batch)
            add_rows(connection, inserted)
        ```
    """
    if not rows:
        return

    partials = _aggregate(rows)
    keys = sorted(partials)
    now = datetime.now(UTC).replace(tzinfo=None)
    connection.execute(
        dialect_insert(connection, ROLLUPS).on_conflict_do_nothing(index_elements=list(KEY_COLUMNS)),
        [_empty_row(key, now) for key in keys],
    )
    key_expr = tuple_(*(ROLLUPS.c[name] for name in KEY_COLUMNS))
    stored = connection.execute(
        select(ROLLUPS).where(key_expr.in_(keys)).order_by(*(ROLLUPS.c[name] for name in KEY_COLUMNS)).with_for_update()
    ).mappings()
    updates = []
    for current in stored:
        partial = partials[tuple(current[name] for name in KEY_COLUMNS)]
        merged = {name: current[name] + partial.sums[name] for name in SUM_COLUMNS}
        merged.update({
            name: None if current[name] is None else current[name] + partial.sums[name] for name in SQUARE_SUM_COLUMNS
        })  # fmt: skip
        merged["latency_sketch"] = _merge_sketch(current["latency_sketch"], partial.latencies)
        merged["ttft_sketch"] = _merge_sketch(current["ttft_sketch"], partial.ttfts)
        merged["updated_at"] = now
        merged["row_id"] = current["id"]
        updates.append(merged)
    connection.execute(
        update(ROLLUPS)
        .where(ROLLUPS.c.id == bindparam("row_id"))
        .values({name: bindparam(name) for name in (*SUM_COLUMNS, *SQUARE_SUM_COLUMNS, *SKETCH_COLUMNS, "updated_at")}),
        updates,
    )


@dataclass
class RollupTotals:
    """Sums of ``trace_rollups`` rows: the one shape the digest, drift and cost reports total them in.

    Field names are the rollup columns'; the latency and time-to-first-token sketches are merged
    t-digests. Sums of squares stay None once any row added lacked them (rows from before
    migration 0008): an unknown part makes the sum unknown.

    Example:
        >>> from types import SimpleNamespace
        >>> row = SimpleNamespace(requests=10, errors=1, input_tokens=900, output_tokens=200, cache_read_input_tokens=100,
        ...     cache_creation_input_tokens=0, cost_picodollars=5_000_000_000, unpriced=0, feedback_sum=1.0,
        ...     feedback_count=2, eval_score_sum=0.0, eval_score_count=0, latency_sketch=None, ttft_sketch=None)
        >>> totals = RollupTotals()
        >>> totals.add(row)
        >>> totals.add(row)
        >>> totals.requests, totals.error_rate, totals.cost_usd, totals.cache_read_share
        (20, 0.1, 0.01, 0.1)
    """

    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cost_picodollars: int = 0
    unpriced: int = 0
    feedback_sum: float = 0.0
    feedback_count: int = 0
    eval_score_sum: float = 0.0
    eval_score_count: int = 0
    input_tokens_sq_sum: float | None = 0.0
    output_tokens_sq_sum: float | None = 0.0
    cost_usd_sq_sum: float | None = 0.0
    feedback_sq_sum: float | None = 0.0
    eval_score_sq_sum: float | None = 0.0
    latency: TDigest | None = None
    ttft: TDigest | None = None

    def add(self, row: Any, latency: bool = True, ttft: bool = True) -> None:
        """Add one rollup row. Merging a sketch is the costly part: skip the ones nobody reads.

        Args:
            row: A ``trace_rollups`` row (attributes named as its columns).
            latency: Merge the row's latency sketch.
            ttft: Merge the row's time-to-first-token sketch.
        """
        for name in SUM_COLUMNS:
            setattr(self, name, getattr(self, name) + getattr(row, name))
        for name in SQUARE_SUM_COLUMNS:
            known, added = getattr(self, name), getattr(row, name, None)
            setattr(self, name, None if known is None or added is None else known + added)
        if latency:
            self.latency = _merged(self.latency, row.latency_sketch)
        if ttft:
            self.ttft = _merged(self.ttft, row.ttft_sketch)

    @property
    def cost_usd(self) -> float:
        """The priced calls' cost in USD (0 when none is priced: check ``priced``)."""
        return float(pico_to_usd(self.cost_picodollars))

    @property
    def priced(self) -> int:
        """Calls whose model genai-prices knows."""
        return self.requests - self.unpriced

    @property
    def total_input_tokens(self) -> int:
        """Prompt tokens with the cached ones: the prompt's size, not the cache's luck."""
        return self.input_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def avg_cost(self) -> float | None:
        """Cost per priced call, or None when nothing is priced."""
        return self.cost_usd / self.priced if self.priced else None

    @property
    def cache_read_share(self) -> float | None:
        """The share of prompt tokens read from the provider's cache."""
        total = self.total_input_tokens
        return self.cache_read_input_tokens / total if total else None

    @property
    def feedback(self) -> float | None:
        """Mean user feedback in [-1, 1], or None without any."""
        return self.feedback_sum / self.feedback_count if self.feedback_count else None

    @property
    def eval_score(self) -> float | None:
        """Mean automated evaluation score in [0, 1], or None without any."""
        return self.eval_score_sum / self.eval_score_count if self.eval_score_count else None

    def quantile(self, q: float) -> float | None:
        """Latency quantile in ms (rounded to 0.1), or None without a sketch."""
        return None if self.latency is None else round(self.latency.quantile(q), 1)


def _merged(current: TDigest | None, sketch: bytes | None) -> TDigest | None:
    if sketch is None:
        return current
    digest = TDigest.from_bytes(sketch)
    return digest if current is None else current.merge(digest)


def cost_line(grouping: str, key: str, totals: RollupTotals) -> dict[str, Any]:
    """One line of a cost report: the group under ``grouping``, counts, cost (None if nothing is
    priced, never $0) and latency quantiles."""
    cost = pico_to_usd(totals.cost_picodollars)
    priced = totals.priced
    return {
        grouping: key,
        "requests": totals.requests,
        "cost_usd": float(round(cost, 6)) if priced else None,  # unknown, never $0
        "avg_cost_per_request": float(round(cost / priced, 8)) if priced else None,
        "input_tokens": totals.input_tokens,
        "output_tokens": totals.output_tokens,
        "error_rate": round(totals.errors / totals.requests, 4) if totals.requests else 0.0,
        "p50_latency_ms": totals.quantile(0.50),
        "p95_latency_ms": totals.quantile(0.95),
        "p99_latency_ms": totals.quantile(0.99),
        "unpriced_requests": totals.unpriced,
    }


def cost_report(engine: Engine, since: date, until: date, by: str) -> list[dict[str, Any]]:
    """Cost and latency per ``by`` for local days ``since``..``until`` (inclusive), from rollups.

    Args:
        engine: The store.
        since: First local day.
        until: Last local day (inclusive).
        by: One of ``GROUPINGS``.

    Returns:
        One dict per group (``requests``, ``cost_usd``, ``avg_cost_per_request``, tokens,
        ``error_rate``, p50/p95/p99 latency, ``unpriced_requests``): by day in order, else
        most expensive first. A cost is None, never 0, when none of the group's calls is priced.

    Raises:
        ValueError: ``by`` is not one of ``GROUPINGS``.

    Example:
        ```python
        for line in cost_report(get_engine(), date(2025, 11, 1), date(2025, 11, 30), by="model"):
            print(line["model"], line["cost_usd"], line["p95_latency_ms"])
        ```
    """
    if by not in GROUPINGS:
        raise ValueError(f"--by must be one of {', '.join(GROUPINGS)}, got {by!r}")
    columns = [ROLLUPS.c[name] for name in (*SUM_COLUMNS, *SQUARE_SUM_COLUMNS, "latency_sketch")]
    query = select(ROLLUPS.c[by].label("group_key"), *columns)
    groups: dict[str, RollupTotals] = {}
    with read_only(engine).connect() as connection:
        for row in connection.execute(query.where(ROLLUPS.c.day.between(since, until))):
            key = row.group_key.isoformat() if isinstance(row.group_key, date) else (row.group_key or "(none)")
            groups.setdefault(key, RollupTotals()).add(row, ttft=False)
    ordered = sorted(groups.items(), key=lambda item: item[0] if by == "day" else -item[1].cost_picodollars)
    return [cost_line(by, key, totals) for key, totals in ordered]


def report_total(lines: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Totals over report lines (latency quantiles cannot be summed, so they are omitted).

    Args:
        lines: Lines of one ``cost_report``.

    Returns:
        ``requests``, ``cost_usd``, ``avg_cost_per_request``, tokens, ``error_rate`` and
        ``unpriced_requests`` over all lines.

    Example:
        >>> line = {"requests": 4, "cost_usd": 0.02, "unpriced_requests": 0, "error_rate": 0.25,
        ...         "input_tokens": 400, "output_tokens": 100}
        >>> total = report_total([line, {**line, "cost_usd": None, "unpriced_requests": 4, "error_rate": 0.0}])
        >>> total["requests"], total["cost_usd"], total["avg_cost_per_request"], total["error_rate"]
        (8, 0.02, 0.005, 0.125)
    """
    requests = sum(line["requests"] for line in lines)
    cost = sum(Decimal(str(line["cost_usd"])) for line in lines if line["cost_usd"] is not None)
    unpriced = sum(line["unpriced_requests"] for line in lines)
    errors = sum(line["error_rate"] * line["requests"] for line in lines)
    return {
        "requests": requests,
        "cost_usd": float(cost),
        "avg_cost_per_request": float(cost / (requests - unpriced)) if requests - unpriced else None,
        "input_tokens": sum(line["input_tokens"] for line in lines),
        "output_tokens": sum(line["output_tokens"] for line in lines),
        "error_rate": round(errors / requests, 4) if requests else 0.0,
        "unpriced_requests": unpriced,
    }
