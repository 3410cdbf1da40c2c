"""``make serve`` without a server: its refusals, what it reads from prefect.yaml, and that
stopping leaves no process behind (a worker's flow runs sit in process groups of their own)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmops import settings
from prefect_llmops.deployments.serve import (
    CockpitConfig,
    ManagedProcess,
    groups_alive,
    process_groups,
    project_deployments,
    source_block_names,
    stop_processes,
    trigger_names,
    work_pool_name,
)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"port": 0}, "port must be between 1 and 65535, got 0"),
        ({"workers": 0}, "workers must be at least 1, got 0"),
        ({"deployments": ("promote-prompt", "promote-prompts")}, r"no deployment named \['promote-prompts'\] in prefect.yaml"),
    ],
)
def test_bad_settings_are_refused_with_what_is_wrong(tmp_path: Path, fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CockpitConfig(home=tmp_path, prefect_home=tmp_path / "prefect", **fields)  # type: ignore[arg-type]


def test_prefect_home_defaults_to_the_llmops_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(settings.PREFECT_HOME, raising=False)
    monkeypatch.delenv(settings.PREFECT_API_DATABASE_CONNECTION_URL, raising=False)
    config = CockpitConfig.from_environment(port=4300)
    assert (config.prefect_home, config.port, config.database_connection_url) == (config.home / "prefect", 4300, None)


def test_what_serve_prepares_comes_from_prefect_yaml() -> None:
    deployments = project_deployments()
    assert work_pool_name() == "llmops"
    assert source_block_names(deployments) == {"app-traces"}  # the ingest-traces default, created when missing
    assert trigger_names(deployments) == ["rollback-prompt-on-regression", "rollback-prompt-on-canary-drift"]


def test_stopping_ends_a_process_and_its_descendants_in_sessions_of_their_own(tmp_path: Path) -> None:
    script = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], start_new_session=True)\n"
        "print('ready', flush=True)\n"
        "time.sleep(120)\n"
    )
    log_path = tmp_path / "tree.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen([sys.executable, "-c", script], stdout=log, start_new_session=True)
    process = ManagedProcess("tree", popen, log_path)
    deadline = time.monotonic() + 30
    while "ready" not in log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    groups = process_groups(popen.pid)
    assert len(groups) == 2 and groups_alive(groups) == groups

    stop_processes([process], timeout=10)

    assert popen.returncode is not None and groups_alive(groups) == set()
