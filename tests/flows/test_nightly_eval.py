"""nightly-eval under the Prefect test harness, against the local model server: a regressed canary,
a provider-side change of production's pinned model, an outage night that alerts nobody, and its
deployment in prefect.yaml."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.cli.deploy._models import PrefectYamlModel, RawScheduleConfig
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort
from prefect.task_runners import ThreadPoolTaskRunner

import prefect_llmops.tasks.evals as task_module
from llmops import settings as env
from llmops.evals.store import find_runs
from llmops.prompts import get_prompt
from llmops.release.registry import get_registry
from llmops.sim import SimConfig, SimServer
from llmops.store.engine import get_engine
from prefect_llmops.flows.nightly_eval import nightly_eval
from tests.e2e.test_eval_runner import QUIET, SONNET, write_prompt_and_dataset

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimServer]:
    """The model server, the prompt files and dataset, and ``support`` 1.0.0 in production with 1.1.0 as canary."""
    write_prompt_and_dataset(tmp_path, monkeypatch, size=30)
    registry = get_registry()
    for version in ("1.0.0", "1.1.0"):
        registry.register(get_prompt("support", version), actor="tests")
    registry.set_label("support", "production", "1.0.0", actor="tests", reason="release")
    registry.set_label("support", "canary", "1.1.0", traffic_percent=10, actor="tests", reason="try brief answers")
    with SimServer(SimConfig(latency_median_ms=2, ttft_ms=1, seed=2, **QUIET)) as server:
        monkeypatch.setenv(env.ANTHROPIC_BASE_URL, server.base_url)
        monkeypatch.setenv(env.ANTHROPIC_API_KEY, "sim")
        yield server


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every event the eval tasks emit (still sent to the harness)."""
    seen: list[dict[str, Any]] = []
    real = task_module.emit_event

    def recording(**kwargs: Any) -> Any:
        seen.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(task_module, "emit_event", recording)
    return seen


def latest_artifact(key: str) -> Any:
    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), sort=ArtifactSort.CREATED_DESC, limit=1
        )[0]


def test_a_regressed_canary_emits_the_event_and_the_night_is_reported(sim: SimServer, emitted: list[dict[str, Any]]) -> None:
    results = nightly_eval(concurrency=8)

    [canary] = results  # production has no reference run yet: nothing to compare it with
    assert (canary["check"], canary["verdict"]) == ("canary_vs_production", "regression")
    [event] = emitted
    assert event["event"] == "llmops.eval.regression"
    assert event["resource"]["prefect.resource.id"] == "llmops.prompt.support"
    assert event["resource"]["llmops.eval.comparison"] == "canary_vs_production"
    assert event["resource"]["llmops.prompt.version"] == "1.1.0" and event["resource"]["llmops.prompt.label"] == "canary"
    payload = event["payload"]
    assert payload["metric"] in {"assertions", "overall"} and payload["delta"] < -0.2
    low, high = payload["interval"]
    assert low <= payload["delta"] <= high < -0.02
    production_run, canary_run = (find_runs(get_engine(), "support", version=v)[0].id for v in ("1.0.0", "1.1.0"))
    assert (payload["baseline_run_id"], payload["candidate_run_id"]) == (production_run, canary_run)

    table = latest_artifact("nightly-eval-support")
    assert table.type == "table" and "canary" in str(table.data) and "regression" in str(table.data)
    summary = latest_artifact("nightly-eval")
    assert "1 regression(s)" in summary.data and "canary 1.1.0 vs production 1.0.0" in summary.data


def test_a_provider_side_change_of_the_pinned_model_is_a_production_regression(
    sim: SimServer, emitted: list[dict[str, Any]]
) -> None:
    nightly_eval(concurrency=8)  # the reference night
    emitted.clear()
    sim.configure(provider_updated_models=[SONNET])  # same model id, different answers

    results = nightly_eval(concurrency=8)

    production = next(result for result in results if result["check"] == "production_vs_reference")
    assert production["verdict"] == "regression" and production["baseline"] == production["candidate"] == "support 1.0.0"
    kinds = {event["resource"]["llmops.eval.comparison"] for event in emitted}
    assert "production_vs_reference" in kinds


