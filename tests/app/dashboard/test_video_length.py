"""The candidate page says how long the episode in its video is: the clip holds the whole episode."""

from __future__ import annotations

from app.db import session_scope
from app.db.models import Training
from tests.app.api.harness import Api, seed_finished_run
from tests.app.dashboard.harness import log_in


def test_the_candidate_page_shows_the_length_of_the_episode_in_its_video(api: Api) -> None:
    api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    (seeded.artifacts / "video.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    page = log_in(api, "alice").client.get(f"/candidates/{seeded.candidate_id}").text
    assert "<video" in page and "An older clip: it may show only part of the episode." in page
    with session_scope(api.sf) as s:
        t = s.get(Training, seeded.training_id)
        t.result = {**t.result, "video": {"steps": 1000, "seconds": 50.0, "frames": 501, "fps": 10.0, "stride": 2}}
    page = log_in(api, "alice").client.get(f"/candidates/{seeded.candidate_id}").text
    assert "The whole episode: 50.0 s, in real time." in page
