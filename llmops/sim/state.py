"""One simulator instance's state: its configuration, fault RNG, prompt cache, batches and counters.

The HTTP layer (``server``) is stateless; every endpoint reaches this object through
``app.state.sim``. Keeping it apart lets tests and the admin API change the configuration of a
running server (``configure``) under one lock, and lets shutdown wake every sleeping request.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette

from llmops.sim.batches import BatchResult, BatchStore
from llmops.sim.config import SimConfig
from llmops.sim.faults import Fault, FaultInjector
from llmops.sim.messages import message_json, new_id
from llmops.sim.protocol import ApiError, MessagesRequest, known_model, parse_request
from llmops.sim.responder import Completion, complete
from llmops.sim.usage import InputUsage, PromptCache


class RequestStats:
    """Counts of API requests by endpoint and status, and of injected faults (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_endpoint: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._faults: Counter[str] = Counter()

    def record(self, endpoint: str, status: int) -> None:
        """Count one answered request, e.g. ``record("POST /v1/messages", 200)``."""
        with self._lock:
            self._by_endpoint[endpoint][str(status)] += 1

    def record_fault(self, fault: Fault) -> None:
        """Count one injected fault."""
        with self._lock:
            self._faults[fault.value] += 1

    def snapshot(self) -> dict[str, Any]:
        """The counts as ``GET /_sim/stats`` returns them.

        Returns:
            ``total_requests``, ``by_endpoint`` (``{"POST /v1/messages": {"200": n}}``) and ``faults``.
        """
        with self._lock:
            by_endpoint = {endpoint: dict(counts) for endpoint, counts in self._by_endpoint.items()}
            return {
                "total_requests": sum(sum(counts.values()) for counts in by_endpoint.values()),
                "by_endpoint": by_endpoint,
                "faults": dict(self._faults),
            }

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            self._by_endpoint.clear()
            self._faults.clear()


class SimState:
    """Everything one simulator instance holds: config, fault RNG, prompt cache, batches, stats.

    Args:
        config: The starting configuration; ``configure`` replaces it while the server runs.
    """

    def __init__(self, config: SimConfig):
        self._config = config
        self._config_lock = threading.Lock()
        self.faults = FaultInjector(config)
        self.cache = PromptCache(ttl_5m_seconds=lambda: self.config.cache_ttl_seconds)
        self.batches = BatchStore(self.answer_batch_request, delay_seconds=lambda: self.config.batch_delay_seconds)
        self.stats = RequestStats()
        self.sampling = random.Random(config.seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def config(self) -> SimConfig:
        """The configuration in force."""
        return self._config

    def configure(self, **changes: Any) -> SimConfig:
        """Apply a partial update (validated as a whole); sending ``seed`` restarts the fault RNG.

        Args:
            **changes: ``SimConfig`` fields and their new values.

        Returns:
            The new configuration.

        Raises:
            pydantic.ValidationError: An unknown field or an invalid value; nothing changes.
        """
        with self._config_lock:
            config = self._config.updated(**changes)
            self.faults.reconfigure(config, reseed="seed" in changes)
            self._config = config
        return config

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """The ASGI lifespan: remember the event loop; on shutdown stop the batches' tasks."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        yield
        self.batches.close()

    def release_waiters(self) -> None:
        """Wake every sleeping request (hangs, latency, stream pacing) so shutdown is immediate."""
        if self._loop is not None and self._stopping is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stopping.set)

    async def pause(self, seconds: float) -> None:
        """Sleep, but no longer than until the server stops."""
        if seconds <= 0 or self._stopping is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def inject_fault(self) -> None:
        """Maybe stall (then answer normally) or fail this request, as the config's rates say.

        Raises:
            ApiError: The drawn fault is a 429, 529 or 500.
        """
        fault = self.faults.draw()
        if fault is None:
            return
        self.stats.record_fault(fault)
        if fault is Fault.HANG:
            await self.pause(self.config.hang_seconds)
            return
        raise self.faults.error_for(fault)

    def answer(self, request: MessagesRequest, model_id: str) -> tuple[Completion, InputUsage]:
        """The simulated answer to a request and its input usage after the prompt cache.

        Args:
            request: The validated request.
            model_id: Its model as a dated id.

        Returns:
            ``(completion, usage)``; with ``sampling_variation`` on and a temperature above 0,
            each call draws a fresh sample.
        """
        config = self.config
        sample = self.sampling.getrandbits(48) + 1 if config.sampling_variation and request.temperature != 0 else 0
        completion = complete(request, provider_updated=model_id in config.provider_updated_models, sample=sample)
        return completion, self.cache.account(model_id, request)

    def answer_batch_request(self, params: dict[str, Any]) -> BatchResult:
        """One batch item: succeeded with a Message, or errored (invalid params, injected 5xx)."""
        try:
            request = parse_request(MessagesRequest, params)
            if request.stream:
                raise ApiError(400, "invalid_request_error", "stream: batch requests cannot stream")
            model_id = known_model(request.model)
            fault = self.faults.draw()
            if fault in (Fault.OVERLOADED, Fault.API_ERROR):
                self.stats.record_fault(fault)
                raise self.faults.error_for(fault)
            completion, usage = self.answer(request, model_id)
        except ApiError as error:
            return {"type": "errored", "error": error.body(new_id("req"))}
        return {"type": "succeeded", "message": message_json(model_id, completion, usage, service_tier="batch")}
