"""Approvals in the Prefect UI, against the real server ``make serve`` starts: advance-rollouts opens
one suspended approve-rollout run per rollout step awaiting approval (never a second one), the Slack
alert links its page, and an answer sent through the API (as the UI's Resume form sends it) rejects
or holds the rollout, with the approver and reason in the audit log. The browser's Resume form is in
test_approval_browser.py."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from llmops.release.registry import Registry
from llmops.release.rollouts import Rollout, advance_rollout, approve, get_rollout
from prefect_llmops.deployments.serve import Cockpit
from prefect_llmops.tasks.approvals import approval_run_name
from tests.cockpit.conftest import (
    RUN_TIMEOUT_SECONDS,
    canary_on_its_first_step,
    prompts_dir,
    run_deployment,
    wait_for_final_state,
)
from tests.store.test_rollouts import write_prompt

APPROVAL_DEPLOYMENT = "approve-rollout"


def awaiting_rollout(cockpit: Cockpit, name: str) -> tuple[Engine, Rollout]:
    """``name`` 1.0.0 in production and a canary of 1.1.0 whose first step passed and awaits approval."""
    for version in ("1.0.0", "1.1.0"):
        write_prompt(prompts_dir(cockpit), version, name=name)
    engine, canary = canary_on_its_first_step(cockpit, name, require_approval=True)
    outcome = advance_rollout(engine, canary.id)
    assert outcome.action == "awaiting_approval", outcome.message
    return engine, outcome.rollout


def approval_runs(cockpit: Cockpit, rollout: Rollout | None = None) -> list[Any]:
    """The approve-rollout runs (of this rollout as it is now, when given)."""
    with cockpit.client() as client:
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[APPROVAL_DEPLOYMENT])))
    return [run for run in runs if rollout is None or run.name == approval_run_name(rollout)]


def ask(cockpit: Cockpit, rollout: Rollout) -> uuid.UUID:
    """Start the approval run as advance-rollouts does (same name and parameters)."""
    with cockpit.client() as client:
        [deployment] = client.read_deployments(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[APPROVAL_DEPLOYMENT]))
        )
        return client.create_flow_run_from_deployment(
            deployment.id,
            parameters={"rollout_id": rollout.id, "revision": rollout.revision},
            name=approval_run_name(rollout),
            idempotency_key=f"{approval_run_name(rollout)}#1",
        ).id


def wait_until_suspended(cockpit: Cockpit, flow_run_id: uuid.UUID, timeout: float = RUN_TIMEOUT_SECONDS) -> Any:
    """The run once it waits for its answer (Suspended, a Paused state), with its form saved."""
    deadline = time.monotonic() + timeout
    while True:
        with cockpit.client() as client:
            flow_run = client.read_flow_run(flow_run_id)
        if flow_run.state is not None and flow_run.state.is_paused() and flow_run.state.state_details.run_input_keyset:
            return flow_run
        if flow_run.state is not None and flow_run.state.is_final():
            pytest.fail(f"{flow_run.name} ended {flow_run.state_name} before asking: {flow_run.state.message}")
        if time.monotonic() > deadline:
            pytest.fail(f"{flow_run.name} still {flow_run.state_name} after {timeout:.0f} s")
        time.sleep(1)


def answer(cockpit: Cockpit, flow_run_id: uuid.UUID, decision: str, reason: str, approver: str) -> Any:
    """Resume with the form's values, as the UI's Resume button does; returns the final run."""
    with cockpit.client() as client:
        result = client.resume_flow_run(flow_run_id, run_input={"decision": decision, "reason": reason, "approver": approver})
    assert result.status.value == "ACCEPT", result
    return wait_for_final_state(cockpit, flow_run_id)


def alert_links(engine: Engine) -> list[tuple[str, str | None]]:
    from llmops.store.outbox_models import AlertRecord

    with Session(engine) as session:
        return [(row.title, row.link) for row in session.scalars(select(AlertRecord).where(AlertRecord.kind == "approval"))]


def test_advance_rollouts_opens_one_approval_form_per_waiting_step_links_it_and_closes_it_when_answered_elsewhere(
    cockpit: Cockpit,
) -> None:
    """A step awaiting approval and a rollout paused by a label moved by hand each get one form."""
    engine, rollout = awaiting_rollout(cockpit, "cockpit-approve-ask")
    for version in ("1.0.0", "1.1.0"):
        write_prompt(prompts_dir(cockpit), version, name="cockpit-approve-paused")
    _, moved = canary_on_its_first_step(cockpit, "cockpit-approve-paused")
    Registry(engine).set_label(
        "cockpit-approve-paused", "canary", "1.1.0", traffic_percent=50, actor="carol", reason="hotfix test"
    )

    for _ in range(2):  # every 15 minutes in the cockpit; the second run must not open a second form
        finished = wait_for_final_state(cockpit, run_deployment(cockpit, "advance-rollouts", {}))
        assert finished.state.is_completed(), finished.state.message

    [run] = approval_runs(cockpit, rollout)
    wait_until_suspended(cockpit, run.id)
    link = f"{cockpit.ui_url}/runs/flow-run/{run.id}"
    assert any("cockpit-approve-ask" in title and found == link for title, found in alert_links(engine)), alert_links(engine)

    paused = get_rollout(engine, moved.id)
    assert paused.status == "paused" and "canary is 1.1.0 at 50 %" in (paused.status_reason or "")
    [paused_run] = approval_runs(cockpit, paused)
    wait_until_suspended(cockpit, paused_run.id)
    paused_link = f"{cockpit.ui_url}/runs/flow-run/{paused_run.id}"
    assert ("cockpit-approve-paused (production): 1.0.0 → 1.1.0 is paused at step 1/3", paused_link) in alert_links(engine)
    final = answer(cockpit, paused_run.id, "approve", "carol's test is over", "gina")
    assert final.state.is_completed(), final.state.message
    resumed = get_rollout(engine, moved.id)
    assert (resumed.status, resumed.current_step) == ("active", 0)
    assert Registry(engine).labels("cockpit-approve-paused").canary_traffic_percent == 5.0
    last = Registry(engine).history("cockpit-approve-paused")[-1]
    assert (last.actor, last.flow_run_id) == ("gina", str(paused_run.id)) and "approved by gina: carol's test is over" in (
        last.reason or ""
    )

    approve(engine, "cockpit-approve-ask", actor="bob")  # answered from the CLI: the form is not needed any more
    finished = wait_for_final_state(cockpit, run_deployment(cockpit, "advance-rollouts", {}))
    assert finished.state.is_completed(), finished.state.message
    with cockpit.client() as client:
        assert client.read_flow_run(run.id).state.is_cancelled()


def test_reject_through_the_resume_form_rolls_the_canary_back_with_the_reason_in_the_audit_log(cockpit: Cockpit) -> None:
    name = "cockpit-approve-reject"
    engine, rollout = awaiting_rollout(cockpit, name)
    flow_run_id = ask(cockpit, rollout)
    wait_until_suspended(cockpit, flow_run_id)

    final = answer(cockpit, flow_run_id, "reject", "answers are too long", "dana")

    assert final.state.is_completed(), final.state.message
    assert get_rollout(engine, rollout.id).status == "rolled_back"
    labels = Registry(engine).labels(name)
    assert (labels.production, labels.canary) == ("1.0.0", None)
    last = Registry(engine).history(name)[-1]
    assert (last.actor, last.action, last.flow_run_id) == ("dana", "rollback", str(flow_run_id))
    assert "rejected in review: answers are too long" in (last.reason or "")


def test_hold_keeps_the_rollout_waiting_records_why_and_asks_again(cockpit: Cockpit) -> None:
    name = "cockpit-approve-hold"
    engine, rollout = awaiting_rollout(cockpit, name)
    flow_run_id = ask(cockpit, rollout)
    wait_until_suspended(cockpit, flow_run_id)

    final = answer(cockpit, flow_run_id, "hold", "legal has to read the refund wording", "eve")

    assert final.state.is_completed(), final.state.message
    held = get_rollout(engine, rollout.id)
    assert held.status == "awaiting_approval" and "held by eve: legal has to read the refund wording" in (
        held.status_reason or ""
    )
    assert Registry(engine).labels(name).canary_traffic_percent == 5.0
    last = Registry(engine).history(name)[-1]
    assert (last.actor, last.action, last.flow_run_id) == ("eve", "hold", str(flow_run_id))
    [successor] = approval_runs(cockpit, held)  # the next question, open at once
    wait_until_suspended(cockpit, successor.id)


def test_a_form_answered_after_a_cli_approval_changes_nothing(cockpit: Cockpit) -> None:
    name = "cockpit-approve-stale"
    engine, rollout = awaiting_rollout(cockpit, name)
    flow_run_id = ask(cockpit, rollout)
    wait_until_suspended(cockpit, flow_run_id)
    approve(engine, name, actor="bob")  # `llmops rollout approve` meanwhile

    final = answer(cockpit, flow_run_id, "reject", "too late", "carl")

    assert final.state.is_failed() and "moved on" in (final.state.message or "")
    assert get_rollout(engine, rollout.id).current_step == 1 and Registry(engine).labels(name).canary_traffic_percent == 25.0
