"""The robot pages in real headless Chromium against a real server: upload the quadruped's MJCF from the form (as a
browser sends it, the empty asset input included), see its description and the picture of its initial pose (loaded
under the Content-Security-Policy), and start a task on it from the task form. Screenshots: robots-*.png."""

from __future__ import annotations

import pytest

from tests.app.dashboard.test_browser import CHROMIUM, SHOTS, chromium_page
from tests.support.robots import ROBOTS
from tests.support.server import start_server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (make system-deps)"),
]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = start_server(
        tmp_path_factory.mktemp("serve-robots") / "data", extra_env={"MUJOCO_GL": "egl"}, args=("--no-embedded-worker",)
    )
    yield server
    server.stop()


def test_upload_a_robot_see_it_and_start_a_task_on_it(live) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    violations: list[str] = []
    with chromium_page() as page:
        page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(f"{live.url}/login")
        page.fill("#token", live.token)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live.url}/")
        page.click("nav >> text=Robots")
        page.wait_for_url(f"{live.url}/robots")
        page.fill("#robot-name", "browser_quad")
        page.set_input_files("#robot-model", str(ROBOTS / "quadruped.xml"))
        page.fill("#robot-episode_steps", "400")
        page.screenshot(path=str(SHOTS / "robots-1-upload.png"), full_page=True)
        page.click("#robot-form button[type=submit]")
        page.wait_for_url(f"{live.url}/robots/browser_quad", timeout=120_000)
        text = page.locator("main").inner_text()
        assert "# browser_quad" in text and "front_left_foot: a foot" in text and "episode_steps\n400" in text
        picture = page.locator("img.picture")
        picture.wait_for()
        size = page.evaluate(
            "() => { const i = document.querySelector('img.picture'); return [i.complete, i.naturalWidth, i.naturalHeight]; }"
        )
        assert size == [True, 480, 360], size
        page.screenshot(path=str(SHOTS / "robots-2-robot.png"), full_page=True)

        page.click("text=New task on this robot")
        page.wait_for_url(f"{live.url}/tasks/new?env=browser_quad")
        assert page.locator("#env").input_value() == "browser_quad"
        page.select_option("#env", "Hopper-v5")
        page.locator("#env-info", has_text="Hopper-v5").wait_for()
        page.select_option("#env", "browser_quad")  # the picker shows the robot as the designer sees it
        page.locator("#env-info", has_text="front_left_foot").wait_for()
        page.screenshot(path=str(SHOTS / "robots-3-task.png"), full_page=True)
    assert not violations, violations
