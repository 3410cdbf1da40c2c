"""The drift-detection flow under the Prefect test harness: stored findings, artifact, alert, events."""

from __future__ import annotations

import importlib
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from prefect.artifacts import Artifact
from prefect.cli.deploy._models import PrefectYamlModel
from prefect.cli.deploy._triggers import _initialize_deployment_triggers
from prefect.server.events.schemas.automations import EventTrigger
from prefect.server.events.schemas.events import ReceivedEvent
from sqlalchemy import Engine, func, select

import prefect_llmops.tasks.drift as drift_tasks
from llmops import settings
from llmops.demo import generate_traces
from llmops.drift.pinned_compare import PinnedDriftConfig
from llmops.drift.pinned_references import load_reference
from llmops.evals.datasets import load_dataset
from llmops.evals.embeddings import EmbeddingModelUnavailable
from llmops.prompts import load_prompts
from llmops.release.registry import Registry
from llmops.release.rollouts import PromotionForm
from llmops.report.slack import OUTBOX
from llmops.sim import SimConfig, SimServer
from llmops.store.engine import get_engine
from llmops.store.outbox_models import AlertRecord
from llmops.store.tables import DRIFT_REPORTS as REPORTS
from llmops.store.writer import write_traces
from prefect_llmops.flows.drift_detection import ARTIFACT_KEY, drift_detection
from prefect_llmops.flows.promote_prompt import promote_prompt

