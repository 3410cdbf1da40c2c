"""The evaluation runner: one prompt version on one dataset against the version's pinned model.

The fan-out lives here, not in Prefect: a flow calls ``run_eval`` once per version and dataset,
and the runner drives hundreds of concurrent calls itself, so 1,000 cases are one task run. In
live mode a feeder reads the dataset in chunks, answers cache hits from the store at once and
queues the rest for ``concurrency`` workers; each call waits for the rate limiter, is bounded
by a timeout, and is retried per the ``RetryPolicy`` (the SDK's own retries are off). A
circuit breaker watches every attempt; once it opens, no new call starts and the run ends
``incomplete``. Batch mode sends the uncached cases through the Message Batches API in chunks
(``batch``), priced at the batch discount. Either way each case ends at the run's
``RunRecorder`` (``recorder``), which scores it and streams it to the store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Literal, cast

import anthropic
from sqlalchemy import Engine

from llmops import settings as env
from llmops.evals import store
from llmops.evals.batch import BatchPolling, BatchRunner
from llmops.evals.cache import CachedOutput, CacheMode, cache_key, lookup
from llmops.evals.datasets import Dataset, EvalExample
from llmops.evals.limits import (
    CallFailed,
    CallStats,
    CircuitBreaker,
    CircuitOpenError,
    RateLimiter,
    RetryPolicy,
    call_with_retries,
)
from llmops.evals.recorder import OVERALL, Case, ProgressCallback, RunProgress, RunRecorder
from llmops.evals.scorers import AssertionScorer, Scorer, ScorerConfig, load_scorer_config
from llmops.pricing import TokenUsage
from llmops.prompts import PromptVersion, render
from llmops.store.engine import get_engine

__all__ = [
    "OVERALL",
    "ModelUnavailable",
    "ProgressCallback",
    "RunProgress",
    "RunSettings",
    "async_client",
    "default_scorers",
    "evaluate",
    "message_text",
    "message_usage",
    "run_eval",
]

Mode = Literal["live", "batch"]
CHARS_PER_TOKEN = 4
"""For the tokens-per-minute limiter's estimate of a request's input before it is sent."""
FEED_CHUNK = 256
"""Cases whose cache entries are looked up in one query."""
MODEL_TIMEOUT_SECONDS = 60.0
"""``async_client``'s timeout per request (the SDK's own default is 10 minutes)."""
MODEL_MAX_RETRIES = 2
"""``async_client``'s retries per request (evaluation runs use their ``RetryPolicy`` instead)."""


class ModelUnavailable(RuntimeError):
    """No API key and no local model server configured."""


