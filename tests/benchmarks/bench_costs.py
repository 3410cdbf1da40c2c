"""`llmops costs` over 30 days of 1,000,000 traces: the rollup query against the equivalent
GROUP BY over raw traces (sums in SQL, exact percentiles of the fetched latencies), same store.

Floors (issue 2): ≥ 20× faster than raw, and under 1 s.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from datetime import timedelta

import numpy as np
from sqlalchemy import Engine, text

from llmops.store.rollups import cost_report
from tests.benchmarks.common import migrated_engine, seed_demo_traffic, sqlite_url, timed

TRACES = int(os.environ.get("BENCH_COSTS_TRACES", "1000000"))
GROUPINGS = ("feature", "model", "day")


def raw_report(engine: Engine, by: str, since, until) -> list[dict]:
    """What a tool without rollups does: aggregate and rank the raw rows of the window."""
    key = "date(timestamp)" if by == "day" else by
    window = {"since": str(since), "until": str(until + timedelta(days=1))}
    with engine.connect() as connection:
        sums = connection.execute(
            text(
                f"SELECT {key} AS k, COUNT(*), SUM(cost_usd), SUM(input_tokens), SUM(output_tokens),"
                f" SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END), SUM(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END)"
                f" FROM traces WHERE timestamp >= :since AND timestamp < :until GROUP BY {key}"
            ),
            window,
        ).all()
        latencies: dict[str, list[float]] = defaultdict(list)
        for group, latency in connection.execute(
            text(
                f"SELECT {key}, latency_ms FROM traces WHERE timestamp >= :since AND timestamp < :until AND latency_ms IS NOT NULL"
            ),
            window,
        ):
            latencies[group].append(latency)
    return [{"key": row[0], "requests": row[1], "p": np.percentile(latencies[row[0]], [50, 95, 99]).tolist()} for row in sums]


def main() -> None:
    with sqlite_url() as url:
        engine = migrated_engine(url)
        started = time.perf_counter()
        since, until = seed_demo_traffic(engine, TRACES)
        print(f"seeded {TRACES:,} traces over {since}..{until} in {time.perf_counter() - started:.0f} s (SQLite)")
        for by in GROUPINGS:
            ours = timed(lambda: cost_report(engine, since, until, by))
            raw = timed(lambda: raw_report(engine, by, since, until), repeats=3)
            print(
                f"  --by {by:<8} rollups {ours * 1000:7.1f} ms | raw GROUP BY {raw * 1000:8.1f} ms | "
                f"{raw / ours:6.1f}× faster (floors: 20×, < 1 s)"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
