"""Import throughput: JSONL rows/s through `llmops traces import`'s pipeline, against a plain
DBAPI ``executemany`` of the same rows, already parsed and priced, into the same table.

Floor (issue 2): ratio ≥ 0.5 on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from llmops import settings
from llmops.demo.traffic import generate_traces
from llmops.ingest.pipeline import import_file
from llmops.records import TraceRecord
from llmops.store.writer import insert_params, insert_sql, price_record
from tests.benchmarks.common import backends, migrated_engine

ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "300000"))
BATCH = 5_000


def write_jsonl(path: Path, rows: int) -> None:
    with path.open("w") as out:
        for n, record in enumerate(generate_traces(days=30, calls_per_weekday=rows // 25, seed=11)):
            if n == rows:
                break
            out.write(record.model_dump_json(exclude_none=True) + "\n")


def baseline_params(path: Path, sqlite_times: bool) -> list[tuple]:
    """The rows exactly as the importer inserts them, prepared outside the timed part."""
    salt = settings.user_id_salt()
    params = []
    with path.open("rb") as lines:
        for line in lines:
            record = TraceRecord.model_validate_json(line)
            naive_utc = record.timestamp.replace(tzinfo=None)
            cost, source = price_record(record, naive_utc.date())
            params.append(insert_params(record, naive_utc, cost, source, salt, sqlite_times))
    return params


def time_executemany(url: str, params: list[tuple]) -> float:
    engine = migrated_engine(url)
    started = time.perf_counter()
    for start in range(0, len(params), BATCH):
        with engine.begin() as connection:
            connection.exec_driver_sql(insert_sql(connection), params[start : start + BATCH])
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def time_import(url: str, path: Path) -> float:
    engine = migrated_engine(url)
    started = time.perf_counter()
    report = import_file(engine, path, "jsonl", batch_size=BATCH)
    print(f"  ({report.workers} worker process(es) preparing batches)")
    elapsed = time.perf_counter() - started
    assert report.written.inserted == ROWS and report.rejected == 0, report.summary()
    engine.dispose()
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "traces.jsonl"
        write_jsonl(path, ROWS)
        print(f"{ROWS:,} JSONL lines, {path.stat().st_size / 1e6:.0f} MB, batches of {BATCH:,}")
        with backends() as urls:
            for label, url in urls:
                params = baseline_params(path, sqlite_times=label == "sqlite")
                with backends() as scratch:
                    base_url = dict(scratch)[label]
                    baseline = time_executemany(base_url, params)
                    ours = time_import(url, path)
                print(
                    f"{label:>10}: import {ROWS / ours:>9,.0f} rows/s | plain executemany {ROWS / baseline:>9,.0f} rows/s"
                    f" | ratio {baseline / ours:.2f} (floor 0.5)"
                )


if __name__ == "__main__":
    main()
