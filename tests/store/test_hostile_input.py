"""Hostile input never crashes an import or costs good rows (issue 13, items 1–3).

Property: for any generated JSONL, CSV or OTLP/JSON file — non-finite numbers, deep nesting,
huge strings, odd Unicode, control characters, wrong types, missing fields — ``import_file``
raises nothing, and ``lines in = stored + duplicates + rejected`` (+ skipped OTel spans), every
rejection in the rejects file carrying a reason. For the tracing wrapper: ``calls made = traces
stored + calls dropped with a warning``, and one bad call never costs the rest of its batch.

Below the properties, the exact reproductions of the issue, kept as plain tests.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, DateTime, Engine, Float, MetaData, String, Table, create_engine, select, text

from llmops import settings as llmops_settings
from llmops.ingest.pipeline import ImportReport, import_file, rejects_path_for
from llmops.ingest.pull import SourceConfig, pull_traces
from llmops.records import TRACE_FIELDS
from llmops.store.engine import get_engine
from llmops.store.writer import load_watermark
from llmops.tracing import TraceRecorder, trace_anthropic, trace_context
from llmops.tracing.recorder import store_sink

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
MODEL = "claude-3-5-haiku-20241022"
GOOD = {"trace_id": "good", "timestamp": "2025-11-15T10:00:00Z", "model": MODEL, "input_tokens": 10}


# -- generated values


class Raw:
    """A JSON token written as is (``Infinity``, ``1e999``): what JSON libraries will not write."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __repr__(self) -> str:
        return self.token


def deep(depth: int, kind: str) -> Any:
    """A value nested ``depth`` levels deep (built without recursion)."""
    value: Any = "bottom"
    for _ in range(depth):
        value = {"a": value} if kind == "dict" else [value]
    return value


odd_text = st.text(st.characters(exclude_categories=()), max_size=30)  # control characters, surrogates, NUL…
huge_text = st.integers(min_value=1_000, max_value=100_000).map(lambda n: "é" * n)
raw_numbers = st.sampled_from(["Infinity", "-Infinity", "NaN", "1e999", "-1e999", "1e308", "-0.0", "4.9e-324"]).map(Raw)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    odd_text,
    raw_numbers,
)
json_like = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(odd_text, children, max_size=3),
    max_leaves=8,
)
deep_values = st.builds(deep, st.integers(min_value=1, max_value=400), st.sampled_from(["dict", "list"]))
hostile = st.one_of(json_like, huge_text, deep_values)

timestamps = st.one_of(
    st.just("2025-11-15T10:00:00Z"),
    st.sampled_from(
        [
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59-01:00",
            "0001-01-01T00:00:00+01:00",
            "1970-01-01T00:00:00Z",
            "2100-01-01T00:00:00Z",
            "1999-12-31T23:59:59.999999Z",
        ]
    ),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.none() | st.timezones()).map(
        datetime.isoformat
    ),
    st.integers(min_value=-(2**40), max_value=2**40),
    hostile,
)
numbers = st.one_of(raw_numbers, st.floats(), st.floats(min_value=0, max_value=1e6), hostile)
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "trace_id": st.one_of(st.uuids().map(str), odd_text, hostile),
    "timestamp": timestamps,
    "model": st.one_of(st.just(MODEL), odd_text, hostile),
    "latency_ms": numbers,
    "ttft_ms": numbers,
    "automated_eval_score": numbers,
    "user_feedback": st.one_of(st.sampled_from(["thumbs_up", "bad", "maybe"]), numbers),
    "cost_usd": st.one_of(st.sampled_from(["0.01", "NaN", "Infinity", "-1"]), numbers),
    "input_tokens": st.one_of(st.integers(min_value=-(2**70), max_value=2**70), hostile),
    "user_message_length": st.one_of(st.integers(min_value=0, max_value=2**64), hostile),
    "metadata": st.one_of(
        st.dictionaries(odd_text, json_like, max_size=4),
        st.builds(lambda value: {"nested": value}, deep_values),
        st.builds(lambda value: {"big": value}, huge_text),
        hostile,
    ),
    "tags": st.one_of(st.lists(odd_text, max_size=4), odd_text, hostile),
}
for _name in TRACE_FIELDS:
    FIELD_VALUES.setdefault(_name, st.one_of(odd_text, hostile))


