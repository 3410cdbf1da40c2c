"""Thirty days of Acme Corp's support-assistant traffic, with two incidents to find.

The demo, the benchmarks and the detectors' tests all need a history that looks like a real
application's: weekly and daily rhythm, per-feature token shapes, caching, batch calls,
errors, feedback, and exactly two anomalies (``DEMO_INCIDENTS``) on otherwise ordinary days.

Each day is drawn from its own RNG seeded by (seed, volume, date) and its trace ids are
derived from the same key, so the same window gives the same traces on every run: writing
them twice stores them once. Traces are yielded one at a time in time order; at most one hour's
timestamps are held, so a million traces need no more memory than a thousand.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from llmops import settings
from llmops.days import default_day
from llmops.records import TraceRecord

DEFAULT_CALLS_PER_WEEKDAY = 2_000
DEFAULT_SEED = 7
WEEKEND_TRAFFIC_SHARE = 0.4
DAY_VOLUME_SIGMA = 0.03
DAY_LATENCY_SIGMA = 0.015
DAY_LATENCY_BOUND = 0.05
STAGING_SHARE = 0.02
ERROR_RATE = 0.01
ERROR_TYPES: tuple[tuple[str, float], ...] = (
    ("rate_limit_error", 0.5),
    ("overloaded_error", 0.35),
    ("api_error", 0.15),
)
STOP_SEQUENCE_RATE = 0.003
FEEDBACK_RATE = 0.05
POSITIVE_FEEDBACK_SHARE = 0.8
EVAL_SCORE_RATE = 0.2
CACHE_WRITE_SHARE = 0.08
"""Of the calls with a cacheable prefix, the share that writes the cache instead of reading it."""
UNKNOWN_MODEL = "acme-ft-support-v1"
"""An internal fine-tune that genai-prices has no price for: the "unpriced" column's traffic."""

HOURLY_WEIGHTS: tuple[float, ...] = (
    0.15, 0.10, 0.08, 0.08, 0.10, 0.18,
    0.35, 0.65, 0.95, 1.00, 1.00, 0.95,
    0.85, 0.95, 1.00, 1.00, 0.90, 0.75,
    0.55, 0.45, 0.38, 0.32, 0.25, 0.18,
)  # fmt: skip
"""Relative traffic per local hour: quiet nights, busy working hours, a lunch dip."""
_CUMULATIVE_HOUR_SHARES = tuple(sum(HOURLY_WEIGHTS[:hour]) / sum(HOURLY_WEIGHTS) for hour in range(25))


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """How one pinned model serves a feature: its share of the feature's calls and its speed."""

    model: str
    share: float
    """Its share of the feature's calls (a feature's shares sum to 1)."""
    ms_per_output_token: float
    median_ttft_ms: float


@dataclass(frozen=True, slots=True)
class FeatureProfile:
    """One feature of the demo application and the shape of its calls.

    Token counts are lognormal: a median and the sigma of its log.
    """

    feature: str
    prompt_name: str
    prompt_version: str
    traffic_share: float
    """Its share of the mixed stream's calls; with ``own_stream``, its calls per mixed call."""
    models: tuple[ModelProfile, ...]
    median_input_tokens: float
    input_sigma: float
    median_output_tokens: float
    output_sigma: float
    max_tokens: int
    """The answer's limit: a longer draw stops at ``max_tokens``."""
    cached_prefix_tokens: int
    """Input tokens of the cacheable prefix (the system prompt); 0 for none."""
    cached_share: float
    """The share of calls that send the prefix with a cache breakpoint."""
    streamed_share: float
    """The share of calls that stream (only those report a time to first token)."""
    batch_share: float
    """The share of calls made through the Message Batches API."""
    median_message_chars: float
    own_stream: bool = False
    """Drawn apart from the other features (its calls on top of theirs, from an RNG of its own), so
    that adding it to the demo left the older features' traces exactly as they were."""

    @property
    def system_prompt_hash(self) -> str:
        """Stands in for the hash of the version's system prompt, which the demo does not render."""
        return hashlib.sha256(f"{self.prompt_name}@{self.prompt_version}".encode()).hexdigest()[:16]


SONNET_3_5 = "claude-3-5-sonnet-20241022"
HAIKU_3 = "claude-3-haiku-20240307"
SONNET_4 = "claude-sonnet-4-20250514"

