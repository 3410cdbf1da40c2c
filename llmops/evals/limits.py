"""What keeps an evaluation run polite to the provider and bounded in time: a requests- and
tokens-per-minute limiter, a retry policy and a circuit breaker.

The SDK's own retries are switched off (``max_retries=0``) because they honour ``retry-after``
without an upper bound and cannot be counted; here every wait is capped, every retry is
counted, and the breaker sees every failed attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import anthropic

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
"""Statuses worth another attempt (what the SDK itself retries, plus 529 overloaded)."""
FATAL_STATUS = frozenset({401, 403, 404})
"""A wrong key, a forbidden model or an unknown model id: every other case would fail alike."""
T = TypeVar("T")


class TokenBucket:
    """A continuously refilled bucket of ``per_minute`` units that may go into debt.

    Debt lets a caller take what a call really used after the fact (output tokens are only
    known afterwards); later callers then wait until the debt is repaid.

    Args:
        per_minute: The bucket's capacity and refill per minute.
        clock: Seconds, monotonic (a test passes a fake one).

    Example:
        >>> bucket = TokenBucket(60, clock=lambda: 0.0)
        >>> bucket.take(60)
        >>> bucket.wait_time(1)
        1.0
    """

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute <= 0:
            raise ValueError(f"a per-minute limit must be positive, got {per_minute}")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._level = self.capacity
        self._updated = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._updated) * self.rate)
        self._updated = now

    def wait_time(self, amount: float) -> float:
        """Seconds until ``amount`` can be taken (0: now); a request above capacity waits for a full bucket."""
        self._refill()
        needed = min(amount, self.capacity)
        return 0.0 if self._level >= needed else (needed - self._level) / self.rate

    def take(self, amount: float) -> None:
        """Take ``amount`` now, going into debt if the bucket holds less."""
        self._refill()
        self._level -= amount


class RateLimiter:
    """Requests- and tokens-per-minute limits shared by every worker of a run (None = no limit).

    Args:
        requests_per_minute: Requests per minute; None for no limit.
        tokens_per_minute: Tokens per minute (estimated input, then the output); None for no limit.
        clock: Seconds, monotonic.

    Example:
        ```python
        limiter = RateLimiter(requests_per_minute=50, tokens_per_minute=40_000)
        await limiter.acquire(estimated_input_tokens)
        ...  # the call
        limiter.charge(output_tokens)
        ```
    """

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.requests = TokenBucket(requests_per_minute, clock) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute, clock) if tokens_per_minute else None
        self._lock = asyncio.Lock()
        self.waited_seconds = 0.0

    async def acquire(self, tokens: int) -> None:
        """Wait for one request and ``tokens`` (the estimated input) to be available, then take them.

        The lock makes waiters queue in order, so a large request is not starved by small ones.
        """
        if self.requests is None and self.tokens is None:
            return
        async with self._lock:
            while True:
                wait = max(
                    self.requests.wait_time(1) if self.requests else 0.0,
                    self.tokens.wait_time(tokens) if self.tokens else 0.0,
                )
                if wait <= 0:
                    break
                self.waited_seconds += wait
                await asyncio.sleep(wait)
            if self.requests:
                self.requests.take(1)
            if self.tokens:
                self.tokens.take(tokens)

    def charge(self, tokens: int) -> None:
        """Take tokens used beyond the estimate (the output), once the call has returned."""
        if self.tokens is not None and tokens > 0:
            self.tokens.take(tokens)


@dataclass(frozen=True)
class RetryPolicy:
    """Jittered exponential backoff that honours the provider's ``retry-after``, within caps.

    Args:
        max_attempts: Attempts per call, the first included.
        base_delay: The first backoff step, in seconds.
        max_delay: The largest backoff step.
        retry_after_cap: The longest ``retry-after`` honoured.

    Raises:
        ValueError: If ``max_attempts`` is below 1.

    Example:
        >>> RetryPolicy(max_attempts=3).delay(1, retry_after=45.0, rng=random.Random(0)) >= 30.0
        True
    """

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 20.0
    retry_after_cap: float = 30.0
    """A ``retry-after`` longer than this is cut to it: a run must finish in bounded time."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        "Equal jitter": half the exponential step fixed, half random, so workers that failed
        together do not retry together. With ``retry-after`` the wait is at least that (capped).
        """
        draw = (rng or random).random()
        if retry_after is not None and retry_after > 0:
            return min(self.retry_after_cap, retry_after) + self.base_delay * draw
        step = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return step / 2 + step / 2 * draw


def retry_after_seconds(error: BaseException) -> float | None:
    """The ``retry-after`` (seconds, or ``retry-after-ms``) of an API error, if it carried one.

    Args:
        error: The failed attempt's exception.

    Returns:
        Seconds to wait, or None (no header, or an HTTP date).
    """
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return float(value) * scale
        except ValueError:
            return None  # an HTTP date: rare from Anthropic; the exponential backoff applies
    return None


def classify(error: BaseException) -> str:
    """``retryable`` (try again), ``fatal`` (stop the run) or ``case`` (this case fails, others go on).

    Example:
        >>> classify(TimeoutError())
        'retryable'
    """
    if isinstance(error, anthropic.APITimeoutError | anthropic.APIConnectionError | TimeoutError):
        return "retryable"
    if isinstance(error, anthropic.APIStatusError):
        if error.status_code in RETRYABLE_STATUS or error.status_code >= 500:
            return "retryable"
        if error.status_code in FATAL_STATUS:
            return "fatal"
        return "case"
    return "case"


def describe(error: BaseException) -> str:
    """One line for the result's ``error`` column: status and type, then the message."""
    if isinstance(error, anthropic.APIStatusError):
        body = error.body if isinstance(error.body, dict) else {}
        error_field = body.get("error")
        detail = error_field if isinstance(error_field, dict) else {}
        kind, message = detail.get("type", type(error).__name__), detail.get("message", error.message)
        return f"{error.status_code} {kind}: {message}"[:500]
    if isinstance(error, TimeoutError | anthropic.APITimeoutError):
        return "timeout: no answer within the per-call timeout"
    return f"{type(error).__name__}: {error}"[:500]


