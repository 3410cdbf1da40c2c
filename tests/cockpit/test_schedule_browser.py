"""What a person sees of a deployment's schedule in the Prefect UI, in a real browser: the schedule
card names no time zone (Prefect shows it only in the card's tooltip), so the description's first
sentence says what the flow does, when it runs with the zone, and when to run it by hand.

Screenshot: tests/cockpit/output/schedule-daily-digest.png. For a zone other than UTC see
tests/unit/test_serve_timezone.py (``make serve`` deploys the schedules in LLMOPS_TIMEZONE).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefect_llmops.deployments.serve import Cockpit
from tests.cockpit.test_browser import browser_available, page, screenshot  # noqa: F401  (fixtures)

if TYPE_CHECKING:
    from playwright.sync_api import Page


def test_the_daily_digest_page_shows_its_schedule_with_the_zone_and_says_when_to_run_it_by_hand(
    page: Page,  # noqa: F811
    cockpit: Cockpit,
) -> None:
    from playwright.sync_api import expect

    page.goto(f"{cockpit.ui_url}/deployments")
    page.get_by_role("link", name="daily-digest", exact=True).first.click()
    page.wait_for_url("**/deployments/deployment/*")
    card = page.locator(".deployment-schedule-card").first
    expect(card).to_contain_text("At 08:00 AM every day")
    card.hover()
    expect(page.get_by_text("At 08:00 AM every day (UTC)")).to_be_visible()  # the tooltip
    page.get_by_role("tab", name="Description").or_(page.get_by_text("Description", exact=True)).first.click()
    expect(page.get_by_text("every day at 08:00 UTC; run it by hand", exact=False)).to_be_visible()
    screenshot(page, "schedule-daily-digest.png")
