"""``python -m tests.benchmarks [NAME ...]``: run every benchmark (or the named ones) and print figures."""

from __future__ import annotations

import importlib
import sys
import time

BENCHMARKS = (
    "bench_cli",
    "bench_import",
    "bench_costs",
    "bench_tracing",
    "bench_resolve",
    "bench_digest",
    "bench_eval",
    "bench_gates",
    "bench_drift",
    "bench_pinned_drift",
    "bench_compression",
)


def main(names: list[str]) -> None:
    for name in names or BENCHMARKS:
        module = importlib.import_module(f"tests.benchmarks.{name}")
        print(f"\n== {name} ==", flush=True)
        started = time.perf_counter()
        module.main()
        print(f"({name} took {time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
