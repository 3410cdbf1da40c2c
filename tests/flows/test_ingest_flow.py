"""The ingest-traces flow under the Prefect test harness, and its deployment in prefect.yaml."""

from __future__ import annotations

import importlib
import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from prefect import flow
from prefect.cli.deploy._models import PrefectYamlModel, RawScheduleConfig
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogWorker
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, create_engine, func, select
from typer.testing import CliRunner

import prefect_llmops.flows.ingest_traces as ingest_module
import prefect_llmops.tasks.ingest as task_module
from llmops.ingest.pull import SourceConfig, SourceConfigError, SourceUnavailable
from llmops.store.engine import get_engine
from llmops.store.models import Trace
from llmops.store.writer import RollupTimezoneMismatch
from prefect_llmops.blocks import TraceSource, TraceStore
from prefect_llmops.cli.pull import register
from prefect_llmops.flows.ingest_traces import ingest_traces, source_artifact_key
from prefect_llmops.tasks.ingest import pull_source

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 11, 3, 9, 0)
PASSWORD = "flow-pw-81d2c4"


def _app_database(path: Path, rows: int) -> str:
    """An application database (SQLite file) with ``rows`` LLM calls in table ``calls``."""
    url = f"sqlite:///{path}"
    table = Table(
        "calls",
        MetaData(),
        Column("id", String(32), primary_key=True),
        Column("created_at", DateTime),
        Column("model", String(64)),
        Column("input_tokens", Integer),
        Column("output_tokens", Integer),
    )
    engine = create_engine(url)
    table.metadata.create_all(engine)
    with engine.begin() as connection:
        existing = connection.execute(select(func.count()).select_from(table)).scalar_one()
        connection.execute(
            table.insert(),
            [
                {
                    "id": f"c{n:05d}",
                    "created_at": T0 + timedelta(minutes=n),
                    "model": "claude-3-haiku-20240307",
                    "input_tokens": 400,
                    "output_tokens": 80,
                }
                for n in range(existing, existing + rows)
            ],
        )
    engine.dispose()
    return url


def _source_block(url: str, **fields: Any) -> str:
    name = f"app-traces-{uuid.uuid4().hex[:8]}"
    TraceSource(url=url, table="calls", column_map={"trace_id": "id", "timestamp": "created_at"}, **fields).save(name)
    return name


def _stored_count(url: str | None = None) -> int:
    with get_engine(url).connect() as connection:
        return connection.execute(select(func.count()).select_from(Trace)).scalar_one()


def test_the_flow_pulls_new_rows_and_publishes_its_counts(tmp_path: Path) -> None:
    app_db = tmp_path / "app.db"
    block = _source_block(_app_database(app_db, 12), batch_size=5)

    first = ingest_traces(source_block=block)
    _app_database(app_db, 3)
    second = ingest_traces(source_block=block)
    third = ingest_traces(source_block=block)

    assert (first.pulled, first.inserted, first.rejected) == (12, 12, 0)
    assert (second.pulled, second.inserted) == (3, 3)
    assert third.pulled == 0
    assert _stored_count() == 15
    assert second.watermark is not None and second.watermark["id"] == "c00014"
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[source_artifact_key(block)]))
        )
    assert sorted(json.loads(artifact.data)[0]["pulled"] for artifact in artifacts) == [0, 3, 12]  # type: ignore[arg-type]
    assert all(artifact.type == "table" for artifact in artifacts)


def test_the_flow_writes_to_the_named_store_block(tmp_path: Path) -> None:
    block = _source_block(_app_database(tmp_path / "app.db", 4))
    other_store = f"sqlite:///{tmp_path / 'other-store.db'}"
    store_name = f"store-{uuid.uuid4().hex[:8]}"
    TraceStore(database_url=other_store).save(store_name)

    report = ingest_traces(source_block=block, store_block=store_name)

    assert report.inserted == 4
    assert _stored_count(other_store) == 4
    assert _stored_count() == 0


def test_a_failing_source_shows_no_password_in_state_logs_or_artifacts(monkeypatch: pytest.MonkeyPatch) -> None:
    block = _source_block(f"postgresql+psycopg://reader:{PASSWORD}@127.0.0.1:1/app", connect_attempts=1)
    monkeypatch.setattr(ingest_module, "pull_source", pull_source.with_options(retries=0))

    state = ingest_traces(source_block=block, return_state=True)

    assert state.is_failed()
    with pytest.raises(SourceUnavailable) as error:
        state.result()
    APILogWorker.drain_all(timeout=10, at_exit=False)
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])))
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[source_artifact_key(block)]))
        )
    shown = " ".join([str(error.value), state.message or "", *(log.message for log in logs)])
    assert any("reader:***@127.0.0.1:1/app" in log.message for log in logs)
    assert PASSWORD not in shown
    assert artifacts == []


@pytest.mark.parametrize(
    ("failure", "attempts"),
    [
        (SourceUnavailable("source down"), 3),
        (SourceConfigError("table 'calls' lacks columns"), 1),
        (RollupTimezoneMismatch("the store's daily rollups are cut at midnight UTC"), 1),
    ],
)
def test_the_task_retries_outages_but_not_configuration_errors(
    failure: Exception, attempts: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0

    def failing_pull(*_args: Any, **_kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        raise failure

    monkeypatch.setattr(task_module, "pull_traces", failing_pull)
    quick_retries = pull_source.with_options(retries=2, retry_delay_seconds=0, retry_jitter_factor=None)

    @flow
    def run_pull() -> None:
        quick_retries(SourceConfig(url="sqlite://", table="calls"))

    with pytest.raises(type(failure)):
        run_pull()
    assert calls == attempts


def test_prefect_yaml_deploys_ingest_traces_every_15_minutes() -> None:
    document = yaml.safe_load((REPO / "prefect.yaml").read_text())
    project = PrefectYamlModel.model_validate(document)
    deployment = next(d for d in project.deployments if d.name == "ingest-traces")
    [schedule] = document["deployments"][project.deployments.index(deployment)]["schedules"]

    module_path, function_name = deployment.entrypoint.split(":")
    loaded_flow = getattr(importlib.import_module(module_path.removesuffix(".py").replace("/", ".")), function_name)

    assert loaded_flow.name == "ingest-traces"
    assert set(deployment.parameters) <= set(loaded_flow.parameters.properties)
    assert deployment.parameters["source_block"] == "app-traces"
    assert RawScheduleConfig.model_validate(schedule).interval == timedelta(minutes=15)
    assert schedule["timezone"] == "UTC"
    assert deployment.work_pool is not None and deployment.work_pool.name == "llmops"
    assert deployment.description and deployment.tags


def test_cli_pull_reads_a_saved_block(tmp_path: Path) -> None:
    block = _source_block(_app_database(tmp_path / "app.db", 2))
    app = typer.Typer()
    traces_app = typer.Typer()
    register(traces_app)
    app.add_typer(traces_app, name="traces")

    result = CliRunner().invoke(app, ["traces", "pull", "--block", block])
    missing = CliRunner().invoke(app, ["traces", "pull", "--block", "no-such-block"])

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("pulled 2, imported 2, duplicates 0, rejected 0, watermark created_at=")
    assert missing.exit_code == 2
    assert "cannot load TraceSource block 'no-such-block'" in missing.stderr
