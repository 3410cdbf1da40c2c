"""The eval runner's limits without a server: backoff, retry-after, error classes, the breaker,
the rate limiter on a fake clock, and the retry loop on scripted failures."""

from __future__ import annotations

import asyncio
import random

import anthropic
import httpx2
import pytest

from llmops.evals.limits import (
    CallFailed,
    CallStats,
    CircuitBreaker,
    CircuitOpenError,
    RateLimiter,
    RetryPolicy,
    TokenBucket,
    call_with_retries,
    classify,
    retry_after_seconds,
)

REQUEST = httpx2.Request("POST", "http://127.0.0.1/v1/messages")


def status_error(status: int, headers: dict[str, str] | None = None) -> anthropic.APIStatusError:
    response = httpx2.Response(status, headers=headers or {}, request=REQUEST)
    return anthropic.APIStatusError(f"status {status}", response=response, body=None)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    rng = random.Random(3)
    for attempt, step in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)):
        delays = [policy.delay(attempt, None, rng) for _ in range(200)]
        assert all(step / 2 <= delay <= step for delay in delays)
        assert max(delays) - min(delays) > step / 4  # jittered, not one value


def test_retry_after_is_honoured_but_capped() -> None:
    policy = RetryPolicy(base_delay=0.5, retry_after_cap=30.0)
    assert 7.0 <= policy.delay(1, 7.0) <= 7.5
    assert 30.0 <= policy.delay(1, 3600.0) <= 30.5


def test_retry_after_header_is_read_in_seconds_or_milliseconds() -> None:
    assert retry_after_seconds(status_error(429, {"retry-after": "7"})) == 7.0
    assert retry_after_seconds(status_error(429, {"retry-after-ms": "1500"})) == 1.5
    assert retry_after_seconds(status_error(429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) is None
    assert retry_after_seconds(status_error(500)) is None


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (status_error(429), "retryable"),
        (status_error(529), "retryable"),
        (status_error(500), "retryable"),
        (status_error(408), "retryable"),
        (anthropic.APITimeoutError(request=REQUEST), "retryable"),
        (anthropic.APIConnectionError(request=REQUEST), "retryable"),
        (TimeoutError(), "retryable"),
        (status_error(401), "fatal"),
        (status_error(404), "fatal"),
        (status_error(400), "case"),
        (status_error(413), "case"),
    ],
)
def test_errors_are_classified(error: BaseException, kind: str) -> None:
    assert classify(error) == kind


def test_breaker_opens_on_consecutive_failures_and_a_success_resets_the_streak() -> None:
    breaker = CircuitBreaker(consecutive=3, window=100, failure_rate=0.9)
    for ok in (False, False, True, False, False):
        breaker.record(ok, "529")
    assert not breaker.open
    breaker.record(False, "529 overloaded")
    assert breaker.open and "3 consecutive" in breaker.reason and "529 overloaded" in breaker.reason


def test_breaker_opens_on_failure_rate_over_a_full_window() -> None:
    breaker = CircuitBreaker(consecutive=100, window=10, failure_rate=0.5)
    for ok in (True, False) * 4 + (False,):
        breaker.record(ok)
    assert not breaker.open  # 5 of 9: the window is not full yet
    breaker.record(False)
    assert breaker.open and "6 of the last 10" in breaker.reason


def test_token_bucket_refills_continuously_and_can_owe() -> None:
    clock = FakeClock()
    bucket = TokenBucket(60, clock)  # one unit per second
    bucket.take(60)
    assert bucket.wait_time(1) == pytest.approx(1.0)
    bucket.take(30)  # the output tokens of a call: debt
    assert bucket.wait_time(1) == pytest.approx(31.0)
    clock.now += 31
    assert bucket.wait_time(1) == 0
    assert bucket.wait_time(600) == pytest.approx(59.0)  # above capacity: waits for a full bucket


def test_rate_limiter_spaces_requests_beyond_the_per_minute_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    limiter = RateLimiter(requests_per_minute=2, tokens_per_minute=1000, clock=clock)

    async def four_requests() -> None:
        for _ in range(4):
            await limiter.acquire(100)

    asyncio.run(four_requests())
    assert slept == [pytest.approx(30.0), pytest.approx(30.0)]
    limiter.charge(2000)  # a long answer: 900 tokens left, now 1,100 owed
    asyncio.run(limiter.acquire(100))
    assert slept[-1] == pytest.approx(1200 / (1000 / 60))  # tokens, not the request budget (30 s), decide


def run_script(outcomes: list[object], policy: RetryPolicy, breaker: CircuitBreaker, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    """Run ``call_with_retries`` over a call that raises or returns each scripted outcome in turn."""
    stats = CallStats()
    stop = asyncio.Event()
    script = iter(outcomes)

    async def call() -> object:
        outcome = next(script)
        if outcome == "hang":
            await asyncio.sleep(3600)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def main():  # type: ignore[no-untyped-def]
        return await call_with_retries(call, policy=policy, breaker=breaker, stats=stats, stop=stop, timeout=timeout)

    try:
        return asyncio.run(main()), stats, stop
    except (CallFailed, CircuitOpenError) as exc:
        return exc, stats, stop


FAST = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.002)


def test_transient_errors_and_a_hang_are_retried_until_an_answer() -> None:
    breaker = CircuitBreaker(consecutive=10)
    outcome, stats, _ = run_script(
        [status_error(429, {"retry-after-ms": "1"}), "hang", status_error(529), "answer"], FAST, breaker, timeout=0.05
    )
    assert outcome == ("answer", 4)
    assert (stats.calls, stats.retries) == (4, 3)
    assert not breaker.open


def test_attempts_run_out() -> None:
    outcome, stats, _ = run_script([status_error(500)] * 4, FAST, CircuitBreaker(consecutive=10))
    assert isinstance(outcome, CallFailed) and outcome.attempts == 4 and outcome.kind == "retryable"
    assert stats.retries == 3


def test_a_bad_request_is_not_retried_and_does_not_count_against_the_provider() -> None:
    breaker = CircuitBreaker(consecutive=1)
    outcome, stats, _ = run_script([status_error(400)], FAST, breaker)
    assert isinstance(outcome, CallFailed) and outcome.kind == "case" and stats.calls == 1
    assert not breaker.open


def test_a_rejected_key_trips_the_breaker_and_stops_the_run() -> None:
    breaker = CircuitBreaker()
    outcome, _, stop = run_script([status_error(401)], FAST, breaker)
    assert isinstance(outcome, CallFailed) and outcome.kind == "fatal"
    assert breaker.open and stop.is_set()


def test_the_breaker_opening_ends_retries_and_no_new_call_starts() -> None:
    breaker = CircuitBreaker(consecutive=2)
    outcome, stats, stop = run_script([status_error(529), status_error(529), "never reached"], FAST, breaker)
    assert isinstance(outcome, CallFailed) and stats.calls == 2 and stop.is_set()
    outcome, stats, _ = run_script(["never reached"], FAST, breaker)
    assert isinstance(outcome, CircuitOpenError) and stats.calls == 0