FEATURES: tuple[FeatureProfile, ...] = (
    FeatureProfile(
        feature="chat_response",
        prompt_name="support-chat",
        prompt_version="2.3.0",
        traffic_share=0.60,
        models=(
            ModelProfile(SONNET_3_5, share=0.80, ms_per_output_token=14.0, median_ttft_ms=650.0),
            ModelProfile(HAIKU_3, share=0.19, ms_per_output_token=7.0, median_ttft_ms=380.0),
            ModelProfile(UNKNOWN_MODEL, share=0.01, ms_per_output_token=9.0, median_ttft_ms=450.0),
        ),
        median_input_tokens=900,
        input_sigma=0.6,
        median_output_tokens=180,
        output_sigma=0.45,
        max_tokens=1024,
        cached_prefix_tokens=1_400,
        cached_share=0.6,
        streamed_share=0.9,
        batch_share=0.0,
        median_message_chars=220,
    ),
    FeatureProfile(
        feature="document_summarization",
        prompt_name="doc-summary",
        prompt_version="1.2.0",
        traffic_share=0.25,
        models=(ModelProfile(HAIKU_3, share=1.0, ms_per_output_token=7.0, median_ttft_ms=420.0),),
        median_input_tokens=9_000,
        input_sigma=0.7,
        median_output_tokens=300,
        output_sigma=0.4,
        max_tokens=1024,
        cached_prefix_tokens=2_100,
        cached_share=0.3,
        streamed_share=0.0,
        batch_share=0.35,
        median_message_chars=26_000,
    ),
    FeatureProfile(
        feature="code_review",
        prompt_name="code-review",
        prompt_version="3.0.2",
        traffic_share=0.15,
        models=(ModelProfile(SONNET_4, share=1.0, ms_per_output_token=18.0, median_ttft_ms=900.0),),
        median_input_tokens=3_500,
        input_sigma=0.8,
        median_output_tokens=600,
        output_sigma=0.5,
        max_tokens=2048,
        cached_prefix_tokens=2_600,
        cached_share=0.5,
        streamed_share=0.5,
        batch_share=0.0,
        median_message_chars=12_000,
    ),
    FeatureProfile(
        feature="help_center",
        prompt_name="help-center",
        prompt_version="1.0.0",
        traffic_share=0.10,
        models=(ModelProfile(SONNET_3_5, share=1.0, ms_per_output_token=14.0, median_ttft_ms=700.0),),
        median_input_tokens=120,
        input_sigma=0.5,
        median_output_tokens=170,
        output_sigma=0.4,
        max_tokens=1024,
        cached_prefix_tokens=2_311,
        cached_share=0.7,
        streamed_share=0.9,
        batch_share=0.0,
        median_message_chars=180,
        own_stream=True,
    ),
)
"""The demo application: which prompt and pinned models serve each feature, and its call shape.
Chat is served by support-chat 2.3.0 for the whole history: the demo releases 2.3.0 as the version
the app served until now and canaries 2.3.1 today, so only today's canary calls carry 2.3.1.
The help center's prompt is its whole policy handbook (~2,300 tokens), cached on most calls; its
calls come on top of the others' (``own_stream``), one for every ten of theirs."""
MIXED_FEATURES = tuple(profile for profile in FEATURES if not profile.own_stream)
"""Features that share one stream of calls, each with its share of it (the shares sum to 1)."""
CHAT_FEATURES = ("chat_response", "help_center")
"""Features whose user message is a customer's chat message (the others send a document or a diff)."""
FEATURES_BY_NAME: dict[str, FeatureProfile] = {profile.feature: profile for profile in FEATURES}
_SYSTEM_PROMPT_HASHES = {profile.feature: profile.system_prompt_hash for profile in FEATURES}


@dataclass(frozen=True, slots=True)
class Incident:
    """An anomaly injected into the history, for detectors and the digest to find."""

    kind: Literal["cost_spike", "latency_regression"]
    feature: str
    days_before_end: int
    """0 is the history's last day."""
    description: str
    input_tokens_factor: float = 1.0
    """Factor on the feature's input tokens that day (a cost spike)."""
    latency_factor: float = 1.0
    """Factor on the feature's latency that day (a latency regression)."""

    def day(self, end_day: date) -> date:
        """The calendar day the incident happens in a history ending on ``end_day``.

        Example:
            >>> DEMO_INCIDENTS[0].day(date(2025, 11, 30))
            datetime.date(2025, 11, 25)
        """
        return end_day - timedelta(days=self.days_before_end)


