"""What tracing adds to an app's call: wrapped vs plain client against the local simulator.

Calls alternate between a plain client, a wrapped client writing to an in-memory sink, and a
wrapped client writing to the store (SQLite in a temporary LLMOPS_HOME, so the writer thread's
pricing and inserts compete with the app for the GIL as they would in production). The order
within each round is shuffled so that neither variant always runs on a warmer connection.
"Added median" is the median of the per-round differences (traced minus plain), which stays
put when the server's latency is bimodal; "added p95" is the difference of the p95s.
The floor: a median added latency of at most 200 µs per call.

Run: ``.venv/bin/python tests/benchmarks/bench_tracing.py [N]`` (also part of ``make bench``).
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import anthropic

from llmops.records import TraceRecord
from llmops.sim import SimConfig, SimServer
from llmops.tracing import TraceRecorder, trace_anthropic

CALLS = 2_000
WARM_UP = 200
FLOOR_US = 200.0
REQUEST = {
    "model": "claude-3-5-sonnet-20241022",
    "max_tokens": 64,
    "system": "You are a customer support assistant for Acme Corp.",
    "messages": [{"role": "user", "content": "Where is my order #1234?"}],
}


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def timed_us(call: Callable[[], object]) -> float:
    started = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - started) / 1_000


def main(calls: int = CALLS) -> None:
    os.environ["LLMOPS_HOME"] = tempfile.mkdtemp(prefix="llmops-bench-")
    os.environ.pop("LLMOPS_DATABASE_URL", None)
    kept: list[TraceRecord] = []
    memory_recorder = TraceRecorder(kept.extend)
    store_recorder = TraceRecorder()
    with SimServer(SimConfig(latency_median_ms=0, latency_sigma=0, ttft_ms=0, seed=1)) as sim:

        def new_client() -> anthropic.Anthropic:
            return anthropic.Anthropic(base_url=sim.base_url, api_key="sim", max_retries=0)

        clients = {
            "plain": new_client(),
            "traced, memory sink": trace_anthropic(new_client(), recorder=memory_recorder, feature="bench"),
            "traced, store sink": trace_anthropic(new_client(), recorder=store_recorder, feature="bench"),
        }
        samples: dict[str, list[float]] = {name: [] for name in clients}
        order = list(clients)
        shuffler = random.Random(1)
        for round_number in range(WARM_UP + calls):
            shuffler.shuffle(order)
            for name in order:
                client = clients[name]
                elapsed = timed_us(lambda client=client: client.messages.create(**REQUEST))  # type: ignore[misc]
                if round_number >= WARM_UP:
                    samples[name].append(elapsed)
        memory_recorder.close(timeout=30)
        store_recorder.close(timeout=60)

    plain = samples["plain"]
    added_medians = {
        name: statistics.median(traced - untraced for traced, untraced in zip(values, plain, strict=True))
        for name, values in samples.items()
    }
    print(f"tracing overhead: {calls} calls per client after {WARM_UP} warm-up rounds, simulator latency 0")
    print(f"  {'client':<22}{'median µs':>12}{'p95 µs':>12}{'added median µs':>18}{'added p95 µs':>15}")
    for name, values in samples.items():
        added_p95 = percentile(values, 0.95) - percentile(plain, 0.95)
        print(
            f"  {name:<22}{statistics.median(values):>12.0f}{percentile(values, 0.95):>12.0f}"
            f"{added_medians[name]:>18.1f}{added_p95:>15.1f}"
        )
    for name, recorder in (("memory", memory_recorder), ("store", store_recorder)):
        print(f"  {name} recorder: {recorder.stats}")
    worst = max(added for name, added in added_medians.items() if name != "plain")
    verdict = "within" if worst <= FLOOR_US else "OVER"
    print(f"  worst added median {worst:.1f} µs: {verdict} the {FLOOR_US:.0f} µs floor")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else CALLS)
