"""Both artifact stores behave alike: the data dir's directory and an S3 bucket (a real S3-compatible server on
loopback, moto's server mode). What a sandbox left is hostile: uploads skip symlinks and odd names; reads never
follow a link out of the directory store. An unreachable bucket is ``StoreUnavailable``, naming the store and never
the secret."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from app.artifacts.base import ArtifactStore, StoreUnavailable, read_bytes, sha256_of
from app.artifacts.keys import BadKey
from app.artifacts.local import LocalStore
from app.artifacts.s3 import S3Store
from app.artifacts.transfer import fetch, prune, upload
from tests.support.s3 import SECRET, S3Server

KEY = "run-1/candidate-2/training-3/attempt-1"


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return LocalStore(tmp_path / "artifacts")
    env = request.getfixturevalue("s3_env")
    return S3Store(env["REWARDSMITH_ARTIFACTS_URL"], endpoint=env["AWS_ENDPOINT_URL"])


def training_files(folder: Path) -> Path:
    """What a training leaves: a few files and a TensorBoard folder."""
    (folder / "tb" / "PPO_1").mkdir(parents=True)
    (folder / "policy.zip").write_bytes(b"PK" + bytes(range(256)) * 40)
    (folder / "vecnormalize.pkl").write_bytes(b"\x80\x04normalisation")
    (folder / "result.json").write_text('{"fitness": {"mean": 1.5}}')
    (folder / "tb" / "PPO_1" / "events.out.tfevents.1.host.2.0").write_bytes(b"events")
    return folder


def test_upload_then_list_stat_read_and_fetch(store: ArtifactStore, tmp_path: Path) -> None:
    out = training_files(tmp_path / "out")
    policy = (out / "policy.zip").read_bytes()
    stored = upload(store, KEY, out)
    assert stored == {
        "policy.zip": len(policy),
        "vecnormalize.pkl": 15,
        "result.json": 26,
        "tb/PPO_1/events.out.tfevents.1.host.2.0": 6,
    }
    assert store.list(KEY) == stored
    assert store.list("run-1/candidate-2") == {f"training-3/attempt-1/{k}": v for k, v in stored.items()}
    assert store.list("run-9") == {}
    assert store.stat(f"{KEY}/policy.zip").size == len(policy)
    assert store.stat(f"{KEY}/video.mp4") is None
    assert b"".join(store.read(f"{KEY}/policy.zip", 0, len(policy))) == policy
    assert b"".join(store.read(f"{KEY}/policy.zip", 100, 1100)) == policy[100:1100]
    assert read_bytes(store, f"{KEY}/result.json", limit=100) == b'{"fitness": {"mean": 1.5}}'
    with pytest.raises(ValueError, match="over the 10 bytes"):
        read_bytes(store, f"{KEY}/result.json", limit=10)
    with pytest.raises(FileNotFoundError):
        store.read(f"{KEY}/video.mp4", 0, 10)

    got = fetch(store, KEY, tmp_path / "inputs" / "resume_from", names=("policy.zip", "vecnormalize.pkl", "gone"))
    assert sorted(p.name for p in got.iterdir()) == ["policy.zip", "vecnormalize.pkl"]
    assert (got / "policy.zip").read_bytes() == policy
    everything = fetch(store, KEY, tmp_path / "all")
    assert (everything / "tb" / "PPO_1" / "events.out.tfevents.1.host.2.0").read_bytes() == b"events"


def test_pruning_keeps_the_recorded_attempt_and_removes_the_rest(store: ArtifactStore, tmp_path: Path) -> None:
    training = KEY.rsplit("/", 1)[0]
    upload(store, f"{training}/attempt-1", training_files(tmp_path / "a1"))  # killed between upload and record
    upload(store, f"{training}/attempt-2", training_files(tmp_path / "a2"))  # the recorded one
    upload(store, f"{training}/resume", training_files(tmp_path / "r"))  # a checkpoint for a next attempt
    upload(store, "run-1/candidate-2/training-4/attempt-1", training_files(tmp_path / "other"))
    assert prune(store, training, "attempt-2") == 8
    assert set(store.list(training)) == {f"attempt-2/{n}" for n in store.list(f"{training}/attempt-2")}
    assert len(store.list("run-1/candidate-2/training-4")) == 4  # another training is not touched
    store.delete(f"{training}/attempt-2/no-such-file")  # nothing there: nothing to do
    assert prune(store, f"{training}/attempt-2") == 4 and store.list(training) == {}


def test_the_directory_store_removes_the_folders_it_emptied_and_never_a_link_target(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "artifacts")
    upload(store, KEY, training_files(tmp_path / "out"))
    secret = tmp_path / "secret_key"
    secret.write_text("keep me")
    (tmp_path / "artifacts" / KEY / "planted").symlink_to(secret)
    store.delete(f"{KEY}/planted")  # a link is not a file of the store
    assert secret.read_text() == "keep me"
    assert prune(store, "run-1") == 4
    assert sorted(p.name for p in (tmp_path / "artifacts" / KEY).iterdir()) == ["planted"]
    assert not (tmp_path / "artifacts" / KEY / "tb").exists()  # emptied, so removed
    assert (tmp_path / "artifacts").is_dir()  # the store's own root stays


def test_keys_that_are_not_keys_are_refused(store: ArtifactStore, tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    for bad in ("/etc/passwd", "../up", "a/../../b", "a//b", "a/./b", "", "name with space"):
        with pytest.raises(BadKey):
            store.put_file(bad, f)
        with pytest.raises(BadKey):
            store.stat(bad)


def test_an_upload_skips_symlinks_and_odd_names_left_by_a_sandbox(
    store: ArtifactStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "credentials"
    secret.write_text(SECRET)
    out = training_files(tmp_path / "out")
    (out / "video.mp4").symlink_to(secret)  # a link to a file the worker can read
    (out / "tb" / "linked").symlink_to(tmp_path)  # a link to a folder
    (out / "bad name;rm -rf").write_text("x")
    (out / ".hidden").write_text("x")
    with caplog.at_level(logging.WARNING):
        stored = upload(store, KEY, out)
    assert set(stored) == {"policy.zip", "vecnormalize.pkl", "result.json", "tb/PPO_1/events.out.tfevents.1.host.2.0"}
    assert set(store.list(KEY)) == set(stored)
    assert "not stored: 'video.mp4'" in caplog.text


def test_the_directory_store_never_follows_a_symlink(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "artifacts")
    secret = tmp_path / "secret_key"
    secret.write_text("do-not-serve")
    folder = tmp_path / "artifacts" / KEY
    folder.mkdir(parents=True)
    (folder / "video.mp4").symlink_to(secret)
    (tmp_path / "artifacts" / "run-2").symlink_to(folder)  # a planted folder link
    (folder / "policy.zip").write_bytes(b"PK")
    assert store.stat(f"{KEY}/video.mp4") is None
    assert store.stat("run-2/policy.zip") is None
    assert store.list(KEY) == {"policy.zip": 2}
    assert store.list("run-2") == {}
    with pytest.raises(FileNotFoundError):
        store.read(f"{KEY}/video.mp4", 0, 5)


def test_a_bucket_keeps_the_sha256_of_what_it_stored(s3: S3Server, s3_env: dict[str, str], tmp_path: Path) -> None:
    store = S3Store(s3_env["REWARDSMITH_ARTIFACTS_URL"], endpoint=s3_env["AWS_ENDPOINT_URL"])
    out = training_files(tmp_path / "out")
    digest = sha256_of(out / "policy.zip")
    upload(store, KEY, out)
    assert store.stat(f"{KEY}/policy.zip").sha256 == digest
    bucket = s3_env["REWARDSMITH_ARTIFACTS_URL"].removeprefix("s3://").split("/")[0]
    assert f"artifacts/{KEY}/policy.zip" in s3.objects(bucket)  # under the URL's prefix


def test_an_unreachable_bucket_is_store_unavailable_and_names_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "rs-test-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    store = S3Store("s3://rewardsmith/artifacts", endpoint="http://127.0.0.1:1", connect_timeout=1)
    f = tmp_path / "policy.zip"
    f.write_bytes(b"PK")
    for call in (
        lambda: store.put_file(f"{KEY}/policy.zip", f),
        lambda: store.stat(f"{KEY}/policy.zip"),
        lambda: store.list(KEY),
        lambda: fetch(store, KEY, tmp_path / "in", names=("policy.zip",)),
        lambda: store.delete(f"{KEY}/policy.zip"),
    ):
        with pytest.raises(StoreUnavailable) as e:
            call()
        assert "s3://rewardsmith/artifacts at http://127.0.0.1:1" in e.value.message
        assert "could not be reached" in e.value.message and SECRET not in e.value.message
    assert store.check().startswith("unreachable: ")
    assert f.exists()  # nothing local was given up


def test_a_bucket_that_does_not_exist_says_so(s3: S3Server, s3_env: dict[str, str]) -> None:
    store = S3Store("s3://no-such-bucket-here/x", endpoint=s3_env["AWS_ENDPOINT_URL"])
    with pytest.raises(StoreUnavailable, match="NoSuchBucket"):
        store.list("run-1")
    assert "NoSuchBucket" in store.check() or "404" in store.check()
