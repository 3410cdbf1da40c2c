"""JSONL and CSV trace files: good lines come through, bad ones are reported where they are."""

from __future__ import annotations

import codecs
import gzip
import shutil
import tracemalloc
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from llmops.ingest import (
    Rejection,
    TraceReader,
    batched_traces,
    detect_format,
    read_traces,
    rejection_to_json,
)
from llmops.ingest.rejections import RAW_LIMIT
from llmops.records import TraceRecord

FIXTURES = Path(__file__).parents[1] / "fixtures"
JSONL = FIXTURES / "traces_sample.jsonl"
CSV = FIXTURES / "traces_sample.csv"


def split(items: TraceReader) -> tuple[list[TraceRecord], list[Rejection]]:
    records: list[TraceRecord] = []
    rejections: list[Rejection] = []
    for item in items:
        (rejections if isinstance(item, Rejection) else records).append(item)  # type: ignore[arg-type]
    return records, rejections


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.jsonl", "jsonl"),
        ("a.NDJSON", "jsonl"),
        ("a.jsonl.gz", "jsonl"),
        ("export.csv", "csv"),
        ("spans.json", "otel"),
        ("spans.otlp.json", "otel"),
        ("spans.otlp.json.gz", "otel"),
    ],
)
def test_format_is_detected_from_the_file_name(name: str, expected: str) -> None:
    assert detect_format(Path("/data") / name) == expected


def test_unknown_extension_names_the_file_and_the_accepted_formats() -> None:
    with pytest.raises(ValueError, match=r"traces\.txt.*\.jsonl.*\.csv.*jsonl, csv, otel"):
        read_traces(Path("/data/traces.txt"))


def test_unknown_explicit_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text("")
    with pytest.raises(ValueError, match=r"'parquet'.*jsonl, csv, otel"):
        read_traces(path, "parquet")  # type: ignore[arg-type]


def test_jsonl_rejections_carry_line_field_and_plain_reason() -> None:
    _, rejections = split(read_traces(JSONL))
    assert [(r.line, r.field) for r in rejections] == [
        (2, "input_tokens"),
        (4, "timestamp"),
        (5, None),
        (6, "status"),
        (7, "automated_eval_score"),
    ]
    reasons = {r.line: r.reason for r in rejections}
    assert reasons[2] == "expected an integer ≥ 0, got -5"
    assert "ISO 8601" in reasons[4] and '"yesterday at noon"' in reasons[4]
    assert reasons[5].startswith("invalid JSON:")
    assert reasons[6] == "expected one of 'ok' or 'error', got \"timeout\""
    assert reasons[7] == "expected a number ≤ 1.0, got 1.7"
    assert all(r.source == str(JSONL) for r in rejections)
    assert rejections[0].raw.startswith('{"trace_id": "tr-002"') and not rejections[0].raw.endswith("\n")


def test_jsonl_good_lines_all_come_through_with_their_values() -> None:
    records, _ = split(read_traces(JSONL))
    by_id = {r.trace_id: r for r in records}
    assert sorted(by_id) == ["tr-001", "tr-007"]
    first = by_id["tr-001"]
    assert (first.input_tokens, first.cache_read_input_tokens, first.user_feedback) == (1200, 800, 1.0)
    assert first.tags == ["refund", "vip"] and first.metadata == {"region": "eu"}
    converted = by_id["tr-007"]
    assert converted.input_tokens == 42  # numbers as strings are accepted
    assert converted.timestamp.isoformat() == "2025-11-15T08:04:00+00:00"
    assert converted.cost_usd == Decimal("0.000123") and converted.is_batch


def test_several_bad_fields_name_the_first_and_mention_all(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(
        b'{"trace_id": "x", "timestamp": "2025-01-01T00:00:00Z", "model": "m", "output_tokens": -1, "automated_eval_score": 3}\n'
    )
    (rejection,) = list(read_traces(path))
    assert isinstance(rejection, Rejection)
    assert rejection.field == "output_tokens"
    assert "automated_eval_score: expected a number ≤ 1.0, got 3" in rejection.reason


def test_jsonl_missing_required_field_and_non_object_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"trace_id": "x", "timestamp": "2025-01-01T00:00:00Z"}\n[1, 2]\n')
    first, second = list(read_traces(path))
    assert isinstance(first, Rejection) and isinstance(second, Rejection)
    assert (first.line, first.field, first.reason) == (1, "model", "is required but missing")
    assert (second.line, second.field) == (2, None)
    assert second.reason.startswith("expected a JSON object")