DEMO_INCIDENTS: tuple[Incident, ...] = (
    Incident(
        kind="cost_spike",
        feature="document_summarization",
        days_before_end=5,
        description="a bug sent whole documents instead of the relevant sections: input tokens x14",
        input_tokens_factor=14.0,
    ),
    Incident(
        kind="latency_regression",
        feature="chat_response",
        days_before_end=0,
        description="the chat path slowed down after a deploy: every call ~60% slower",
        latency_factor=1.6,
    ),
)
"""Day 25 of 30: the summaries' cost spike (large enough to stand out on a quiet weekend
too); the last day: chat's latency regression."""


default_end_day = default_day
"""Yesterday in ``LLMOPS_TIMEZONE``, the last complete day: where a history ends by default (``llmops.days.default_day``)."""


def window(days: int, end_day: date) -> list[date]:
    """The ``days`` calendar days ending on ``end_day``, oldest first.

    Args:
        days: How many days, at least 1.
        end_day: The last of them.

    Returns:
        The dates, oldest first.

    Raises:
        ValueError: ``days`` is below 1.

    Example:
        >>> window(3, date(2025, 11, 15))
        [datetime.date(2025, 11, 13), datetime.date(2025, 11, 14), datetime.date(2025, 11, 15)]
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    return [end_day - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


@dataclass(frozen=True, slots=True)
class DayPlan:
    """What one day looks like before its calls are drawn; ``calls`` is the mixed features' volume."""

    day: date
    calls: int
    latency_factor: float
    incidents: tuple[Incident, ...]

    def stream_calls(self, profile: FeatureProfile) -> int:
        """The calls of a feature with a stream of its own."""
        return round(self.calls * profile.traffic_share)

    @property
    def total_calls(self) -> int:
        """Every call of the day: the mixed features' and those of features with a stream of their own."""
        return self.calls + sum(self.stream_calls(profile) for profile in FEATURES if profile.own_stream)


def _history_key(seed: int, calls_per_weekday: int) -> str:
    """Short id of one generated history: part of every trace id, so histories never collide."""
    return hashlib.sha256(f"{seed}/{calls_per_weekday}".encode()).hexdigest()[:8]


def _day_rng(seed: int, calls_per_weekday: int, day: date) -> random.Random:
    return random.Random(f"llmops-demo/{seed}/{calls_per_weekday}/{day.isoformat()}")


def _plan(rng: random.Random, day: date, calls_per_weekday: int, incidents: Sequence[Incident], end_day: date) -> DayPlan:
    """Draws from ``rng`` in a fixed order, so the day's calls that follow are reproducible."""
    expected = calls_per_weekday * (WEEKEND_TRAFFIC_SHARE if day.weekday() >= 5 else 1.0)
    calls = max(0, round(expected * math.exp(rng.gauss(0.0, DAY_VOLUME_SIGMA))))
    drift = max(-DAY_LATENCY_BOUND, min(DAY_LATENCY_BOUND, rng.gauss(0.0, DAY_LATENCY_SIGMA)))
    todays = tuple(incident for incident in incidents if incident.day(end_day) == day)
    return DayPlan(day=day, calls=calls, latency_factor=1.0 + drift, incidents=todays)


def plan_days(
    days: int = 30,
    end_day: date | None = None,
    calls_per_weekday: int = DEFAULT_CALLS_PER_WEEKDAY,
    seed: int = DEFAULT_SEED,
    incidents: Sequence[Incident] = DEMO_INCIDENTS,
) -> list[DayPlan]:
    """Each day's volume and factors, without drawing its calls (e.g. a progress bar's total).

    Takes the same arguments as ``generate_traces`` and agrees with it day by day.

    Args:
        days: How many days.
        end_day: The last day; None is yesterday in ``LLMOPS_TIMEZONE``.
        calls_per_weekday: The mixed features' calls on a weekday (weekends get 40 %).
        seed: The history's seed.
        incidents: The anomalies to inject.

    Returns:
        One plan per day, oldest first.

    Example:
        >>> [plan.total_calls for plan in plan_days(3, date(2025, 11, 16), calls_per_weekday=100)]
        [112, 44, 45]
    """
    end_day = end_day or default_end_day()
    return [
        _plan(_day_rng(seed, calls_per_weekday, day), day, calls_per_weekday, incidents, end_day) for day in window(days, end_day)
    ]


Option = TypeVar("Option")


def _choose(rng: random.Random, options: Sequence[Option], share: Callable[[Option], float]) -> Option:
    """One of ``options``, each with probability ``share(option)`` (shares sum to 1)."""
    point = rng.random()
    for option in options:
        point -= share(option)
        if point < 0:
            return option
    return options[-1]


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


