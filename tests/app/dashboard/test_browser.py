"""The dashboard in real headless Chromium against a real server, worker and loopback LLM.

One journey, as a person would take it: log in, create a task on a tiny budget, watch
it run, open the best candidate, see its plots and video, send feedback, resume, and
see the next iteration's prompt carry the feedback. Screenshots of every page are saved
under test-artifacts/screenshots/. Every page, the API docs included, works under the
service's Content-Security-Policy: the browser reports no violation.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.fake_openai import FakeOpenAI
from tests.support.fixtures import load_fixture
from tests.support.server import ROOT, start_server

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "test-artifacts" / "screenshots"
CSP_VIOLATIONS: list[str] = []
"""What Chromium reports on the console when the Content-Security-Policy blocks something."""
FEEDBACK = "It shuffles forward; lift the front leg higher and keep the torso level."

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (make system-deps)"),
]


@pytest.fixture(scope="module")
def llm():
    with FakeOpenAI(default=load_fixture("cheetah_forward_v2")) as server:
        server.script([load_fixture("cheetah_forward")])
        yield server


@pytest.fixture(scope="module")
def live(tmp_path_factory, llm):
    server = start_server(
        tmp_path_factory.mktemp("serve") / "data",
        extra_env={
            "OPENAI_BASE_URL": llm.base_url,
            "OPENAI_API_KEY": "sk-test",
            "REWARDSMITH_LLM_MODEL": "fake-model",
            "REWARDSMITH_LLM_BACKOFF_SECONDS": "0.05",
            "MUJOCO_GL": "egl",
        },
    )
    yield server
    server.stop()


@contextmanager
def chromium_page() -> Iterator:
    """A page of Debian's headless chromium, 1280x800, 30 s timeouts; the browser closes on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        pg = browser.new_page(viewport={"width": 1280, "height": 800})
        pg.set_default_timeout(30_000)
        try:
            yield pg
        finally:
            browser.close()