def test_an_outage_night_ends_incomplete_and_alerts_nobody(sim: SimServer, emitted: list[dict[str, Any]]) -> None:
    nightly_eval(concurrency=8)  # a good night first: references exist
    emitted.clear()
    sim.configure(error_rate_429=0.4, error_rate_529=0.3, error_rate_500=0.3, retry_after_seconds=0.01)

    results = nightly_eval(concurrency=8)

    assert emitted == []
    assert results and all(result["verdict"] == "inconclusive" for result in results)
    assert {find_runs(get_engine(), "support", version=v, status=None)[0].status for v in ("1.0.0", "1.1.0")} == {"incomplete"}
    assert "no regressions" in latest_artifact("nightly-eval").data


PREFECT_YAML_SNIPPET = """
  - name: nightly-eval
    entrypoint: prefect_llmops.flows.nightly_eval:nightly_eval
    description: >-
      Every night at 02:00, each prompt's production and canary versions (registry labels) on
      every dataset beside them, against their pinned models: production is compared with its
      own reference run (a change on the provider's side), the canary with production, per
      metric with a paired bootstrap interval. A regression emits llmops.eval.regression (a
      canary's rolls it back); a run cut short by an outage ends incomplete and never alerts.
      One table artifact per prompt and a markdown summary. The fan-out to the model happens
      inside one task run per version and dataset.
    tags: [llmops, evals]
    parameters: {}
    enforce_parameter_schema: true
    schedules:
      - cron: "0 2 * * *"
        timezone: UTC
        active: true
    concurrency_limit: 1
    work_pool: *llmops_pool
"""


def test_the_prefect_yaml_snippet_deploys_the_flow_at_two_in_the_morning() -> None:
    text = (REPO / "prefect.yaml").read_text()
    if "name: nightly-eval" not in text:
        text = text.rstrip("\n") + "\n" + PREFECT_YAML_SNIPPET
    document = yaml.safe_load(text)
    project = PrefectYamlModel.model_validate(document)
    deployment = next(d for d in project.deployments if d.name == "nightly-eval")
    module_path, function_name = deployment.entrypoint.split(":")
    loaded = getattr(importlib.import_module(module_path.removesuffix(".py").replace("/", ".")), function_name)
    assert loaded is nightly_eval and loaded.name == "nightly-eval"
    assert deployment.work_pool is not None and deployment.work_pool.name == "llmops" and deployment.enforce_parameter_schema
    [schedule] = next(d for d in document["deployments"] if d["name"] == "nightly-eval")["schedules"]
    assert RawScheduleConfig.model_validate(schedule).cron == "0 2 * * *"


def test_a_dask_address_without_prefect_dask_fails_the_run_not_the_import(monkeypatch: pytest.MonkeyPatch) -> None:
    import prefect_llmops.flows.nightly_eval as flow_module

    monkeypatch.setenv(env.LLMOPS_DASK_ADDRESS, "tcp://127.0.0.1:8786")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "prefect_dask" else real_find_spec(name, *a)
    )
    assert isinstance(flow_module.eval_task_runner(), ThreadPoolTaskRunner)  # what importing the flow calls
    with pytest.raises(RuntimeError, match=r"LLMOPS_DASK_ADDRESS is set but prefect-dask is not installed: pip install"):
        nightly_eval(prompts=["support-chat"])


def test_the_evaluations_fan_out_over_a_dask_cluster(
    sim: SimServer, emitted: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect_dask import DaskTaskRunner

    import prefect_llmops.flows.nightly_eval as flow_module

    assert isinstance(flow_module.eval_task_runner(), ThreadPoolTaskRunner)  # by default, in the flow's process
    monkeypatch.setenv(env.LLMOPS_DASK_ADDRESS, "tcp://127.0.0.1:8786")
    assert flow_module.eval_task_runner().address == "tcp://127.0.0.1:8786"  # type: ignore[attr-defined]

    on_dask = nightly_eval.with_options(task_runner=DaskTaskRunner(cluster_kwargs={"processes": False, "n_workers": 2}))
    [canary] = on_dask(concurrency=8)

    assert (canary["check"], canary["verdict"]) == ("canary_vs_production", "regression")
    assert [event["event"] for event in emitted] == ["llmops.eval.regression"]
