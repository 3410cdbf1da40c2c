"""The approval form, answered in a real browser: Debian's chromium, headless, opens the suspended
approve-rollout run of a canary awaiting approval in the Prefect UI, clicks Resume, chooses
approve, fills in the reason and the approver, submits; the rollout moves to its next step and the
audit log names the approver and the reason.

Screenshots go to tests/cockpit/output/approval-*.png. Skips without a browser, like test_browser.py.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from llmops.release.registry import Registry
from llmops.release.rollouts import get_rollout
from prefect_llmops.deployments.serve import Cockpit
from tests.cockpit.conftest import wait_for_final_state
from tests.cockpit.test_approvals import approval_runs, ask, awaiting_rollout, wait_until_suspended
from tests.cockpit.test_browser import (  # noqa: F401  (fixtures: the browser check and the page)
    FORM_VIEWPORT,
    VIEWPORT,
    browser_available,
    failed_api_calls,
    form_field,
    page,
    screenshot,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

NAME = "cockpit-approve-browser"
APPROVER, REASON = "frank", "5 % canary looked fine for a day: latency and feedback within tolerance"


@pytest.mark.timeout(900)
def test_the_resume_form_in_the_browser_approves_the_next_step(page: Page, cockpit: Cockpit) -> None:  # noqa: F811
    from playwright.sync_api import expect

    engine, rollout = awaiting_rollout(cockpit, NAME)
    flow_run_id = ask(cockpit, rollout)
    wait_until_suspended(cockpit, flow_run_id)
    [listed] = approval_runs(cockpit, rollout)
    assert listed.id == flow_run_id
    failures = failed_api_calls(page)

    page.goto(f"{cockpit.ui_url}/runs/flow-run/{flow_run_id}")
    state = page.locator(".page-heading-flow-run__meta .state-badge")
    expect(state).to_have_text(re.compile("Suspended|Paused"))
    page.get_by_role("button", name="Resume", exact=True).click()
    modal = page.locator(".p-modal").filter(has_text="Resume Flow Run")
    expect(modal.get_by_text(f"Approve {NAME} 1.1.0 in production?")).to_be_visible()
    decision = form_field(page, "Decision").get_by_role("button")
    decision.focus()
    page.keyboard.press("ArrowDown")  # the UI's select opens from the keyboard, as in the promote form
    page.get_by_role("option", name="approve", exact=True).click()
    expect(form_field(page, "Decision")).to_contain_text("approve")
    form_field(page, "Reason").locator("textarea, input").first.fill(REASON)
    form_field(page, "Approver").locator("textarea, input").first.fill(APPROVER)
    page.set_viewport_size(FORM_VIEWPORT)
    screenshot(page, "approval-form.png")
    page.set_viewport_size(VIEWPORT)
    modal.get_by_role("button", name="Submit", exact=True).click()

    final = wait_for_final_state(cockpit, flow_run_id)
    assert final.state.is_completed(), f"{final.state.message}; failed API calls: {failures}"
    page.reload()
    expect(state).to_have_text("Completed")
    screenshot(page, "approval-run-completed.png")

    moved = get_rollout(engine, rollout.id)
    assert (moved.status, moved.current_step) == ("active", 1)
    assert Registry(engine).labels(NAME).canary_traffic_percent == 25.0
    last = Registry(engine).history(NAME)[-1]
    assert (last.actor, last.flow_run_id) == (APPROVER, str(flow_run_id))
    assert f"approved by {APPROVER}: {REASON}" in (last.reason or "")
