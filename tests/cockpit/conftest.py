"""The cockpit of ``make serve`` against a real Prefect server, for the whole test session.

The fixture starts it through the same code as ``make serve`` (deployments/serve.py): a real
``prefect server start`` on a free port with a fresh PREFECT_HOME, every deployment of
prefect.yaml with its schedules and automations, ``llmops sim`` as the model and one worker.
Its flow runs use a fresh LLMOPS_HOME, the SQLite store in it, and a copy of prompts/ outside
any git checkout (so a promotion's release tag never touches this repository).
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

from llmops import settings
from prefect_llmops.deployments.serve import PROJECT_DIR, Cockpit, CockpitConfig, free_port
from tests.store.test_rollouts import write_prompt

COCKPIT_PROMPTS = ("cockpit-promote", "cockpit-rollback", "cockpit-advance")
"""Prompts the cockpit tests promote, written before the deploy: the form lists the prompts there are then."""
WORKER_POLL_SECONDS = 1.0
"""Tests wait on runs: the worker asks for them every second instead of every 10."""
RUN_TIMEOUT_SECONDS = 180.0
COCKPIT_TEST_TIMEOUT_SECONDS = 600


def cockpit_config(root: Path, **overrides: Any) -> CockpitConfig:
    """A cockpit of its own under ``root``: free port, fresh homes, demo prompts copied, always the local model."""
    home = root / "llmops-home"
    prompts = home / "prompts"
    shutil.copytree(PROJECT_DIR / "prompts", prompts)
    for name in COCKPIT_PROMPTS:
        for version in ("1.0.0", "1.1.0"):
            write_prompt(prompts, version, name=name)
    fields: dict[str, Any] = {
        "home": home,
        "prefect_home": root / "prefect-home",
        "port": free_port(),
        "worker_env": {
            settings.LLMOPS_DATABASE_URL: f"sqlite:///{home / 'llmops.db'}",
            settings.LLMOPS_PROMPTS_DIR: str(prompts),
            settings.LLMOPS_EVALS_DIR: str(PROJECT_DIR / "evals"),
        },
        "worker_poll_seconds": WORKER_POLL_SECONDS,
        "always_sim": True,
    }
    return CockpitConfig(**(fields | overrides))


@pytest.fixture(scope="session")
def cockpit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cockpit]:
    """A running cockpit: ``ui_url``, ``api_url``, ``home`` (the worker's LLMOPS_HOME), ``env`` (the
    worker's variables), ``client()`` (a sync Prefect client of its API); stopped at session end."""
    with Cockpit(cockpit_config(tmp_path_factory.mktemp("cockpit"))) as running:
        yield running


def store_url(cockpit: Cockpit) -> str:
    """The store the cockpit's flow runs write to."""
    return cockpit.env[settings.LLMOPS_DATABASE_URL]


def prompts_dir(cockpit: Cockpit) -> Path:
    return Path(cockpit.env[settings.LLMOPS_PROMPTS_DIR])


def promotion(name: str, version: str, **fields: Any) -> dict[str, Any]:
    """The promote-prompt form as JSON, forced past the eval gate (these versions have no eval)."""
    return {
        "prompt_name": name,
        "version": version,
        "force_without_eval": True,
        "reason": "cockpit test",
        "actor": "tester",
        **fields,
    }


def deployment_id(cockpit: Cockpit, name: str) -> uuid.UUID:
    with cockpit.client() as client:
        [deployment] = client.read_deployments(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])))
    return deployment.id


def run_deployment(cockpit: Cockpit, name: str, parameters: dict[str, Any]) -> uuid.UUID:
    """Start a run the way the UI's "Run" button does: a flow run created from the deployment."""
    with cockpit.client() as client:
        return client.create_flow_run_from_deployment(deployment_id(cockpit, name), parameters=parameters).id


def wait_for_final_state(cockpit: Cockpit, flow_run_id: uuid.UUID, timeout: float = RUN_TIMEOUT_SECONDS) -> Any:
    """The flow run once it is final (completed, failed, crashed, cancelled); fails at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        with cockpit.client() as client:
            flow_run = client.read_flow_run(flow_run_id)
        if flow_run.state is not None and flow_run.state.is_final():
            return flow_run
        if time.monotonic() > deadline:
            pytest.fail(
                f"flow run {flow_run.name} still {flow_run.state_name} after {timeout:.0f} s; worker log:\n"
                + "\n".join(p.log_tail() for p in cockpit.processes if p.name in cockpit.worker_names())
            )
        time.sleep(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The session's cockpit starts in the setup of the first test that uses it (1–3 min on a busy
    2-core machine), and pytest-timeout counts that setup toward the test: give those tests room."""
    for item in items:
        if "cockpit" in getattr(item, "fixturenames", ()) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(COCKPIT_TEST_TIMEOUT_SECONDS))
