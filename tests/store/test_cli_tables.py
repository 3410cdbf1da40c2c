"""Tables that fit, through the real commands (issue 14, item 4): ``costs --by model`` at 80 to 200
columns keeps every model id and number whole, ``eval compare`` shows a score and its interval with
the same decimals, ``ab report`` is a table (Markdown stays for artifacts), and ``prompts list``
shows which version each label serves."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from llmops.prompts import get_prompt
from llmops.release.experiments import ab_report, arm_samples_from_traces
from llmops.release.registry import Registry
from llmops.release.rollouts import start_rollout
from prefect_llmops.cli import app
from tests.store.test_eval_verdicts import base_scores, record_run, shifted
from tests.store.test_rollouts import NAME, T0, add_traffic, engine, prompts_dir, released, request  # noqa: F401  (fixtures)

runner = CliRunner()
MODELS = {"claude-3-5-sonnet-20241022": 45_139_123, "claude-3-haiku-20240307": 97_748_204, "claude-sonnet-4-20250514": 44_174_260}


def _import(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    lines = []
    for index, (model, tokens) in enumerate(MODELS.items()):
        record = {"trace_id": f"wide-{index}", "timestamp": "2025-11-15T10:00:00Z", "model": model,
                  "input_tokens": tokens, "output_tokens": 5_397_285, "feature": "chat_response", "latency_ms": 36_026}  # fmt: skip
        lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["traces", "import", str(path)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("columns", ["80", "100", "120", "200"])
def test_costs_by_model_shows_every_model_and_token_count_whole(store: Engine, tmp_path: Path, columns: str) -> None:
    _import(tmp_path)
    result = runner.invoke(
        app, ["costs", "--by", "model", "--since", "2025-11-01", "--until", "2025-11-30"], env={"COLUMNS": columns}
    )
    assert result.exit_code == 0, (result.output, result.exception)
    assert "…" not in result.stdout
    for model, tokens in MODELS.items():
        assert model in result.stdout and f"{tokens:,}" in result.stdout
    assert f"{sum(MODELS.values()):,}" in result.stdout  # the total row too
    assert all(len(line) <= int(columns) for line in result.stdout.splitlines() if "│" in line)


@pytest.fixture
def clean(store: Engine) -> Engine:
    with store.begin() as connection:
        for table in ("eval_results", "eval_runs", "label_events", "prompt_labels", "prompt_versions"):
            connection.execute(text(f"DELETE FROM {table}"))
    return store


def test_eval_compare_shows_scores_deltas_and_intervals_with_the_same_decimals(clean: Engine) -> None:
    scores = base_scores()
    a = record_run(clean, "1.0.0", scores)
    b = record_run(clean, "1.1.0", shifted(scores, 0.1, 0.02, seed=3))
    result = runner.invoke(app, ["eval", "compare", str(a), str(b)], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.startswith("│ quality")]
    assert rows, result.stdout
    cells = [cell.strip() for cell in rows[0].strip("│").split("│")]
    baseline, candidate, delta, interval = cells[1:5]
    decimals = {len(number.split(".")[1]) for number in (baseline, candidate, delta, *interval.strip("[]").split(", "))}
    assert decimals == {3}, cells
    assert delta.startswith("+") and interval.startswith("[+")
    as_json = json.loads(runner.invoke(app, ["eval", "compare", str(a), str(b), "--json"]).stdout)
    assert as_json["verdict"] == "improvement"  # JSON keeps full precision
    assert {metric["metric"] for metric in as_json["metrics"]} >= {"quality", "assertions"}


def test_ab_report_rows_are_a_table_not_markdown() -> None:
    def row(version: str, user: str, latency: float, cost: float) -> dict[str, object]:
        return {"prompt_version": version, "user_id": user, "status": "ok", "latency_ms": latency, "cost_usd": cost,
                "user_feedback": None, "automated_eval_score": None, "metadata": {}}  # fmt: skip

    rows = [row("1.0.0", f"u{index}", 900.0 + index, 0.001) for index in range(60)]
    rows += [row("1.1.0", f"v{index}", 700.0 + index, 0.002) for index in range(60)]
    report = ab_report(arm_samples_from_traces(rows, ()))
    table = report.rows()
    assert [row["metric"] for row in table][:3] == ["error rate", "p95 latency", "cost per request"]
    assert set(table[0]) == {"metric", "1.0.0", "1.0.0 n", "1.1.0", "1.1.0 n", "verdict"}
    assert table[0]["1.0.0 n"] == 60 and "[" in table[1]["1.0.0"] and "|" not in str(table)
    assert "| metric |" in report.to_markdown()  # artifacts keep their Markdown


def test_prompts_list_shows_production_and_canary_per_prompt(clean: Engine) -> None:
    registry = Registry(clean)
    for version in ("2.3.0", "2.3.1"):
        registry.register(get_prompt("support-chat", version), actor="tests")
    registry.set_label("support-chat", "production", "2.3.0", actor="tests", reason="release")
    registry.set_label("support-chat", "canary", "2.3.1", traffic_percent=5, actor="tests", reason="canary")
    result = runner.invoke(app, ["prompts", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stdout.splitlines() if "support-chat" in line]
    assert "2.3.0" in line and "2.3.1 (5 %)" in line
    assert "production" in result.stdout and "canary" in result.stdout
    listed = {row["name"]: row for row in json.loads(runner.invoke(app, ["prompts", "list", "--json"]).stdout)}
    assert listed["support-chat"]["labels"] == {
        "canary": {"version": "2.3.1", "traffic_percent": 5.0},
        "production": {"version": "2.3.0", "traffic_percent": None},
    }
    assert listed["support-chat"]["versions"][:2] == ["2.3.0", "2.3.1"] and date.today().year > 2000


def test_ab_report_prints_a_table_and_keeps_its_json(engine: Engine) -> None:  # noqa: F811  (the rollouts fixture)
    released(engine)
    start_rollout(engine, request(strategy="ab", ab_split=50, ab_duration_hours=2), now=T0)
    add_traffic(engine, "1.1.0", 300, T0 + timedelta(seconds=1))
    add_traffic(engine, "1.0.0", 300, T0 + timedelta(seconds=1), errors=30)
    for columns in ("80", "120", "200"):
        shown = runner.invoke(app, ["ab", "report", NAME], env={"COLUMNS": columns})
        assert shown.exit_code == 0, shown.output
        assert "|---|" not in shown.stdout and "## A/B report" not in shown.stdout  # no raw Markdown
        assert "A/B report of support" in shown.stdout and "error rate" in shown.stdout and "1.1.0" in shown.stdout
        assert "…" not in shown.stdout and "10.00 %" in shown.stdout  # 30 of 300 calls failed
    as_json = json.loads(runner.invoke(app, ["ab", "report", NAME, "--json"]).stdout)
    assert as_json["versions"] == ["1.0.0", "1.1.0"]