# Fields whose values reach the store's columns, rollups and sketches: drawn more often.
RISKY_FIELDS = ["timestamp", "latency_ms", "ttft_ms", "metadata", "user_message_length", "feature", "tags", "user_feedback"]


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    """A plausible record, one or a few of whose fields are replaced by hostile values or removed.

    Mostly one field: a record that is valid but for one value is what reaches the write path.
    """
    record: dict[str, Any] = {**GOOD, "trace_id": str(uuid.uuid4()), "latency_ms": 120.5, "metadata": {"ok": 1}}
    fields = st.sampled_from(RISKY_FIELDS) | st.sampled_from(TRACE_FIELDS)
    for name in draw(st.lists(fields, max_size=draw(st.sampled_from([1, 1, 1, 2, 4])), unique=True)):
        record[name] = draw(FIELD_VALUES[name])
    for name in draw(st.lists(st.sampled_from(["trace_id", "timestamp", "model"]), max_size=1)):
        record.pop(name)
    return record


def to_json(value: Any) -> str:
    """JSON text, with ``Raw`` tokens and non-finite floats written the way hostile exporters do.

    Written with a stack, not recursion: values here nest deeper than Python's recursion limit allows.
    """
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Raw):
            out.append(item.token)
        elif isinstance(item, float) and not math.isfinite(item):
            out.append("NaN" if math.isnan(item) else ("Infinity" if item > 0 else "-Infinity"))
        elif isinstance(item, dict):
            parts: list[Any] = []
            for key, member in item.items():
                parts += [Raw(("," if parts else "") + json.dumps(str(key)) + ":"), member]
            stack += [Raw("}"), *reversed(parts)]
            out.append("{")
        elif isinstance(item, list):
            parts = []
            for member in item:
                parts += [Raw(","), member] if parts else [member]
            stack += [Raw("]"), *reversed(parts)]
            out.append("[")
        else:
            out.append(json.dumps(item))  # ensure_ascii: lone surrogates become \\ud800 escapes
    return "".join(out)


def to_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return to_json(value)


# -- the property


def stored(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM traces")).scalar_one()


def rejects_of(path: Path) -> list[dict[str, Any]]:
    rejects = rejects_path_for(path)
    return [orjson.loads(line) for line in rejects.read_bytes().splitlines()] if rejects.exists() else []


def assert_every_line_accounted_for(engine: Engine, path: Path, lines_in: int, fmt: str) -> ImportReport:
    before = stored(engine)
    report = import_file(engine, path, fmt, batch_size=7, workers=0)  # small batches: many share one with a bad line
    rejects = rejects_of(path)
    assert report.written.inserted + report.written.duplicates + report.rejected + report.skipped == lines_in
    assert stored(engine) - before == report.written.inserted
    assert len(rejects) == report.rejected
    assert all(isinstance(item["reason"], str) and item["reason"].strip() for item in rejects)
    assert all(isinstance(item["line"], int) and item["line"] >= 1 for item in rejects)
    return report


@pytest.fixture
def sqlite_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A temp SQLite store whose days are cut 14 hours ahead of UTC (the calendar ends overflow first)."""
    monkeypatch.setenv(llmops_settings.LLMOPS_TIMEZONE, "Pacific/Kiritimati")
    yield get_engine(f"sqlite:///{tmp_path / 'hostile.db'}")


@PROPERTY
@given(lines=st.lists(st.one_of(records(), odd_text.filter(lambda line: "\n" not in line)), min_size=1, max_size=12))
def test_any_jsonl_file_is_accounted_for_line_by_line(sqlite_store: Engine, tmp_path: Path, lines: list[Any]) -> None:
    path = tmp_path / f"{uuid.uuid4().hex}.jsonl"
    rendered = [to_json(line) if isinstance(line, dict) else line for line in lines]
    path.write_bytes(b"".join(line.encode("utf-8", "surrogatepass") + b"\n" for line in rendered))
    lines_in = sum(1 for line in path.read_bytes().split(b"\n") if line.strip())

    assert_every_line_accounted_for(sqlite_store, path, lines_in, "jsonl")


@PROPERTY
@given(rows=st.lists(records(), min_size=1, max_size=12))
def test_any_csv_file_is_accounted_for_record_by_record(sqlite_store: Engine, tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    path = tmp_path / f"{uuid.uuid4().hex}.csv"
    cells = [[to_cell(row.get(name)) for name in TRACE_FIELDS] for row in rows]
    with path.open("w", newline="", encoding="utf-8", errors="surrogatepass") as out:
        writer = csv.writer(out)
        writer.writerow(TRACE_FIELDS)
        writer.writerows(cells)
    # Blank records are skipped; a lone surrogate is read back as U+FFFD, never as blank.
    lines_in = sum(1 for row in cells if any(cell.strip() for cell in row))

    assert_every_line_accounted_for(sqlite_store, path, lines_in, "csv")


def any_value(value: Any) -> Any:
    """A Python value as an OTLP ``AnyValue`` (``Raw`` tokens and other shapes pass as they are)."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float | Raw):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [any_value(item) for item in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": [{"key": str(key), "value": any_value(item)} for key, item in value.items()]}}
    return value


