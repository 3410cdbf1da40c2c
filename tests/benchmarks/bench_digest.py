"""The daily digest over 30 days of 1,000,000 traces: its numbers from the rollups, the
message, and the chart, each timed on the same SQLite store.

Floor (issue 5): the digest's numbers in under 2 s.
"""

from __future__ import annotations

import os
import time

from sqlalchemy import func, select

from llmops.report.digest import compute_digest
from llmops.report.preview import render_preview
from llmops.report.slack import render_chart, render_digest
from llmops.store.models import Trace, TraceRollup
from tests.benchmarks.common import migrated_engine, seed_demo_traffic, sqlite_url, timed

TRACES = int(os.environ.get("BENCH_DIGEST_TRACES", "1000000"))
BATCH = 20_000


def main() -> None:
    with sqlite_url() as url:
        engine = migrated_engine(url)
        started = time.perf_counter()
        _, day = seed_demo_traffic(engine, TRACES, BATCH)
        with engine.connect() as connection:
            traces = connection.execute(select(func.count()).select_from(Trace)).scalar_one()
            rollups = connection.execute(select(func.count()).select_from(TraceRollup)).scalar_one()
        print(
            f"seeded {traces:,} traces ({rollups:,} rollup rows) ending {day} in {time.perf_counter() - started:.0f} s (SQLite)"
        )
        digest = compute_digest(engine, day)
        numbers = timed(lambda: compute_digest(engine, day))
        message = timed(lambda: render_digest(digest, with_chart=False))
        chart = timed(lambda: render_chart(digest), repeats=3)
        rendered = render_digest(digest, with_chart=False)
        preview = timed(lambda: render_preview(rendered.blocks, rendered.thread_blocks), repeats=3)
        print(
            f"  digest numbers  {numbers * 1000:7.1f} ms (floor: < 2 s) — {digest.totals['requests'].value:,} requests that day"
        )
        print(f"  message render  {message * 1000:7.1f} ms (Block Kit, markdown, text)")
        print(f"  30-day chart    {chart * 1000:7.1f} ms (matplotlib PNG)")
        print(f"  message preview {preview * 1000:7.1f} ms (the Block Kit and its thread drawn as a PNG)")
        print(f"  caching estimate: {digest.caching.repeated_requests:,} repeated calls, ${digest.caching.savings_usd:,.2f}")
        engine.dispose()


if __name__ == "__main__":
    main()
