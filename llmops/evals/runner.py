"""The evaluation runner: one prompt version on one dataset against the version's pinned model.

The fan-out lives here, not in Prefect: a flow calls ``run_eval`` once per version and dataset,
and the runner drives hundreds of concurrent calls itself, so 1,000 cases are one task run.

Live mode: a feeder reads the dataset in chunks, answers cache hits from the store at once and
queues the rest for ``concurrency`` workers; each call waits for the rate limiter, is bounded
by a timeout, and is retried per the ``RetryPolicy`` (the SDK's own retries are off). A
circuit breaker watches every attempt; once it opens, no new call starts and the run ends
``incomplete``. Results stream to the store in batches through one writer task, so memory
does not grow with the number of cases.

Batch mode sends the uncached cases through the Message Batches API in chunks (``batch.py``)
and prices them at the batch discount.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Any, Literal

import anthropic
from sqlalchemy import Engine

from llmops import settings as env
from llmops.evals import store
from llmops.evals.batch import BatchPolling, BatchRunner
from llmops.evals.cache import CachedOutput, CacheMode, cache_key, entry, lookup
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
from llmops.evals.scorers import (
    AssertionScorer,
    JudgeOutputError,
    Scorer,
    ScorerConfig,
    ScorerInput,
    judge_cost,
    load_scorer_config,
)
from llmops.pricing import TokenUsage, price_call
from llmops.prompts import PromptVersion, render
from llmops.store.engine import get_engine

Mode = Literal["live", "batch"]
CHARS_PER_TOKEN = 4
"""For the tokens-per-minute limiter's estimate of a request's input before it is sent."""
FEED_CHUNK = 256
"""Cases whose cache entries are looked up in one query."""
OVERALL = "overall"
"""The metric holding the scorer configuration's weighted mean of a case's scores."""


class ModelUnavailable(RuntimeError):
    """No API key and no local model server configured."""


@dataclass(frozen=True)
class RunSettings:
    """How a run calls the model; stored with the run."""

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
        return CircuitBreaker(self.breaker_consecutive, self.breaker_window, self.breaker_failure_rate)


@dataclass(frozen=True, slots=True)
class RunProgress:
    """What a progress bar shows; ``note`` is the latest event (a batch submitted, the breaker opened)."""

    run_id: int
    total: int
    done: int
    failed: int
    cached: int
    cost_usd: Decimal
    note: str | None = None


ProgressCallback = Callable[[RunProgress], None]


@dataclass(frozen=True, slots=True)
class Case:
    example: EvalExample
    repeat: int
    key: str


def async_client(api_key: str | None = None, base_url: str | None = None) -> anthropic.AsyncAnthropic:
    """An SDK client on aiohttp's HTTP stack: with 50 calls in flight it spends about a third less
    CPU per call than the default httpx pool (bench_eval), and the runner is CPU-bound well before
    the provider is. Unset arguments come from the environment."""
    api_key = api_key or env.env(env.ANTHROPIC_API_KEY)
    base_url = base_url or env.env(env.ANTHROPIC_BASE_URL)
    if not api_key and not base_url:
        raise ModelUnavailable(
            f"no model to evaluate against: set {env.ANTHROPIC_API_KEY}, or start the local model server "
            f"(`llmops sim`) and set {env.ANTHROPIC_BASE_URL} to its address"
        )
    return anthropic.AsyncAnthropic(api_key=api_key or "sim", base_url=base_url, http_client=anthropic.DefaultAioHttpClient())


def default_scorers(prompt_name: str, evals_dir: Path | str | None = None) -> ScorerConfig | list[Scorer]:
    """The prompt's ``scorers.yaml``; without one, the examples' own assertions."""
    try:
        return load_scorer_config(prompt_name, evals_dir)
    except FileNotFoundError:
        return [AssertionScorer()]


def message_text(message: dict[str, Any]) -> str:
    """The answer's text blocks, from the Messages API's JSON."""
    return "".join(block["text"] for block in message["content"] if block.get("type") == "text")


def message_usage(message: dict[str, Any]) -> TokenUsage:
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


class _Tally:
    """Running counts and per-metric sums: the run's aggregates without keeping its results."""

    def __init__(self) -> None:
        self.done = self.failed = self.cached = self.unpriced = 0
        self.cost = Decimal(0)
        self.sums: dict[str, list[float]] = {}
        self.first_error: str | None = None

    def add(self, result: dict[str, Any], unpriced: bool) -> None:
        if result["error"] is None:
            self.done += 1
        else:
            self.failed += 1
            self.first_error = self.first_error or f"{result['example_id']}: {result['error']}"
        self.cached += result["cached"]
        self.unpriced += unpriced
        if result["cost_usd"] is not None:
            self.cost += result["cost_usd"]
        if result["error"] is None:
            for metric, value in (result["scores"] or {}).items():
                total = self.sums.setdefault(metric, [0.0, 0])
                total[0] += value
                total[1] += 1

    def scores(self) -> dict[str, dict[str, float]]:
        return {metric: {"mean": total / count, "n": count} for metric, (total, count) in sorted(self.sums.items())}