def deep_any_value(depth: int, kind: str) -> Any:
    value: Any = {"stringValue": "bottom"}
    for _ in range(depth):
        if kind == "array":
            value = {"arrayValue": {"values": [value]}}
        else:
            value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    return value


SPAN_ATTRIBUTES = [
    "gen_ai.request.model",
    "gen_ai.response.id",
    "gen_ai.response.model",
    "gen_ai.operation.name",
    "gen_ai.system",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.response.time_to_first_chunk",
    "gen_ai.response.finish_reasons",
    "llmops.feature",
    "user.id",
    "session.id",
    "error.type",
]
attribute_values = st.one_of(
    st.one_of(json_like, huge_text).map(any_value),
    st.builds(deep_any_value, st.integers(min_value=1, max_value=340), st.sampled_from(["array", "kvlist"])),
    hostile,  # not an AnyValue at all
)
nanos = st.one_of(
    st.integers(min_value=1_600_000_000_000_000_000, max_value=1_900_000_000_000_000_000).map(str),
    st.integers(min_value=-(2**80), max_value=2**80),
    hostile,
)


@st.composite
def otlp_lines(draw: st.DrawFn) -> tuple[str, int]:
    """One request line with one GenAI span (or a line that is no request): ``(json, spans in it)``."""
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        # A line that is no request, yet a whole object (else the file reads as one pretty-printed request).
        junk = '{"' + draw(odd_text).replace('"', "").replace("\n", "") + "}"  # an unterminated string
        return draw(st.sampled_from(['{"resourceSpans": 5}', "{}", junk])), 1
    attributes = {"gen_ai.request.model": {"stringValue": MODEL}, "gen_ai.response.id": {"stringValue": str(draw(st.uuids()))}}
    for name in draw(st.lists(st.sampled_from(SPAN_ATTRIBUTES), max_size=4, unique=True)):
        attributes[name] = draw(attribute_values)
    span: dict[str, Any] = {
        "traceId": draw(st.one_of(st.just("5b8aa5a2d2c872e8321cf37308d69df2"), hostile)),
        "spanId": draw(st.one_of(st.just("051581bf3cb55c13"), hostile)),
        "name": draw(st.one_of(st.just("chat"), hostile)),
        "startTimeUnixNano": draw(nanos),
        "endTimeUnixNano": draw(nanos),
        "status": draw(st.one_of(st.just({"code": 2, "message": "overloaded"}), hostile)),
        "attributes": [{"key": key, "value": value} for key, value in attributes.items()],
    }
    resource = [{"key": "service.name", "value": draw(attribute_values)}]
    request = {
        "resourceSpans": [{"resource": {"attributes": resource}, "scopeSpans": [{"scope": {"name": "s"}, "spans": [span]}]}]
    }
    return to_json(request), 1


