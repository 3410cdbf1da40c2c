"""The promote button, clicked in a real browser: Debian's chromium, headless, drives the Prefect
UI that ``make serve`` serves — the promote-prompt form, the run reaching Completed, its artifacts.

Screenshots are saved to tests/cockpit/output/ (git-ignored); the README shows copies of them
from docs/screenshots/ (refresh with ``cp tests/cockpit/output/promote-*.png docs/screenshots/``).
Without /usr/bin/chromium or the playwright package the test skips, unless
LLMOPS_REQUIRE_BROWSER=1 (CI), where it fails.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from sqlalchemy import Engine

from llmops import settings
from llmops.release.registry import Registry
from llmops.release.rollouts import PromotionRequest, live_rollout, start_rollout
from llmops.store.engine import get_engine
from prefect_llmops.deployments.serve import Cockpit
from tests.cockpit.conftest import promotion, prompts_dir, store_url

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page, Response

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Headless, offline, no first-run or update traffic: what runs on a CI box without a display."""
OUTPUT_DIR = Path(__file__).parent / "output"
VIEWPORT = {"width": 1400, "height": 1000}
FORM_VIEWPORT = {"width": 1400, "height": 2100}
"""Tall enough for the whole promote form in one screenshot (the UI scrolls it inside the page)."""
UI_TIMEOUT_MS = 60_000
PROMOTE_RUN_TIMEOUT_SECONDS = 600.0
SUBMIT_ATTEMPTS = 3
"""The run also captures the candidate's pinned-model reference (model calls): minutes on a busy machine."""
FINAL_STATES = re.compile(r"^(Completed|Failed|Crashed|Cancelled)$")

PROMPT, BASELINE, CANDIDATE, ENVIRONMENT = "support-chat", "2.3.0", "2.3.1", "production"
ACTOR, REASON = "alice", "2.3.1 answers refund questions with the written policy; canary 5 → 25 → 100 %"


def missing_browser() -> str | None:
    """Why the browser cannot run here, or None when it can."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (`make install` as root installs Debian's chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (`make install` installs the dev extras)"
    return None


@pytest.fixture(scope="session", autouse=True)
def browser_available() -> None:
    """Checked before the session's cockpit starts: without a browser there is nothing to start it for."""
    reason = missing_browser()
    if reason and settings.env(settings.LLMOPS_REQUIRE_BROWSER) == "1":
        pytest.fail(f"{settings.LLMOPS_REQUIRE_BROWSER}=1 but {reason}")
    if reason:
        pytest.skip(reason)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    """A fresh headless chromium page (new profile); the page's last state is saved as last.png."""
    from playwright.sync_api import sync_playwright

    OUTPUT_DIR.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport=VIEWPORT,
        )
        context.set_default_timeout(UI_TIMEOUT_MS)
        browser_page = context.new_page()
        try:
            yield browser_page
        finally:
            browser_page.screenshot(path=OUTPUT_DIR / "last.png")
            context.close()


def release_baseline(cockpit: Cockpit) -> Engine:
    """Production serves 2.3.0 in the cockpit's store, so the form's canary has something to compare with."""
    engine = get_engine(store_url(cockpit))
    with pytest.MonkeyPatch.context() as patch:  # the registry reads version files from the cockpit's prompts
        patch.setenv(settings.LLMOPS_PROMPTS_DIR, str(prompts_dir(cockpit)))
        start_rollout(engine, PromotionRequest(**promotion(PROMPT, BASELINE, strategy="immediate", git_tag=False)))
    return engine


def form_field(page: Page, label: str) -> Locator:
    """The input area of the form property labelled ``label`` (the UI's labels are not tied to their inputs)."""
    labelled = f"span[contains(@class,'schema-form-property__label') and normalize-space()='{label}']"
    return page.locator(
        "xpath=//div[contains(@class,'schema-form-property')]"
        f"[./div[contains(@class,'p-label__header')]//{labelled}]"
        "/div[contains(@class,'p-label__body')]"
    ).first


def failed_api_calls(page: Page) -> list[str]:
    """Every API call of the UI that fails, as ``METHOD path → status body``: what is behind an error toast."""
    failures: list[str] = []

    def note(response: Response) -> None:
        if "/api/" in response.url and response.status >= 400:
            failures.append(
                f"{response.request.method} {urlsplit(response.url).path} → {response.status} {response.text()[:500]}"
            )

    page.on("response", note)
    return failures


def submit_until_created(page: Page, failures: list[str]) -> None:
    """Submit the form, and again (as a person would) while the server answers 503.

    Prefect answers 503 when a write lost a SQLite lock race and nothing was created; its own
    clients retry that, while the UI shows an error toast and leaves the form filled in.
    """
    for attempt in range(1, SUBMIT_ATTEMPTS + 1):
        with page.expect_response(
            lambda response: response.request.method == "POST" and response.url.endswith("/create_flow_run")
        ) as answer:
            page.get_by_role("button", name="Submit", exact=True).click()
        status = answer.value.status
        if status < 400:
            return
        if status != 503 or attempt == SUBMIT_ATTEMPTS:
            pytest.fail(f"the form created no flow run after {attempt} submission(s); failed API calls: {failures}")


