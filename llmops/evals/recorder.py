"""What a run keeps of each case: its answer scored, priced, tallied, stored in batches, reported.

However a case ended (a live call, a batch request, a cache hit, or a failure), its result
takes one way from there: every applicable scorer scores the answer (a scorer's failure fails
the case, not the run), the weighted overall score is added, the model's and the judge's costs
are summed, a running tally keeps the run's aggregates and progress without keeping its
results, and the row (with the cache entry a new answer makes) is queued for one writer task
that stores ``write_batch_size`` rows per transaction, so memory does not grow with the
number of cases.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from llmops.evals import store
from llmops.evals.cache import CachedOutput, CacheMode, entry
from llmops.evals.datasets import EvalExample
from llmops.evals.scorers import AssertionScorer, JudgeOutputError, Scorer, ScorerConfig, ScorerInput, judge_cost
from llmops.pricing import TokenUsage, price_call

OVERALL = "overall"
"""The metric holding the scorer configuration's weighted mean of a case's scores."""


@dataclass(frozen=True, slots=True)
class RunProgress:
    """What a progress bar shows; ``note`` is the latest event (a batch submitted, the breaker opened).

    Args:
        run_id: The run's id in the store.
        total: Cases in the run (examples × repeats).
        done: Cases answered and scored.
        failed: Cases that failed (their call, or a scorer).
        cached: Cases answered from the cache.
        cost_usd: What the run has cost so far, judging included.
        note: The latest event, if this update reports one.

    Example:
        ```python
        def show(progress: RunProgress) -> None:
            print(f"{progress.done + progress.failed}/{progress.total} ${progress.cost_usd:.4f}", progress.note or "")

        run_eval(prompt, dataset, progress=show)
        ```
    """

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
    """One (example, repeat) of a run, with its cache key."""

    example: EvalExample
    repeat: int
    key: str


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
        """``{metric: {"mean", "n"}}`` over the answered cases, as the run row stores them."""
        return {metric: {"mean": total / count, "n": count} for metric, (total, count) in sorted(self.sums.items())}


class RunRecorder:
    """One run's results: scores each answer, tallies it, queues it for the store, reports progress.

    The runner sets ``run_id`` once the run row exists, runs ``writer`` as a task beside its
    calls, hands every case to ``answered``, ``from_cache`` or ``failed``, and ends with
    ``close``.

    Args:
        engine: The store.
        model: The model under evaluation (prices its calls).
        scorers: The scorers to run on each answer.
        config: The scorer configuration they came from, for the ``overall`` score; None for a bare list.
        cache: The run's cache mode: ``off`` makes no cache entries, ``refresh`` overwrites them.
        write_batch_size: Result rows per store transaction.
        total: Cases in the run, for progress.
        progress: Called after every case and on every event.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        model: str,
        scorers: Sequence[Scorer],
        config: ScorerConfig | None,
        cache: CacheMode,
        write_batch_size: int,
        total: int,
        progress: ProgressCallback | None,
    ) -> None:
        self.engine = engine
        self.model = model
        self.scorers = list(scorers)
        self.config = config
        self.cache = cache
        self.write_batch_size = write_batch_size
        self.total = total
        self.progress = progress
        self.run_id = 0
        self.tally = _Tally()
        self.results: asyncio.Queue[tuple[dict[str, Any], dict[str, Any] | None] | None] = asyncio.Queue(
            maxsize=write_batch_size * 2
        )

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
        """A new answer: priced (at the batch discount for a batch), scored, cached, recorded."""
        cost = price_call(self.model, usage, datetime.now(UTC), is_batch=is_batch)
        scorer_input = ScorerInput(text=text, model=self.model, cost_usd=cost, latency_ms=latency_ms, usage=usage)
        scores, reasons, judging, error = await self.score(case, scorer_input)
        cache_entry = None
        if self.cache != "off":
            cache_entry = entry(
                case.key, self.model, text, usage.input_tokens, usage.output_tokens, cost, latency_ms,
                is_batch, datetime.now(UTC),
            )  # fmt: skip
        await self._emit(
            case, output=text, scores=scores, reasons=reasons, cost=None if cost is None else cost + judging,
            latency_ms=latency_ms, usage=usage, attempts=attempts, error=error, cached=False,
            cache_entry=cache_entry, unpriced=cost is None,
        )  # fmt: skip

    async def from_cache(self, case: Case, hit: CachedOutput) -> None:
        """A cached answer costs this run nothing (but its judging); scorers see what the call cost when made."""
        usage = TokenUsage(input_tokens=hit.input_tokens, output_tokens=hit.output_tokens)
        scorer_input = ScorerInput(
            text=hit.output, model=self.model, cost_usd=hit.cost_usd, latency_ms=hit.latency_ms, usage=usage
        )
        scores, reasons, judging, error = await self.score(case, scorer_input)
        await self._emit(
            case, output=hit.output, scores=scores, reasons=reasons, cost=judging, latency_ms=hit.latency_ms,
            usage=usage, attempts=0, error=error, cached=True, cache_entry=None, unpriced=False,
        )  # fmt: skip

    async def failed(self, case: Case, error: str, attempts: int) -> None:
        """A case whose call failed for good: recorded with its error and the attempts it took."""
        await self._emit(
            case, output=None, scores=None, reasons=None, cost=None, latency_ms=None, usage=None, attempts=attempts,
            error=error, cached=False, cache_entry=None, unpriced=False,
        )  # fmt: skip

    async def _emit(
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
        """Tell the progress callback where the run stands, with ``note`` as the latest event."""
        if self.progress is not None:
            tally = self.tally
            self.progress(RunProgress(self.run_id, self.total, tally.done, tally.failed, tally.cached, tally.cost, note))

    async def writer(self) -> None:
        """Drain the result queue into the store, ``write_batch_size`` rows per transaction, until ``close``."""
        size = self.write_batch_size
        replace = self.cache == "refresh"
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

    async def close(self) -> None:
        """No more results: the writer stores what it holds and ends."""
        await self.results.put(None)