@PROPERTY
@given(lines=st.lists(otlp_lines(), min_size=1, max_size=8))
def test_any_otlp_file_is_accounted_for_span_by_span(sqlite_store: Engine, tmp_path: Path, lines: list[tuple[str, int]]) -> None:
    path = tmp_path / f"{uuid.uuid4().hex}.otlp.json"
    path.write_bytes(b"".join(line.encode("utf-8", "surrogatepass") + b"\n" for line, _ in lines))

    assert_every_line_accounted_for(sqlite_store, path, sum(spans for _, spans in lines), "otel")


# -- the tracing wrapper


class FakeApi:
    """The Messages API, answering every call at once (ids unique, usage as the test says)."""

    def __init__(self) -> None:
        self.usage: dict[str, Any] = {"input_tokens": 10, "output_tokens": 2}

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        body = {
            "id": f"msg_{uuid.uuid4().hex}",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [{"type": "text", "text": "hello"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": self.usage,
        }
        return httpx2.Response(200, json=body)


class Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def traced_calls(contexts: list[dict[str, Any]], api: FakeApi) -> tuple[TraceRecorder, list[str]]:
    """One wrapped call per context, recorded in one batch and flushed to the store."""
    client = anthropic.Anthropic(api_key="test", http_client=httpx2.Client(transport=httpx2.MockTransport(api)), max_retries=0)
    recorder = TraceRecorder(store_sink, batch_size=1_000, flush_interval=60, retry_delays=(0.0,))
    traced = trace_anthropic(client, recorder=recorder, feature="hostile")
    handler = Warnings()
    logger = logging.getLogger("llmops.tracing")
    logger.addHandler(handler)
    try:
        for context in contexts:
            with trace_context(**context):
                traced.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
        assert recorder.flush(timeout=30)
    finally:
        logger.removeHandler(handler)
        recorder.close()
    return recorder, handler.messages


unhashable_or_odd = st.one_of(
    hostile,
    st.builds(set, st.lists(st.integers(), max_size=3)),
    st.builds(frozenset, st.lists(odd_text, max_size=2)),
    st.just(object()),
    st.builds(uuid.uuid4),
    st.just({1: "int key"}),
    st.builds(lambda n: 2**n, st.integers(min_value=60, max_value=80)),
)
contexts = st.fixed_dictionaries(
    {},
    optional={
        "feature": st.one_of(odd_text, huge_text),
        "prompt_version": odd_text,
        "user_id": st.one_of(odd_text, huge_text),
        "session_id": odd_text,
        "tags": st.lists(st.one_of(odd_text, huge_text), max_size=3),
        "metadata": st.dictionaries(odd_text, st.one_of(json_like, unhashable_or_odd), max_size=3),
    },
)


usages = st.fixed_dictionaries(
    {"input_tokens": st.integers(min_value=0, max_value=2**40), "output_tokens": st.integers(min_value=0, max_value=2**40)}
)


@PROPERTY
@given(batch=st.lists(contexts, min_size=1, max_size=10), usage=usages)
def test_every_wrapped_call_is_stored_or_dropped_alone_with_a_warning(
    llmops_home: Path, monkeypatch: pytest.MonkeyPatch, batch: list[dict[str, Any]], usage: dict[str, int]
) -> None:
    monkeypatch.setenv(llmops_settings.LLMOPS_USER_ID_SALT, "hostile-input-tests")
    engine = get_engine()
    before = stored(engine)
    api = FakeApi()
    api.usage = usage

    recorder, warnings = traced_calls(batch, api)

    stats = recorder.stats
    assert stats.recorded == len(batch)
    assert stats.written + stats.dropped_invalid == len(batch)
    assert stats.dropped_sink_error == 0  # one bad call never costs the batch
    assert stored(engine) - before == stats.written
    if stats.dropped_invalid:
        assert any("not valid TraceRecords" in message for message in warnings)


# -- the reproductions of issue 13, kept


def import_lines(
    engine: Engine, path: Path, lines: list[str], fmt: str | None = None
) -> tuple[ImportReport, list[dict[str, Any]]]:
    path.write_text("".join(line + "\n" for line in lines))
    report = import_file(engine, path, fmt)
    return report, rejects_of(path)


def jsonl_record(**fields: Any) -> str:
    return to_json({**GOOD, **fields})


@pytest.mark.parametrize(
    ("field", "token"),
    [
        ("latency_ms", "Infinity"),
        ("latency_ms", "1e999"),
        ("latency_ms", "-Infinity"),
        ("ttft_ms", "Infinity"),
        ("ttft_ms", "NaN"),
    ],
)
def test_a_non_finite_number_in_jsonl_is_rejected_and_the_batch_stored(
    store: Engine, tmp_path: Path, field: str, token: str
) -> None:
    lines = [jsonl_record(trace_id="a"), jsonl_record(trace_id="bad", **{field: Raw(token)}), jsonl_record(trace_id="b")]

    report, rejects = import_lines(store, tmp_path / "calls.jsonl", lines)

    assert (report.written.inserted, report.rejected) == (2, 1)
    assert rejects[0]["line"] == 2 and rejects[0]["field"] == field
    assert rejects[0]["reason"].startswith("expected a finite number, got ")


@pytest.mark.parametrize(
    ("column", "cell"), [("latency_ms", "inf"), ("latency_ms", "nan"), ("ttft_ms", "inf"), ("ttft_ms", "-Infinity")]
)
def test_a_non_finite_number_in_csv_is_rejected_and_the_batch_stored(
    store: Engine, tmp_path: Path, column: str, cell: str
) -> None:
    lines = [
        f"trace_id,timestamp,model,{column}",
        f"a,2025-11-15T10:00:00Z,{MODEL},1",
        f"bad,2025-11-15T10:00:00Z,{MODEL},{cell}",
    ]

    report, rejects = import_lines(store, tmp_path / "calls.csv", lines)

    assert (report.written.inserted, report.rejected) == (1, 1)
    assert rejects[0] | {"raw": None} == {
        "line": 3,
        "field": column,
        "reason": f'expected a finite number, got "{cell}"',
        "raw": None,
    }


def test_every_float_field_refuses_non_finite_numbers(store: Engine, tmp_path: Path) -> None:
    fields = ["latency_ms", "ttft_ms", "automated_eval_score", "user_feedback", "cost_usd"]
    lines = [jsonl_record(trace_id=f"t-{name}", **{name: Raw("Infinity")}) for name in fields]

    report, rejects = import_lines(store, tmp_path / "calls.jsonl", lines)

    assert report.rejected == len(fields)
    assert [item["field"] for item in rejects] == fields
    assert all("finite number" in item["reason"] for item in rejects)


def test_metadata_nested_300_deep_in_csv_is_rejected_alone(store: Engine, tmp_path: Path) -> None:
    metadata = json.dumps(deep(300, "dict")).replace('"', '""')
    lines = [
        "trace_id,timestamp,model,metadata",
        f"a,2025-11-15T10:00:00Z,{MODEL},{{}}",
        f'bad,2025-11-15T10:00:00Z,{MODEL},"{metadata}"',
    ]

    report, rejects = import_lines(store, tmp_path / "calls.csv", lines)

    assert (report.written.inserted, report.rejected) == (1, 1)
    assert rejects[0]["field"] == "metadata"
    assert rejects[0]["reason"] == "cannot be stored as JSON: nested deeper than 254 levels"


@pytest.mark.parametrize(
    ("kind", "field", "reason"),
    [
        ("array", "metadata", "cannot be stored as JSON: nested deeper than 254 levels"),
        ("kvlist", None, "invalid JSON: depth limit exceeded"),  # 1,200 JSON levels: past the parser
    ],
)
def test_an_otlp_value_nested_300_deep_is_rejected_alone(
    store: Engine, tmp_path: Path, kind: str, field: str | None, reason: str
) -> None:
    def request(span_id: str, service: Any) -> str:
        span = {
            "traceId": "5b8aa5a2d2c872e8321cf37308d69df2",
            "spanId": span_id,
            "name": "chat",
            "startTimeUnixNano": "1763200800000000000",
            "endTimeUnixNano": "1763200801000000000",
            "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": MODEL}}],
        }
        resource = {"attributes": [{"key": "service.name", "value": service}]}
        return to_json({"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": [span]}]}]})

    lines = [
        request("a1", {"stringValue": "svc"}),
        request("b1", deep_any_value(300, kind)),
        request("c1", {"stringValue": "svc"}),
    ]

    report, rejects = import_lines(store, tmp_path / "calls.otlp.json", lines)

    assert (report.written.inserted, report.rejected) == (2, 1)
    assert rejects[0]["line"] == 2 and rejects[0]["field"] == field
    assert reason in rejects[0]["reason"]


