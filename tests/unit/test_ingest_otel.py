"""OpenTelemetry GenAI spans (OTLP/JSON) become trace records; other spans are skipped."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from llmops.ingest import Rejection, TraceReader, read_traces
from llmops.ingest.otel import any_value
from llmops.records import TraceRecord

FIXTURES = Path(__file__).parents[1] / "fixtures"
OTLP = FIXTURES / "traces_sample.otlp.json"
PRETTY = FIXTURES / "traces_pretty.json"
START = 1_763_200_800_000_000_000  # 2025-11-15T10:00:00Z


def split(items: TraceReader) -> tuple[dict[str, TraceRecord], list[Rejection]]:
    records: dict[str, TraceRecord] = {}
    rejections: list[Rejection] = []
    for item in items:
        if isinstance(item, Rejection):
            rejections.append(item)
        else:
            assert item.trace_id not in records, f"{item.trace_id} came out twice"
            records[item.trace_id] = item
    return records, rejections


def attribute(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}  # int64 is a string in OTLP/JSON
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def span(attributes: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "traceId": "abc123",
        "spanId": "def456",
        "name": "chat",
        "startTimeUnixNano": str(START),
        "endTimeUnixNano": str(START + 250_000_000),
        "attributes": [attribute(key, value) for key, value in attributes.items()],
        **fields,
    }


def request(*spans: dict[str, Any], resource: dict[str, Any] | None = None) -> bytes:
    resource_attributes = [attribute(k, v) for k, v in (resource or {}).items()]
    document = {
        "resourceSpans": [
            {"resource": {"attributes": resource_attributes}, "scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}]}
        ]
    }
    return orjson.dumps(document)


def read_lines(tmp_path: Path, *lines: bytes) -> TraceReader:
    path = tmp_path / "spans.otlp.json"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return read_traces(path)


def only_record(reader: TraceReader) -> TraceRecord:
    (item,) = list(reader)
    assert isinstance(item, TraceRecord), item
    return item


def test_sibling_spans_of_one_call_become_one_trace_with_every_attribute_mapped() -> None:
    records, _ = split(read_traces(OTLP))
    call = records["msg_01XFDUDYJgAACzvnptvVoYEL"]
    assert call.timestamp == datetime(2025, 11, 15, 10, 0, tzinfo=UTC)
    assert (call.model, call.response_model) == ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet-20241022")
    # OTel counts cache tokens inside input_tokens (1500); the record keeps the uncached ones.
    assert (call.input_tokens, call.output_tokens) == (1000, 250)
    assert (call.cache_read_input_tokens, call.cache_creation_input_tokens) == (300, 200)
    assert call.finish_reason == "end_turn"
    assert call.ttft_ms == pytest.approx(420.0)
    assert call.latency_ms == pytest.approx(1835.0)
    assert (call.status, call.error_type) == ("ok", None)
    assert call.environment == "staging"
    assert (call.feature, call.prompt_name, call.prompt_version) == ("support_chat", "support", "2.3.1")
    assert (call.user_id, call.session_id) == ("u-17", "s-9")
    assert call.metadata["provider"] == "anthropic"
    assert call.metadata["service"] == "support-api"
    assert call.metadata["otel_trace_id"] == "5b8efff798038103d269b633813fc60c"


def test_older_attribute_spellings_are_accepted() -> None:
    records, _ = split(read_traces(OTLP))
    call = records["msg_02"]
    assert call.cache_creation_input_tokens == 3000  # gen_ai.usage.cache_creation.input_tokens
    assert call.input_tokens == 1000
    assert call.finish_reason == "max_tokens"  # the first of gen_ai.response.finish_reasons
    assert (call.user_id, call.session_id) == ("u-42", "conv-7")  # enduser.id, gen_ai.conversation.id
    assert call.environment == "production"  # resource deployment.environment
    assert call.metadata["provider"] == "anthropic"  # gen_ai.system


def test_error_spans_become_error_traces() -> None:
    records, _ = split(read_traces(OTLP))
    overloaded = records["otel-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"]
    assert (overloaded.status, overloaded.error_type) == ("error", "overloaded_error")
    assert overloaded.latency_ms == pytest.approx(95.0)
    reset = records["otel-0af7651916cd43dd8448eb211c80319c-0213b0c6be758886"]
    assert (reset.status, reset.error_type) == ("error", None)  # status code "STATUS_CODE_ERROR"
    assert reset.metadata["status_message"] == "connection reset"


def test_non_genai_spans_are_skipped_and_counted() -> None:
    reader = read_traces(OTLP)
    records, _ = split(reader)
    assert len(records) == 4
    assert reader.skipped == 3  # the HTTP span, count_tokens, execute_tool


def test_bad_spans_and_broken_lines_are_rejected_with_line_and_attribute() -> None:
    _, rejections = split(read_traces(OTLP))
    assert [(r.line, r.field) for r in rejections] == [(3, "gen_ai.usage.input_tokens"), (4, None)]
    bad_span, broken = rejections
    assert bad_span.reason == ("span #1 'anthropic.messages.create' (spanId f1e1afb5ad647775): expected an integer ≥ 0, got -40")
    assert orjson.loads(bad_span.raw)["spanId"] == "f1e1afb5ad647775"
    assert broken.reason.startswith("invalid JSON:")


def test_a_single_pretty_printed_request_is_read_whole() -> None:
    reader = read_traces(PRETTY)
    records, rejections = split(reader)
    assert list(records) == ["msg_01XFDUDYJgAACzvnptvVoYEL"] and rejections == []
    assert records["msg_01XFDUDYJgAACzvnptvVoYEL"].input_tokens == 1000
    assert reader.skipped == 1


@pytest.mark.parametrize(
    "cache_write",
    [
        "gen_ai.usage.cache_write.input_tokens",
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
    ],
)
@pytest.mark.parametrize("cache_read", ["gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens"])
def test_every_cache_spelling_maps(tmp_path: Path, cache_write: str, cache_read: str) -> None:
    attributes = {"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 100, cache_write: 30, cache_read: 20}
    call = only_record(read_lines(tmp_path, request(span(attributes))))
    assert (call.input_tokens, call.cache_creation_input_tokens, call.cache_read_input_tokens) == (50, 30, 20)


def test_int_values_may_be_json_numbers_or_strings(tmp_path: Path) -> None:
    as_number = span({"gen_ai.request.model": "m"})
    as_number["attributes"].append({"key": "gen_ai.usage.output_tokens", "value": {"intValue": 17}})
    as_string = span({"gen_ai.request.model": "m", "gen_ai.usage.output_tokens": 17}, spanId="other")
    first, second = list(read_lines(tmp_path, request(as_number, as_string)))
    assert first.output_tokens == second.output_tokens == 17  # type: ignore[union-attr]


def test_input_smaller_than_cache_tokens_is_taken_as_already_uncached(tmp_path: Path) -> None:
    attributes = {"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 5, "gen_ai.usage.cache_read.input_tokens": 900}
    assert only_record(read_lines(tmp_path, request(span(attributes)))).input_tokens == 5


def test_without_response_id_the_trace_id_comes_from_the_span(tmp_path: Path) -> None:
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}
    call = only_record(read_lines(tmp_path, request(span(attributes))))
    assert call.trace_id == "otel-abc123-def456"
    assert call.timestamp == datetime(2025, 11, 15, 10, 0, tzinfo=UTC)


def test_same_response_id_in_separate_requests_gives_the_same_trace_id(tmp_path: Path) -> None:
    attributes = {"gen_ai.request.model": "m", "gen_ai.response.id": "msg_x"}
    items = list(read_lines(tmp_path, request(span(attributes)), request(span(attributes, spanId="s2"))))
    assert [item.trace_id for item in items] == ["msg_x", "msg_x"]  # type: ignore[union-attr]


def test_span_without_start_time_is_rejected_naming_the_field(tmp_path: Path) -> None:
    broken = span({"gen_ai.request.model": "m"})
    del broken["startTimeUnixNano"]
    (rejection,) = list(read_lines(tmp_path, request(broken)))
    assert isinstance(rejection, Rejection)
    assert (rejection.line, rejection.field) == (1, "startTimeUnixNano")
    assert rejection.reason.endswith("is required but missing")


def test_end_before_start_is_rejected(tmp_path: Path) -> None:
    backwards = span({"gen_ai.request.model": "m"}, endTimeUnixNano=str(START - 1_000_000))
    (rejection,) = list(read_lines(tmp_path, request(backwards)))
    assert isinstance(rejection, Rejection) and rejection.field == "endTimeUnixNano"


def test_json_that_is_not_an_otlp_request_is_rejected(tmp_path: Path) -> None:
    (rejection,) = list(read_lines(tmp_path, b'{"spans": []}'))
    assert isinstance(rejection, Rejection)
    assert (rejection.line, rejection.field) == (1, None) and "resourceSpans" in rejection.reason


def test_malformed_pieces_of_a_request_do_not_stop_the_import(tmp_path: Path) -> None:
    odd = span({"gen_ai.request.model": "m"}, status="weird", name=["not", "a", "name"])
    odd["attributes"] += [{"key": "x", "value": {"arrayValue": 7}}, {"value": {"stringValue": "no key"}}, 3]
    document = {"resourceSpans": [7, {"resource": [], "scopeSpans": [{"scope": "s", "spans": [odd, "junk"]}]}]}
    call = only_record(read_lines(tmp_path, orjson.dumps(document)))
    assert call.model == "m" and call.status == "ok"


def test_unreadable_start_time_is_quoted_in_the_rejection(tmp_path: Path) -> None:
    (rejection,) = list(read_lines(tmp_path, request(span({"gen_ai.request.model": "m"}, startTimeUnixNano="soon"))))
    assert isinstance(rejection, Rejection)
    assert rejection.field == "startTimeUnixNano" and '"soon"' in rejection.reason


def test_any_value_decodes_every_kind() -> None:
    assert any_value({"intValue": "9007199254740993"}) == 9007199254740993
    assert any_value({"doubleValue": 0.5}) == 0.5
    assert any_value({"boolValue": False}) is False
    assert any_value({"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "2"}]}}) == ["a", 2]
    assert any_value({"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "v"}}]}}) == {"k": "v"}
    assert any_value({"arrayValue": {}}) == []