def worker_logs(cockpit: Cockpit) -> str:
    return "\n".join(process.log_tail() for process in cockpit.processes if process.name.startswith("llmops-worker"))


def screenshot(page: Page, name: str) -> Path:
    path = OUTPUT_DIR / name
    page.screenshot(path=path)
    print(f"screenshot: {path}")
    return path


@pytest.mark.timeout(PROMOTE_RUN_TIMEOUT_SECONDS + 300)
def test_promote_form_in_the_browser_starts_a_canary_and_shows_its_rollout(page: Page, cockpit: Cockpit) -> None:
    from playwright.sync_api import TimeoutError as UITimeout
    from playwright.sync_api import expect

    engine = release_baseline(cockpit)
    failures = failed_api_calls(page)
    run_name = f"promote-{PROMPT}-{CANDIDATE.replace('.', '-')}-{uuid.uuid4().hex[:6]}"

    page.goto(f"{cockpit.ui_url}/deployments")
    page.get_by_role("link", name="promote-prompt", exact=True).first.click()
    page.wait_for_url("**/deployments/deployment/*")
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("Custom run", exact=True).click()
    page.locator(".flow-run-name-input input").fill(run_name)
    prompt = form_field(page, "Prompt").get_by_role("button")  # a choice among the prompt files, not free text
    prompt.focus()
    page.keyboard.press("ArrowDown")  # the UI's select opens from the keyboard (a synthetic click toggles it shut)
    page.get_by_role("option", name=PROMPT, exact=True).click()
    expect(form_field(page, "Prompt")).to_contain_text(PROMPT)
    form_field(page, "Version").locator("textarea").fill(CANDIDATE)
    expect(form_field(page, "Strategy (Optional)")).to_contain_text("canary")
    expect(form_field(page, "Tolerances (Optional)")).to_contain_text("default")
    force = form_field(page, "Force Without Eval (Optional)")
    force.get_by_role("switch").click()
    expect(force.locator("input[type=checkbox]")).to_be_checked()
    form_field(page, "Reason").locator("textarea").fill(REASON)
    form_field(page, "Actor").locator("textarea").fill(ACTOR)
    page.set_viewport_size(FORM_VIEWPORT)
    screenshot(page, "promote-form.png")
    page.set_viewport_size(VIEWPORT)

    submit_until_created(page, failures)
    try:  # the UI mounts its toasts twice, one over the other: the last is the one a person clicks
        page.locator(".toast-flow-run-create", has_text=run_name).last.get_by_role("button", name="View run").click()
    except UITimeout:
        pytest.fail(f"the form created no flow run; failed API calls: {failures or 'none'}")
    page.wait_for_url("**/runs/flow-run/*")
    state = page.locator(".page-heading-flow-run__meta .state-badge")
    try:
        expect(state).to_have_text(FINAL_STATES, timeout=PROMOTE_RUN_TIMEOUT_SECONDS * 1000)
    except AssertionError:
        pytest.fail(f"{run_name} not finished after {PROMOTE_RUN_TIMEOUT_SECONDS:.0f} s; worker log:\n{worker_logs(cockpit)}")
    if (final := state.inner_text().strip()) != "Completed":
        pytest.fail(f"{run_name} ended {final}; worker log:\n{worker_logs(cockpit)}")

    page.locator("li.p-tab:visible").filter(has_text=re.compile("^Artifacts$")).click()
    for kind in ("plan", "gates", "status"):
        expect(page.get_by_text(f"rollout-{kind}-{PROMPT}-{ENVIRONMENT}", exact=True)).to_be_visible()
    screenshot(page, "promote-run-completed.png")
    page.get_by_text(f"rollout-status-{PROMPT}-{ENVIRONMENT}", exact=True).click()
    page.wait_for_url("**/artifacts/artifact/*")
    expect(page.get_by_text(f"{PROMPT}: {BASELINE} → {CANDIDATE} (canary, {ENVIRONMENT})")).to_be_visible()
    expect(page.get_by_text("step 1/3 at 5 %")).to_be_visible()
    expect(page.get_by_text(REASON)).to_be_visible()
    screenshot(page, "promote-run-artifact.png")

    rollout = live_rollout(engine, PROMPT, ENVIRONMENT)
    assert rollout is not None and (rollout.baseline, rollout.candidate, rollout.strategy) == (BASELINE, CANDIDATE, "canary")
    assert rollout.created_by == ACTOR and rollout.plan.reason == REASON
    labels = Registry(engine).labels(PROMPT, ENVIRONMENT)
    assert (labels.production, labels.canary, labels.canary_traffic_percent) == (BASELINE, CANDIDATE, 5)