class _DayTraffic:
    """Draws one stream of a day's calls, in time order, from its own RNG."""

    def __init__(
        self,
        plan: DayPlan,
        rng: random.Random,
        id_prefix: str,
        calls_per_weekday: int,
        zone: ZoneInfo,
        features: Sequence[FeatureProfile],
        calls: int,
    ) -> None:
        self.plan = plan
        self.rng = rng
        self.id_prefix = id_prefix
        self.features = features
        self.calls = calls
        self.users = max(50, calls_per_weekday // 4)
        self.input_factor = {i.feature: i.input_tokens_factor for i in plan.incidents if i.kind == "cost_spike"}
        self.latency_factor = {i.feature: i.latency_factor for i in plan.incidents if i.kind == "latency_regression"}
        start = datetime(plan.day.year, plan.day.month, plan.day.day, tzinfo=zone).astimezone(UTC)
        following = plan.day + timedelta(days=1)
        end = datetime(following.year, following.month, following.day, tzinfo=zone).astimezone(UTC)
        self.start = start
        self.slot_seconds = (end - start).total_seconds() / len(HOURLY_WEIGHTS)  # 23 or 25 h on DST days

    def __iter__(self) -> Iterator[TraceRecord]:
        rng = self.rng
        index = 0
        for hour, (before, through) in enumerate(pairwise(_CUMULATIVE_HOUR_SHARES)):
            count = round(self.calls * through) - round(self.calls * before)
            offsets = sorted(rng.random() * self.slot_seconds for _ in range(count))
            for offset in offsets:
                when = self.start + timedelta(seconds=hour * self.slot_seconds + offset)
                yield TraceRecord(**self._call(when, index))
                index += 1

    def _call(self, when: datetime, index: int) -> dict[str, Any]:
        """The fields of one call (built as a dict: one validation instead of many setattrs)."""
        rng = self.rng
        profile = _choose(rng, self.features, lambda option: option.traffic_share) if len(self.features) > 1 else self.features[0]
        model = _choose(rng, profile.models, lambda option: option.share)
        user = int(self.users * rng.random() ** 2)  # a few heavy users, a long tail
        fields: dict[str, Any] = {
            "trace_id": f"{self.id_prefix}{index:07d}",
            "timestamp": when,
            "environment": "staging" if rng.random() < STAGING_SHARE else "production",
            "feature": profile.feature,
            "prompt_name": profile.prompt_name,
            "prompt_version": profile.prompt_version,
            "model": model.model,
            "response_model": model.model,
            "user_id": f"acme-user-{user:05d}",
            "session_id": f"{self.plan.day:%Y%m%d}-{user:05d}-{rng.randrange(3)}",
            "system_prompt_hash": _SYSTEM_PROMPT_HASHES[profile.feature],
            "is_batch": rng.random() < profile.batch_share,
        }
        if rng.random() < ERROR_RATE:
            fields.update(self._failure(fields["is_batch"]))
        else:
            fields.update(self._success(profile, model, fields["is_batch"]))
        return fields

    def _failure(self, is_batch: bool) -> dict[str, Any]:
        """A refused call: no tokens billed, answered quickly (overloads a little slower)."""
        error_type = _choose(self.rng, ERROR_TYPES, lambda option: option[1])[0]
        median = 900.0 if error_type == "overloaded_error" else 250.0
        latency = None if is_batch else round(_lognormal(self.rng, median, 0.4), 1)
        return {"status": "error", "error_type": error_type, "latency_ms": latency}

    def _success(self, profile: FeatureProfile, model: ModelProfile, is_batch: bool) -> dict[str, Any]:
        rng = self.rng
        fresh_input = _lognormal(rng, profile.median_input_tokens, profile.input_sigma)
        fresh_input *= self.input_factor.get(profile.feature, 1.0)
        fields: dict[str, Any] = {"input_tokens": max(1, round(fresh_input))}
        if rng.random() < profile.cached_share:
            cache_field = "cache_creation_input_tokens" if rng.random() < CACHE_WRITE_SHARE else "cache_read_input_tokens"
            fields[cache_field] = profile.cached_prefix_tokens
        else:
            fields["input_tokens"] += profile.cached_prefix_tokens
        wanted = max(1, round(_lognormal(rng, profile.median_output_tokens, profile.output_sigma)))
        fields["output_tokens"] = output_tokens = min(wanted, profile.max_tokens)
        if wanted >= profile.max_tokens:
            fields["finish_reason"] = "max_tokens"
        elif rng.random() < STOP_SEQUENCE_RATE:
            fields["finish_reason"] = "stop_sequence"
        else:
            fields["finish_reason"] = "end_turn"
        if profile.feature in CHAT_FEATURES:
            fields["user_message_length"] = round(_lognormal(rng, profile.median_message_chars, 0.7))
        else:  # the document or the diff is the user's message: ~4 characters a token
            fields["user_message_length"] = round(4 * fresh_input)
        if not is_batch:
            streamed = rng.random() < profile.streamed_share
            fields.update(self._timing(profile.feature, model, fields["input_tokens"], output_tokens, streamed))
        if rng.random() < FEEDBACK_RATE:
            fields["user_feedback"] = 1.0 if rng.random() < POSITIVE_FEEDBACK_SHARE else -1.0
        if rng.random() < EVAL_SCORE_RATE:
            fields["automated_eval_score"] = round(min(1.0, max(0.0, rng.gauss(0.86, 0.08))), 3)
        return fields

    def _timing(
        self, feature: str, model: ModelProfile, input_tokens: int, output_tokens: int, streamed: bool
    ) -> dict[str, float]:
        """Latency grows with output (and a little with input); every call of the day shares
        the day's drift, and an incident's factor on top."""
        rng = self.rng
        factor = self.plan.latency_factor * self.latency_factor.get(feature, 1.0)
        ttft = _lognormal(rng, model.median_ttft_ms, 0.3) * (1.0 + input_tokens / 100_000)
        generation = output_tokens * model.ms_per_output_token * math.exp(rng.gauss(0.0, 0.15))
        timing = {"latency_ms": round((ttft + generation) * factor, 1)}
        if streamed:
            timing["ttft_ms"] = round(ttft * factor, 1)
        return timing


def generate_traces(
    days: int = 30,
    end_day: date | None = None,
    calls_per_weekday: int = DEFAULT_CALLS_PER_WEEKDAY,
    seed: int = DEFAULT_SEED,
    incidents: Sequence[Incident] = DEMO_INCIDENTS,
    timezone: ZoneInfo | None = None,
) -> Iterator[TraceRecord]:
    """Traces of ``days`` days ending on ``end_day`` (default: yesterday), in time order.

    Days are cut at midnight in ``timezone`` (default ``LLMOPS_TIMEZONE``), like the rollups.
    ``cost_usd`` is left unset so that the store prices the calls.

    Args:
        days: How many days.
        end_day: The last day; None is yesterday in ``timezone``.
        calls_per_weekday: The mixed features' calls on a weekday (weekends get 40 %).
        seed: The history's seed; the same arguments give the same traces (and trace ids).
        incidents: The anomalies to inject.
        timezone: Where days are cut.

    Yields:
        Trace records, in time order.

    Raises:
        ValueError: ``calls_per_weekday`` is negative, or ``days`` below 1.

    Example:
        >>> from zoneinfo import ZoneInfo
        >>> traces = list(generate_traces(days=1, end_day=date(2025, 11, 14), calls_per_weekday=100, timezone=ZoneInfo("UTC")))
        >>> len(traces), traces[0].trace_id
        (112, 'demo-d93b1eb2-20251114-0000000')
    """
    if calls_per_weekday < 0:
        raise ValueError(f"calls_per_weekday must not be negative, got {calls_per_weekday}")
    zone = timezone or settings.timezone()
    end_day = end_day or default_end_day(zone)
    prefix = f"demo-{_history_key(seed, calls_per_weekday)}"
    for day in window(days, end_day):
        rng = _day_rng(seed, calls_per_weekday, day)
        plan = _plan(rng, day, calls_per_weekday, incidents, end_day)
        streams = [_DayTraffic(plan, rng, f"{prefix}-{day:%Y%m%d}-", calls_per_weekday, zone, MIXED_FEATURES, plan.calls)]
        streams += [
            _DayTraffic(
                plan,
                random.Random(f"llmops-demo/{seed}/{calls_per_weekday}/{day.isoformat()}/{profile.feature}"),
                f"{prefix}-{day:%Y%m%d}-{profile.feature}-",
                calls_per_weekday,
                zone,
                (profile,),
                plan.stream_calls(profile),
            )  # fmt: skip
            for profile in FEATURES
            if profile.own_stream
        ]
        yield from heapq.merge(*streams, key=lambda record: record.timestamp)