@dataclass(frozen=True)
class RunSettings:
    """How a run calls the model; stored with the run.

    Args:
        concurrency: Calls in flight at once (live mode).
        repeats: Times each example is asked; repeats of a non-deterministic prompt are separate samples.
        mode: ``live`` (concurrent calls) or ``batch`` (the Message Batches API, half price, slower).
        call_timeout: Seconds one attempt may take.
        requests_per_minute: The requests limit shared by all workers; None for no limit.
        tokens_per_minute: The tokens limit (input estimated before, output charged after); None for no limit.
        retry: Backoff and attempts for retryable failures.
        breaker_consecutive: Failed attempts in a row that open the circuit breaker.
        breaker_window: Recent attempts the breaker's failure rate is taken over.
        breaker_failure_rate: The failure rate over a full window that opens the breaker.
        cache: ``use`` (read and write cached answers), ``refresh`` (call anyway, overwrite) or ``off``.
        write_batch_size: Result rows per store transaction.
        batch_chunk_size: Cases per submitted batch (batch mode).
        batch_polling: How often a batch's status is checked, and how long to wait for it.
        batch_resubmits: Extra batches for requests that hit a server error.

    Raises:
        ValueError: If a count is below 1, the timeout is not positive, or the mode or cache mode is unknown.

    Example:
        >>> settings = RunSettings(concurrency=32, repeats=3, cache="refresh")
        >>> settings.mode, settings.breaker().consecutive
        ('live', 12)
    """

    concurrency: int = 16
    repeats: int = 1
    mode: Mode = "live"
    call_timeout: float = 60.0
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker_consecutive: int = 12
    breaker_window: int = 60
    breaker_failure_rate: float = 0.7
    cache: CacheMode = "use"
    write_batch_size: int = 200
    batch_chunk_size: int = 5_000
    batch_polling: BatchPolling = field(default_factory=BatchPolling)
    batch_resubmits: int = 1

    def __post_init__(self) -> None:
        for name in ("concurrency", "repeats", "write_batch_size", "batch_chunk_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.mode not in ("live", "batch"):
            raise ValueError(f"mode must be live or batch, got {self.mode!r}")
        if self.cache not in ("use", "refresh", "off"):
            raise ValueError(f"cache must be use, refresh or off, got {self.cache!r}")
        if self.call_timeout <= 0:
            raise ValueError(f"call_timeout must be positive, got {self.call_timeout}")

    def breaker(self) -> CircuitBreaker:
        """A fresh circuit breaker with these settings (one per run)."""
        return CircuitBreaker(self.breaker_consecutive, self.breaker_window, self.breaker_failure_rate)


def async_client(api_key: str | None = None, base_url: str | None = None) -> anthropic.AsyncAnthropic:
    """An async SDK client for evaluation runs, on aiohttp's HTTP stack.

    With 50 calls in flight aiohttp spends about a third less CPU per call than the default
    httpx pool (bench_eval), and the runner is CPU-bound well before the provider is.

    Args:
        api_key: The API key; ``ANTHROPIC_API_KEY`` when None (the local model server needs none).
        base_url: The API's address; ``ANTHROPIC_BASE_URL`` when None (e.g. the ``llmops sim`` server).

    Returns:
        The client, with a ``MODEL_TIMEOUT_SECONDS`` timeout and ``MODEL_MAX_RETRIES`` retries
        (an evaluation run replaces both with its own); the caller closes it.

    Raises:
        ModelUnavailable: If neither a key nor a base URL is set.

    Example:
        ```python
        client = async_client(base_url="http://127.0.0.1:8765")
        record = await evaluate(prompt, dataset, client=client)
        await client.close()
        ```
    """
    api_key = api_key or env.env(env.ANTHROPIC_API_KEY)
    base_url = base_url or env.env(env.ANTHROPIC_BASE_URL)
    if not api_key and not base_url:
        raise ModelUnavailable(
            f"no model to evaluate against: set {env.ANTHROPIC_API_KEY}, or start the local model server "
            f"(`llmops sim`) and set {env.ANTHROPIC_BASE_URL} to its address"
        )
    return anthropic.AsyncAnthropic(
        api_key=api_key or "sim",
        base_url=base_url,
        timeout=MODEL_TIMEOUT_SECONDS,
        max_retries=MODEL_MAX_RETRIES,
        http_client=anthropic.DefaultAioHttpClient(),
    )


def default_scorers(prompt_name: str, evals_dir: Path | str | None = None) -> ScorerConfig | list[Scorer]:
    """What scores a prompt's runs when the caller names no scorers.

    Args:
        prompt_name: The prompt.
        evals_dir: The evals directory; ``LLMOPS_EVALS_DIR`` (or its default) when None.

    Returns:
        The prompt's ``scorers.yaml``; without one, an ``AssertionScorer`` for the examples' own assertions.

    Raises:
        ScorerConfigError: If the prompt's ``scorers.yaml`` is invalid.

    Example:
        ```python
        scorers = default_scorers("support-chat")  # a ScorerConfig: assertions, similarity, judge
        ```
    """
    try:
        return load_scorer_config(prompt_name, evals_dir)
    except FileNotFoundError:
        return [AssertionScorer()]


def message_text(message: dict[str, Any]) -> str:
    """The answer's text blocks, from the Messages API's JSON.

    Example:
        >>> message_text({"content": [{"type": "text", "text": "Within "}, {"type": "text", "text": "30 days."}]})
        'Within 30 days.'
    """
    return "".join(block["text"] for block in message["content"] if block.get("type") == "text")


def message_usage(message: dict[str, Any]) -> TokenUsage:
    """The call's token counts, from the Messages API's JSON (absent cache counts read as 0).

    Example:
        >>> message_usage({"usage": {"input_tokens": 120, "output_tokens": 40}}).output_tokens
        40
    """
    usage = message["usage"]
    return TokenUsage(
        input_tokens=usage["input_tokens"],
        output_tokens=usage["output_tokens"],
        cache_read_input_tokens=usage.get("cache_read_input_tokens") or 0,
        cache_creation_input_tokens=usage.get("cache_creation_input_tokens") or 0,
    )


class _JudgeMessages:
    def __init__(self, run: _Run) -> None:
        self.run = run

    async def create(self, **request: Any) -> anthropic.types.Message:
        run = self.run
        message, _ = await call_with_retries(
            lambda: run.client.messages.create(**request), policy=run.settings.retry, breaker=run.breaker,
            stats=run.stats, stop=run.stop, timeout=run.settings.call_timeout,
            before_attempt=lambda: run.limiter.acquire(sum(len(str(m["content"])) for m in request["messages"]) // CHARS_PER_TOKEN),
        )  # fmt: skip
        return message


class _JudgeClient:
    """What a ``JudgeScorer`` calls: the run's client behind its limiter, retries and breaker, so a
    judge outage stops the run like a model outage does and every judge retry is counted."""

    def __init__(self, run: _Run) -> None:
        self.messages = _JudgeMessages(run)


class _Run:
    """One run's calls: its settings, client, limiter, breaker and counters, in live or batch mode."""

    def __init__(
        self,
        engine: Engine,
        client: anthropic.AsyncAnthropic,
        prompt: PromptVersion,
        dataset: Dataset,
        scorers: Sequence[Scorer] | ScorerConfig,
        settings: RunSettings,
        progress: ProgressCallback | None,
    ) -> None:
        self.engine = engine
        self.client = client.with_options(max_retries=0, timeout=settings.call_timeout)
        self.prompt = prompt
        self.dataset = dataset
        self.settings = settings
        self.config: ScorerConfig | None = None
        self.scorers: list[Scorer]
        if isinstance(scorers, ScorerConfig):
            self.config = scorers
            self.scorers = scorers.build(judge_client=_JudgeClient(self))
        else:
            self.scorers = list(scorers)
        self.parameters = prompt.parameters.model_dump(exclude_none=True)
        self.limiter = RateLimiter(settings.requests_per_minute, settings.tokens_per_minute)
        self.breaker = settings.breaker()
        self.stats = CallStats()
        self.stop = asyncio.Event()
        self.total = len(dataset) * settings.repeats
        self.fatal: str | None = None
        self.interrupted: str | None = None
        self.batch_ids: list[str] = []
        self.recorder = RunRecorder(
            engine, model=prompt.model, scorers=self.scorers, config=self.config, cache=settings.cache,
            write_batch_size=settings.write_batch_size, total=self.total, progress=progress,
        )  # fmt: skip

    # -- requests --------------------------------------------------------------------------

    def system(self, example: EvalExample) -> str:
        """The system prompt, with ``{variables}`` from the example's ``metadata.variables``."""
        if not self.prompt.variables:
            return self.prompt.system
        return render(self.prompt, example.metadata.get("variables") or {})

    def request(self, case: Case) -> dict[str, Any]:
        return {
            "model": self.prompt.model,
            "system": self.system(case.example),
            "messages": case.example.messages(),
            **self.parameters,
        }

    def key(self, example: EvalExample, repeat: int) -> str:
        return cache_key(self.prompt.model, self.parameters, self.system(example), example.messages(), repeat)

    async def cases(self) -> AsyncIterator[tuple[Case, CachedOutput | None]]:
        """Every (example, repeat) in dataset order, with its cached output when the cache is read."""
        pairs = ((example, repeat) for example in self.dataset.examples for repeat in range(self.settings.repeats))
        while not self.stop.is_set():
            chunk = [Case(example, repeat, self.key(example, repeat)) for example, repeat in islice(pairs, FEED_CHUNK)]
            if not chunk:
                return
            hits = (
                await asyncio.to_thread(lookup, self.engine, [case.key for case in chunk]) if self.settings.cache == "use" else {}
            )
            for case in chunk:
                yield case, hits.get(case.key)

    # -- live mode -------------------------------------------------------------------------

    async def live(self) -> None:
        work: asyncio.Queue[Case | None] = asyncio.Queue(maxsize=self.settings.concurrency * 2)
        async with asyncio.TaskGroup() as group:
            for _ in range(self.settings.concurrency):
                group.create_task(self.worker(work))
            async for case, hit in self.cases():
                if hit is not None:
                    await self.recorder.from_cache(case, hit)
                else:
                    await work.put(case)
            for _ in range(self.settings.concurrency):
                await work.put(None)

    async def worker(self, work: asyncio.Queue[Case | None]) -> None:
        while (case := await work.get()) is not None:
            if not self.stop.is_set():
                await self.call(case)

    async def call(self, case: Case) -> None:
        request = self.request(case)
        estimate = (len(request["system"]) + sum(len(str(m["content"])) for m in request["messages"])) // CHARS_PER_TOKEN
        started = 0.0

        async def attempt() -> dict[str, Any]:
            """The SDK's documented raw request: its auth, headers, timeout and errors, but the
            body sent as the API takes it and the answer kept as JSON, which halves its CPU per
            call (bench_eval) and sends every prompt parameter whatever the SDK's signature."""
            nonlocal started
            started = time.perf_counter()
            message = await self.client.post("/v1/messages", body=request, cast_to=object)
            return cast("dict[str, Any]", message)  # with cast_to=object the SDK returns the parsed JSON body

        try:
            message, attempts = await call_with_retries(
                attempt, policy=self.settings.retry, breaker=self.breaker, stats=self.stats, stop=self.stop,
                timeout=self.settings.call_timeout, before_attempt=lambda: self.limiter.acquire(estimate),
            )  # fmt: skip
        except CircuitOpenError:
            return  # never started: counted as not run
        except CallFailed as failure:
            if failure.kind == "fatal":
                self.fatal = self.fatal or str(failure)
            if self.breaker.open:
                self.recorder.report(f"circuit breaker open: {self.breaker.reason}")
            await self.recorder.failed(case, str(failure), failure.attempts)
            return
        latency_ms = (time.perf_counter() - started) * 1000
        usage = message_usage(message)
        self.limiter.charge(usage.output_tokens)
        await self.recorder.answered(case, message_text(message), usage, latency_ms, attempts, is_batch=False)

    # -- batch mode ------------------------------------------------------------------------

    async def batch(self) -> None:
        runner = BatchRunner(
            self.client, policy=self.settings.retry, breaker=self.breaker, stats=self.stats, stop=self.stop,
            call_timeout=self.settings.call_timeout, polling=self.settings.batch_polling, on_status=self.recorder.report,
        )  # fmt: skip
        self.batch_ids = runner.batch_ids
        chunk: list[Case] = []
        async for case, hit in self.cases():
            if hit is not None:
                await self.recorder.from_cache(case, hit)
                continue
            chunk.append(case)
            if len(chunk) >= self.settings.batch_chunk_size:
                await self.submit(runner, chunk)
                chunk = []
        if chunk:
            await self.submit(runner, chunk)

    async def submit(self, runner: BatchRunner, cases: list[Case]) -> None:
        """One chunk, with up to ``batch_resubmits`` more batches for requests that hit a server error."""
        pending = {f"case-{index}": case for index, case in enumerate(cases)}
        for round_number in range(1, self.settings.batch_resubmits + 2):
            requests = [{"custom_id": custom_id, "params": self.request(case)} for custom_id, case in pending.items()]
            again: dict[str, Case] = {}
            async for outcome in runner.run(requests):
                case = pending[outcome.custom_id]
                if outcome.message is not None:
                    message = outcome.message
                    await self.recorder.answered(
                        case, message_text(message), message_usage(message), None, round_number, is_batch=True
                    )
                elif outcome.retryable and round_number <= self.settings.batch_resubmits:
                    again[outcome.custom_id] = case
                else:
                    await self.recorder.failed(case, outcome.error or "no answer", round_number)
            if not again:
                return
            pending = again

    # -- the run ---------------------------------------------------------------------------

    def outcome(self) -> tuple[str, str | None]:
        tally = self.recorder.tally
        not_run = self.total - tally.done - tally.failed
        if self.fatal:
            return "failed", self.fatal
        if self.interrupted:
            return "incomplete", f"{self.interrupted}; {not_run} of {self.total} cases not run"
        if self.breaker.open:
            return (
                "incomplete",
                f"stopped by the circuit breaker ({self.breaker.reason}); {not_run} of {self.total} cases not run, {tally.failed} failed",
            )
        if tally.failed or not_run:
            return "incomplete", f"{tally.failed} of {self.total} cases failed (first: {tally.first_error})"
        return "complete", None

    def details(self, extra: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "settings": asdict(self.settings),
            "scorers": [scorer.name for scorer in self.scorers],
            "judge": self.config.judge.model_dump() if self.config and self.config.judge else None,
            "retry_wait_seconds": round(self.stats.retry_wait_seconds, 3),
            "rate_limit_wait_seconds": round(self.limiter.waited_seconds, 3),
            "batch_ids": self.batch_ids,
            **(extra or {}),
        }

    async def execute(self, created_by: str | None, extra: dict[str, Any] | None) -> store.RunRecord:
        self.recorder.run_id = await asyncio.to_thread(
            store.create_run, self.engine, prompt_name=self.prompt.name, prompt_version=self.prompt.version,
            content_hash=self.prompt.content_hash, model=self.prompt.model, dataset_name=self.dataset.name,
            dataset_hash=self.dataset.content_hash, mode=self.settings.mode, repeats=self.settings.repeats,
            cases_total=self.total, details=self.details(extra), created_by=created_by,
        )  # fmt: skip
        self.recorder.report("started")
        error: BaseException | None = None
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.recorder.writer())
                try:
                    await (self.live() if self.settings.mode == "live" else self.batch())
                except CircuitOpenError:
                    pass  # the breaker's reason becomes the run's
                except CallFailed as failure:  # a batch could not be submitted or read back
                    if failure.kind == "fatal":
                        self.fatal = str(failure)
                    else:
                        self.interrupted = f"the batch API kept failing: {failure}"
                await self.recorder.close()
        except BaseExceptionGroup as group_error:
            error = group_error.exceptions[0]
        except asyncio.CancelledError as cancelled:  # the caller gave up: record it, then let it through
            error = cancelled
        status, reason = self.outcome()
        if error is not None:
            status, reason = "failed", f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        record = await asyncio.to_thread(
            store.finish_run, self.engine, self.recorder.run_id, status=status, reason=reason, scores=self.recorder.tally.scores(),
            calls=self.stats.calls, retries=self.stats.retries, unpriced_calls=self.recorder.tally.unpriced,
            details=self.details(extra),
        )  # fmt: skip
        self.recorder.report(f"{status}" + (f": {reason}" if reason else ""))
        if error is not None:
            raise error
        return record


async def evaluate(
    prompt: PromptVersion,
    dataset: Dataset,
    *,
    engine: Engine | None = None,
    client: anthropic.AsyncAnthropic | None = None,
    scorers: Sequence[Scorer] | ScorerConfig | None = None,
    settings: RunSettings | None = None,
    progress: ProgressCallback | None = None,
    created_by: str | None = None,
    details: dict[str, Any] | None = None,
    evals_dir: Path | str | None = None,
) -> store.RunRecord:
    """Run ``prompt`` on every example of ``dataset`` (× repeats) against its pinned model, and record it.

    The run ends ``complete``, ``incomplete`` (cases failed, or the circuit breaker stopped
    it) or ``failed`` (a fatal provider error); none of these raises. An error in the run itself
    (the store) is raised after the run is marked failed, and so is a cancellation.

    Args:
        prompt: The prompt version; its pinned model and parameters are what is evaluated.
        dataset: The examples.
        engine: The store; ``get_engine()`` when None.
        client: The async client; ``async_client()`` when None (then closed afterwards).
        scorers: A list of scorers, or a ``ScorerConfig`` (its judge then calls through this run's
            limiter, retries and breaker); ``default_scorers(prompt.name, evals_dir)`` when None.
        settings: Concurrency, mode, limits, retries, cache; ``RunSettings()`` when None.
        progress: Called after every case and on every event (started, batch status, breaker, end).
        created_by: Who made the run (``pinned-drift``, a candidate's marker); None for a version's own run.
        details: Stored with the run (e.g. the flow run id).
        evals_dir: Where the prompt's ``scorers.yaml`` is, when ``scorers`` is None.

    Returns:
        The finished run as stored.

    Raises:
        ModelUnavailable: If no client is given and none is configured.

    Example:
        ```python
        record = await evaluate(prompt, load_dataset("evals/support-chat/golden.jsonl"), settings=RunSettings(concurrency=32))
        record.status, record.metric_means()  # ('complete', {'assertions': 0.96, 'judge': 0.82, 'overall': ...})
        ```
    """
    own_client = client is None
    client = client or async_client()
    try:
        run = _Run(
            engine or get_engine(), client, prompt, dataset,
            scorers if scorers is not None else default_scorers(prompt.name, evals_dir),
            settings or RunSettings(), progress,
        )  # fmt: skip
        return await run.execute(created_by, details)
    finally:
        if own_client:
            await client.close()


def run_eval(prompt: PromptVersion, dataset: Dataset, **options: Any) -> store.RunRecord:
    """``evaluate`` from synchronous code (the CLI, Prefect tasks), in its own event loop.

    Args:
        prompt: The prompt version.
        dataset: The examples.
        **options: ``evaluate``'s keyword arguments.

    Returns:
        The finished run as stored.

    Example:
        ```python
        record = run_eval(prompt, dataset, settings=RunSettings(mode="batch"), progress=print)
        ```
    """
    return asyncio.run(evaluate(prompt, dataset, **options))
