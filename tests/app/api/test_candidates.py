"""GET /candidates/{id}, the files a training produced, the reward as .py and as a wrapper, POST feedback."""

from __future__ import annotations

import ast
import io
import json
import os
import pickle
import zipfile
from pathlib import Path

from app.db import session_scope
from app.db.models import Run
from app.search.records.run_json import run_dict
from tests.app.api.harness import API, Api, seed_finished_run


def test_candidate_detail_has_code_results_trainings_and_feedback(api: Api) -> None:
    alice = api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    r = api.client.get(f"{API}/candidates/{seeded.candidate_id}", headers=alice)
    assert r.status_code == 200
    c = r.json()
    assert "def compute_reward(state, action)" in c["code"]
    assert (c["status"], c["fitness"], c["fitness_std"], c["iteration"]) == ("trained", 12.5, 0.5, 1)
    assert c["reflection"] == "forward dominates" and c["diagnostics"][0]["kind"] == "dominant"
    assert [s["mean"] for s in c["components"]["forward"]] == [0.5, 1.0]
    assert [cp["timesteps"] for cp in c["checkpoints"]] == [1024, 2048] and c["episodes"][0]["distance_x"] == 12.5
    [training] = c["trainings"]
    assert (training["id"], training["purpose"], training["status"]) == (seeded.training_id, "full", "ok")
    assert training["fitness"]["mean"] == 12.5 and training["steps_per_second"] == 900.0
    assert sorted(a["name"] for a in c["artifacts"]) == ["policy.zip", "result.json", "reward.py"]
    assert [(f["text"], f["rating"], f["user"]) for f in c["feedback"]] == [("earlier note", 3, "alice")]


def test_every_artifact_link_downloads_the_file_the_training_left(api: Api) -> None:
    alice = api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    links = api.client.get(f"{API}/candidates/{seeded.candidate_id}", headers=alice).json()["artifacts"]
    types = {"policy.zip": "application/zip", "result.json": "application/json", "reward.py": "text/x-python"}
    for link in links:
        r = api.client.get(link["url"], headers=alice)
        assert r.status_code == 200, link
        assert r.content == (seeded.artifacts / link["name"]).read_bytes()
        assert r.headers["content-type"].startswith(types[link["name"]])
        assert f"training-{seeded.training_id}-{link['name']}" in r.headers["content-disposition"]


def test_missing_or_foreign_artifacts_are_404(api: Api) -> None:
    alice = api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    base = f"{API}/candidates/{seeded.candidate_id}/artifacts"
    for path in (
        f"{base}/{seeded.training_id}/video.mp4",  # allowed name, not produced
        f"{base}/{seeded.training_id}/secret_key",  # not an artifact name
        f"{base}/{seeded.training_id}/..%2F..%2F..%2Fsecret_key",
        f"{base}/{seeded.training_id + 1}/policy.zip",  # no such training
        f"{API}/candidates/{seeded.rejected_id}/artifacts/{seeded.training_id}/policy.zip",  # another's
        f"{base}/{2**70}/policy.zip",
    ):
        r = api.client.get(path, headers=alice)
        assert r.status_code == 404, (path, r.text)


def test_reward_and_wrapper_downloads(api: Api) -> None:
    alice = api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    code = api.client.get(f"{API}/candidates/{seeded.candidate_id}", headers=alice).json()["code"]
    r = api.client.get(f"{API}/candidates/{seeded.candidate_id}/reward.py", headers=alice)
    assert r.status_code == 200 and r.text == code
    assert f'filename="reward_{seeded.candidate_id}.py"' in r.headers["content-disposition"]
    w = api.client.get(f"{API}/candidates/{seeded.candidate_id}/wrapper.py", headers=alice)
    assert w.status_code == 200
    ast.parse(w.text)  # a module that imports
    assert "HalfCheetah-v5" in w.text and "def compute_reward(state, action)" in w.text


