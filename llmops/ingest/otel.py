"""OpenTelemetry GenAI spans (OTLP/JSON) turned into trace records.

Input: what the OpenTelemetry Collector's file exporter writes — one
``ExportTraceServiceRequest`` JSON object per line — or a single pretty-printed request.
A span is an LLM call when it carries ``gen_ai.request.model`` or ``gen_ai.operation.name``,
unless it is a GenAI span that is not a model call (tool executions, agent spans that wrap
the calls they make, the anthropic SDK's ``count_tokens`` and ``sessions.create``). Those and
other spans (HTTP, DB, …) are counted in ``skipped`` and otherwise ignored.

Attributes read (names drift between semantic-conventions versions and instrumentations,
so every spelling listed is accepted; the first one present wins):

==============================  ===========================================================
record field                    span attribute(s)
==============================  ===========================================================
trace_id                        ``gen_ai.response.id``, else ``otel-{traceId}-{spanId}``
timestamp, latency_ms           ``startTimeUnixNano``, ``endTimeUnixNano``
model / response_model          ``gen_ai.request.model`` / ``gen_ai.response.model``
input_tokens                    ``gen_ai.usage.input_tokens`` | ``gen_ai.usage.prompt_tokens``
                                minus the cache tokens (see below)
output_tokens                   ``gen_ai.usage.output_tokens`` | ``gen_ai.usage.completion_tokens``
cache_read_input_tokens         ``gen_ai.usage.cache_read.input_tokens`` |
                                ``gen_ai.usage.cache_read_input_tokens``
cache_creation_input_tokens     ``gen_ai.usage.cache_write.input_tokens`` |
                                ``gen_ai.usage.cache_creation.input_tokens`` |
                                ``gen_ai.usage.cache_creation_input_tokens``
ttft_ms                         ``gen_ai.response.time_to_first_chunk`` (seconds)
finish_reason                   first of ``gen_ai.response.finish_reasons`` |
                                ``anthropic.message.stop_reason``
status, error_type              status code 2 / ``STATUS_CODE_ERROR``, or ``error.type`` set
environment                     ``llmops.environment``, else resource
                                ``deployment.environment.name`` | ``deployment.environment``
feature                         ``llmops.feature``
prompt_name / prompt_version    ``llmops.prompt.name`` / ``llmops.prompt.version``
user_id                         ``user.id`` | ``enduser.id``
session_id                      ``session.id`` | ``gen_ai.conversation.id``
metadata                        provider (``gen_ai.provider.name`` | ``gen_ai.system``),
                                operation, service (resource ``service.name``), the OTel
                                trace/span ids and instrumentation scope, status message
==============================  ===========================================================

Tokens: the GenAI conventions count cached tokens inside ``gen_ai.usage.input_tokens`` (the
anthropic SDK's own spans and OpenLLMetry both do), while a trace record keeps Anthropic's
*uncached* input tokens; so the cache tokens are subtracted. When the reported input is
smaller than the cache tokens, the instrumentation evidently reported uncached tokens already,
and the value is kept as is.

One call reported by two instrumentations (sibling spans sharing ``gen_ai.response.id``)
becomes one trace id, so the store keeps it once; within one request the two spans are also
merged here, the span with more attributes winning and the other filling its gaps.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from llmops.ingest.rejections import Rejection, describe_validation_error, truncate_raw
from llmops.records import TraceRecord

GENAI_MARKERS: tuple[str, ...] = ("gen_ai.request.model", "gen_ai.operation.name")
NOT_MODEL_CALL_OPERATIONS = frozenset({"execute_tool", "create_agent", "invoke_agent", "invoke_workflow"})
NOT_MODEL_CALL_SPAN_NAMES = frozenset({"anthropic.messages.count_tokens", "anthropic.sessions.create"})
FINISH_REASONS = ("gen_ai.response.finish_reasons", "anthropic.message.stop_reason")
INPUT_TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
OUTPUT_TOKENS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
CACHE_READ_TOKENS = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens")
CACHE_WRITE_TOKENS = (
    "gen_ai.usage.cache_write.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
)
TIME_TO_FIRST_TOKEN_SECONDS = ("gen_ai.response.time_to_first_chunk",)
PROVIDER = ("gen_ai.provider.name", "gen_ai.system")
ENVIRONMENT_RESOURCE = ("deployment.environment.name", "deployment.environment")
_DIRECT_ATTRIBUTES: Mapping[str, tuple[str, ...]] = {
    "model": ("gen_ai.request.model",),
    "response_model": ("gen_ai.response.model",),
    "feature": ("llmops.feature",),
    "prompt_name": ("llmops.prompt.name",),
    "prompt_version": ("llmops.prompt.version",),
    "user_id": ("user.id", "enduser.id"),
    "session_id": ("session.id", "gen_ai.conversation.id"),
    "environment": ("llmops.environment",),
    "output_tokens": OUTPUT_TOKENS,
    "cache_read_input_tokens": CACHE_READ_TOKENS,
    "cache_creation_input_tokens": CACHE_WRITE_TOKENS,
}
_ERROR_STATUS = (2, "2", "STATUS_CODE_ERROR")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def any_value(value: Any) -> Any:
    """A Python value from an OTLP/JSON ``AnyValue`` (int64 arrives as a decimal string).

    Args:
        value: An ``AnyValue`` object (anything else is returned as is).

    Returns:
        A str, int, float, bool, list or dict; None for an empty or unknown ``AnyValue``.

    Example:
        >>> any_value({"intValue": "1200"}), any_value({"arrayValue": {"values": [{"stringValue": "stop"}]}})
        (1200, ['stop'])
    """
    if not isinstance(value, dict):
        return value
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        number = value["intValue"]
        try:
            return int(number)
        except (TypeError, ValueError):
            return number  # left for validation to name
    if "doubleValue" in value:
        return value["doubleValue"]
    if "boolValue" in value:
        return value["boolValue"]
    if "arrayValue" in value:
        array = value["arrayValue"]
        items = array.get("values") if isinstance(array, dict) else None
        converted: list[Any] = []
        if isinstance(items, list):
            for item in items:  # a loop, not a comprehension: one stack frame per level of nesting
                converted.append(any_value(item))
        return converted
    if "kvlistValue" in value:
        kvlist = value["kvlistValue"]
        return attributes_of(kvlist.get("values") if isinstance(kvlist, dict) else None)
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def attributes_of(key_values: Any) -> dict[str, Any]:
    """``[{"key": …, "value": AnyValue}, …]`` as a dict.

    Example:
        >>> attributes_of([{"key": "gen_ai.request.model", "value": {"stringValue": "claude-haiku-4-5"}}])
        {'gen_ai.request.model': 'claude-haiku-4-5'}
    """
    if not isinstance(key_values, list):
        return {}
    # A loop, not a comprehension: nested kvlists then take two stack frames a level, and orjson's
    # parsing limit (1,024 levels) keeps any input far from Python's recursion limit.
    attributes: dict[str, Any] = {}
    for item in key_values:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            attributes[item["key"]] = any_value(item.get("value"))
    return attributes


def _first(attributes: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str, Any] | None:
    """The first of ``names`` present (and not null) with its value."""
    for name in names:
        value = attributes.get(name)
        if value is not None:
            return name, value
    return None


def is_model_call(span: dict[str, Any], attributes: Mapping[str, Any]) -> bool:
    """Whether a span reports one LLM call (and not tool work, an agent, or a free endpoint).

    Args:
        span: The OTLP span.
        attributes: Its attributes (``attributes_of``).

    Returns:
        True for a model call; other spans are counted as skipped.

    Example:
        >>> is_model_call({"name": "chat"}, {"gen_ai.request.model": "m"}), is_model_call({}, {"http.method": "GET"})
        (True, False)
    """
    if not any(marker in attributes for marker in GENAI_MARKERS):
        return False
    operation = attributes.get("gen_ai.operation.name")
    if isinstance(operation, str) and operation in NOT_MODEL_CALL_OPERATIONS:
        return False
    name = span.get("name")
    return not (isinstance(name, str) and name in NOT_MODEL_CALL_SPAN_NAMES)


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The objects of a JSON list, ignoring anything that is not a list of objects."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _nanoseconds(value: Any) -> int | None:
    """A ``*TimeUnixNano`` field (a string or a number); 0 and absent mean unknown."""
    try:
        nanoseconds = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an infinite float
        return None
    return nanoseconds or None


def _datetime(nanoseconds: int) -> datetime | None:
    """UTC time of a Unix nanosecond count, or None when it is beyond any calendar."""
    try:
        return _EPOCH + timedelta(microseconds=nanoseconds // 1000)
    except OverflowError:
        return None


def _span_raw(span: dict[str, Any]) -> str:
    """A rejected span as JSON for the rejects file; a span too deep for JSON output is named only."""
    try:
        return truncate_raw(orjson.dumps(span))
    except TypeError:  # orjson.JSONEncodeError: nested deeper than orjson writes
        return f"<span {span.get('spanId')!r}: nested too deeply to show>"


class _SpanFields:
    """A GenAI span's record fields before validation, with the attribute each came from."""

    __slots__ = ("fields", "origins", "index", "span")

    def __init__(self, fields: dict[str, Any], origins: dict[str, str], index: int, span: dict[str, Any]) -> None:
        self.fields = fields
        self.origins = origins
        self.index = index
        self.span = span

    def absorb(self, other: _SpanFields) -> None:
        """Merge a duplicate report of the same call: the richer span wins, the other fills gaps."""
        if len(other.fields) + len(other.fields["metadata"]) > len(self.fields) + len(self.fields["metadata"]):
            winner, loser = other, self
        else:
            winner, loser = self, other
        fields = {**loser.fields, **winner.fields}
        fields["metadata"] = {**loser.fields["metadata"], **winner.fields["metadata"]}
        self.fields = fields
        self.origins = {**loser.origins, **winner.origins}
        self.index, self.span = winner.index, winner.span


