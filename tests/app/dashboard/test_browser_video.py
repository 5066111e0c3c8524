"""A trained policy's video plays in the dashboard, in real headless Chromium, from an S3 bucket (a real
S3-compatible server on loopback): `rewardsmith serve` trains a tiny task whose files its worker uploads, and the
candidate page's player loads the video and seeks in it by byte ranges (206 with Content-Range), streamed by the API
from the bucket. (The directory store's video is played by test_browser.py's journey.)"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.app.dashboard.test_browser import CHROMIUM, chromium_page
from tests.support.s3 import SECRET, S3Server
from tests.support.server import start_server

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
    "timesteps": 2048,
    "options": {
        "final_seeds": 0,
        "baselines": False,
        "train": {"eval_episodes": 1, "episode_steps": 100, "checkpoints": 2, "video": True, "video_steps": 100},
    },
}

PLAY_AND_SEEK = """async () => {
  const v = document.querySelector('video');
  v.muted = true;
  const played = await v.play().then(() => 'playing', (e) => e.name);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const seeked = new Promise((resolve) => {
    v.addEventListener('seeked', () => resolve('seeked'), {once: true});
    setTimeout(() => resolve('no seeked event'), 15000);
  });
  v.currentTime = v.duration / 2;
  return {played, seeked: await seeked, error: v.error && v.error.code, duration: v.duration,
          readyState: v.readyState, currentTime: v.currentTime};
}"""


def test_a_video_in_the_bucket_plays_and_seeks_in_the_dashboard(tmp_path: Path, s3: S3Server) -> None:
    bucket = s3.new_bucket()
    live = start_server(tmp_path / "data", extra_env={**s3.env(bucket), "MUJOCO_GL": "egl"}, workers=1)
    try:
        headers = {"Authorization": f"Bearer {live.token}"}
        task = httpx.post(f"{live.url}/api/v1/tasks", json=TASK, headers=headers, timeout=30).json()
        deadline = time.monotonic() + 300
        while (run := httpx.get(f"{live.url}/api/v1/runs/{task['run_id']}", headers=headers, timeout=30).json())[
            "status"
        ] != "succeeded":
            assert run["status"] not in ("failed", "cancelled"), run
            assert time.monotonic() < deadline, f"the run did not finish: {run}\n{live.log.read_text()[-3000:]}"
            time.sleep(2)
        assert any(k.endswith("/video.mp4") for k in s3.objects(bucket)), "the worker uploaded the video"
        assert not (tmp_path / "data" / "artifacts").exists(), "and kept no local copy"

        with chromium_page() as page:
            videos: list[tuple[int, dict]] = []
            page.on(
                "response", lambda r: videos.append((r.status, r.headers)) if r.url.endswith("/video.mp4") else None
            )
            page.goto(f"{live.url}/login")
            page.fill("#token", live.token)
            page.click("button[type=submit]")
            page.wait_for_url(f"{live.url}/")
            page.goto(f"{live.url}/candidates/{run['best_candidate_id']}")
            assert page.locator("video").count() == 1
            state = page.evaluate(PLAY_AND_SEEK)
        assert state["error"] is None and state["duration"] > 0, state
        assert state["seeked"] == "seeked" and state["readyState"] >= 1, state
        ranged = [h for status, h in videos if status == 206]
        assert ranged, f"the player asked for byte ranges and got 206: {videos}"
        assert all(h["content-range"].startswith("bytes ") and h["accept-ranges"] == "bytes" for h in ranged)
        assert SECRET not in live.log.read_text()
    finally:
        live.stop()
