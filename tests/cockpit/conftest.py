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
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
from sqlalchemy import Engine

from llmops import settings
from llmops.release.experiments import Tolerances
from llmops.release.rollouts import PromotionRequest, Rollout, start_rollout
from llmops.store.engine import get_engine
from llmops.store.writer import write_traces
from prefect_llmops.deployments.serve import PROJECT_DIR, Cockpit, CockpitConfig, free_port
from tests.factories import trace
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


def canary_on_its_first_step(cockpit: Cockpit, name: str, **canary: Any) -> tuple[Engine, Rollout]:
    """``name`` 1.0.0 in production and a canary of 1.1.0 (steps 5, 25, 100, no minimum time) whose first
    step has had its traffic: 150 candidate and 600 control calls, written the way the app fills the store.

    Args:
        cockpit: The cockpit whose store and prompts are used (``name``'s version files must be there).
        name: The prompt.
        canary: More fields of the canary's promotion form, e.g. ``require_approval=True``.
    """
    engine = get_engine(store_url(cockpit))
    with pytest.MonkeyPatch.context() as patch:  # the registry reads version files from the cockpit's prompts
        patch.setenv(settings.LLMOPS_PROMPTS_DIR, str(prompts_dir(cockpit)))
        start_rollout(engine, PromotionRequest(**promotion(name, "1.0.0", strategy="immediate", git_tag=False)))
        rollout = start_rollout(
            engine,
            PromotionRequest(
                **promotion(name, "1.1.0", strategy="canary", steps=[5, 25, 100], min_step_minutes=0, min_requests_per_step=100,
                            tolerances=Tolerances(min_samples_per_arm=100), git_tag=False, **canary)
            ),
        ).rollout  # fmt: skip
    start = rollout.step_started_at
    write_traces(engine, [
        trace(trace_id=f"{name}-{version}-{index}", prompt_name=name, prompt_version=version,
              timestamp=start + timedelta(microseconds=10 * (index + 1)), latency_ms=900.0 + index % 50)
        for version, count in (("1.1.0", 150), ("1.0.0", 600)) for index in range(count)
    ])  # fmt: skip
    return engine, rollout


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
