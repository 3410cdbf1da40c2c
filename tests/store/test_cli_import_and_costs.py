"""`llmops traces import` and `llmops costs` as a user runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

from sqlalchemy import Engine
from typer.testing import CliRunner

from prefect_llmops.cli import app

FIXTURES = Path(__file__).parent.parent / "fixtures"
runner = CliRunner()


def _copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copy(FIXTURES / name, target)
    return target


def test_import_reports_counts_writes_rejects_and_exits_3(store: Engine, tmp_path: Path) -> None:
    path = _copy("traces_sample.jsonl", tmp_path)
    result = runner.invoke(app, ["traces", "import", str(path)])
    assert result.exit_code == 3, result.output
    summary = next(line for line in result.stdout.splitlines() if "imported" in line)
    imported = int(summary.split("imported ")[1].split(",")[0])
    rejected = int(summary.split("rejected ")[1])
    assert imported > 0 and rejected > 0
    rejects = (tmp_path / "traces_sample.jsonl.rejects.jsonl").read_text().splitlines()
    assert len(rejects) == rejected
    first = json.loads(rejects[0])
    assert {"line", "field", "reason", "raw"} <= first.keys()
    assert f"traces_sample.jsonl:{first['line']}:" in result.stderr

    again = runner.invoke(app, ["traces", "import", str(path)])
    assert f"imported 0, duplicates {imported}, rejected {rejected}" in again.stdout


def test_a_clean_file_exits_0(store: Engine, tmp_path: Path) -> None:
    path = tmp_path / "clean.jsonl"
    path.write_text(
        '{"trace_id": "a", "timestamp": "2025-11-15T10:00:00Z", "model": "claude-3-haiku-20240307", "input_tokens": 10}\n'
    )
    result = runner.invoke(app, ["traces", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "imported 1, duplicates 0, rejected 0" in result.stdout
    assert not (tmp_path / "clean.jsonl.rejects.jsonl").exists()


def test_usage_errors_exit_2(store: Engine, tmp_path: Path) -> None:
    assert runner.invoke(app, ["traces", "import", str(tmp_path / "missing.jsonl")]).exit_code == 2
    odd = tmp_path / "traces.txt"
    odd.write_text("x")
    result = runner.invoke(app, ["traces", "import", str(odd)])
    assert result.exit_code == 2
    assert "traces.txt" in result.stderr
    assert runner.invoke(app, ["traces", "import", str(odd), "--format", "xml"]).exit_code == 2
    assert runner.invoke(app, ["costs", "--by", "colour"]).exit_code == 2


def test_costs_json_has_one_object_per_group_with_the_documented_fields(store: Engine, tmp_path: Path) -> None:
    runner.invoke(app, ["traces", "import", str(_copy("traces_sample.jsonl", tmp_path))])
    result = runner.invoke(app, ["costs", "--since", "2020-01-01", "--until", "2030-01-01", "--by", "model", "--json"])
    assert result.exit_code == 0, result.output
    lines = json.loads(result.stdout)
    assert lines
    expected = {
        "model",
        "requests",
        "cost_usd",
        "avg_cost_per_request",
        "input_tokens",
        "output_tokens",
        "error_rate",
        "p50_latency_ms",
        "p95_latency_ms",
        "p99_latency_ms",
        "unpriced_requests",
    }
    for line in lines:
        assert set(line) == expected
    table = runner.invoke(app, ["costs", "--since", "2020-01-01", "--until", "2030-01-01", "--by", "feature"])
    assert table.exit_code == 0
    assert "total" in table.stdout


def test_worker_processes_import_the_same_rows_and_report_rejections_in_file_order(store: Engine, tmp_path: Path) -> None:
    from llmops.ingest.pipeline import import_file
    from llmops.store.rollups import cost_report

    lines = [
        json.dumps(
            {
                "trace_id": f"w{n}",
                "timestamp": "2025-11-15T10:00:00Z",
                "model": "claude-3-haiku-20240307",
                "input_tokens": 100 + n,
                "output_tokens": 10,
                "latency_ms": 500 + n,
            }
        )
        for n in range(1_000)
    ]
    bad_lines = {17: '{"trace_id": "x", "timestamp": "yesterday", "model": "m"}', 650: "not json"}
    for number, text in bad_lines.items():
        lines[number - 1] = text
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(lines) + "\n")

    report = import_file(store, path, "jsonl", batch_size=100, workers=2)
    assert (report.workers, report.written.inserted, report.rejected) == (2, 998, 2)
    rejects = [json.loads(line) for line in (tmp_path / "big.jsonl.rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [17, 650]
    assert rejects[0]["field"] == "timestamp"
    (line,) = cost_report(store, date(2025, 11, 15), date(2025, 11, 15), "model")
    assert line["requests"] == 998

    again = import_file(store, path, "jsonl", batch_size=100, workers=2)
    assert (again.written.inserted, again.written.duplicates) == (0, 998)