class _Run:
    """One run's state: settings, limiter, breaker, counters and the queue to the writer."""

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
        self.config = scorers if isinstance(scorers, ScorerConfig) else None
        self.scorers = self.config.build(judge_client=_JudgeClient(self)) if self.config else list(scorers)
        self.progress = progress
        self.parameters = prompt.parameters.model_dump(exclude_none=True)
        self.limiter = RateLimiter(settings.requests_per_minute, settings.tokens_per_minute)
        self.breaker = settings.breaker()
        self.stats = CallStats()
        self.stop = asyncio.Event()
        self.tally = _Tally()
        self.total = len(dataset) * settings.repeats
        self.fatal: str | None = None
        self.interrupted: str | None = None
        self.run_id = 0
        self.batch_ids: list[str] = []
        self.results: asyncio.Queue[tuple[dict[str, Any], dict[str, Any] | None] | None] = asyncio.Queue(
            maxsize=settings.write_batch_size * 2
        )

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

    # -- results ---------------------------------------------------------------------------

    async def score(self, case: Case, scorer_input: ScorerInput) -> tuple[dict[str, float], dict[str, Any], Decimal, str | None]:
        """Every applicable scorer's value and reason, what judging cost, and the first scorer error.

        Assertions take microseconds and run inline; a judge awaits its own (retried) calls;
        other scorers (similarity runs a neural network) run in a thread so calls keep flowing.
        """
        scores: dict[str, float] = {}
        reasons: dict[str, Any] = {}
        spent = Decimal(0)
        for scorer in self.scorers:
            if not scorer.applies(case.example):
                continue
            try:
                if isinstance(scorer, AssertionScorer):
                    score = scorer.score(case.example, scorer_input)
                elif type(scorer).ascore is not Scorer.ascore:
                    score = await scorer.ascore(case.example, scorer_input)
                else:
                    score = await asyncio.to_thread(scorer.score, case.example, scorer_input)
            except Exception as exc:  # a scorer's failure fails this case, not the run
                if isinstance(exc, JudgeOutputError):  # its unreadable replies were paid for all the same
                    reasons[scorer.name] = {"reason": str(exc), "details": exc.details}
                    spent += judge_cost(exc.details)
                return scores, reasons, spent, f"scorer {scorer.name}: {type(exc).__name__}: {exc}"[:500]
            scores[scorer.name] = float(score.value)
            reasons[scorer.name] = {"reason": score.reason, "details": score.details or None}
            spent += judge_cost(score.details)
        if self.config is not None and scores:
            overall = self.config.overall(scores)
            if overall is not None:
                scores[OVERALL] = overall
        return scores, reasons, spent, None

    async def answered(
        self, case: Case, text: str, usage: TokenUsage, latency_ms: float | None, attempts: int, is_batch: bool
    ) -> None:
        cost = price_call(self.prompt.model, usage, datetime.now(UTC), is_batch=is_batch)
        scorer_input = ScorerInput(text=text, model=self.prompt.model, cost_usd=cost, latency_ms=latency_ms, usage=usage)
        scores, reasons, judging, error = await self.score(case, scorer_input)
        cache_entry = None
        if self.settings.cache != "off":
            cache_entry = entry(
                case.key, self.prompt.model, text, usage.input_tokens, usage.output_tokens, cost, latency_ms,
                is_batch, datetime.now(UTC),
            )  # fmt: skip
        await self.emit(
            case, output=text, scores=scores, reasons=reasons, cost=None if cost is None else cost + judging,
            latency_ms=latency_ms, usage=usage, attempts=attempts, error=error, cached=False,
            cache_entry=cache_entry, unpriced=cost is None,
        )  # fmt: skip

    async def from_cache(self, case: Case, hit: CachedOutput) -> None:
        """A cached answer costs this run nothing (but its judging); scorers see what the call cost when made."""
        usage = TokenUsage(input_tokens=hit.input_tokens, output_tokens=hit.output_tokens)
        scorer_input = ScorerInput(
            text=hit.output, model=self.prompt.model, cost_usd=hit.cost_usd, latency_ms=hit.latency_ms, usage=usage
        )
        scores, reasons, judging, error = await self.score(case, scorer_input)
        await self.emit(
            case, output=hit.output, scores=scores, reasons=reasons, cost=judging, latency_ms=hit.latency_ms,
            usage=usage, attempts=0, error=error, cached=True, cache_entry=None, unpriced=False,
        )  # fmt: skip

    async def failed(self, case: Case, error: str, attempts: int) -> None:
        await self.emit(
            case, output=None, scores=None, reasons=None, cost=None, latency_ms=None, usage=None, attempts=attempts,
            error=error, cached=False, cache_entry=None, unpriced=False,
        )  # fmt: skip

    async def emit(
        self,
        case: Case,
        *,
        output: str | None,
        scores: dict[str, float] | None,
        reasons: dict[str, Any] | None,
        cost: Decimal | None,
        latency_ms: float | None,
        usage: TokenUsage | None,
        attempts: int,
        error: str | None,
        cached: bool,
        cache_entry: dict[str, Any] | None,
        unpriced: bool,
    ) -> None:
        result = {
            "example_id": case.example.id, "repeat": case.repeat, "output": output, "scores": scores,
            "reasons": reasons, "cost_usd": cost, "latency_ms": latency_ms,
            "input_tokens": usage.input_tokens if usage else None, "output_tokens": usage.output_tokens if usage else None,
            "attempts": attempts, "error": error, "cached": cached,
        }  # fmt: skip
        self.tally.add(result, unpriced)
        await self.results.put((result, cache_entry))
        self.report()

    def report(self, note: str | None = None) -> None:
        if self.progress is not None:
            tally = self.tally
            self.progress(RunProgress(self.run_id, self.total, tally.done, tally.failed, tally.cached, tally.cost, note))

    async def writer(self) -> None:
        """Drain the result queue into the store, ``write_batch_size`` rows per transaction."""
        size = self.settings.write_batch_size
        replace = self.settings.cache == "refresh"
        rows: list[dict[str, Any]] = []
        entries: list[dict[str, Any]] = []
        while (item := await self.results.get()) is not None:
            result, cache_entry = item
            rows.append(result)
            if cache_entry is not None:
                entries.append(cache_entry)
            if len(rows) >= size:
                await asyncio.to_thread(store.write_batch, self.engine, self.run_id, rows, entries, replace_cache=replace)
                rows, entries = [], []
        await asyncio.to_thread(store.write_batch, self.engine, self.run_id, rows, entries, replace_cache=replace)

    # -- live mode -------------------------------------------------------------------------

    async def live(self) -> None:
        work: asyncio.Queue[Case | None] = asyncio.Queue(maxsize=self.settings.concurrency * 2)
        async with asyncio.TaskGroup() as group:
            for _ in range(self.settings.concurrency):
                group.create_task(self.worker(work))
            async for case, hit in self.cases():
                if hit is not None:
                    await self.from_cache(case, hit)
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
            return await self.client.post("/v1/messages", body=request, cast_to=object)  # type: ignore[no-any-return]

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
                self.report(f"circuit breaker open: {self.breaker.reason}")
            await self.failed(case, str(failure), failure.attempts)
            return
        latency_ms = (time.perf_counter() - started) * 1000
        usage = message_usage(message)
        self.limiter.charge(usage.output_tokens)
        await self.answered(case, message_text(message), usage, latency_ms, attempts, is_batch=False)

    # -- batch mode ------------------------------------------------------------------------

    async def batch(self) -> None:
        runner = BatchRunner(
            self.client, policy=self.settings.retry, breaker=self.breaker, stats=self.stats, stop=self.stop,
            call_timeout=self.settings.call_timeout, polling=self.settings.batch_polling, on_status=self.report,
        )  # fmt: skip
        self.batch_ids = runner.batch_ids
        chunk: list[Case] = []
        async for case, hit in self.cases():
            if hit is not None:
                await self.from_cache(case, hit)
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
                    await self.answered(case, message_text(message), message_usage(message), None, round_number, is_batch=True)
                elif outcome.retryable and round_number <= self.settings.batch_resubmits:
                    again[outcome.custom_id] = case
                else:
                    await self.failed(case, outcome.error or "no answer", round_number)
            if not again:
                return
            pending = again

    # -- the run ---------------------------------------------------------------------------

    def outcome(self) -> tuple[str, str | None]:
        tally = self.tally
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
        self.run_id = await asyncio.to_thread(
            store.create_run, self.engine, prompt_name=self.prompt.name, prompt_version=self.prompt.version,
            content_hash=self.prompt.content_hash, model=self.prompt.model, dataset_name=self.dataset.name,
            dataset_hash=self.dataset.content_hash, mode=self.settings.mode, repeats=self.settings.repeats,
            cases_total=self.total, details=self.details(extra), created_by=created_by,
        )  # fmt: skip
        self.report("started")
        error: BaseException | None = None
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.writer())
                try:
                    await (self.live() if self.settings.mode == "live" else self.batch())
                except CircuitOpenError:
                    pass  # the breaker's reason becomes the run's
                except CallFailed as failure:  # a batch could not be submitted or read back
                    if failure.kind == "fatal":
                        self.fatal = str(failure)
                    else:
                        self.interrupted = f"the batch API kept failing: {failure}"
                await self.results.put(None)
        except BaseExceptionGroup as group_error:
            error = group_error.exceptions[0]
        except asyncio.CancelledError as cancelled:  # the caller gave up: record it, then let it through
            error = cancelled
        status, reason = self.outcome()
        if error is not None:
            status, reason = "failed", f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        record = await asyncio.to_thread(
            store.finish_run, self.engine, self.run_id, status=status, reason=reason, scores=self.tally.scores(),
            calls=self.stats.calls, retries=self.stats.retries, unpriced_calls=self.tally.unpriced,
            details=self.details(extra),
        )  # fmt: skip
        self.report(f"{status}" + (f": {reason}" if reason else ""))
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
    """Run ``prompt`` on every example of ``dataset`` (× repeats) and record it; returns the run.

    ``scorers`` (a list, or a ``ScorerConfig`` whose judge then calls through this run's limits)
    default to ``default_scorers`` (the prompt's ``scorers.yaml`` in ``evals_dir``); ``client``
    to ``async_client()`` (closed afterwards). ``details`` (e.g. the flow run id) is stored
    with the run. The run ends ``complete``, ``incomplete`` or ``failed``; an error in the run
    itself (the store) is raised after the run is marked failed.
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
    """``evaluate`` from synchronous code (the CLI, Prefect tasks)."""
    return asyncio.run(evaluate(prompt, dataset, **options))