class MakesMarker:
    """Unpickling this creates the directory ``marker``: what a hostile policy file would do, made visible."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.mkdir, (str(self.marker),))


def test_policy_files_are_served_and_exported_as_bytes_and_never_loaded(api: Api) -> None:
    alice = api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    marker = api.settings.data_dir / "ran"
    hostile = pickle.dumps(MakesMarker(marker))  # a training's sandbox could leave this as its policy
    for name in ("policy.zip", "vecnormalize.pkl"):
        (seeded.artifacts / name).write_bytes(hostile)
    base = f"{API}/candidates/{seeded.candidate_id}"
    for name in ("policy.zip", "vecnormalize.pkl"):
        r = api.client.get(f"{base}/artifacts/{seeded.training_id}/{name}", headers=alice)
        assert r.status_code == 200 and r.content == hostile, name
    r = api.client.get(f"{base}/bundle.zip", headers=alice)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    folder = f"rewardsmith-candidate-{seeded.candidate_id}"
    assert f'filename="{folder}.zip"' in r.headers["content-disposition"]
    bundle = zipfile.ZipFile(io.BytesIO(r.content))
    names = set(bundle.namelist())
    expected = {
        "README.md",
        "enjoy.py",
        "reward_wrapper.py",
        "reward.py",
        "fitness.py",
        "policy.zip",
        "vecnormalize.pkl",
    }
    assert {f"{folder}/{n}" for n in expected} <= names
    assert f"{folder}/rewardsmith_check/policy.py" in names and f"{folder}/rewardsmith_state/state.py" in names
    assert bundle.read(f"{folder}/policy.zip") == hostile and bundle.read(f"{folder}/vecnormalize.pkl") == hostile
    assert not marker.exists(), "the API process unpickled a policy file"


def test_feedback_is_stored_and_shown_on_the_candidate(api: Api) -> None:
    alice = api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    r = api.client.post(
        f"{API}/candidates/{seeded.candidate_id}/feedback",
        headers=alice,
        json={"text": "  it hops on its back; keep the torso level  ", "rating": 2},
    )
    assert r.status_code == 201, r.text
    fb = r.json()
    assert (fb["candidate_id"], fb["text"], fb["rating"], fb["user"]) == (
        seeded.candidate_id,
        "it hops on its back; keep the torso level",
        2,
        "alice",
    )
    assert fb["used_in_iteration"] is None
    shown = api.client.get(f"{API}/candidates/{seeded.candidate_id}", headers=alice).json()["feedback"]
    assert [f["text"] for f in shown] == ["earlier note", "it hops on its back; keep the torso level"]


def test_bad_feedback_is_422(api: Api) -> None:
    alice = api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    url = f"{API}/candidates/{seeded.candidate_id}/feedback"
    for body, field in (
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"text": "ok", "rating": 6}, "rating"),
        ({"text": "x" * 4001}, "text"),
        ({"rating": 3}, "text"),
    ):
        r = api.client.post(url, headers=alice, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["field"] == field, body
    assert len(api.client.get(f"{API}/candidates/{seeded.candidate_id}", headers=alice).json()["feedback"]) == 1


def test_unknown_candidates_are_404(api: Api) -> None:
    alice = api.user("alice")
    for method, path in (
        ("GET", "/candidates/999"),
        ("GET", "/candidates/999/reward.py"),
        ("GET", "/candidates/999/wrapper.py"),
        ("POST", "/candidates/999/feedback"),
    ):
        r = api.client.request(method, f"{API}{path}", headers=alice, json={"text": "hi"})
        assert r.status_code == 404, (path, r.text)


def test_files_outside_the_artifacts_root_are_never_served(api: Api) -> None:
    """A program can leave a symlink among its files (video.mp4 -> the secret key), and a stored key can be a host
    path or climb out: a key names one regular file under data_dir/artifacts, reached without a symlink, in every
    route."""
    from app.db import session_scope
    from app.db.models import Training
    from tests.app.dashboard.harness import log_in

    alice = api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    secret = api.settings.data_dir / "secret_key"
    secret.write_text("do-not-serve")
    outside = api.settings.data_dir.parent / "elsewhere"
    outside.mkdir()
    (outside / "policy.zip").write_text("not yours")
    (seeded.artifacts / "video.mp4").symlink_to(secret)
    (seeded.artifacts / "result.json").unlink()
    (seeded.artifacts / "result.json").symlink_to(seeded.artifacts.parent)  # a directory
    (seeded.artifacts / "vecnormalize.pkl").symlink_to(seeded.artifacts / "vecnormalize.pkl")  # a loop
    browser = log_in(api, "alice")
    base = f"/candidates/{seeded.candidate_id}/artifacts/{seeded.training_id}"
    for name in ("video.mp4", "result.json", "vecnormalize.pkl"):
        r = api.client.get(f"{API}{base}/{name}", headers=alice)
        assert r.status_code == 404 and "do-not-serve" not in r.text, name
        assert browser.client.get(f"{base}/{name}").status_code == 404, name
    links = api.client.get(f"{API}/candidates/{seeded.candidate_id}", headers=alice).json()["artifacts"]
    assert sorted(a["name"] for a in links) == ["policy.zip", "reward.py"]
    assert "<video" not in browser.client.get(f"/candidates/{seeded.candidate_id}").text

    for stored in (str(outside), "../elsewhere", "run-1/../../elsewhere"):  # not keys: a host path, a way out
        with session_scope(api.sf) as s:
            s.get(Training, seeded.training_id).artifacts_key = stored
        assert api.client.get(f"{API}{base}/policy.zip", headers=alice).status_code == 404, stored
        assert browser.client.get(f"{base}/policy.zip").status_code == 404, stored
        assert api.client.get(f"{API}/candidates/{seeded.candidate_id}", headers=alice).json()["artifacts"] == []

    with session_scope(api.sf) as s:  # a list of stored files that names the symlinks: they are still refused
        t = s.get(Training, seeded.training_id)
        t.artifacts_key = seeded.artifacts.relative_to(api.settings.data_dir / "artifacts").as_posix()
        t.stored_files = {"video.mp4": 12, "result.json": 1, "vecnormalize.pkl": 1, "policy.zip": 22}
    for name in ("video.mp4", "result.json", "vecnormalize.pkl"):
        r = api.client.get(f"{API}{base}/{name}", headers=alice)
        assert r.status_code == 404 and "do-not-serve" not in r.text, name
    assert api.client.get(f"{API}{base}/policy.zip", headers=alice).status_code == 200


def test_candidate_detail_has_the_learners_statistics_and_which_side_its_diagnostics_point_at(api: Api) -> None:
    alice = api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    c = api.client.get(f"{API}/candidates/{seeded.candidate_id}", headers=alice).json()
    learner = c["learner"]
    assert learner["timesteps"] == [1024, 2048]
    assert learner["stats"]["approx_kl"] == [0.004, 0.006] and learner["stats"]["explained_variance"] == [-0.8, 0.4]
    assert set(learner["stats"]) == {
        "approx_kl", "clip_fraction", "explained_variance", "entropy", "std", "policy_loss", "value_loss",
        "learning_rate",
    }  # fmt: skip
    assert learner["verdict"] == "reward"  # its only diagnostic is the reward's (a dominant component)
    assert "the learner trained normally" in learner["verdict_text"]
    [training] = c["trainings"]
    assert training["learner"]["approx_kl"] == 0.006 and training["learner"]["updates"] == 2  # at its last checkpoint


def test_run_json_carries_each_candidates_learner_statistics(api: Api) -> None:
    api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    with session_scope(api.sf) as s:
        doc = json.loads(json.dumps(run_dict(s, s.get(Run, seeded.run_id))))  # as `rewardsmith run` writes it
    best = doc["best_candidate"]
    assert best["learner"]["stats"]["explained_variance"] == [-0.8, 0.4] and best["learner"]["verdict"] == "reward"
    assert best["trainings"][0]["learner"]["clip_fraction"] == 0.02
