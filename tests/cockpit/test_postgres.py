"""Scale-out: the Prefect server on PostgreSQL, two workers on one pool, and a restart that
finds the deployments and their active schedules where it left them."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from llmops.release.registry import Registry
from llmops.store.engine import get_engine
from prefect_llmops.deployments.serve import Cockpit, groups_alive, process_groups
from tests.cockpit.conftest import cockpit_config, promotion, run_deployment, store_url, wait_for_final_state
from tests.conftest import fresh_postgres_database

pytestmark = pytest.mark.postgres

DEPLOYED = ("promote-prompt", "advance-rollouts")
"""A manual and a scheduled deployment: enough to see both survive a restart."""
RELEASES = {"support-chat": "2.3.0", "doc-summary": "1.1.0", "code-review": "3.0.1"}


@pytest.mark.timeout(600)
def test_prefect_on_postgresql_with_two_workers_runs_flows_and_keeps_schedules_across_a_restart(tmp_path: Path) -> None:
    with fresh_postgres_database("llmops_prefect") as url:
        config = cockpit_config(
            tmp_path, database_connection_url=url.replace("postgresql+psycopg://", "postgresql+asyncpg://"),
            workers=2, deployments=DEPLOYED,
        )  # fmt: skip
        with Cockpit(config) as cockpit:
            assert cockpit.online_workers() >= {"llmops-worker-1", "llmops-worker-2"}
            runs = [
                run_deployment(cockpit, "promote-prompt", {"request": promotion(name, version, strategy="immediate")})
                for name, version in RELEASES.items()
            ]
            finished = [wait_for_final_state(cockpit, run) for run in runs]
            with cockpit.client() as client:
                [scheduled] = [d for d in client.read_deployments() if d.name == "advance-rollouts"]
            started = set().union(*(process_groups(process.popen.pid) for process in cockpit.processes))

        assert not groups_alive(started), "stopping left processes behind"

        assert all(run.state.is_completed() for run in finished), [run.state.message for run in finished]
        registry = Registry(get_engine(store_url(cockpit)))
        assert {name: registry.labels(name).production for name in RELEASES} == RELEASES
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3) as connection:
            stored = {row[0] for row in connection.execute("SELECT name FROM deployment")}
            states = {row[0] for row in connection.execute("SELECT state_type FROM flow_run WHERE id = ANY(%s)", (runs,))}
        assert stored == set(DEPLOYED) and states == {"COMPLETED"}  # the server's state lives in PostgreSQL

        restarted = Cockpit(config)
        try:
            restarted.start_server()  # nothing deployed again: what the API shows was kept
            with restarted.client() as client:
                deployment = client.read_deployment(scheduled.id)
                kept = [client.read_flow_run(run) for run in runs]
        finally:
            restarted.stop()
        assert deployment.schedules and all(schedule.active for schedule in deployment.schedules)
        assert [schedule.id for schedule in deployment.schedules] == [schedule.id for schedule in scheduled.schedules]
        assert all(run.state.is_completed() for run in kept)
