"""GET /healthz (the process answers) and GET /readyz (the database, the broker and the artifact store answer;
503 otherwise). Anonymous callers learn only ready or not; what is down and why (driver, host, port) needs a valid
API token."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

from app.db import make_engine
from tests.app.api.harness import API, Api, make_api


@pytest.mark.parametrize("prefix", ["", API])
def test_healthz_answers_without_a_token(api: Api, prefix: str) -> None:
    r = api.client.get(f"{prefix}/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})


@pytest.mark.parametrize("prefix", ["", API])
def test_readyz_is_200_when_database_and_broker_answer(api: Api, prefix: str) -> None:
    alice = api.user("alice")
    r = api.client.get(f"{prefix}/readyz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    r = api.client.get(f"{prefix}/readyz", headers=alice)
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok", "artifacts": "ok"}}


DOWN = "unreachable: ConnectionRefusedError: [Errno 111] Connection refused (redis.internal:6379)"


def test_readyz_is_503_and_says_why_only_to_a_caller_with_a_token(db_sf: sessionmaker, tmp_path: Path) -> None:
    api = make_api(db_sf, tmp_path, broker_check=lambda: DOWN)
    alice = api.user("alice")
    for prefix in ("", API):
        for headers in ({}, {"Authorization": "Bearer rs_not-a-token"}, {"Authorization": "Basic YWxpY2U6eA=="}):
            r = api.client.get(f"{prefix}/readyz", headers=headers)
            assert (r.status_code, r.json()) == (503, {"status": "unavailable"}), headers
            assert "redis" not in r.text and "6379" not in r.text
        r = api.client.get(f"{prefix}/readyz", headers=alice)
        assert r.status_code == 503
        assert r.json() == {"status": "unavailable", "checks": {"database": "ok", "broker": DOWN, "artifacts": "ok"}}
    assert api.client.get("/healthz").status_code == 200  # alive, just not ready


def test_readyz_is_503_and_says_why_when_the_artifact_store_is_unreachable(
    db_sf: sessionmaker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-not-to-be-shown")
    api = make_api(db_sf, tmp_path, artifacts_url="s3://rewardsmith/artifacts", AWS_ENDPOINT_URL="http://127.0.0.1:1")
    assert api.client.get("/readyz").json() == {"status": "unavailable"}
    r = api.client.get("/readyz", headers=api.user("alice"))
    assert r.status_code == 503
    checks = r.json()["checks"]
    assert (checks["database"], checks["broker"]) == ("ok", "ok")
    assert checks["artifacts"].startswith(
        "unreachable: the artifact store s3://rewardsmith/artifacts at http://127.0.0.1:1"
    )
    assert "test-secret-not-to-be-shown" not in r.text


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gone = sessionmaker(
        bind=make_engine("postgresql+psycopg://postgres@127.0.0.1:1/nothing", connect_args={"connect_timeout": 2})
    )
    api = make_api(gone, tmp_path)
    with caplog.at_level("WARNING", logger="app.api.routes.health"):
        r = api.client.get("/readyz", headers={"Authorization": "Bearer rs_cannot-be-checked"})
    assert (r.status_code, r.json()) == (503, {"status": "unavailable"}), "no token can be checked: no details"
    assert "127.0.0.1" not in r.text
    assert "database: unreachable: OperationalError" in caplog.text, "the details go to the server's log"


def test_the_real_broker_check_reports_an_unreachable_broker(tmp_path: Path) -> None:
    """The check create_app uses by default, against a Redis port nothing listens on."""
    from celery import Celery

    from app.jobs.celery_app import broker_reachable, configure
    from tests.support.db import make_settings

    probe = configure(Celery("probe"), make_settings(tmp_path, broker_url="redis://127.0.0.1:1/0"))
    assert broker_reachable(timeout=1.0, app=probe).startswith("unreachable: ")


@pytest.mark.redis
def test_the_real_broker_check_says_ok_for_a_running_redis(tmp_path: Path) -> None:
    from celery import Celery

    from app.jobs.celery_app import broker_reachable, configure
    from tests.support.db import REDIS_URL, make_settings

    probe = configure(Celery("probe"), make_settings(tmp_path, broker_url=f"{REDIS_URL}/0"))
    assert broker_reachable(timeout=2.0, app=probe) == "ok"
