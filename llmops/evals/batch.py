"""The Message Batches API for evaluations: submit, poll with backoff, collect by ``custom_id``.

Half the price, no rate-limit pressure, answers within hours rather than seconds: the mode for
large nightly datasets. Every API call goes through the run's retry policy and breaker; a
batch is polled with a growing interval (capped) until it ends or ``max_wait`` passes, when it
is cancelled and its unanswered cases count as failed (the run is then incomplete). An open
breaker stops the polling at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import anthropic

from llmops.evals.limits import CallStats, CircuitBreaker, CircuitOpenError, RetryPolicy, call_with_retries

if TYPE_CHECKING:
    from anthropic.types.messages.batch_create_params import Request

MAX_REQUESTS_PER_BATCH = 100_000
"""The API's limit; the runner submits smaller chunks so that a chunk's cases fit in memory."""
RESUBMITTED_ERRORS = frozenset({"api_error", "overloaded_error"})
"""Per-request errors that another batch may not repeat; invalid requests would."""


@dataclass(frozen=True)
class BatchPolling:
    """How often to ask whether a batch has ended: ``initial`` seconds, ×``factor`` each time, at most ``maximum``.

    Args:
        initial: The first wait, in seconds.
        factor: Each wait's growth.
        maximum: The longest wait between two checks.
        max_wait: How long to wait in all before cancelling the batch.
    """

    initial: float = 1.0
    factor: float = 1.5
    maximum: float = 60.0
    max_wait: float = 24 * 3600.0
    """The API expires a batch after 24 h; waiting longer cannot help."""

    def delays(self) -> AsyncIterator[float]:
        """The waits between checks, growing to ``maximum``, without end."""
        return _delays(self)


async def _delays(polling: BatchPolling) -> AsyncIterator[float]:
    delay = polling.initial
    while True:
        yield delay
        delay = min(polling.maximum, delay * polling.factor)


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """One request's answer: the message, or the error of the request (``expired``, ``canceled``, …)."""

    custom_id: str
    message: dict[str, Any] | None
    """The Message as the API's JSON, as the live path reads it."""
    error: str | None
    retryable: bool


class BatchRunner:
    """Submits request chunks and yields their outcomes, with the run's retries and breaker.

    Args:
        client: The run's client (SDK retries off).
        policy: Retries for each API call (submit, poll, cancel, read results).
        breaker: The run's circuit breaker; once open, polling stops.
        stats: The run's call counters.
        stop: The run's stop event.
        call_timeout: Seconds one API call may take.
        polling: How often and how long to wait for a batch.
        on_status: Told of each submission and status check (the run's progress notes).

    Example:
        ```python
        runner = BatchRunner(client, policy=RetryPolicy(), breaker=CircuitBreaker(), stats=CallStats(),
                             stop=asyncio.Event(), call_timeout=60.0, polling=BatchPolling())
        async for outcome in runner.run([{"custom_id": "case-0", "params": request}]):
            print(outcome.custom_id, outcome.error or "answered")
        ```
    """

    def __init__(
        self,
        client: anthropic.AsyncAnthropic,
        *,
        policy: RetryPolicy,
        breaker: CircuitBreaker,
        stats: CallStats,
        stop: asyncio.Event,
        call_timeout: float,
        polling: BatchPolling,
        on_status: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.policy = policy
        self.breaker = breaker
        self.stats = stats
        self.stop = stop
        self.call_timeout = call_timeout
        self.polling = polling
        self.on_status = on_status
        self.batch_ids: list[str] = []

    async def _api(self, call: Callable[[], Any]) -> Any:
        value, _ = await call_with_retries(
            call, policy=self.policy, breaker=self.breaker, stats=self.stats, stop=self.stop, timeout=self.call_timeout
        )
        return value

    def _status(self, text: str) -> None:
        if self.on_status is not None:
            self.on_status(text)

    async def run(self, requests: Sequence[dict[str, Any]]) -> AsyncIterator[BatchOutcome]:
        """Submit ``requests`` (``{"custom_id", "params"}``) as one batch and yield every outcome."""
        if len(requests) > MAX_REQUESTS_PER_BATCH:
            raise ValueError(f"a batch holds at most {MAX_REQUESTS_PER_BATCH} requests, got {len(requests)}")
        # The params are the Messages API's JSON, as the live path sends it with every prompt
        # parameter; the SDK's ``Request`` TypedDict names only the parameters it knows.
        batch_requests = cast("list[Request]", list(requests))
        batch = await self._api(lambda: self.client.messages.batches.create(requests=batch_requests))
        self.batch_ids.append(batch.id)
        self._status(f"batch {batch.id}: {len(requests)} requests submitted")
        waited = 0.0
        delays = self.polling.delays()
        while batch.processing_status != "ended":
            if self.stop.is_set():
                raise CircuitOpenError(self.breaker.reason or "the run was stopped")
            if waited >= self.polling.max_wait:
                batch = await self._cancel(batch.id, waited)
                continue
            delay = min(await anext(delays), self.polling.max_wait - waited)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), delay)
            waited += delay
            batch = await self._api(lambda: self.client.messages.batches.retrieve(batch.id))
            counts = batch.request_counts
            self._status(f"batch {batch.id}: {batch.processing_status}, {counts.processing} processing, {waited:.0f} s")
        seen: set[str] = set()
        decoder = await self._api(lambda: self.client.messages.batches.results(batch.id))
        async for line in decoder:
            seen.add(line.custom_id)
            yield _outcome(line)
        for request in requests:
            if request["custom_id"] not in seen:
                yield BatchOutcome(request["custom_id"], None, f"batch {batch.id} returned no result for it", False)

    async def _cancel(self, batch_id: str, waited: float) -> Any:
        """Cancel and wait for the batch to end (what was answered meanwhile is still collected)."""
        self._status(f"batch {batch_id}: cancelling, it did not end within {waited:.0f} s")
        batch = await self._api(lambda: self.client.messages.batches.cancel(batch_id))
        while batch.processing_status != "ended":
            await asyncio.sleep(self.polling.initial)
            batch = await self._api(lambda: self.client.messages.batches.retrieve(batch_id))
        return batch


def _outcome(line: Any) -> BatchOutcome:
    result = line.result
    if result.type == "succeeded":
        return BatchOutcome(line.custom_id, result.message.model_dump(mode="json"), None, False)
    if result.type == "errored":
        error = result.error.error
        return BatchOutcome(line.custom_id, None, f"{error.type}: {error.message}", error.type in RESUBMITTED_ERRORS)
    return BatchOutcome(line.custom_id, None, f"batch request {result.type}", False)
