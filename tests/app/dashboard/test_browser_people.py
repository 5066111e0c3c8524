"""A person's decisions in real headless Chromium against a real server and worker: approve the fitness the designer
proposed from the task's words, then pick between two candidates' videos, and see iteration 2 start from the one
picked. Screenshots are saved under test-artifacts/screenshots/ (people-*.png)."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.app.dashboard.test_browser import CHROMIUM, SHOTS, chromium_page, wait_for_status
from tests.support.server import start_server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (make system-deps)"),
]
SAID = "It scoots backwards on its rear leg; keep that, with longer strides."


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("serve-people") / "data", extra_env={"MUJOCO_GL": "egl"})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def page(live):
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("people-*.png"):
        old.unlink()
    with chromium_page() as pg:
        yield pg


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"people-{name}.png"), full_page=True)


def test_approve_a_proposed_fitness_then_choose_by_watching(page, live) -> None:
    base = live.url
    page.goto(f"{base}/login")
    page.fill("#token", live.token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")

    # A task in words only: the fitness is proposed, and the person chooses the parents.
    page.goto(f"{base}/tasks/new")
    page.fill("#description", "make the cheetah run backwards")
    page.check("input[name=fitness_kind][value=propose]")
    page.check("input[name=designer][value=offline]")
    for field, value in {
        "#iterations": "2",
        "#samples": "2",
        "#timesteps": "2048",
        "#final_seeds": "0",
        "#eval_episodes": "1",
        "#episode_steps": "100",
    }.items():
        page.fill(field, value)
    page.uncheck("input[name=baselines]")
    page.check("input[name=human_selection]")
    shot(page, "01-new-task")
    page.click("button:has-text('Start the search')")
    page.wait_for_url(re.compile(r".*/runs/\d+$"))
    run_url = page.url

    # The proposal, with what it measured on random-policy episodes; approving it starts the search.
    wait_for_status(page, run_url, ("waiting_fitness",), timeout_s=120)
    card = page.locator("#fitness-proposal")
    assert "backward_distance" in card.inner_text() and "def compute_fitness" in card.inner_text()
    assert "random-policy episodes" in card.inner_text() and "so it can tell them apart" in card.inner_text()
    assert card.locator("table.measure tbody tr").first.locator("td").count() == 7  # label, 5 values, mean
    shot(page, "02-proposed-fitness")
    page.click("#approve-fitness")
    page.wait_for_url(run_url)
    assert page.locator("#fitness-proposal").count() == 0
    assert "approved" in page.locator("#people-records").inner_text()

    # After iteration 1 the run waits for a choice between its two candidates' videos.
    wait_for_status(page, run_url, ("waiting_feedback",), timeout_s=420)
    assert "waits for your choice" in page.locator("#choose-banner").inner_text()
    shot(page, "03-run-waits-for-a-choice")
    page.click("a:has-text('Watch and choose')")
    page.wait_for_url(re.compile(r".*/runs/\d+/choose$"))
    videos = page.locator("video")
    assert videos.count() == 2
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    for i in range(2):
        clip = httpx.get(base + videos.nth(i).get_attribute("src"), cookies=cookies, timeout=30)
        assert clip.status_code == 200 and clip.headers["content-type"] == "video/mp4" and len(clip.content) > 1000
    page.wait_for_function("[...document.querySelectorAll('video')].every(v => v.readyState >= 1)")
    # The person picks the one with the lower fitness: their choice, not the number, makes the next parent.
    cards = page.locator(".choice")
    fitness = [float(re.search(r"fitness (\S+)", cards.nth(i).inner_text()).group(1)) for i in range(2)]
    pick = fitness.index(min(fitness))
    chosen = cards.nth(pick).locator("input[name=best]").get_attribute("value")
    cards.nth(pick).locator("input[name=best]").check()
    page.fill("#choice-text", SAID)
    shot(page, "04-choose")
    page.click("button:has-text('Choose')")
    page.wait_for_url(run_url)

    # Iteration 2 is designed from the chosen candidate; the choice is on the record with its scores.
    deadline = time.monotonic() + 120
    while "Iteration 2" not in page.locator("#run-live").inner_text():
        assert time.monotonic() < deadline, "iteration 2 did not start"
        page.wait_for_timeout(1000)
        page.goto(run_url)
    second = page.locator(".iteration", has_text="Iteration 2")
    assert f"parent #{chosen}" in second.inner_text()
    records = page.locator("#people-records").inner_text()
    assert f"#{chosen}" in records and SAID in records and "admin" in records
    shot(page, "05-iteration-2-from-the-chosen")
