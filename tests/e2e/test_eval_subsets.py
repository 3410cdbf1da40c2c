"""Quick eval runs on part of a dataset (issue 14, item 6): ``eval run --limit N`` and ``--sample N
--seed S`` against the local simulator, stored as subset runs the evaluation gate never counts, and
``eval list`` showing them with the ids ``eval compare`` takes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from llmops import settings as env
from llmops.evals import store
from llmops.prompts import get_prompt
from llmops.release.gates import EvalGateContext, eval_gate
from llmops.release.registry import get_registry
from llmops.sim import SimConfig, SimServer
from llmops.store.engine import get_engine
from prefect_llmops.cli.evals import register
from tests.e2e.test_eval_runner import QUIET, write_prompt_and_dataset

cli = CliRunner()


@pytest.fixture
def sim() -> Iterator[SimServer]:
    config = SimConfig(latency_median_ms=5, ttft_ms=1, retry_after_seconds=0.01, batch_delay_seconds=0.2, seed=11, **QUIET)
    with SimServer(config) as server:
        yield server


@pytest.fixture
def app(sim: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    """``support`` 1.0.0 in production and 1.1.0 registered, a 20-example dataset, the simulator as the model."""
    write_prompt_and_dataset(tmp_path, monkeypatch)
    monkeypatch.setenv(env.ANTHROPIC_BASE_URL, sim.base_url)
    monkeypatch.setenv(env.ANTHROPIC_API_KEY, "sim")
    registry = get_registry()
    for version in ("1.0.0", "1.1.0"):
        registry.register(get_prompt("support", version), actor="tests")
    registry.set_label("support", "production", "1.0.0", actor="tests", reason="release")
    app = typer.Typer()
    register(app)
    return app


def _run(app: typer.Typer, *args: str) -> dict:  # type: ignore[type-arg]
    result = cli.invoke(app, ["eval", "run", "support", "--json", "--concurrency", "4", *args])
    assert result.exit_code == 0, result.output
    [outcome] = json.loads(result.stdout)
    return outcome["run"]  # type: ignore[no-any-return]


def test_limit_and_sample_run_part_of_the_dataset_and_say_so(app: typer.Typer) -> None:
    limited = _run(app, "--version", "1.1.0", "--limit", "5")
    assert limited["dataset_name"] == "refunds@first5" and limited["cases_total"] == 5 and limited["status"] == "complete"
    assert {k: limited["details"]["subset"][k] for k in ("kind", "size", "of", "dataset")} == {
        "kind": "first", "size": 5, "of": 20, "dataset": "refunds",
    }  # fmt: skip
    examples = [row["example_id"] for row in store.results(get_engine(), limited["id"])]
    assert sorted(examples) == [f"refund-{index:04d}" for index in range(5)]  # the first five, in file order

    first = _run(app, "--version", "1.1.0", "--sample", "6", "--seed", "3")
    again = _run(app, "--version", "1.1.0", "--sample", "6", "--seed", "3")
    other = _run(app, "--version", "1.1.0", "--sample", "6", "--seed", "4")
    assert first["dataset_name"] == "refunds@sample6-seed3" and first["cases_total"] == 6
    assert first["dataset_hash"] == again["dataset_hash"] != other["dataset_hash"]  # the seed draws the same examples
    ids = {row["example_id"] for row in store.results(get_engine(), first["id"])}
    assert ids == {row["example_id"] for row in store.results(get_engine(), again["id"])} and len(ids) == 6

    whole = _run(app, "--version", "1.1.0", "--limit", "50")  # at least the dataset's size: the whole dataset
    assert whole["dataset_name"] == "refunds" and "subset" not in whole["details"]

    both = cli.invoke(app, ["eval", "run", "support", "--limit", "2", "--sample", "2"])
    assert both.exit_code == 2 and "not both" in both.output


def test_the_evaluation_gate_never_counts_a_subset_run_and_says_why(app: typer.Typer) -> None:
    _run(app)  # production 1.0.0 on the whole dataset
    subset = _run(app, "--version", "1.1.0", "--limit", "5")
    context = EvalGateContext(get_engine(), "support", candidate="1.1.0", baseline="1.0.0", environment="production")
    result = eval_gate(context)
    assert result.verdict == "missing"  # only a whole-dataset run judges a version
    assert f"run {subset['id']} on refunds@first5 saw 5 of 20 examples" in result.summary
    assert "only a run on a whole dataset judges a version" in result.summary

    whole = _run(app, "--version", "1.1.0")
    result = eval_gate(context)
    assert result.verdict in ("pass", "fail") and f"run {whole['id']}" in result.summary


def test_eval_list_shows_runs_newest_first_with_their_ids(app: typer.Typer) -> None:
    full = _run(app)
    part = _run(app, "--version", "1.1.0", "--sample", "4")
    listed = cli.invoke(app, ["eval", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    runs = json.loads(listed.stdout)
    assert [run["id"] for run in runs] == [part["id"], full["id"]]
    assert runs[0]["details"]["subset"]["size"] == 4

    table = cli.invoke(app, ["eval", "list", "--prompt", "support"], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    for text in (str(full["id"]), str(part["id"]), "claude-3-5-sonnet-20241022", "refunds@sample4-seed0", "4 of 20", "20"):
        assert text in table.stdout
    assert "…" not in table.stdout
    limited = json.loads(cli.invoke(app, ["eval", "list", "--limit", "1", "--json"]).stdout)
    assert [run["id"] for run in limited] == [part["id"]]
    none = cli.invoke(app, ["eval", "list", "--prompt", "nothing"])
    assert none.exit_code == 0 and "no eval runs of nothing" in none.stdout