def test_gzipped_and_bom_prefixed_jsonl_read_like_the_plain_file(tmp_path: Path) -> None:
    gzipped = tmp_path / "t.jsonl.gz"
    with JSONL.open("rb") as source, gzip.open(gzipped, "wb") as target:
        shutil.copyfileobj(source, target)
    with_bom = tmp_path / "bom.jsonl"
    with_bom.write_bytes(codecs.BOM_UTF8 + JSONL.read_bytes())
    expected = [(getattr(i, "trace_id", None), getattr(i, "line", None)) for i in read_traces(JSONL)]
    for path in (gzipped, with_bom):
        assert [(getattr(i, "trace_id", None), getattr(i, "line", None)) for i in read_traces(path)] == expected


def test_long_raw_lines_are_truncated(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"trace_id": "' + "x" * 10_000 + '"\n')
    (rejection,) = list(read_traces(path))
    assert isinstance(rejection, Rejection)
    assert len(rejection.raw) == RAW_LIMIT + 1 and rejection.raw.endswith("…")


def test_csv_rejections_use_physical_line_numbers_despite_multiline_cells() -> None:
    _, rejections = split(read_traces(CSV))
    assert [(r.line, r.field) for r in rejections] == [
        (4, "input_tokens"),
        (5, "timestamp"),
        (6, "metadata"),
        (8, "status"),  # after a two-line cell (lines 2-3) and a blank line 7
        (11, "automated_eval_score"),  # after a three-line cell (lines 8-10)
    ]
    assert rejections[0].reason == 'expected an integer ≥ 0, got "-5"'
    assert rejections[2].reason.startswith("expected a JSON object, invalid JSON")
    assert rejections[3].raw.startswith("tr-105,") and "third line" in rejections[3].raw


def test_csv_good_rows_convert_strings_tags_metadata_and_empty_cells() -> None:
    records, _ = split(read_traces(CSV))
    by_id = {r.trace_id: r for r in records}
    assert sorted(by_id) == ["tr-101", "tr-107"]
    first = by_id["tr-101"]
    assert (first.input_tokens, first.output_tokens, first.automated_eval_score) == (1200, 310, 0.92)
    assert first.tags == ["refund", "vip"] and first.metadata == {"region": "eu"} and first.user_feedback == 1.0
    last = by_id["tr-107"]
    assert last.input_tokens == 42 and last.status == "error" and last.user_feedback == -1.0
    assert last.automated_eval_score is None and last.metadata == {}  # empty cell = absent


def test_csv_without_required_columns_is_a_usage_error_naming_them(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("trace_id,input_tokens\nx,1\n")
    with pytest.raises(ValueError, match=r"t\.csv.*timestamp, model"):
        read_traces(path)


def test_empty_csv_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("")
    with pytest.raises(ValueError, match="empty"):
        read_traces(path)


def test_csv_row_with_wrong_cell_count_is_rejected_not_misread(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("trace_id,timestamp,model\nx,2025-01-01T00:00:00Z,m,extra\ny,2025-01-01T00:00:00Z,m\n")
    rejection, record = list(read_traces(path))
    assert isinstance(rejection, Rejection) and isinstance(record, TraceRecord)
    assert (rejection.line, rejection.field) == (2, None) and "4 cells" in rejection.reason
    assert record.trace_id == "y"


def test_rejection_json_line_has_the_documented_keys() -> None:
    rejection = Rejection("f.jsonl", 7, "input_tokens", "expected an integer ≥ 0, got -5", '{"a": 1}')
    line = rejection_to_json(rejection)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert orjson.loads(line) == {
        "line": 7,
        "field": "input_tokens",
        "reason": "expected an integer ≥ 0, got -5",
        "raw": '{"a": 1}',
    }


def test_batches_keep_every_item_and_respect_the_size() -> None:
    batches = list(batched_traces(JSONL, batch_size=3))
    assert [len(records) + len(rejections) for records, rejections in batches] == [3, 3, 1]
    assert sum(len(records) for records, _ in batches) == 2
    assert sum(len(rejections) for _, rejections in batches) == 5
    with read_traces(JSONL) as reader, pytest.raises(ValueError, match="batch_size"):
        next(reader.batches(0))


def _generate(path: Path, lines: int) -> None:
    template = (
        orjson.dumps(
            {
                "trace_id": "t-{}",
                "timestamp": "2025-11-15T10:00:00Z",
                "model": "claude-3-haiku-20240307",
                "input_tokens": 1200,
                "output_tokens": 300,
                "feature": "support",
                "tags": ["a"],
                "metadata": {"k": 1},
            }
        ).decode()
        + "\n"
    )
    with path.open("w") as file:
        file.writelines(template.replace("t-{}", f"t-{number}") for number in range(lines))


def test_memory_stays_flat_while_streaming_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    _generate(path, 200_000)
    tracemalloc.start()
    try:
        count = sum(1 for item in read_traces(path) if isinstance(item, TraceRecord))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 200_000
    assert peak < 3 * 1024 * 1024, f"peak traced memory {peak / 1e6:.1f} MB"
