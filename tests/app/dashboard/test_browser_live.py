"""Watching a run in real headless Chromium against a real server and worker: the candidate page draws its learning
curves while its training runs (checkpoints stream in, htmx redraws), the run page shows its progress and every
candidate's curve on one chart, and a finished run is continued with feedback that its next iteration carries.

The screenshots it takes go to test-artifacts/screenshots/; with REWARDSMITH_UPDATE_DOCS=1 (`make screenshots`) they
replace the README's (docs/screenshots/), so the journey shown there is the one tested and a test run leaves the
tracked tree as it was."""

from __future__ import annotations

import os
import re
import time

import httpx
import pytest

from tests.app.dashboard.test_browser import CHROMIUM, chromium_page
from tests.support.server import ROOT, start_server

DOCS = (
    ROOT / "docs" / "screenshots"
    if os.environ.get("REWARDSMITH_UPDATE_DOCS") == "1"
    else ROOT / "test-artifacts" / "screenshots"
)
FEEDBACK = "It drags its back leg; push off with both legs."

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (make system-deps)"),
]

TASK = {
    "env": "HalfCheetah-v5",
    "description": "make the cheetah run forward",
    "designer": "offline",
    "iterations": 1,
    "samples": 1,
    "timesteps": 24_576,
    "options": {
        "final_seeds": 0,
        "baselines": False,
        "train": {"eval_episodes": 1, "episode_steps": 100, "checkpoints": 12, "ppo": {"n_envs": 8, "n_steps": 256}},
    },
}
"""One candidate trained long enough (12 checkpoints) for a person, and a test, to see its curves grow."""


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("serve") / "data", extra_env={"MUJOCO_GL": "egl"})
    yield server
    server.stop()


def shot(locator, name: str) -> None:
    """A small PNG of one part of the page, for the README."""
    DOCS.mkdir(parents=True, exist_ok=True)
    locator.screenshot(path=str(DOCS / f"{name}.png"), animations="disabled", scale="css")


def run_status(page) -> str:
    return page.locator("#run-live .status").first.inner_text()


def wait_for(page, url: str, status: str, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        page.goto(url)
        if run_status(page) == status:
            return
        assert run_status(page) not in ("failed", "cancelled"), page.locator("#run-live").inner_text()[:2000]
        page.wait_for_timeout(2000)
    raise AssertionError(f"the run did not reach {status} in {timeout_s} s")


def test_live_curves_then_continue_a_finished_run_with_feedback(live):
    base = live.url
    headers = {"Authorization": f"Bearer {live.token}"}
    r = httpx.post(f"{base}/api/v1/tasks", json=TASK, headers=headers, timeout=30)
    assert r.status_code == 201, r.text
    run_id = r.json()["run_id"]
    with chromium_page() as page:
        page.set_viewport_size({"width": 1200, "height": 800})
        page.goto(f"{base}/login")
        page.fill("#token", live.token)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")

        # The candidate page while its training runs: the curves appear and grow without a reload.
        run_url = f"{base}/runs/{run_id}"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            page.goto(run_url)
            link = page.locator("a.chip").first
            if link.count() and "training" in link.inner_text():
                break
            page.wait_for_timeout(500)
        page.locator("a.chip").first.click()
        page.wait_for_url(re.compile(r".*/candidates/\d+$"))
        progress = page.locator("#training-progress")
        progress.wait_for(timeout=120_000)  # the first checkpoint arrived, the page polled it in
        fitness = page.locator('#candidate-live svg[aria-label="fitness over training"] circle')
        first = fitness.count()
        assert first >= 1 and "Training now" in progress.inner_text()
        page.wait_for_function(
            "n => document.querySelectorAll('#candidate-live svg[aria-label=\"fitness over training\"] circle').length > n",
            arg=first,
            timeout=120_000,
        )  # a later checkpoint redrew the chart in place
        assert page.locator('#candidate-live svg[aria-label="reward per step over training"]').count() == 1
        shot(page.locator("#candidate-live"), "live-curves")

        # The run page: honest progress, every candidate's curve, and what to do once it has ended.
        wait_for(page, run_url, "succeeded")
        assert re.search(
            r"1/1 trainings · [\d,]+/[\d,]+ steps · .* elapsed", page.locator("#run-progress").inner_text()
        )
        assert page.locator("#run-curves svg g.legend").count() == 1
        shot(page.locator("#run-curves"), "run-curves")

        # Feedback on the finished run says what will happen, then the run is continued and carries it.
        page.locator("a.chip").first.click()
        page.fill("#fb-text", FEEDBACK)
        page.click("button:has-text('Send feedback')")
        page.wait_for_url(re.compile(r".*sent=1.*"))
        banner = page.locator(".banner.ok").inner_text()
        assert "this run has ended" in banner and "continue the run" in banner
        page.goto(run_url)
        assert "1 note(s) waiting" in page.locator("#run-next").inner_text()
        shot(page.locator("#run-next"), "continue-run")
        page.fill("#continue-iterations", "1")
        page.click("#continue-run")
        page.locator("#run-live .status", has_text="running").wait_for()
        wait_for(page, run_url, "succeeded")
        assert "Iteration 2" in page.locator("#run-live").inner_text()
        assert "carried 1 feedback note(s)" in page.locator("#run-live").inner_text()
        shot(page.locator("#run-live .timeline"), "continued-run")
