"""A search whose artifacts go to an S3 bucket (a real S3-compatible server on loopback): the worker uploads each
training's files after its sandbox ended, and downloads the policy a continued training starts from; the worker's
disk keeps nothing; the sandbox never sees a storage credential, and no log line holds the secret. A bucket that
cannot be reached hands the training back and fails the run saying why, without losing what was stored; resumed once
the bucket answers, the run finishes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

from app.db import session_scope
from app.db.models import Run
from app.search.machine.local import LocalRun
from tests.app.search.harness import Search
from tests.support.s3 import SECRET, Gate, S3Server
from tests.support.tasks import tiny_spec

pytestmark = pytest.mark.slow

TRAIN = {"eval_episodes": 1, "episode_steps": 100, "checkpoints": 2, "ppo": {"n_steps": 128}}
"""8 envs × 128 steps: one PPO rollout is 1,024 steps."""


def bucket_of(env: dict[str, str]) -> str:
    return env["REWARDSMITH_ARTIFACTS_URL"].removeprefix("s3://").split("/")[0]


def test_a_search_keeps_its_files_in_the_bucket_and_a_continued_training_starts_from_the_stored_policy(
    sqlite_sf: sessionmaker, tmp_path: Path, s3: S3Server, s3_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # botocore included: every request it makes is logged
    search = Search(
        sqlite_sf, tmp_path, artifacts_url=s3_env["REWARDSMITH_ARTIFACTS_URL"], AWS_ENDPOINT_URL=s3.endpoint
    )
    spec = tiny_spec(
        samples=2,
        timesteps=2048,
        options={"successive_halving": True, "screen_fraction": 0.5, "train": TRAIN},
    )
    run_id, status = search.run(spec, timeout=400)
    assert status == "succeeded", search.doc(run_id)["error"]

    trainings = search.trainings(run_id)
    assert [t.purpose for t in trainings] == ["screen", "screen", "full"]
    objects = s3.objects(bucket_of(s3_env))
    for t in trainings:
        assert t.status == "ok", t.error
        assert t.artifacts_key == f"run-{run_id}/candidate-{t.candidate_id}/training-{t.id}/attempt-1"
        assert {"policy.zip", "vecnormalize.pkl", "result.json", "reward.py"} <= set(t.stored_files)
        assert {f"artifacts/{t.artifacts_key}/{name}": size for name, size in t.stored_files.items()}.items() <= (
            objects.items()
        )
        environment = t.result["isolation"]["environment"]
        assert "PATH" in environment  # the list is real
        assert not [name for name in environment if name.startswith(("AWS_", "REWARDSMITH_"))]
    [full] = [t for t in trainings if t.purpose == "full"]
    screen = next(t for t in trainings if t.id == full.resume_from_id)
    assert full.result["resumed_from_timesteps"] == screen.result["timesteps"] == 1024  # the downloaded policy
    assert full.result["timesteps"] == 2048

    data = search.settings().data_dir
    assert not (data / "artifacts").exists()  # nothing went to the local store
    assert [p for p in (data / "work").rglob("*") if p.is_file()] == []  # nor stayed on the worker's disk
    assert s3.endpoint in caplog.text  # the log holds botocore's requests: it is not empty
    assert SECRET not in caplog.text
    with session_scope(sqlite_sf) as s:
        assert SECRET not in json.dumps([t.result for t in s.get(Run, run_id).candidates[0].trainings])


def test_an_unreachable_bucket_fails_the_run_saying_why_and_resuming_finishes_it_without_losing_anything(
    sqlite_sf: sessionmaker, tmp_path: Path, s3: S3Server, s3_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    gate = Gate(s3.endpoint)  # the worker reaches the bucket through it: closed, the bucket is away, not gone
    gate.open()
    search = Search(
        sqlite_sf, tmp_path, artifacts_url=s3_env["REWARDSMITH_ARTIFACTS_URL"], AWS_ENDPOINT_URL=gate.endpoint
    )
    spec = tiny_spec(iterations=2, timesteps=1024, options={"train": TRAIN})

    def cut_after_the_first_training(local: LocalRun) -> None:
        done = [t for t in search.trainings(local.run_id) if t.status == "ok"]
        if done:
            gate.close()

    try:
        local = search.start(spec, timeout=400, on_tick=cut_after_the_first_training)
        run_id = local.run_id
        doc = search.doc(run_id)
        assert doc["status"] == "failed", doc
        assert f"the artifact store {s3_env['REWARDSMITH_ARTIFACTS_URL']} at {gate.endpoint}" in doc["error"]
        assert "could not be reached" in doc["error"] and f"/api/v1/runs/{run_id}/resume" in doc["error"]
        first, second = search.trainings(run_id)
        assert (first.status, first.attempts) == ("ok", 1)
        assert (second.status, second.attempts, second.artifacts_key) == ("queued", 0, None)  # handed back
        stored = {f"artifacts/{first.artifacts_key}/{n}": size for n, size in first.stored_files.items()}
        assert stored.items() <= s3.objects(bucket_of(s3_env)).items()  # nothing stored was lost

        gate.open()
        assert search.resume(run_id, timeout=400) == "succeeded"
    finally:
        gate.close()
    again_first, again_second = search.trainings(run_id)
    assert (again_first.artifacts_key, again_first.stored_files) == (first.artifacts_key, first.stored_files)
    assert (again_second.status, again_second.attempts) == ("ok", 1)
    assert again_second.artifacts_key.endswith(f"training-{again_second.id}/attempt-1")
    assert SECRET not in caplog.text