@dataclass
class CircuitBreaker:
    """Opens when the provider is clearly down: ``consecutive`` failed attempts in a row, or
    more than ``failure_rate`` of the last ``window`` attempts failed.

    It counts attempts, not cases, so it sees an outage while the retries are still hiding it.
    Once open it stays open: the run stops and is marked incomplete.

    Args:
        consecutive: Failed attempts in a row that open it.
        window: Recent attempts the failure rate is taken over.
        failure_rate: The failure rate, over a full window, that opens it.

    Example:
        >>> breaker = CircuitBreaker(consecutive=2)
        >>> breaker.record(False, "529 overloaded"); breaker.record(False, "529 overloaded")
        >>> breaker.open, breaker.reason
        (True, '2 consecutive failed calls (last: 529 overloaded)')
    """

    consecutive: int = 12
    window: int = 60
    failure_rate: float = 0.7
    _recent: deque[bool] = field(default_factory=deque, repr=False)
    _streak: int = 0
    reason: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.failure_rate <= 1:
            raise ValueError(f"failure_rate must be in (0, 1], got {self.failure_rate}")
        self._recent = deque(maxlen=self.window)

    @property
    def open(self) -> bool:
        """Whether the breaker has opened (``reason`` says why)."""
        return self.reason is not None

    def record(self, ok: bool, error: str | None = None) -> None:
        """Count one attempt; ``error`` describes a failed one, for the reason."""
        self._recent.append(ok)
        self._streak = 0 if ok else self._streak + 1
        if self.open or ok:
            return
        failures = self._recent.count(False)
        if self._streak >= self.consecutive:
            self.reason = f"{self._streak} consecutive failed calls (last: {error})"
        elif len(self._recent) == self.window and failures / self.window > self.failure_rate:
            self.reason = f"{failures} of the last {self.window} calls failed (last: {error})"

    def trip(self, reason: str) -> None:
        """Open at once (a fatal error such as a rejected API key)."""
        if not self.open:
            self.reason = reason


class CircuitOpenError(RuntimeError):
    """The breaker opened: this call was not (re)tried."""


class CallFailed(Exception):
    """A call that failed for good: its last error, how many attempts it took, and its kind.

    Args:
        error: The last attempt's exception; the message is its ``describe`` line.
        attempts: Attempts made.
        kind: ``retryable`` (attempts ran out or the breaker opened), ``fatal`` or ``case``.
    """

    def __init__(self, error: BaseException, attempts: int, kind: str) -> None:
        super().__init__(describe(error))
        self.error = error
        self.attempts = attempts
        self.kind = kind


@dataclass
class CallStats:
    """Every attempt of a run, so retries are visible in the run's record."""

    calls: int = 0
    retries: int = 0
    retry_wait_seconds: float = 0.0


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    breaker: CircuitBreaker,
    stats: CallStats,
    stop: asyncio.Event,
    timeout: float,
    before_attempt: Callable[[], Awaitable[None]] | None = None,
) -> tuple[T, int]:
    """``call()`` until it succeeds; returns its value and the attempts it took.

    Each attempt is bounded by ``timeout``; retryable failures wait per ``policy`` (woken early
    when ``stop`` is set). A fatal error trips the breaker and sets ``stop``.

    Args:
        call: Makes one attempt (a new coroutine each time).
        policy: Attempts and backoff.
        breaker: Sees every attempt; an open one stops all calls.
        stats: Counts the attempts, retries and time spent waiting.
        stop: Set when the run must stop; cuts a backoff wait short.
        timeout: Seconds one attempt may take.
        before_attempt: Awaited before each attempt (the rate limiter).

    Returns:
        The call's value and the number of attempts.

    Raises:
        CallFailed: When attempts run out or the error is not retryable.
        CircuitOpenError: Once the breaker is open.

    Example:
        ```python
        message, attempts = await call_with_retries(
            lambda: client.messages.create(**request), policy=RetryPolicy(), breaker=CircuitBreaker(),
            stats=CallStats(), stop=asyncio.Event(), timeout=60.0,
        )
        ```
    """
    attempt = 0
    while True:
        if breaker.open:
            raise CircuitOpenError(breaker.reason)
        if before_attempt is not None:
            await before_attempt()
        attempt += 1
        stats.calls += 1
        try:
            async with asyncio.timeout(timeout):
                value = await call()
        except (anthropic.APIError, TimeoutError) as error:
            kind = classify(error)
            if kind == "fatal":
                breaker.trip(f"the provider refused the call: {describe(error)}")
                stop.set()
                raise CallFailed(error, attempt, kind) from error
            if kind != "retryable":
                raise CallFailed(error, attempt, kind) from error
            breaker.record(False, describe(error))
            if breaker.open:
                stop.set()
                raise CallFailed(error, attempt, kind) from error
            if attempt >= policy.max_attempts:
                raise CallFailed(error, attempt, kind) from error
            delay = policy.delay(attempt, retry_after_seconds(error))
            stats.retries += 1
            stats.retry_wait_seconds += delay
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            continue
        breaker.record(True)
        return value, attempt