def span_fields(
    span: dict[str, Any], attributes: dict[str, Any], resource: dict[str, Any], scope: str | None, index: int
) -> _SpanFields:
    """The record fields of one GenAI span (see the module's table), before validation.

    Args:
        span: The OTLP span.
        attributes: Its attributes.
        resource: Its resource's attributes (service, deployment environment).
        scope: The instrumentation scope's name.
        index: The span's position in its request, for rejections.

    Returns:
        The fields, with the attribute each came from (so a rejection names the attribute).
    """
    fields: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for field, names in _DIRECT_ATTRIBUTES.items():
        found = _first(attributes, names)
        if found:
            origins[field], fields[field] = found
    if "environment" not in fields and (found := _first(resource, ENVIRONMENT_RESOURCE)):
        origins["environment"], fields["environment"] = found

    if found := _first(attributes, INPUT_TOKENS):
        origins["input_tokens"], reported = found
        cached = [fields.get("cache_read_input_tokens", 0), fields.get("cache_creation_input_tokens", 0)]
        all_counts = isinstance(reported, int) and all(isinstance(count, int) for count in cached)
        if all_counts and reported >= sum(cached):
            reported -= sum(cached)
        fields["input_tokens"] = reported

    if found := _first(attributes, TIME_TO_FIRST_TOKEN_SECONDS):
        origins["ttft_ms"], seconds = found
        fields["ttft_ms"] = seconds * 1000 if isinstance(seconds, int | float) else seconds

    if found := _first(attributes, FINISH_REASONS):
        origins["finish_reason"], reasons = found
        if not isinstance(reasons, list):
            fields["finish_reason"] = reasons
        elif reasons:
            fields["finish_reason"] = reasons[0]

    raw_start = span.get("startTimeUnixNano")
    start = _nanoseconds(raw_start)
    end = _nanoseconds(span.get("endTimeUnixNano"))
    origins["timestamp"] = "startTimeUnixNano"
    origins["latency_ms"] = "endTimeUnixNano"
    if start is not None:
        # An unreadable time stays as it was written, so the rejection quotes it.
        fields["timestamp"] = _datetime(start) or raw_start
        if end is not None:
            fields["latency_ms"] = (end - start) / 1e6
    elif raw_start not in (None, 0, "0"):
        fields["timestamp"] = raw_start

    status = span.get("status")
    status = status if isinstance(status, dict) else {}
    error_type = attributes.get("error.type")
    if error_type is not None or status.get("code") in _ERROR_STATUS:
        fields["status"] = "error"
        if error_type is not None:
            fields["error_type"] = str(error_type)
            origins["error_type"] = "error.type"

    trace_id, span_id = span.get("traceId") or "", span.get("spanId") or ""
    response_id = attributes.get("gen_ai.response.id")
    if isinstance(response_id, str) and response_id:
        fields["trace_id"] = response_id
        origins["trace_id"] = "gen_ai.response.id"
    else:
        fields["trace_id"] = f"otel-{trace_id}-{span_id}"

    metadata: dict[str, Any] = {"otel_trace_id": trace_id, "otel_span_id": span_id}
    if found := _first(attributes, PROVIDER):
        metadata["provider"] = str(found[1]).lower()
    if (operation := attributes.get("gen_ai.operation.name")) is not None:
        metadata["operation"] = operation
    if scope:
        metadata["otel_scope"] = scope
    if (service := resource.get("service.name")) is not None:
        metadata["service"] = service
    if status.get("message"):
        metadata["status_message"] = status["message"]
    fields["metadata"] = metadata
    return _SpanFields(fields, origins, index, span)


