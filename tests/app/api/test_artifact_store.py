"""The API and the dashboard stream a training's files from either artifact store (the data dir's directory, an S3
bucket on a loopback server), under the same authorisation as before; a video is served by byte range (206 with
Content-Range), as a browser's player asks when it seeks. When the bucket is away, a file is 503 and a page still
renders."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

from app.artifacts.keys import join
from app.artifacts.s3 import S3Store
from app.artifacts.transfer import upload
from app.db import session_scope
from app.db.models import Training
from app.web.ranges import RangeNotSatisfiable, byte_range
from tests.app.api.harness import API, Api, Seeded, make_api, seed_finished_run
from tests.app.dashboard.harness import log_in

VIDEO = bytes(range(256)) * 400  # 102,400 bytes standing in for an mp4


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> dict:
    """Settings of the artifact store: none (the data dir's directory) or this test's own bucket."""
    if request.param == "local":
        return {}
    env = request.getfixturevalue("s3_env")
    return {"artifacts_url": env["REWARDSMITH_ARTIFACTS_URL"], "AWS_ENDPOINT_URL": env["AWS_ENDPOINT_URL"]}


def seeded_in_store(api: Api, owner: str) -> Seeded:
    """A finished run whose training's files (a video among them) are in the configured store, and nowhere else."""
    seeded = seed_finished_run(api, owner=owner)
    (seeded.artifacts / "video.mp4").write_bytes(VIDEO)
    (seeded.artifacts / "vecnormalize.pkl").write_bytes(b"\x80\x04normalisation")
    if api.settings.artifacts_url:
        store = S3Store(api.settings.artifacts_url, endpoint=api.settings.artifacts_endpoint_url)
        with session_scope(api.sf) as s:
            key = s.get(Training, seeded.training_id).artifacts_key
        staged = seeded.artifacts.parent / "staged"
        shutil.copytree(seeded.artifacts, staged)
        stored = upload(store, key, staged)
        shutil.rmtree(seeded.artifacts)  # what the API serves comes from the bucket
        with session_scope(api.sf) as s:
            s.get(Training, seeded.training_id).stored_files = stored
    return seeded


@pytest.fixture
def stored_api(db_sf: sessionmaker, tmp_path: Path, backend: dict) -> Api:
    return make_api(db_sf, tmp_path, **backend)


def test_files_download_whole_and_by_range_from_either_store(stored_api: Api) -> None:
    api = stored_api
    alice = api.user("alice")
    seeded = seeded_in_store(api, "alice")
    links = {
        a["name"]: a["url"]
        for a in api.client.get(f"{API}/candidates/{seeded.candidate_id}", headers=alice).json()["artifacts"]
    }
    assert sorted(links) == ["policy.zip", "result.json", "reward.py", "vecnormalize.pkl", "video.mp4"]

    whole = api.client.get(links["video.mp4"], headers=alice)
    assert (whole.status_code, whole.content) == (200, VIDEO)
    assert whole.headers["accept-ranges"] == "bytes" and whole.headers["content-type"] == "video/mp4"
    assert whole.headers["content-length"] == str(len(VIDEO))

    part = api.client.get(links["video.mp4"], headers={**alice, "Range": "bytes=1000-1999"})
    assert (part.status_code, part.content) == (206, VIDEO[1000:2000])
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(VIDEO)}"
    assert part.headers["content-length"] == "1000"
    tail = api.client.get(links["video.mp4"], headers={**alice, "Range": "bytes=-100"})
    assert (tail.status_code, tail.content) == (206, VIDEO[-100:])
    rest = api.client.get(links["video.mp4"], headers={**alice, "Range": "bytes=102000-"})
    assert (rest.status_code, rest.content) == (206, VIDEO[102000:])
    beyond = api.client.get(links["video.mp4"], headers={**alice, "Range": f"bytes={len(VIDEO)}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(VIDEO)}"

    policy = api.client.get(links["policy.zip"], headers=alice)
    assert policy.status_code == 200 and policy.content.startswith(b"PK")

    browser = log_in(api, "alice")  # the dashboard's own route, behind its session: what its <video> plays
    page = browser.client.get(f"/candidates/{seeded.candidate_id}")
    assert f'src="/candidates/{seeded.candidate_id}/artifacts/{seeded.training_id}/video.mp4"' in page.text
    seek = browser.client.get(
        f"/candidates/{seeded.candidate_id}/artifacts/{seeded.training_id}/video.mp4", headers={"Range": "bytes=0-1"}
    )
    assert (seek.status_code, seek.content, seek.headers["content-range"]) == (
        206,
        VIDEO[:2],
        f"bytes 0-1/{len(VIDEO)}",
    )

    bundle = zipfile.ZipFile(
        io.BytesIO(api.client.get(f"{API}/candidates/{seeded.candidate_id}/bundle.zip", headers=alice).content)
    )
    folder = f"rewardsmith-candidate-{seeded.candidate_id}"
    assert bundle.read(f"{folder}/policy.zip") == policy.content
    assert bundle.read(f"{folder}/vecnormalize.pkl") == b"\x80\x04normalisation"


def test_another_users_files_stay_hidden_whatever_the_store(stored_api: Api) -> None:
    api = stored_api
    api.user("alice")
    bob = api.user("bob")
    seeded = seeded_in_store(api, "alice")
    url = f"{API}/candidates/{seeded.candidate_id}/artifacts/{seeded.training_id}/video.mp4"
    for headers in (bob, {**bob, "Range": "bytes=0-10"}):
        r = api.client.get(url, headers=headers)
        assert r.status_code == 404 and VIDEO[:10] not in r.content
    assert api.client.get(url).status_code == 401


def test_a_file_is_503_and_a_page_renders_while_the_bucket_is_away(
    db_sf: sessionmaker, tmp_path: Path, s3_env: dict
) -> None:
    api = make_api(
        db_sf, tmp_path, artifacts_url=s3_env["REWARDSMITH_ARTIFACTS_URL"], AWS_ENDPOINT_URL=s3_env["AWS_ENDPOINT_URL"]
    )
    alice = api.user("alice")
    seeded = seeded_in_store(api, "alice")
    away = make_api(
        db_sf, tmp_path, artifacts_url=s3_env["REWARDSMITH_ARTIFACTS_URL"], AWS_ENDPOINT_URL="http://127.0.0.1:1"
    )
    away.tokens = api.tokens
    r = away.client.get(
        f"{API}/candidates/{seeded.candidate_id}/artifacts/{seeded.training_id}/video.mp4", headers=alice
    )
    assert r.status_code == 503 and "could not be reached" in r.json()["error"]["message"]
    page = away.client.get(f"{API}/candidates/{seeded.candidate_id}", headers=alice)
    assert page.status_code == 200 and "video.mp4" in {a["name"] for a in page.json()["artifacts"]}  # from the list


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 10)),
        ("bytes=90-", (90, 100)),
        ("bytes=-5", (95, 100)),
        ("bytes=-500", (0, 100)),
        ("bytes=50-5000", (50, 100)),
        ("bytes=9-3", None),  # not a valid range: the whole file
        ("bytes=0-1,5-9", None),  # several ranges: the whole file, as the RFC allows
        ("items=0-9", None),
        ("bytes=-", None),
    ],
)
def test_byte_ranges(header: str | None, expected: tuple[int, int] | None) -> None:
    assert byte_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=-0", "bytes=500-600"])
def test_unsatisfiable_byte_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        byte_range(header, 100)


def test_a_key_joins_only_keys() -> None:
    assert join("run-1/candidate-2/training-3", "video.mp4") == "run-1/candidate-2/training-3/video.mp4"