@pytest.fixture(scope="module")
def page(live):
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    with chromium_page() as pg:
        pg.on("console", lambda msg: CSP_VIOLATIONS.append(msg.text) if "Content Security Policy" in msg.text else None)
        yield pg


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def wait_for_status(page, url: str, statuses: tuple[str, ...], timeout_s: float = 420) -> str:
    """Reload ``url`` until the run's status badge shows one of ``statuses``."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        page.goto(url)
        status = page.locator("#run-live .status").first.inner_text()
        if status in statuses:
            return status
        if status in ("failed", "cancelled"):
            raise AssertionError(f"run ended {status}: {page.locator('#run-live').inner_text()[:2000]}")
        page.wait_for_timeout(3000)
    raise AssertionError(f"run did not reach {statuses} in {timeout_s} s")


def test_review_and_steer_a_search(page, live, llm):
    base = live.url
    # Anonymous pages redirect to the login page; a wrong token is refused with a message.
    page.goto(f"{base}/")
    assert page.url.startswith(f"{base}/login")
    page.fill("#token", "rs_wrong")
    page.click("button[type=submit]")
    assert "not valid" in page.locator(".banner.error").inner_text()
    shot(page, "01-login-refused")
    page.fill("#token", live.token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    shot(page, "02-runs-empty")

    # New task: the env picker shows the state description; the compute estimate follows the settings.
    page.goto(f"{base}/tasks/new")
    page.select_option("#env", "Hopper-v5")
    page.locator("#env-info", has_text="Hopper-v5").wait_for()
    assert "z_position" in page.locator("#env-info").inner_text()
    page.select_option("#env", "HalfCheetah-v5")
    page.locator("#env-info", has_text="HalfCheetah-v5").wait_for()
    page.fill("#description", "make the cheetah run forward")
    page.check("input[name=designer][value=llm]")
    for field, value in {
        "#iterations": "2",
        "#samples": "1",
        "#timesteps": "2048",
        "#final_seeds": "0",
        "#eval_episodes": "1",
        "#episode_steps": "100",
    }.items():
        page.fill(field, value)
    page.check("input[name=wait_for_feedback]")
    page.locator("#compute", has_text="4,096").wait_for()
    shot(page, "03-new-task")
    page.click("button:has-text('Start the search')")
    page.wait_for_url(re.compile(r".*/runs/\d+$"))
    run_url = page.url

    # The run pauses after iteration 1 for feedback, with a banner saying so.
    wait_for_status(page, run_url, ("waiting_feedback",))
    assert "waiting for your feedback" in page.locator("#feedback-banner").inner_text()
    assert page.locator("svg.plot").count() >= 1
    shot(page, "04-run-waiting-for-feedback")

    # The best candidate: code, plots, video, downloads.
    page.click("text=/candidate #\\d+/")
    page.wait_for_url(re.compile(r".*/candidates/\d+$"))
    candidate_url = page.url
    assert "def compute_reward" in page.locator(".code").first.inner_text()
    assert page.locator("svg.plot").count() >= 2, "fitness and component plots"
    assert "fitness over training" in page.content()
    video = page.locator("video")
    assert video.count() == 1, "the trained policy's video"
    src = video.get_attribute("src")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    clip = httpx.get(base + src, cookies=cookies, timeout=30)
    assert clip.status_code == 200 and clip.headers["content-type"] == "video/mp4" and len(clip.content) > 1000
    href = page.locator("a:has-text('reward.py')").first.get_attribute("href")
    assert not href.startswith("/api/"), "the dashboard links to its own downloads (the API takes no cookie)"
    reward_py = httpx.get(base + href, cookies=cookies, timeout=30)
    assert reward_py.status_code == 200 and "def compute_reward" in reward_py.text
    assert httpx.get(f"{base}/api/v1/tasks", cookies=cookies, timeout=30).status_code == 401
    shot(page, "05-candidate")

    # Feedback: an empty one is refused with a message, a real one is accepted.
    requests_before = len(llm.requests)
    page.fill("#fb-text", FEEDBACK)
    page.select_option("#fb-rating", "3")
    page.click("button:has-text('Send feedback')")
    page.wait_for_url(re.compile(r".*sent=1.*"))
    assert "next iteration" in page.locator(".banner.ok").inner_text()
    assert FEEDBACK in page.content()
    shot(page, "06-feedback-sent")

    # Resume: the next iteration's prompt carries the feedback; the run finishes.
    page.goto(run_url)
    page.click("button:has-text('Resume')")
    status = wait_for_status(page, run_url, ("succeeded",))
    assert status == "succeeded"
    design_requests = [r for r in llm.requests[requests_before:] if "## Task" in r["messages"][-1]["content"]]
    assert design_requests, "the second iteration asked the LLM for a design"
    assert FEEDBACK in design_requests[0]["messages"][-1]["content"]
    assert "carried 1 feedback note" in page.locator("#run-live").inner_text()
    shot(page, "07-run-succeeded")

    # Compare the two iterations' candidates side by side; the runs list shows the finished run.
    ids = re.findall(r'href="/candidates/(\d+)"', page.content())
    first, second = sorted(set(int(i) for i in ids))[:2]
    page.goto(f"{base}/compare?a={first}&b={second}")
    assert page.locator("svg.plot").count() >= 2 and "Code diff" in page.content()
    shot(page, "08-compare")
    page.goto(f"{base}/")
    assert "succeeded" in page.locator("#runs-table").inner_text()
    page.locator("#f-q").press_sequentially("no such task")  # the filter (an htmx trigger) works without eval
    page.locator("#runs-table", has_text="No runs match").wait_for()
    shot(page, "09-runs")

    # Errors are pages a person can act on.
    page.goto(f"{base}/runs/999999")
    assert "does not exist" in page.content() and page.locator("a:has-text('Back to the runs')").count() == 1
    shot(page, "10-not-found")
    page.goto(candidate_url)
    page.fill("#fb-text", " ")
    page.evaluate("document.querySelector('#fb-text').removeAttribute('required')")
    page.click("button:has-text('Send feedback')")
    assert "empty" in page.locator(".banner.error").inner_text()

    # A laptop screen: nothing overflows horizontally.
    page.set_viewport_size({"width": 1366, "height": 768})
    for path in ("/", "/tasks/new", run_url.removeprefix(base), candidate_url.removeprefix(base)):
        page.goto(base + path)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at 1366 px"
    shot(page, "11-candidate-laptop")

    # The API docs: Swagger UI from this server, working under the same CSP.
    page.goto(f"{base}/api/v1/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock").count() >= 10 and "/api/v1/tasks" in page.content()
    shot(page, "12-api-docs")
    assert CSP_VIOLATIONS == [], CSP_VIOLATIONS
