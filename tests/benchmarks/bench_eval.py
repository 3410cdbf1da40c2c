"""The eval runner's throughput and memory (issue 4): 1,000 cases against the local model server
answering in 200 ms, at concurrency 50.

The ideal is cases × latency ÷ concurrency, with the latency measured in the same run: the
median round trip of sequential calls through the same SDK client (so the ideal already
contains one call's own client and server time; what the ratio shows is the cost of running
50 at once: the event loop, the limiter, retries bookkeeping, scoring and the store writes).
The server runs in its own process, as a provider would, so it does not share this one's GIL.
Peak memory (tracemalloc) of runs of 200 and 1,000 cases shows whether it grows with the cases.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc

import anthropic
import httpx

from llmops import settings as env
from llmops.evals.datasets import Dataset, EvalExample
from llmops.evals.runner import RunSettings, async_client, evaluate
from llmops.evals.scorers import AssertionScorer
from llmops.prompts import PromptVersion
from tests.benchmarks.common import migrated_engine, sqlite_url

CASES = int(os.environ.get("BENCH_EVAL_CASES", "1000"))
CONCURRENCY = 50
LATENCY_MS = 200
CALIBRATION_CALLS = 20
MEMORY_SIZES = (200, 1000)
PROMPT = PromptVersion(
    name="support", version="1.0.0", model="claude-3-5-sonnet-20241022", created="2025-11-01", author="bench",
    changelog="benchmark", system="You are Acme Corp's support assistant. Follow the refund policy.",
    parameters={"max_tokens": 400, "temperature": 0.0},
)  # fmt: skip
QUESTIONS = (
    "I want a refund for my blender, order {n}.",
    "Where is my order {n}? It has not arrived.",
    "I can't log in to my account since yesterday (order {n}).",
    "Why was I charged twice for order {n}?",
)


def dataset(size: int) -> Dataset:
    return Dataset(
        name=f"bench-{size}",
        prompt_name=PROMPT.name,
        examples=[
            EvalExample(
                id=f"case-{index:05d}",
                input=QUESTIONS[index % len(QUESTIONS)].format(n=10_000 + index),
                assertions=[{"type": "max_length", "value": 4000}, {"type": "not_contains", "value": "password"}],
            )
            for index in range(size)
        ],
    )


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-c", "from cli import main; main()", "sim", "--port", str(port),
               "--latency-ms", str(LATENCY_MS), "--latency-sigma", "0"]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return server, url
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the model server did not start")


async def one_call_latency(client: anthropic.AsyncAnthropic) -> float:
    """Median seconds of a sequential call (after a warm-up that opens the connection)."""
    timings = []
    for index in range(CALIBRATION_CALLS + 2):
        started = time.perf_counter()
        await client.messages.create(
            model=PROMPT.model, max_tokens=400, system=PROMPT.system,
            messages=[{"role": "user", "content": QUESTIONS[index % len(QUESTIONS)].format(n=index)}],
        )  # fmt: skip
        if index >= 2:
            timings.append(time.perf_counter() - started)
    return statistics.median(timings)


async def timed_run(engine, size: int) -> tuple[float, float, float, object]:  # type: ignore[no-untyped-def]
    """(wall seconds, one call's latency, CPU seconds of this process, the run) with the runner's own client."""
    data = dataset(size)
    async with async_client() as client:
        latency = await one_call_latency(client)
    started, cpu = time.perf_counter(), time.process_time()
    record = await evaluate(
        PROMPT, data, engine=engine, scorers=[AssertionScorer()], settings=RunSettings(concurrency=CONCURRENCY, cache="off")
    )
    return time.perf_counter() - started, latency, time.process_time() - cpu, record


def peak_memory(engine, size: int) -> int:  # type: ignore[no-untyped-def]
    data = dataset(size)  # the dataset itself is the caller's; the run must not grow with it
    settings = RunSettings(concurrency=CONCURRENCY, cache="off")
    tracemalloc.start()
    try:
        asyncio.run(evaluate(PROMPT, data, engine=engine, scorers=[AssertionScorer()], settings=settings))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    server, url = start_server()
    os.environ[env.ANTHROPIC_BASE_URL], os.environ[env.ANTHROPIC_API_KEY] = url, "bench"
    try:
        with sqlite_url() as store_url:
            engine = migrated_engine(store_url)
            wall, latency, cpu, record = asyncio.run(timed_run(engine, CASES))
            ideal = CASES * latency / CONCURRENCY
            print(f"{CASES} cases at concurrency {CONCURRENCY}, server latency {LATENCY_MS} ms: status {record.status}, "
                  f"{record.calls} calls, {record.retries} retries")  # fmt: skip
            print(f"  one call, measured now: {latency * 1000:.1f} ms  →  ideal {ideal:.2f} s")
            print(f"  wall time: {wall:.2f} s  =  {wall / ideal:.2f}× the ideal (target ≤ 1.3×)")
            print(f"  throughput: {CASES / wall:.0f} cases/s (ideal {CONCURRENCY / latency:.0f}); "
                  f"runner CPU {cpu / CASES * 1000:.2f} ms per case")  # fmt: skip
            peaks = {size: peak_memory(engine, size) for size in MEMORY_SIZES}
            for size, peak in peaks.items():
                print(f"  peak traced memory of a {size}-case run: {peak / 1e6:.1f} MB")
            low, high = MEMORY_SIZES
            print(f"  {high / low:.0f}× the cases → {peaks[high] / peaks[low]:.2f}× the peak memory")
            engine.dispose()
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