def test_an_otlp_operation_name_that_is_not_text_is_no_crash(store: Engine, tmp_path: Path) -> None:
    span = {
        "spanId": "s1",
        "startTimeUnixNano": "1763200800000000000",
        "endTimeUnixNano": 1.0e300,
        "attributes": [
            {"key": "gen_ai.request.model", "value": {"stringValue": MODEL}},
            {"key": "gen_ai.operation.name", "value": {"arrayValue": {"values": [{"stringValue": "chat"}]}}},
        ],
    }
    lines = [to_json({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})]

    report, _ = import_lines(store, tmp_path / "calls.otlp.json", lines)

    assert report.written.inserted == 1


@pytest.mark.parametrize("timezone", ["Asia/Tokyo", "America/New_York"])
@pytest.mark.parametrize(
    "stamp", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00+01:00", "1970-01-01T00:00:00Z", "2100-01-01T00:00:00Z"]
)
def test_a_timestamp_outside_2000_to_2100_is_rejected(
    store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, timezone: str, stamp: str
) -> None:
    monkeypatch.setenv(llmops_settings.LLMOPS_TIMEZONE, timezone)  # before the store's first write, which keeps it
    lines = [jsonl_record(trace_id="a"), jsonl_record(trace_id="bad", timestamp=stamp)]

    report, rejects = import_lines(store, tmp_path / "calls.jsonl", lines)

    assert (report.written.inserted, report.rejected) == (1, 1)
    assert rejects[0]["field"] == "timestamp"
    assert rejects[0]["reason"] == f'expected a time from 2000-01-01 to before 2100-01-01 (UTC), got "{stamp}"'


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"feature": "a\u0000b"}, "feature", "must not contain NUL (\\u0000) characters"),
        ({"user_message_length": 2**40}, "user_message_length", "expected an integer ≤ 2147483647, got 1099511627776"),
        ({"metadata": {"n": 2**70}}, "metadata", "cannot be stored as JSON: Integer exceeds 64-bit range"),
        ({"metadata": {"big": "x" * 70_000}}, "metadata", "is 70010 bytes as JSON; at most 65536 are stored"),
    ],
)
def test_values_a_store_column_cannot_hold_are_rejected_on_both_backends(
    store: Engine, tmp_path: Path, fields: dict[str, Any], field: str, reason: str
) -> None:
    lines = [jsonl_record(trace_id="a"), jsonl_record(trace_id="bad", **fields)]

    report, rejects = import_lines(store, tmp_path / "calls.jsonl", lines)

    assert (report.written.inserted, report.rejected) == (1, 1)
    assert (rejects[0]["field"], rejects[0]["reason"]) == (field, reason)


