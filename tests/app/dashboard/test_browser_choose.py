"""Choosing by watching, in real headless Chromium against `rewardsmith serve`: the videos of a group play and seek
together under one control (seek one, and every other follows), each says how long its episode is, and "none of
these is right" with a sentence is recorded. The run waiting for a choice is written straight into the server's
database with real mp4 files in its artifact store, so that nothing trains. Screenshot: choose-sync.png."""

from __future__ import annotations

from pathlib import Path

import httpx
import imageio.v2 as imageio
import numpy as np
import pytest
from sqlalchemy import select

from app.config import Settings
from app.db import session_factory, session_scope
from app.db.models import Candidate, Iteration, SelectionChoice, Training, User, utcnow
from app.search.service import TaskSpec, create_task
from tests.app.dashboard.test_browser import CHROMIUM, SHOTS, chromium_page
from tests.support.dispatch import RecordingDispatcher
from tests.support.server import start_server
from tests.support.tasks import TINY

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (make system-deps)"),
]
LENGTHS = (6.0, 8.0)
"""Seconds of the two clips: different, as two policies' episodes may be (one falls early)."""
SAID = "None of them <b>hops</b>: they all crawl on their knees."


def _clip(path: Path, seconds: float, shade: int) -> None:
    """A 10 frames/s mp4 whose frames brighten with time (so that a frame tells where in the clip it is)."""
    frames = [np.full((64, 64, 3), (shade + 3 * i) % 256, dtype=np.uint8) for i in range(int(seconds * 10))]
    imageio.mimwrite(path, frames, fps=10, codec="libx264", macro_block_size=1)


def _waiting_run(data_dir: Path) -> tuple[int, list[int]]:
    """A human-selection run of the server's database waiting after iteration 1 with two trained candidates."""
    sf = session_factory(f"sqlite:///{data_dir / 'rewardsmith.sqlite3'}")
    with session_scope(sf) as s:
        owner = s.scalar(select(User.id).where(User.name == "admin"))
        spec = TaskSpec(**(TINY | {"selection": "human", "samples": 2, "iterations": 1}))
        settings = Settings(data_dir=data_dir)
        _, run = create_task(s, spec=spec, owner_id=owner, settings=settings, dispatcher=RecordingDispatcher())
        run.status, run.started_at = "waiting_feedback", utcnow()
        it = Iteration(run_id=run.id, index=0, status="done", context={})
        s.add(it)
        s.flush()
        ids = []
        for i, seconds in enumerate(LENGTHS):
            c = Candidate(run_id=run.id, iteration_id=it.id, index=i, origin="offline", code="x", status="trained")
            c.fitness = 3.0 + i
            s.add(c)
            s.flush()
            key = f"run-{run.id}/candidate-{c.id}/training-1"
            (data_dir / "artifacts" / key).mkdir(parents=True)
            _clip(data_dir / "artifacts" / key / "video.mp4", seconds, 40 * i)
            info = {"steps": int(seconds / 0.05), "seconds": seconds, "frames": int(seconds * 10), "fps": 10.0}
            t = Training(candidate_id=c.id, run_id=run.id, purpose="full", timesteps=2048, status="ok")
            t.result, t.artifacts_key = {"video": info | {"stride": 2}}, key
            s.add(t)
            ids.append(c.id)
        run.best_candidate_id = ids[1]
        return run.id, ids


SEEK_ONE = """async (t) => {
  const vs = [...document.querySelectorAll('[data-sync-group] video')];
  vs[0].currentTime = t;
  await new Promise((r) => setTimeout(r, 1500));
  return vs.map((v) => v.currentTime);
}"""


def test_the_videos_of_a_group_play_and_seek_together_and_none_of_these_is_right_is_recorded(tmp_path: Path) -> None:
    data = tmp_path / "data"
    live = start_server(data, workers=1)
    try:
        run_id, ids = _waiting_run(data)
        with chromium_page() as page:
            page.goto(f"{live.url}/login")
            page.fill("#token", live.token)
            page.click("button[type=submit]")
            page.wait_for_url(f"{live.url}/")
            page.goto(f"{live.url}/runs/{run_id}/choose")
            page.wait_for_function("[...document.querySelectorAll('video')].every(v => v.readyState >= 1)")
            assert page.locator("video").count() == 2
            lengths = page.locator(".video-length").all_inner_texts()
            assert lengths == [f"the whole episode: {s:.1f} s" for s in LENGTHS]
            control = page.locator("[data-sync-control]")
            assert control.is_visible()
            assert float(control.locator("[data-sync-seek]").get_attribute("max")) == pytest.approx(8.0, abs=0.2)

            # seek one video with its own position: every other follows
            times = page.evaluate(SEEK_ONE, 2.5)
            assert times == [pytest.approx(2.5, abs=0.15)] * 2, times
            # seek with the shared control
            page.locator("[data-sync-seek]").fill("4")
            page.wait_for_timeout(1000)
            times = page.evaluate("[...document.querySelectorAll('[data-sync-group] video')].map(v => v.currentTime)")
            assert times == [pytest.approx(4.0, abs=0.15)] * 2, times
            # play together, pause together
            page.click("[data-sync-play]")
            page.wait_for_timeout(1200)
            state = page.evaluate(
                "[...document.querySelectorAll('[data-sync-group] video')].map(v => [v.paused, v.currentTime])"
            )
            assert not any(paused for paused, _ in state), state
            assert abs(state[0][1] - state[1][1]) < 0.3 and state[0][1] > 4.2, state
            page.click("[data-sync-play]")
            assert page.evaluate("[...document.querySelectorAll('[data-sync-group] video')].every(v => v.paused)")
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "choose-sync.png"), full_page=True)

            # none of these is right, with a sentence
            page.fill("#choice-text", SAID)
            page.click("#none-right")
            page.wait_for_url(f"{live.url}/runs/{run_id}")
            assert SAID in page.locator("body").inner_text()
        headers = {"Authorization": f"Bearer {live.token}"}
        body = httpx.get(f"{live.url}/api/v1/runs/{run_id}/comparisons", headers=headers, timeout=30).json()
        [choice] = body["choices"]
        assert choice["none_right"] is True and choice["text"] == SAID and choice["best_id"] == ids[1]
        sf = session_factory(f"sqlite:///{data / 'rewardsmith.sqlite3'}")
        with session_scope(sf) as s:
            assert s.scalar(select(SelectionChoice.none_right)) is True
    finally:
        live.stop()
