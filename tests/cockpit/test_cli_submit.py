"""``llmops promote`` and ``llmops rollback`` with ``PREFECT_API_URL`` set submit to the cockpit's
deployments: the command returns at once with the run's link, and the run is the cockpit's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from llmops import settings
from llmops.release.registry import Registry
from llmops.store.engine import get_engine
from prefect_llmops.deployments.serve import Cockpit
from tests.cockpit.conftest import store_url, wait_for_final_state

LLMOPS = Path(sys.executable).with_name("llmops")
PROMPT = "doc-summary"  # a demo prompt the promote form offers, which no other cockpit test moves


def llmops(cockpit: Cockpit, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        settings.PREFECT_API_URL: cockpit.api_url,
        settings.PREFECT_HOME: str(tmp_path / "cli-prefect-home"),  # nothing recorded in ~/.prefect
        settings.LLMOPS_HOME: str(tmp_path / "cli-home"),  # not the cockpit's store: the run writes there
        settings.DO_NOT_TRACK: "1",
    }
    environment.pop(settings.PREFECT_UI_URL, None)
    return subprocess.run([str(LLMOPS), *args], capture_output=True, text=True, timeout=120, env=environment, cwd=tmp_path)


def submitted(cockpit: Cockpit, tmp_path: Path, *args: str) -> dict[str, Any]:
    """Run the command with ``--json``, check the run it submitted, wait for it to complete."""
    result = llmops(cockpit, tmp_path, *args, "--json")
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)
    assert run["url"] == f"{cockpit.api_url.rstrip('/').removesuffix('/api')}/runs/flow-run/{run['flow_run_id']}"
    finished = wait_for_final_state(cockpit, uuid.UUID(run["flow_run_id"]))
    assert finished.state.is_completed(), finished.state.message
    return run


def test_promote_and_rollback_submit_runs_to_the_cockpit_and_print_their_links(cockpit: Cockpit, tmp_path: Path) -> None:
    first = submitted(cockpit, tmp_path, "promote", PROMPT, "1.1.0", "--strategy", "immediate", "--force-without-eval",
                      "--reason", "cli test", "--actor", "tester")  # fmt: skip
    assert first["deployment"] == "promote-prompt/promote-prompt"
    submitted(cockpit, tmp_path, "promote", PROMPT, "1.2.0", "--strategy", "immediate", "--force-without-eval",
              "--reason", "cli test", "--actor", "tester")  # fmt: skip
    text = llmops(cockpit, tmp_path, "rollback", PROMPT, "--reason", "cli test rollback", "--actor", "tester")

    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("submitted rollback-prompt/rollback-prompt run ") and "/runs/flow-run/" in text.stdout
    flow_run_id = text.stdout.strip().rsplit("/", 1)[1]
    finished = wait_for_final_state(cockpit, uuid.UUID(flow_run_id))
    assert finished.state.is_completed(), finished.state.message
    registry = Registry(get_engine(store_url(cockpit)))
    assert registry.labels(PROMPT).production == "1.1.0"
    moves = [event for event in registry.history(PROMPT) if event.action != "register"]
    assert moves[0].flow_run_id == first["flow_run_id"]
    assert (moves[-1].action, moves[-1].flow_run_id, moves[-1].actor) == ("rollback", flow_run_id, "tester")
    assert not (tmp_path / "cli-home" / "llmops.db").exists()  # the command itself never opened a store