def test_a_csv_cell_over_the_csv_modules_limit_is_rejected_alone(store: Engine, tmp_path: Path) -> None:
    lines = [
        "trace_id,timestamp,model,feature",
        f"big,2025-11-15T10:00:00Z,{MODEL},{'x' * 200_000}",
        f"a,2025-11-15T10:00:00Z,{MODEL},",
    ]

    report, rejects = import_lines(store, tmp_path / "calls.csv", lines)

    assert (report.written.inserted, report.rejected) == (1, 1)
    assert rejects[0]["line"] == 2 and "field larger than field limit" in rejects[0]["reason"]


@pytest.mark.parametrize("bad", [{"tickets": {1, 2}}, {"when": object()}, {"id": {1: "int key"}}, {"text": "\ud800"}])
def test_one_bad_wrapped_call_of_ten_is_dropped_alone_with_one_warning(store_url: str, bad: dict[str, Any]) -> None:
    contexts = [{"metadata": {"n": n}} for n in range(10)]
    contexts[4] = {"metadata": bad}

    recorder, warnings = traced_calls(contexts, FakeApi())

    assert (recorder.stats.written, recorder.stats.dropped_invalid, recorder.stats.dropped_sink_error) == (9, 1, 0)
    assert stored(get_engine(store_url)) == 9
    assert [message for message in warnings if "not valid TraceRecords" in message] == [
        "llmops tracing: dropped 1 trace records that are not valid TraceRecords (fields: metadata); "
        "later ones are only counted in recorder.stats"
    ]


