"""`rewardsmith artifacts copy --to s3://...` as an operator runs it (a subprocess configured by environment
variables) against a real S3-compatible server on loopback: every file of the data dir's artifacts lands under the
same key, checked; a second run copies nothing; a file that differs in the bucket is copied again; links are not
followed. Then an API on the bucket serves a run recorded on the local data dir (its key from migration 0008)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

from app.db import session_scope
from app.db.models import Training
from tests.app.api.harness import API, make_api, seed_finished_run
from tests.support.s3 import SECRET, S3Server

ROOT = Path(__file__).resolve().parents[3]


def copy(data: Path, to: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("REWARDSMITH_", "OPENAI_", "AWS_"))}
    clean |= {**env, "REWARDSMITH_DATA_DIR": str(data), "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    clean.pop("REWARDSMITH_ARTIFACTS_URL", None)  # the copy runs before the installation uses the bucket
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "artifacts", "copy", "--to", to, *extra],
        env=clean,
        cwd=data.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


def a_data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    one = data / "artifacts" / "run-1" / "candidate-1" / "training-1" / "attempt-1"
    old = data / "artifacts" / "run-1" / "candidate-2" / "training-2"  # recorded before attempts were numbered
    for folder in (one / "tb", old):
        folder.mkdir(parents=True)
    (one / "policy.zip").write_bytes(b"PK" + os.urandom(20000))
    (one / "result.json").write_text('{"fitness": {"mean": 1.0}}')
    (one / "tb" / "events.out.tfevents.1.h.2.0").write_bytes(b"ev")
    (old / "policy.zip").write_bytes(b"PK" + os.urandom(500))
    (data / "secret_key").write_text(SECRET)
    (old / "video.mp4").symlink_to(data / "secret_key")  # a link a program left: not followed
    return data


@pytest.mark.slow
def test_copy_is_checked_idempotent_and_repairs_what_differs(tmp_path: Path, s3: S3Server) -> None:
    data = a_data_dir(tmp_path)
    bucket = s3.new_bucket()
    env = s3.env(bucket)
    out = copy(data, f"s3://{bucket}/artifacts", env)
    assert out.returncode == 0, out.stderr
    assert "copied 4 files" in out.stdout and "0 already there" in out.stdout
    local = {
        p.relative_to(data / "artifacts").as_posix(): p.read_bytes()
        for p in (data / "artifacts").rglob("*")
        if p.is_file() and not p.is_symlink()
    }
    assert s3.objects(bucket) == {f"artifacts/{k}": len(v) for k, v in local.items()}
    client = s3.client()
    for key, content in local.items():
        head = client.head_object(Bucket=bucket, Key=f"artifacts/{key}")
        assert head["Metadata"]["sha256"] == hashlib.sha256(content).hexdigest()

    again = copy(data, f"s3://{bucket}/artifacts", env)
    assert again.returncode == 0 and "copied 0 files" in again.stdout and "4 already there" in again.stdout

    changed = "artifacts/run-1/candidate-2/training-2/policy.zip"
    client.put_object(Bucket=bucket, Key=changed, Body=b"truncated")  # a copy cut short, or tampered with
    repaired = copy(data, f"s3://{bucket}/artifacts", env, "--verbose")
    assert repaired.returncode == 0 and "copied 1 files" in repaired.stdout
    assert "copied  run-1/candidate-2/training-2/policy.zip" in repaired.stdout
    body = client.get_object(Bucket=bucket, Key=changed)["Body"].read()
    assert body == local["run-1/candidate-2/training-2/policy.zip"]
    assert SECRET not in out.stdout + out.stderr + repaired.stdout + repaired.stderr


@pytest.mark.slow  # four processes, one of them waiting out boto3's retries
def test_copy_says_what_is_wrong(tmp_path: Path, s3: S3Server) -> None:
    data = a_data_dir(tmp_path)
    env = s3.env("unused")
    bad = copy(data, "s3://No_Such/x", env)
    assert bad.returncode == 2 and "--to:" in bad.stderr and "is not a bucket name" in bad.stderr
    missing = copy(data, "s3://no-such-bucket-anywhere/x", env)
    assert missing.returncode == 2 and "NoSuchBucket" in missing.stderr and "run the command again" in missing.stderr
    away = copy(data, "s3://rewardsmith/x", {**env, "AWS_ENDPOINT_URL": "http://127.0.0.1:1"})
    assert away.returncode == 2 and "could not be reached" in away.stderr
    nowhere = copy(tmp_path / "empty", "s3://rewardsmith/x", env)
    assert nowhere.returncode == 2 and "there is no artifacts directory" in nowhere.stderr


@pytest.mark.slow
def test_a_run_recorded_on_a_local_data_dir_is_served_from_the_bucket_after_the_copy(
    db_sf: sessionmaker, tmp_path: Path, s3: S3Server, s3_env: dict[str, str]
) -> None:
    local = make_api(db_sf, tmp_path)  # the installation as it was: files under its data dir
    alice = local.user("alice")
    seeded = seed_finished_run(local, owner="alice")
    with session_scope(db_sf) as s:
        assert s.get(Training, seeded.training_id).stored_files is None  # recorded before uploads were listed
    bucket_url = s3_env["REWARDSMITH_ARTIFACTS_URL"]
    out = copy(local.settings.data_dir, bucket_url, s3_env)
    assert out.returncode == 0, out.stderr

    moved = make_api(db_sf, tmp_path / "elsewhere", artifacts_url=bucket_url, AWS_ENDPOINT_URL=s3.endpoint)
    links = moved.client.get(f"{API}/candidates/{seeded.candidate_id}", headers=alice).json()["artifacts"]
    assert sorted(a["name"] for a in links) == ["policy.zip", "result.json", "reward.py"]
    for link in links:
        r = moved.client.get(link["url"], headers=alice)
        assert r.status_code == 200 and r.content == (seeded.artifacts / link["name"]).read_bytes(), link
