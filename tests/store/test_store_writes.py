"""The write path on SQLite and PostgreSQL: once per trace, priced, rollups exact, atomic."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select

from llmops.pricing import COST_COMPUTED, COST_PROVIDED, COST_UNKNOWN_MODEL
from llmops.store import rollups, writer
from llmops.store.migrate import current_revisions, head_revisions, upgrade
from llmops.store.models import Trace, TraceRollup
from llmops.store.rollups import cost_report
from llmops.store.writer import load_watermark, write_traces
from tests.factories import trace


def _traces(engine: Engine) -> list[Trace]:
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        return list(session.scalars(select(Trace).order_by(Trace.id)))


def _rollup_totals(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        row = connection.execute(
            select(
                func.sum(TraceRollup.requests),
                func.sum(TraceRollup.errors),
                func.sum(TraceRollup.input_tokens),
                func.sum(TraceRollup.cost_picodollars),
                func.sum(TraceRollup.unpriced),
            )
        ).one()
    return dict(zip(["requests", "errors", "input_tokens", "cost_picodollars", "unpriced"], row, strict=True))


def test_migrations_reach_head_and_rerun_is_a_no_op(store: Engine) -> None:
    assert current_revisions(store) == head_revisions()
    upgrade(store)
    assert current_revisions(store) == head_revisions()


def test_each_trace_is_stored_once_across_and_within_batches(store: Engine) -> None:
    batch = [trace() for _ in range(50)]
    first = write_traces(store, batch)
    again = write_traces(store, batch + [batch[0]])
    assert (first.inserted, first.duplicates) == (50, 0)
    assert (again.inserted, again.duplicates) == (0, 51)
    assert len(_traces(store)) == 50
    assert _rollup_totals(store)["requests"] == 50


def test_costs_are_computed_kept_or_flagged_never_zero(store: Engine) -> None:
    computed = trace(input_tokens=1000, output_tokens=100)
    provided = trace(cost_usd=Decimal("0.123456789012"))
    unknown = trace(model="acme-llm-unreleased")
    result = write_traces(store, [computed, provided, unknown])
    by_id = {row.trace_id: row for row in _traces(store)}
    # claude-3-5-sonnet: $3 / $15 per million input / output tokens
    assert by_id[computed.trace_id].cost_usd == Decimal("0.0045")
    assert by_id[computed.trace_id].cost_source == COST_COMPUTED
    assert by_id[provided.trace_id].cost_usd == Decimal("0.123456789012")
    assert by_id[provided.trace_id].cost_source == COST_PROVIDED
    assert by_id[unknown.trace_id].cost_usd is None
    assert by_id[unknown.trace_id].cost_source == COST_UNKNOWN_MODEL
    assert result.unpriced == 1
    assert _rollup_totals(store)["unpriced"] == 1
    by_model = {line["model"]: line for line in cost_report(store, date(2025, 11, 1), date(2025, 11, 2), "model")}
    assert by_model["acme-llm-unreleased"]["cost_usd"] is None
    assert by_model["acme-llm-unreleased"]["unpriced_requests"] == 1


def test_user_ids_are_stored_as_stable_pseudonyms(store: Engine) -> None:
    write_traces(store, [trace(user_id="alice@example.com"), trace(user_id="alice@example.com")])
    stored = {row.user_id for row in _traces(store)}
    assert len(stored) == 1
    assert "alice" not in stored.pop()


def test_timestamps_come_back_as_the_same_utc_instant(store: Engine) -> None:
    from zoneinfo import ZoneInfo

    when = datetime(2025, 11, 3, 23, 30, 15, 123456, tzinfo=ZoneInfo("America/New_York"))
    record = trace(timestamp=when)
    write_traces(store, [record])
    (row,) = _traces(store)
    assert row.timestamp == when
    assert row.timestamp.tzinfo is not None


def test_rollups_match_raw_traces_whatever_the_batching(store: Engine) -> None:
    records = [
        trace(
            status="error" if i % 10 == 0 else "ok",
            model="claude-3-haiku-20240307" if i % 3 else "claude-3-5-sonnet-20241022",
            feature=("chat_response", "code_review", None)[i % 3],
            timestamp=datetime(2025, 11, 1, tzinfo=UTC) + timedelta(hours=i),
            user_feedback=(1.0, -1.0, None)[i % 3],
        )
        for i in range(300)
    ]
    for start in range(0, 300, 37):
        write_traces(store, records[start : start + 37])
    raw = _traces(store)
    totals = _rollup_totals(store)
    assert totals["requests"] == 300
    assert totals["errors"] == 30
    assert totals["input_tokens"] == sum(row.input_tokens for row in raw)
    assert Decimal(totals["cost_picodollars"]) / 10**12 == sum(row.cost_usd for row in raw)
    lines = cost_report(store, date(2025, 11, 1), date(2025, 11, 30), "feature")
    assert {line["feature"] for line in lines} == {"chat_response", "code_review", "(none)"}
    assert sum(line["requests"] for line in lines) == 300


def test_rollups_keep_sums_of_squares_and_an_unknown_one_stays_unknown_until_rebuilt(store: Engine) -> None:
    from llmops.store.rebuild import rebuild_rollups

    records = [
        trace(
            input_tokens=100 + 37 * i, output_tokens=20 + 11 * i, cache_read_input_tokens=5 * (i % 4),
            feature=("chat_response", "code_review")[i % 2], user_feedback=(1.0, -1.0, None)[i % 3],
            automated_eval_score=(0.5, None)[i % 2], timestamp=datetime(2025, 11, 1, tzinfo=UTC) + timedelta(hours=i % 20),
        )
        for i in range(120)
    ]  # fmt: skip
    for start in range(0, 120, 25):
        write_traces(store, records[start : start + 25])

    def squares() -> dict[str, dict[str, float | None]]:
        """Per feature, summed over its rollup rows (None when any row's is unknown)."""
        found: dict[str, dict[str, float | None]] = {}
        with store.connect() as connection:
            for row in connection.execute(select(TraceRollup.__table__)).mappings():
                sums = found.setdefault(row["feature"], dict.fromkeys(rollups.SQUARE_SUM_COLUMNS, 0.0))
                for name in rollups.SQUARE_SUM_COLUMNS:
                    known = sums[name] is not None and row[name] is not None
                    sums[name] = sums[name] + row[name] if known else None  # type: ignore[operator]
        return found

    expected: dict[str, dict[str, float]] = {}
    for row in _traces(store):
        sums = expected.setdefault(row.feature, dict.fromkeys(rollups.SQUARE_SUM_COLUMNS, 0.0))
        sums["input_tokens_sq_sum"] += (row.input_tokens + row.cache_read_input_tokens + row.cache_creation_input_tokens) ** 2
        sums["output_tokens_sq_sum"] += row.output_tokens**2
        sums["cost_usd_sq_sum"] += float(row.cost_usd) ** 2
        sums["feedback_sq_sum"] += (row.user_feedback or 0.0) ** 2
        sums["eval_score_sq_sum"] += (row.automated_eval_score or 0.0) ** 2
    assert squares() == {feature: pytest.approx(sums, rel=1e-9) for feature, sums in expected.items()}

    with store.begin() as connection:  # a row written before migration 0008
        connection.execute(TraceRollup.__table__.update().where(TraceRollup.feature == "chat_response").values(
            dict.fromkeys(rollups.SQUARE_SUM_COLUMNS)))  # fmt: skip
    write_traces(store, [trace(feature="chat_response", timestamp=datetime(2025, 11, 1, 5, tzinfo=UTC))])
    assert set(squares()["chat_response"].values()) == {None}
    rebuild_rollups(store)
    assert None not in squares()["chat_response"].values()


def test_latency_percentiles_from_rollups_track_the_exact_ones(store: Engine) -> None:
    latencies = [100.0 + (i * 7919) % 5000 for i in range(2000)]
    write_traces(store, [trace(latency_ms=value) for value in latencies[:1000]])
    write_traces(store, [trace(latency_ms=value) for value in latencies[1000:]])
    (line,) = cost_report(store, date(2025, 11, 1), date(2025, 11, 2), "model")
    ordered = sorted(latencies)
    for key, q in (("p50_latency_ms", 0.50), ("p95_latency_ms", 0.95), ("p99_latency_ms", 0.99)):
        exact = ordered[int(q * len(ordered)) - 1]
        assert abs(line[key] - exact) / exact < 0.02, (key, line[key], exact)


def test_a_failed_batch_leaves_nothing_behind(store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    write_traces(store, [trace()], watermark=("app-db", {"timestamp": "2025-11-01T00:00:00", "id": "a"}))

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(rollups, "add_rows", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_traces(store, [trace(), trace()], watermark=("app-db", {"timestamp": "2025-12-01T00:00:00", "id": "b"}))
    assert len(_traces(store)) == 1
    assert _rollup_totals(store)["requests"] == 1
    assert load_watermark(store, "app-db") == {"timestamp": "2025-11-01T00:00:00", "id": "a"}


def test_concurrent_writers_of_overlapping_batches_store_each_trace_once(store: Engine) -> None:
    records = [trace() for _ in range(400)]
    errors: list[BaseException] = []

    def write(offset: int) -> None:
        try:
            for start in range(offset, 400, 50):
                write_traces(store, records[start : start + 100])
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(offset,)) for offset in (0, 0, 50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(_traces(store)) == 400
    assert _rollup_totals(store)["requests"] == 400


def test_rollup_days_follow_the_configured_timezone(store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOPS_TIMEZONE", "America/Los_Angeles")
    write_traces(store, [trace(timestamp=datetime(2025, 11, 2, 3, 0, tzinfo=UTC))])  # 1 Nov, 20:00 in LA
    (line,) = cost_report(store, date(2025, 10, 1), date(2025, 12, 1), "day")
    assert line["day"] == "2025-11-01"


def test_changing_timezone_is_refused_until_rollups_are_rebuilt(store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmops.store.rebuild import rebuild_rollups

    write_traces(store, [trace(timestamp=datetime(2025, 11, 2, 3, 0, tzinfo=UTC))])
    monkeypatch.setenv("LLMOPS_TIMEZONE", "America/Los_Angeles")
    with pytest.raises(writer.RollupTimezoneMismatch, match="llmops db rebuild-rollups"):
        write_traces(store, [trace()])
    assert rebuild_rollups(store) == 1
    (line,) = cost_report(store, date(2025, 10, 1), date(2025, 12, 1), "day")
    assert line["day"] == "2025-11-01"
    assert write_traces(store, [trace()]).inserted == 1


def test_cost_reports_are_not_blocked_by_a_writer_holding_the_lock(store: Engine) -> None:
    write_traces(store, [trace()])
    finished = threading.Event()

    def report() -> None:
        cost_report(store, date(2025, 11, 1), date(2025, 11, 2), "model")
        finished.set()

    with store.begin() as writer:  # BEGIN IMMEDIATE on SQLite: the write lock, held until the block ends
        writer.execute(rollups.ROLLUPS.update().values(errors=rollups.ROLLUPS.c.errors))
        reader = threading.Thread(target=report)
        reader.start()
        assert finished.wait(timeout=10), "the report waited for the writer"
    reader.join()