class OtlpJsonParser:
    """Reads OTLP/JSON requests; ``skipped`` counts the non-GenAI spans seen so far.

    Args:
        source: The file's name, for rejections.

    Example:
        ```python
        parser = OtlpJsonParser("collector.otlp.json")
        with open("collector.otlp.json", "rb") as stream:
            items = list(parser.parse(stream))
        print(parser.skipped, "spans were not LLM calls")
        ```
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.skipped = 0

    def parse(self, stream: io.BufferedIOBase) -> Iterator[TraceRecord | Rejection]:
        """Line-delimited requests, or one pretty-printed request when line 1 is not a whole object.

        Args:
            stream: The file's bytes.

        Yields:
            A ``TraceRecord`` per model call (duplicate reports of one call merged) and a
            ``Rejection`` per bad request or span, numbered by the request's line.
        """
        lines = enumerate(stream, start=1)
        for number, line in lines:
            if number == 1:
                line = line.removeprefix(codecs.BOM_UTF8)
            stripped = line.strip()
            if not stripped:
                continue
            if not (stripped.startswith(b"{") and stripped.endswith(b"}")):
                document = line + b"".join(rest for _, rest in lines)
                yield from self._document_bytes(document, number)
                return
            yield from self._document_bytes(line, number)
            break
        for number, line in lines:
            if line.strip():
                yield from self._document_bytes(line, number)

    def _document_bytes(self, raw: bytes, line: int) -> Iterator[TraceRecord | Rejection]:
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            yield Rejection(self.source, line, None, f"invalid JSON: {exc}", truncate_raw(raw))
            return
        resource_spans = document.get("resourceSpans") if isinstance(document, dict) else None
        if not isinstance(resource_spans, list):
            reason = 'not an OTLP/JSON ExportTraceServiceRequest: expected an object with a "resourceSpans" list'
            yield Rejection(self.source, line, None, reason, truncate_raw(raw))
            return
        yield from self._request(resource_spans, line)

    def _request(self, resource_spans: list[Any], line: int) -> Iterator[TraceRecord | Rejection]:
        """One request's GenAI spans, duplicates of one call merged, in order of first appearance."""
        calls: dict[str, _SpanFields] = {}
        index = 0
        for resource_span in _dicts(resource_spans):
            resource = resource_span.get("resource")
            resource_attributes = attributes_of(resource.get("attributes") if isinstance(resource, dict) else None)
            for scope_span in _dicts(resource_span.get("scopeSpans")):
                scope = scope_span.get("scope")
                scope_name = scope.get("name") if isinstance(scope, dict) else None
                for span in _dicts(scope_span.get("spans")):
                    index += 1
                    attributes = attributes_of(span.get("attributes"))
                    if not is_model_call(span, attributes):
                        self.skipped += 1
                        continue
                    call = span_fields(span, attributes, resource_attributes, scope_name, index)
                    key = call.fields["trace_id"]
                    if key in calls:
                        calls[key].absorb(call)
                    else:
                        calls[key] = call
        for call in calls.values():
            try:
                yield TraceRecord.model_validate(call.fields)
            except ValidationError as exc:
                field, reason = describe_validation_error(exc, call.origins)
                name = call.span.get("name") or "?"
                where = f"span #{call.index} {name!r} (spanId {call.span.get('spanId') or '?'})"
                yield Rejection(self.source, line, field, f"{where}: {reason}", _span_raw(call.span))
