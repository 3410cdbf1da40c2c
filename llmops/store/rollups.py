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
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from fastdigest import TDigest
from sqlalchemy import Connection, Engine, Table, bindparam, select, tuple_, update

from llmops.store.engine import dialect_insert, read_only
from llmops.store.models import PICO, TraceRollup, pico_to_usd

ROLLUPS: Table = TraceRollup.__table__  # type: ignore[assignment]
KEY_COLUMNS = ("day", "environment", "feature", "prompt_name", "prompt_version", "model")
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
GROUPINGS = ("feature", "model", "prompt_version", "environment", "day", "prompt_name")

RollupKey = tuple[date, str, str, str, str, str]


@lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_day(timestamp: datetime, timezone: str) -> date:
    """The calendar day of a naive-UTC or aware timestamp in ``timezone``."""
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=UTC)
    return timestamp.astimezone(_zone(timezone)).date()


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
    """The rollup row of a trace record (or of a stored trace row with the same attributes)."""
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
    (_, errors, inputs, outputs, cache_reads, cache_writes, costs, feedback, scores, latencies, ttfts) = zip(*rows, strict=True)
    priced = _present(costs)
    feedback, scores = _present(feedback), _present(scores)
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
        partial = partials[tuple(current[name] for name in KEY_COLUMNS)]  # type: ignore[index]
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
class CostGroup:
    """One line of a cost report."""

    key: str
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_pico: int = 0
    unpriced: int = 0
    latency: TDigest | None = None

    def add(self, row: Any) -> None:
        self.requests += row.requests
        self.errors += row.errors
        self.input_tokens += row.input_tokens
        self.output_tokens += row.output_tokens
        self.cache_read_input_tokens += row.cache_read_input_tokens
        self.cost_pico += row.cost_picodollars
        self.unpriced += row.unpriced
        if row.latency_sketch is not None:
            digest = TDigest.from_bytes(row.latency_sketch)
            self.latency = digest if self.latency is None else self.latency.merge(digest)

    def as_dict(self, grouping: str) -> dict[str, Any]:
        cost = pico_to_usd(self.cost_pico)
        priced = self.requests - self.unpriced

        def quantile(q: float) -> float | None:
            return None if self.latency is None else round(self.latency.quantile(q), 1)

        return {
            grouping: self.key,
            "requests": self.requests,
            "cost_usd": float(round(cost, 6)) if priced else None,  # unknown, never $0
            "avg_cost_per_request": float(round(cost / priced, 8)) if priced else None,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "error_rate": round(self.errors / self.requests, 4) if self.requests else 0.0,
            "p50_latency_ms": quantile(0.50),
            "p95_latency_ms": quantile(0.95),
            "p99_latency_ms": quantile(0.99),
            "unpriced_requests": self.unpriced,
        }


def cost_report(engine: Engine, since: date, until: date, by: str) -> list[dict[str, Any]]:
    """Cost and latency per ``by`` for local days ``since``..``until`` (inclusive), from rollups."""
    if by not in GROUPINGS:
        raise ValueError(f"--by must be one of {', '.join(GROUPINGS)}, got {by!r}")
    columns = [ROLLUPS.c[name] for name in ("requests", "errors", "input_tokens", "output_tokens")]
    columns += [ROLLUPS.c[name] for name in ("cache_read_input_tokens", "cost_picodollars", "unpriced", "latency_sketch")]
    query = select(ROLLUPS.c[by].label("group_key"), *columns).where(ROLLUPS.c.day.between(since, until))
    groups: dict[str, CostGroup] = {}
    with read_only(engine).connect() as connection:
        for row in connection.execute(query):
            key = row.group_key.isoformat() if isinstance(row.group_key, date) else (row.group_key or "(none)")
            groups.setdefault(key, CostGroup(key)).add(row)
    ordered = sorted(groups.values(), key=lambda g: g.key if by == "day" else -g.cost_pico)
    return [group.as_dict(by) for group in ordered]


def report_total(lines: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Totals over report lines (latency quantiles cannot be summed, so they are omitted)."""
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
