"""compress-prompt under the Prefect test harness, against the local model server, with a tiny
LLMLingua model built at test time: a candidate registered (and gated like any version), nothing
registered when every candidate regresses or saves too little, the missing extra, and the
deployment in prefect.yaml."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from sqlalchemy import select
from typer.testing import CliRunner

import prefect_llmops.flows.compress_prompt as flow_module
from llmops import settings as env
from llmops.compression import CompressionRequest, CompressionUnavailable
from llmops.evals.store import find_runs
from llmops.prompts import get_prompt, load_prompt_file
from llmops.release.registry import get_registry
from llmops.sim import SimConfig, SimServer
from llmops.sim.knowledge import SUPPORT_TOPICS
from llmops.store.engine import get_engine
from llmops.store.outbox_models import AlertRecord
from prefect_llmops.cli import app
from prefect_llmops.flows.compress_prompt import compress_prompt
from tests.e2e.test_eval_runner import QUIET, REFUND_QUESTIONS
from tests.lingua_models import tiny_causal_lm

REPO = Path(__file__).resolve().parents[2]
REFUND_FACTS = " ".join(next(topic.facts for topic in SUPPORT_TOPICS if topic.name == "refund"))
FILLER = (
    "People who write to us are usually busy with something else, and they appreciate a friendly and clear reply "
    "that respects their time. We like to thank them for their patience and to explain things in everyday words. "
)
SYSTEM = (
    "You are the support assistant of Acme Corp.\n\n## How to help\nAlways ask for the order number before you look "
    f"up an order. Answer with the refund policy that applies.\n\n## Refund policy\n{FILLER * 3}{REFUND_FACTS}\n\n"
    f"## About us\n{FILLER * 6}"
)
"""Facts with numbers (kept), one rule the dataset checks, and plenty of prose to compress."""


def write_prompt(root: Path, keep_sections: list[str] | None = None) -> None:
    document = {
        "version": "1.0.0", "model": "claude-3-5-sonnet-20241022", "created": "2026-11-01", "author": "tests",
        "changelog": "first", "system": SYSTEM, "parameters": {"max_tokens": 512, "temperature": 0.3},
        **({"compression": {"keep_sections": keep_sections}} if keep_sections else {}),
    }  # fmt: skip
    path = root / "prompts" / "policy" / "1.0.0.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    dataset = root / "evals" / "policy" / "refunds.jsonl"
    dataset.parent.mkdir(parents=True, exist_ok=True)
    examples = [
        {"id": f"refund-{index}", "input": REFUND_QUESTIONS[index % len(REFUND_QUESTIONS)].format(n=7_000 + index),
         "assertions": [{"type": "contains", "value": "30 days"}, {"type": "contains", "value": "share your order number"}]}
        for index in range(24)
    ]  # fmt: skip
    dataset.write_text("".join(json.dumps(example) + "\n" for example in examples))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_causal_lm(tmp_path_factory.mktemp("tiny-causal-lm"))


@pytest.fixture
def sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model: Path) -> Iterator[SimServer]:
    monkeypatch.setenv(env.LLMOPS_PROMPTS_DIR, str(tmp_path / "prompts"))
    monkeypatch.setenv(env.LLMOPS_EVALS_DIR, str(tmp_path / "evals"))
    monkeypatch.setenv(env.LLMOPS_LLMLINGUA_MODEL, str(tiny_model))
    with SimServer(SimConfig(latency_median_ms=2, ttft_ms=1, seed=5, **QUIET)) as server:
        monkeypatch.setenv(env.ANTHROPIC_BASE_URL, server.base_url)
        monkeypatch.setenv(env.ANTHROPIC_API_KEY, "sim")
        yield server


def artifact_rows(key: str) -> list[dict[str, object]]:
    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), limit=1)
    data = artifact.data
    return json.loads(data) if isinstance(data, str) else data  # type: ignore[return-value]


def test_the_best_candidate_that_passes_is_registered_as_the_next_version_and_gated_like_any(
    sim: SimServer, tmp_path: Path
) -> None:
    write_prompt(tmp_path, keep_sections=["How to help"])

    outcome = compress_prompt(CompressionRequest(prompt_name="policy", rates=[0.3, 0.6], method="llmlingua", actor="tests"))

    assert outcome["chosen"] == "1.0.1" and outcome["chosen_rate"] == 0.3, outcome
    written = load_prompt_file(outcome["registered"])
    assert written.version == "1.0.1" and written.author == "tests"
    assert "Always ask for the order number before you look" in written.system and "30 days" in written.system
    assert len(written.system) < 0.75 * len(SYSTEM)
    assert "with llmlingua (tiny-causal-lm" in written.changelog and "at rate 0.3" in written.changelog
    assert "no_difference against 1.0.0 on refunds" in written.changelog and "Projected saving" in written.changelog
    assert get_registry().versions("policy")[-1].content_hash == written.content_hash

    [own_run] = find_runs(get_engine(), "policy", version="1.0.1", limit=10)
    assert own_run.content_hash == written.content_hash, "only the registered candidate's run counts for 1.0.1"
    rows = artifact_rows("compression-policy")
    assert [row["rate"] for row in rows] == [0.3, 0.6] and [row["status"] for row in rows] == ["registered", "passed"]
    with get_engine().connect() as connection:
        [alert] = connection.execute(
            select(AlertRecord.title, AlertRecord.details).where(AlertRecord.kind == "compression")
        ).all()
    assert alert.title == "policy 1.0.1 is ready to promote" and "llmops promote policy 1.0.1" in alert.details

    again = compress_prompt(
        CompressionRequest(prompt_name="policy", version="1.0.0", rates=[0.3], method="llmlingua", actor="tests")
    )
    assert again["chosen"] == "1.0.1", "the same compression again is the same version, not 1.0.2"


def test_nothing_is_registered_when_every_candidate_regresses_and_the_run_says_why(sim: SimServer, tmp_path: Path) -> None:
    write_prompt(tmp_path)  # the rule is prose: at rate 0.05 it loses "ask for the order number"

    outcome = compress_prompt(CompressionRequest(prompt_name="policy", rates=[0.05], method="llmlingua"))

    assert outcome["chosen"] is None and outcome["registered"] is None
    assert outcome["why_none"].startswith("rate 0.05 (")
    assert "regression, refunds: assertions Δ -0." in outcome["why_none"]
    assert sorted(path.name for path in (tmp_path / "prompts" / "policy").iterdir()) == ["1.0.0.yaml"]
    assert find_runs(get_engine(), "policy", version="1.0.1", limit=10) == [], "an unregistered candidate's runs are no version's"


def test_a_candidate_that_saves_too_little_is_set_aside_without_an_evaluation(sim: SimServer, tmp_path: Path) -> None:
    write_prompt(tmp_path, keep_sections=["How to help", "Refund policy", "About us"])  # nothing left to compress

    outcome = compress_prompt(CompressionRequest(prompt_name="policy", rates=[0.3], method="llmlingua"))

    assert outcome["chosen"] is None
    assert "ineffective" in outcome["why_none"] and "LLMLingua barely compresses" in outcome["why_none"]
    assert find_runs(get_engine(), "policy", status=None, limit=10) == []


def test_without_the_compression_extra_the_flow_fails_at_once_with_the_install_command(
    sim: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_prompt(tmp_path)
    monkeypatch.setattr(
        flow_module, "missing_extra", lambda: "prompt compression needs torch: pip install 'prefect-llmops[compression]'"
    )
    with pytest.raises(CompressionUnavailable, match=r"pip install 'prefect-llmops\[compression\]'"):
        compress_prompt(CompressionRequest(prompt_name="policy"))
    assert get_prompt("policy").version == "1.0.0"


def test_the_deployment_has_a_typed_form_and_a_weekly_schedule_that_is_off() -> None:
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    [deployment] = [d for d in config["deployments"] if d["name"] == "compress-prompt"]
    assert (
        deployment["entrypoint"] == "prefect_llmops.flows.compress_prompt:compress_prompt"
        and deployment["enforce_parameter_schema"]
    )
    [schedule] = deployment["schedules"]
    assert schedule["cron"].endswith("* * 1") and schedule["active"] is False
    CompressionRequest.model_validate(deployment["parameters"]["request"])


def test_the_command_line_prints_the_outcome_and_refuses_bad_input_in_one_line(sim: SimServer, tmp_path: Path) -> None:
    write_prompt(tmp_path, keep_sections=["How to help"])
    cli = CliRunner()

    for arguments, message in (
        (["--rates", "0.3,abc"], "--rates takes shares of tokens to keep"),
        (["--rates", "1.5"], "rates.0: Input should be less than 1"),
        (["--method", "zip"], "method: Input should be 'llmlingua' or 'llmlingua2'"),
    ):
        result = cli.invoke(app, ["compress", "policy", *arguments])
        assert result.exit_code == 2 and message in result.output, result.output
    unknown = cli.invoke(app, ["compress", "nope"])
    assert unknown.exit_code == 2 and "no prompt named 'nope'" in unknown.output

    done = cli.invoke(app, ["compress", "policy", "--rates", "0.3", "--method", "llmlingua", "--json"])
    assert done.exit_code == 0, done.output
    outcome = json.loads(done.stdout[done.stdout.index("{") :])
    assert outcome["chosen"] == "1.0.1" and outcome["candidates"][0]["status"] == "registered"
