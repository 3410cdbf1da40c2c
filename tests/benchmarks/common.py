"""Helpers shared by the benchmarks: throwaway stores on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

from rich.progress import Progress
from sqlalchemy import Engine

from llmops.demo.traffic import generate_traces
from llmops.store.engine import create_store_engine
from llmops.store.migrate import upgrade
from llmops.store.writer import write_traces

POSTGRES_ADMIN = os.environ.get("LLMOPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextlib.contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="llmops-bench-") as folder:
        yield f"sqlite:///{Path(folder) / 'bench.db'}"


@contextlib.contextmanager
def postgres_url() -> Iterator[str | None]:
    """A scratch PostgreSQL database, or None when no server answers."""
    import psycopg

    admin_dsn = POSTGRES_ADMIN.replace("postgresql+psycopg://", "postgresql://")
    try:
        admin = psycopg.connect(admin_dsn, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        yield None
        return
    name = f"llmops_bench_{uuid.uuid4().hex[:8]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_ADMIN.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def backends() -> Iterator[list[tuple[str, str]]]:
    """(label, url) for SQLite and, when reachable, PostgreSQL."""
    with sqlite_url() as lite, postgres_url() as pg:
        yield [("sqlite", lite)] + ([("postgresql", pg)] if pg else [])


def migrated_engine(url: str):  # type: ignore[no-untyped-def]
    engine = create_store_engine(url)
    upgrade(engine)
    return engine


def seed_demo_traffic(engine: Engine, traces: int, batch: int = 20_000) -> tuple[date, date]:
    """About ``traces`` calls of 30 days of demo traffic (with its incidents); their first and last UTC day."""
    per_weekday = int(traces / 26)  # weekends carry ~40 %: 30 days ≈ 26 weekday-equivalents
    records, first, last = [], None, None
    with Progress(transient=True) as progress:
        task = progress.add_task("seeding", total=traces)
        for n, record in enumerate(generate_traces(days=30, calls_per_weekday=per_weekday, seed=5)):
            if n == traces:
                break
            first = first or record.timestamp
            last = record.timestamp
            records.append(record)
            if len(records) == batch:
                write_traces(engine, records)
                progress.advance(task, len(records))
                records = []
        if records:
            write_traces(engine, records)
    assert first is not None and last is not None, "the generator produced no traffic"
    return first.date(), last.date()


def timed(function: Callable[[], object], repeats: int = 5) -> float:
    """Median seconds of ``repeats`` calls."""
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)
