"""A training's files are served only from that training's own key, not from anywhere under the artifacts root:
a link among one training's files to another training's file (another user's) serves nothing, nor does a
recorded key that is the root itself, through the API and the dashboard alike."""

from __future__ import annotations

from app.db import session_scope
from app.db.models import Training
from tests.app.api.harness import API, Api, seed_finished_run
from tests.app.dashboard.harness import log_in


def test_a_training_serves_only_its_own_folder(api: Api) -> None:
    alice, _ = api.user("alice"), api.user("bob")
    mine = seed_finished_run(api, owner="alice")
    theirs = seed_finished_run(api, owner="bob")
    (theirs.artifacts / "policy.zip").write_bytes(b"bob's policy")
    (theirs.artifacts / "video.mp4").write_bytes(b"bob's video")
    (mine.artifacts / "video.mp4").symlink_to(theirs.artifacts / "video.mp4")  # inside the root, not alice's
    browser = log_in(api, "alice")
    base = f"/candidates/{mine.candidate_id}/artifacts/{mine.training_id}"

    r = api.client.get(f"{API}{base}/video.mp4", headers=alice)
    assert r.status_code == 404 and b"bob's" not in r.content
    assert browser.client.get(f"{base}/video.mp4").status_code == 404
    own = api.client.get(f"{API}{base}/policy.zip", headers=alice)
    assert own.status_code == 200 and own.content != b"bob's policy", "alice's own files are still served"
    links = api.client.get(f"{API}/candidates/{mine.candidate_id}", headers=alice).json()["artifacts"]
    assert "video.mp4" not in [a["name"] for a in links]

    root = api.settings.data_dir / "artifacts"
    (root / "policy.zip").write_bytes(b"not a training's")
    with session_scope(api.sf) as s:  # the artifacts root itself
        s.get(Training, mine.training_id).artifacts_key = ""
    assert api.client.get(f"{API}{base}/policy.zip", headers=alice).status_code == 404
    with session_scope(api.sf) as s:  # an attempt's folder, as trainings record them, serves its own files
        attempt = mine.artifacts / "attempt-1"
        attempt.mkdir()
        (attempt / "policy.zip").write_bytes(b"attempt one")
        t = s.get(Training, mine.training_id)
        t.artifacts_key = attempt.relative_to(root).as_posix()
        t.stored_files = {"policy.zip": len(b"attempt one")}
    r = api.client.get(f"{API}{base}/policy.zip", headers=alice)
    assert (r.status_code, r.content) == (200, b"attempt one")