END = date(2026, 11, 26)
REPO = Path(__file__).resolve().parents[2]
PROMPTS = REPO / "prompts"
ALERTS = AlertRecord.__table__
PREFECT_YAML_DEPLOYMENT = """
  - name: drift-detection
    entrypoint: prefect_llmops.flows.drift_detection:drift_detection
    description: >-
      Every night at 02:30, yesterday's traces against the 14 days before, per environment,
      feature, prompt version and model: p50/p95 latency, time to first token, tokens and cost
      per request, error rate, finish reasons, feedback and eval score, each judged against how
      much whole days normally vary and corrected for the night's many tests. Also audits
      pinning: calls on an alias, off their version's pinned model, or answered by another
      model. Findings go to drift_reports and this run's table artifact; what no earlier run
      reported is alerted through the outbox; every drifted prompt version emits
      llmops.drift.detected (a canary's rolls it back). Keep the timezone = LLMOPS_TIMEZONE.
    tags: [llmops, drift]
    parameters: {}
    enforce_parameter_schema: true
    schedules:
      - cron: "30 2 * * *"
        timezone: UTC
        active: true
    concurrency_limit: 1
    work_pool: *llmops_pool
"""


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        settings.SLACK_BOT_TOKEN,
        settings.SLACK_CHANNEL,
        settings.SLACK_WEBHOOK_URL,
        settings.PREFECT_UI_URL,
        settings.ANTHROPIC_API_KEY,
        settings.ANTHROPIC_BASE_URL,
    ):  # no model: pinned drift is not checked
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(settings.LLMOPS_PROMPTS_DIR, str(PROMPTS))


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every event the drift tasks emit (still sent to the harness)."""
    seen: list[dict[str, Any]] = []
    real = drift_tasks.emit_event

    def recording(**kwargs: Any) -> Any:
        seen.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(drift_tasks, "emit_event", recording)
    return seen


@pytest.fixture
def engine() -> Engine:
    """The demo's month to END (chat slower on its last day), support-chat 2.3.1 as a 10 % canary
    that served chat's calls (the demo's own history has 2.3.0 serve them: here the canary drifts)."""
    engine = get_engine()
    traces = generate_traces(days=30, end_day=END, calls_per_weekday=400)
    canary = {"prompt_version": "2.3.1"}
    write_traces(engine, [t.model_copy(update=canary) if t.prompt_name == "support-chat" else t for t in traces])
    registry = Registry(engine)
    for prompt in load_prompts(PROMPTS)["support-chat"].values():
        registry.register(prompt, actor="ci")
    registry.set_label("support-chat", "production", "2.3.0", actor="ci", reason="release")
    registry.set_label("support-chat", "canary", "2.3.1", traffic_percent=10, actor="ci", reason="canary")
    return engine


def count(engine: Engine, table: Any, *where: Any) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def test_a_drifted_night_is_stored_published_alerted_and_announced_for_the_canary(
    engine: Engine, emitted: list[dict[str, Any]]
) -> None:
    quiet = drift_detection(day=END - timedelta(days=1))
    assert [f["kind"] for f in quiet["findings"]] == ["pinning"] * 3 and quiet["events"] == [] and emitted == []
    assert quiet["alert"] is not None  # the pinning problems are new: the day before was never checked

    result = drift_detection(day=END)

    drifted = [f for f in result["findings"] if f["kind"] == "trace"]
    assert {(f["feature"], f["prompt_version"]) for f in drifted} == {("chat_response", "2.3.1")}
    assert "latency_p95" in {f["metric"] for f in drifted}
    stored = count(engine, REPORTS, REPORTS.c.day == END)
    assert stored == len(result["findings"]) == len(drifted) + 3
    assert count(engine, REPORTS, REPORTS.c.day == END, REPORTS.c.flow_run_id.is_not(None)) == stored

    artifact = Artifact.get(ARTIFACT_KEY)
    assert artifact is not None
    rows = orjson.loads(artifact.data)
    assert [row["metric"] for row in rows] == [f["metric"] for f in result["findings"]]
    assert any(row["summary"].startswith("p95 latency") for row in rows)

    with engine.connect() as connection:
        alerts = connection.execute(select(ALERTS).where(ALERTS.c.kind == "drift").order_by(ALERTS.c.id)).all()
    assert len(alerts) == 2 and alerts[1].severity == "warning"
    assert (
        alerts[1].title == f"{END}: {len(drifted)} drifted metrics (support-chat@2.3.1)"
    )  # standing pinning problems are not new
    assert "p95 latency" in alerts[1].details
    assert count(engine, OUTBOX, OUTBOX.c.kind == "alert") == 2

    [event] = emitted
    assert event["event"] == "llmops.drift.detected"
    assert event["resource"] == {
        "prefect.resource.id": "llmops.prompt.support-chat",
        "prefect.resource.name": "support-chat",
        "llmops.environment": "production",
        "llmops.prompt.version": "2.3.1",
        "llmops.prompt.label": "canary",
    }
    assert event["payload"]["label"] == "canary" and event["payload"]["version"] == "2.3.1"
    assert event["payload"]["metric"] in {f["metric"] for f in drifted}
    assert event["payload"]["summary"] in {f["summary"] for f in drifted}

    again = drift_detection(day=END)
    assert count(engine, REPORTS, REPORTS.c.day == END) == stored
    assert again["alert"] is None and count(engine, OUTBOX, OUTBOX.c.kind == "alert") == 2  # nothing it adds


def test_a_failing_pinned_check_leaves_the_nights_trace_drift_saved_and_alerted(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, emitted: list[dict[str, Any]]
) -> None:
    def embedder_missing(*_args: Any, **_kwargs: Any) -> None:
        raise EmbeddingModelUnavailable("all-MiniLM-L6-v2 is not installed")

    monkeypatch.setattr(drift_tasks, "run_pinned_checks", embedder_missing)

    result = drift_detection(day=END)

    assert result["pinned"] == []
    assert "latency_p95" in {f["metric"] for f in result["findings"] if f["kind"] == "trace"}
    assert count(engine, REPORTS, REPORTS.c.day == END) == len(result["findings"])
    assert result["alert"] is not None and [event["event"] for event in emitted] == ["llmops.drift.detected"]


def test_pinned_model_drift_is_captured_then_found_stored_alerted_and_announced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emitted: list[dict[str, Any]]
) -> None:
    """The first night keeps each serving version's reference; after the provider changes the
    model behind its id, the next night finds it, and the canary's event is the rollback's trigger."""
    pinned_evals(tmp_path, monkeypatch)
    engine = get_engine()
    registry = Registry(engine)
    for prompt in load_prompts(PROMPTS)["support-chat"].values():
        registry.register(prompt, actor="ci")
    registry.set_label("support-chat", "production", "2.3.0", actor="ci", reason="release")
    registry.set_label("support-chat", "canary", "2.3.1", traffic_percent=10, actor="ci", reason="canary")
    config = PinnedDriftConfig(subset_size=20, min_pairs=15)
    with SimServer(SimConfig(latency_median_ms=2, ttft_ms=1, seed=3)) as sim:
        monkeypatch.setenv(settings.ANTHROPIC_BASE_URL, sim.base_url)
        first = drift_detection(day=END - timedelta(days=1), pinned_config=config)
        assert first["findings"] == [] and emitted == []
        sim.configure(provider_updated_models=["claude-3-5-sonnet-20241022"])
        second = drift_detection(day=END, pinned_config=config)

    assert [line.endswith("(reference captured tonight, compared from tomorrow)") for line in first["pinned"]] == [True, True]
    pinned = [f for f in second["findings"] if f["kind"] == "pinned"]
    assert {f["prompt_version"] for f in pinned} == {"2.3.0", "2.3.1"}
    assert "pinned:similarity" in {f["metric"] for f in pinned}
    assert count(engine, REPORTS, REPORTS.c.day == END, REPORTS.c.kind == "pinned") == len(pinned)
    with engine.connect() as connection:
        [alert] = connection.execute(select(ALERTS).where(ALERTS.c.kind == "drift")).all()
    assert alert.severity == "warning" and "pinned-model drift findings (support-chat@2.3.0, support-chat@2.3.1)" in alert.title
    canary = next(event for event in emitted if event["resource"]["llmops.prompt.version"] == "2.3.1")
    assert canary["event"] == "llmops.drift.detected" and canary["resource"]["llmops.prompt.label"] == "canary"
    assert canary["payload"]["metric"].startswith("pinned:")
    artifact = Artifact.get(ARTIFACT_KEY)
    assert artifact is not None and {row["kind"] for row in orjson.loads(artifact.data)} == {"pinned"}


def pinned_evals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """support-chat's golden dataset, scored by its assertions only (no judge: fewer calls)."""
    evals = tmp_path / "evals" / "support-chat"
    evals.mkdir(parents=True)
    (evals / "golden.jsonl").write_text((REPO / "evals" / "support-chat" / "golden.jsonl").read_text())
    (evals / "scorers.yaml").write_text("scorers:\n  assertions: {weight: 1.0}\n")
    monkeypatch.setenv(settings.LLMOPS_EVALS_DIR, str(tmp_path / "evals"))
    return evals / "golden.jsonl"