def test_a_pull_rejects_a_source_row_with_infinite_latency_and_moves_on(store: Engine, tmp_path: Path) -> None:
    source_url = f"sqlite:///{tmp_path / 'app.db'}"
    table = Table(
        "llm_calls",
        MetaData(),
        Column("trace_id", String(64), primary_key=True),
        Column("timestamp", DateTime, nullable=False),
        Column("model", String(128)),
        Column("latency_ms", Float),
        Column("ttft_ms", Float),
    )
    app = create_engine(source_url)
    table.create(app)
    at, inf = datetime(2025, 11, 15, 10), math.inf
    with app.begin() as connection:
        connection.execute(
            table.insert(),
            [
                {"trace_id": "a1", "timestamp": at, "model": MODEL, "latency_ms": 12.0, "ttft_ms": None},
                {"trace_id": "a2", "timestamp": at.replace(minute=1), "model": MODEL, "latency_ms": inf, "ttft_ms": None},
                {"trace_id": "a3", "timestamp": at.replace(minute=2), "model": MODEL, "latency_ms": 9.0, "ttft_ms": -inf},
                {"trace_id": "a4", "timestamp": at.replace(minute=3), "model": MODEL, "latency_ms": 15.0, "ttft_ms": None},
            ],
        )
    app.dispose()
    source = SourceConfig(url=source_url, table="llm_calls")

    report = pull_traces(store, source)

    assert (report.pulled, report.inserted, report.rejected) == (4, 2, 2)
    assert [(row.row_id, row.column) for row in report.first_rejections] == [("a2", "latency_ms"), ("a3", "ttft_ms")]
    assert report.first_rejections[0].reason == "expected a finite number, got Infinity"
    assert (load_watermark(store, source.watermark_name) or {})["id"] == "a4"
    with store.connect() as connection:
        assert sorted(connection.execute(select(text("trace_id")).select_from(text("traces"))).scalars()) == ["a1", "a4"]


def sqlite_value(value: Any) -> Any:
    """A generated value as a SQLite source column can hold it (JSON text for lists and objects)."""
    if isinstance(value, Raw):
        return float(value.token) if value.token != "NaN" else value.token
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        return str(value)
    if isinstance(value, dict | list):
        return to_json(value)
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode()  # SQLite text is UTF-8: no lone surrogates
    return value


@settings(PROPERTY, max_examples=30)
@given(rows=st.lists(records(), min_size=1, max_size=10))
def test_any_source_row_is_pulled_or_rejected_and_the_watermark_moves_past_it(
    sqlite_store: Engine, tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    database = tmp_path / f"{uuid.uuid4().hex}.db"
    columns = ", ".join(f'"{name}"' for name in TRACE_FIELDS)  # untyped: any value goes
    app = create_engine(f"sqlite:///{database}")
    with app.begin() as connection:
        connection.exec_driver_sql(f"CREATE TABLE calls (seq INTEGER PRIMARY KEY, {columns})")
        marks = ", ".join("?" for _ in TRACE_FIELDS)
        connection.exec_driver_sql(
            f"INSERT INTO calls ({columns}) VALUES ({marks})",
            [tuple(sqlite_value(row.get(name)) for name in TRACE_FIELDS) for row in rows],
        )
    app.dispose()
    source = SourceConfig(
        url=f"sqlite:///{database}", table="calls", cursor_column="seq", id_column="seq", batch_size=4, name=database.stem
    )
    before = stored(sqlite_store)

    report = pull_traces(sqlite_store, source)

    assert report.pulled == len(rows) == report.inserted + report.duplicates + report.rejected
    assert stored(sqlite_store) - before == report.inserted
    assert all(rejection.reason.strip() for rejection in report.first_rejections)
    assert (load_watermark(sqlite_store, source.watermark_name) or {})["id"] == len(rows)
