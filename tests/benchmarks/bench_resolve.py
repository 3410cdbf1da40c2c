"""``registry.resolve``: a cached resolve (the application's hot path) against a store read.

Floor (issue 3): a cached resolve takes microseconds. Figures are medians of per-call times over
batches, so one slow batch (GC, scheduler) does not move them.
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import date

from llmops import settings
from llmops.prompts import PromptVersion
from llmops.release.registry import Registry, resolve
from llmops.store.engine import dispose_engines
from tests.benchmarks.common import backends, migrated_engine

BATCHES = 21
CACHED_CALLS = 20_000
UNCACHED_CALLS = 200


def median_microseconds(call, calls: int) -> float:  # type: ignore[no-untyped-def]
    per_call = []
    for batch in range(BATCHES):
        started = time.perf_counter()
        for n in range(calls):
            call(f"user-{batch}-{n}")
        per_call.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(per_call)


def seed(registry: Registry) -> None:
    for version in ("1.0.0", "2.0.0"):
        registry.register(
            PromptVersion(
                name="support",
                version=version,
                model="claude-3-5-sonnet-20241022",
                created=date(2025, 11, 15),
                author="bench",
                changelog=f"release {version}",
                system="You are Acme's support assistant. " * 60,
                parameters={"temperature": 0.3, "max_tokens": 512},
            ),
            actor="bench",
        )
    registry.set_label("support", "production", "1.0.0", actor="bench", reason="bench")
    registry.set_label("support", "canary", "2.0.0", traffic_percent=10, actor="bench", reason="bench")


def main() -> None:
    with backends() as urls:
        for label, url in urls:
            engine = migrated_engine(url)
            cached = Registry(engine)
            seed(cached)
            uncached = Registry(engine, cache_ttl=0)  # every call re-reads the labels
            cached_us = median_microseconds(lambda user: cached.resolve("support", user), CACHED_CALLS)
            uncached_us = median_microseconds(lambda user: uncached.resolve("support", user), UNCACHED_CALLS)
            os.environ[settings.LLMOPS_DATABASE_URL] = url  # module-level resolve() reads the configured store
            module_us = median_microseconds(lambda user: resolve("support", user), CACHED_CALLS)
            print(
                f"{label:<10} cached Registry.resolve {cached_us:6.2f} µs | llmops.release.registry.resolve {module_us:6.2f} µs "
                f"| uncached (store read) {uncached_us:8.1f} µs | {uncached_us / cached_us:5.0f}× (floor: microseconds)"
            )
            dispose_engines()
            engine.dispose()
        os.environ.pop(settings.LLMOPS_DATABASE_URL, None)


if __name__ == "__main__":
    main()