def test_a_promotion_keeps_the_new_versions_pinned_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    golden = pinned_evals(tmp_path, monkeypatch)
    engine = get_engine()
    request = PromotionForm(prompt_name="support-chat", version="2.3.0", strategy="immediate", force_without_eval=True,
                               git_tag=False, reason="release", actor="ci")  # fmt: skip
    with SimServer(SimConfig(latency_median_ms=2, ttft_ms=1, seed=3)) as sim:
        monkeypatch.setenv(settings.ANTHROPIC_BASE_URL, sim.base_url)
        promote_prompt(request)
    reference = load_reference(engine, "support-chat", "2.3.0", "claude-3-5-sonnet-20241022", load_dataset(golden).name)
    assert reference is not None and reference.examples == PinnedDriftConfig().subset_size
    assert reference.captured_by not in ("", "promotion")  # the promote-prompt flow run that captured it


def test_an_empty_store_is_a_quiet_night(emitted: list[dict[str, Any]]) -> None:
    result = drift_detection(day=END)
    assert (result["findings"], result["alert"], result["events"], result["tests"]) == ([], None, [], 0)
    assert emitted == []
    artifact = Artifact.get(ARTIFACT_KEY)
    assert artifact is not None and orjson.loads(artifact.data) == []


def test_the_deployment_runs_the_flow_nightly_at_half_past_two(tmp_path: Path) -> None:
    text = (REPO / "prefect.yaml").read_text()
    if "name: drift-detection" not in text:
        text = text.rstrip("\n") + "\n" + PREFECT_YAML_DEPLOYMENT
    document = yaml.safe_load(text)
    project = PrefectYamlModel.model_validate(document)
    [deployment] = [d for d in project.deployments if d.name == "drift-detection"]
    module_path, function_name = deployment.entrypoint.split(":")
    assert getattr(importlib.import_module(module_path.removesuffix(".py").replace("/", ".")), function_name) is drift_detection
    [schedule] = next(d for d in document["deployments"] if d["name"] == "drift-detection")["schedules"]
    assert schedule["cron"] == "30 2 * * *" and schedule["timezone"]
    assert deployment.work_pool is not None and deployment.work_pool.name == "llmops"


@pytest.mark.parametrize(("label", "rolls_back"), [("canary", True), ("production", False), (None, False)])
def test_only_a_canary_drift_event_matches_the_rollback_trigger(label: str | None, rolls_back: bool) -> None:
    """Every rollback trigger of prefect.yaml, as the server evaluates them: only a canary's drift rolls back."""
    document = yaml.safe_load((REPO / "prefect.yaml").read_text())
    specs = next(d for d in document["deployments"] if d["name"] == "rollback-prompt")["triggers"]
    triggers = _initialize_deployment_triggers("rollback-prompt", specs)
    served = [EventTrigger.model_validate(t.model_dump(include=set(EventTrigger.model_fields))) for t in triggers]
    resource = {"prefect.resource.id": "llmops.prompt.support-chat", "llmops.prompt.version": "2.3.1"}
    if label:
        resource["llmops.prompt.label"] = label
    event = ReceivedEvent(id=uuid.uuid4(), occurred=datetime.now().astimezone(), event=drift_tasks.DRIFT_EVENT, resource=resource)
    assert any(trigger.covers(event) for trigger in served) is rolls_back
