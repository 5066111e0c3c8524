"""End to end across "hosts" that share only the database (PostgreSQL), the broker (Redis) and the bucket (a real
S3-compatible server on loopback): `rewardsmith serve --no-embedded-worker` and `rewardsmith worker` run as separate
processes with separate data dirs. A task runs (offline designer, tiny budget) and its files, video included, download
through the API by byte range; no storage secret reaches a sandbox or any log. A worker that cannot reach the bucket
retries, backing off, then fails the run saying why; nothing stored is lost, and a worker that reaches the bucket
finishes the run once it is resumed."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from celery import Celery
from sqlalchemy import create_engine

from tests.app.jobs.test_celery_e2e import CLI, ROOT, Processes, Stack, redis_db  # noqa: F401 (a fixture)
from tests.support.db import fresh_postgres_database
from tests.support.s3 import SECRET, S3Server

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(600)]

TINY = {
    "env": "HalfCheetah-v5",
    "designer": "offline",
    "iterations": 1,
    "samples": 1,
    "timesteps": 2048,
    "options": {
        "final_seeds": 0,
        "baselines": False,
        "train": {"eval_episodes": 1, "episode_steps": 100, "checkpoints": 2, "video": True, "video_steps": 30},
    },
}


@dataclass
class Hosts:
    """The API's stack (its own data dir) and what a worker on another host is started with (another data dir)."""

    api: Stack
    worker_env: dict[str, str]
    bucket: str
    s3: S3Server
    stored: dict[str, str] | None = None
    """The first run's files (name → URL), once it has them."""

    def worker(self, **env: str) -> subprocess.Popen:
        """`rewardsmith worker` on the "other host", with ``env`` changed; returns once it answers a ping."""
        other = Stack({**self.worker_env, **env}, self.api.processes, None, self.api.db, "", self.api.control)  # type: ignore[arg-type]
        return other.start_worker()

    def logs(self) -> str:
        return "\n".join(log.read_text(errors="replace") for _, log in self.api.processes.started)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory, redis_db: str, s3: S3Server) -> Iterator[Hosts]:  # noqa: F811
    logs = tmp_path_factory.mktemp("storage-e2e")
    processes = Processes(logs)
    bucket = s3.new_bucket()
    with fresh_postgres_database("rs_storage") as db_url:
        shared = {k: v for k, v in os.environ.items() if not k.startswith(("REWARDSMITH_", "OPENAI_", "AWS_"))}
        shared.update(
            {
                "PYTHONPATH": str(ROOT),
                "MUJOCO_GL": "egl",
                "REWARDSMITH_DATABASE_URL": db_url,
                "REWARDSMITH_BROKER_URL": redis_db,
                "REWARDSMITH_TRAINING_LEASE_SECONDS": "8",
                "REWARDSMITH_TRAINING_HEARTBEAT_SECONDS": "2",
                "REWARDSMITH_SWEEP_SECONDS": "3",
                "REWARDSMITH_SANDBOX_WALL_SECONDS": "120",
                "REWARDSMITH_BROKER_VISIBILITY_TIMEOUT": "300",
                **s3.env(bucket),
            }
        )
        api_env = {**shared, "REWARDSMITH_DATA_DIR": str(logs / "api-host")}
        worker_env = {**shared, "REWARDSMITH_DATA_DIR": str(logs / "worker-host")}
        out = subprocess.run(
            [*CLI, "users", "create", "tester"], env=api_env, cwd=logs, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        db = create_engine(db_url)
        probe = Celery("storage-probe", broker=redis_db)
        token = out.stdout.strip().splitlines()[-1].split()[-1]
        stack = Stack(api_env, processes, None, db, token=token, control=probe.control)  # type: ignore[arg-type]
        try:
            stack.start_api()
            yield Hosts(stack, worker_env, bucket, s3)
        finally:
            processes.kill_all()
            probe.close()
            db.dispose()


def test_a_task_runs_on_a_worker_that_shares_only_the_database_broker_and_bucket(hosts: Hosts) -> None:
    api = hosts.api
    worker = hosts.worker()
    task = api.post("/tasks", {**TINY, "description": "make the cheetah run forward"})
    run = api.wait_for_run(task["run_id"])
    best = api.get(f"/candidates/{run['best_candidate_id']}")
    links = {a["name"]: a["url"] for a in best["artifacts"]}
    assert {"policy.zip", "vecnormalize.pkl", "result.json", "reward.py", "video.mp4"} <= set(links)
    [training] = api.trainings(task["run_id"])
    objects = hosts.s3.objects(hosts.bucket)

    policy = httpx.get(f"{api.url}{links['policy.zip']}", headers=api.headers, timeout=30)
    assert policy.status_code == 200 and policy.content[:2] == b"PK"
    assert objects[f"artifacts/{training.artifacts_key}/policy.zip"] == len(policy.content)
    video_size = objects[f"artifacts/{training.artifacts_key}/video.mp4"]
    part = httpx.get(f"{api.url}{links['video.mp4']}", headers={**api.headers, "Range": "bytes=0-1023"}, timeout=30)
    assert (part.status_code, len(part.content)) == (206, 1024)
    assert part.headers["content-range"] == f"bytes 0-1023/{video_size}" and part.content[4:8] == b"ftyp"

    result = api.get(f"/candidates/{best['id']}/artifacts/{training.id}/result.json")  # JSON, parsed
    environment = result["isolation"]["environment"]
    assert "PATH" in environment and not [n for n in environment if n.startswith(("AWS_", "REWARDSMITH_"))]

    api_host, worker_host = Path(api.env["REWARDSMITH_DATA_DIR"]), Path(hosts.worker_env["REWARDSMITH_DATA_DIR"])
    assert not (api_host / "artifacts").exists() and not (worker_host / "artifacts").exists()
    assert [p for p in (worker_host / "work").rglob("*") if p.is_file()] == []  # nothing left on the worker's disk
    hosts.stored = links
    api.processes.stop(worker)
    assert SECRET not in hosts.logs()


def test_a_worker_that_cannot_reach_the_bucket_retries_then_fails_the_run_and_loses_nothing(hosts: Hosts) -> None:
    api = hosts.api
    if hosts.stored is None:  # the first test ran in another test process (pytest-xdist): store a run's files here
        test_a_task_runs_on_a_worker_that_shares_only_the_database_broker_and_bucket(hosts)
    for proc, log in api.processes.started:  # the earlier test's worker: this one must take the training
        if log.name.startswith("worker-"):
            api.processes.stop(proc)
    cut_off = hosts.worker(
        AWS_ENDPOINT_URL="http://127.0.0.1:1",  # nothing listens there: the bucket is out of this host's reach
        REWARDSMITH_ARTIFACTS_RETRIES="2",
        REWARDSMITH_ARTIFACTS_RETRY_SECONDS="1",
    )
    task = api.post("/tasks", {**TINY, "description": "make the cheetah run forward, again"})
    run_id = task["run_id"]

    def failed() -> dict | None:
        run = api.get(f"/runs/{run_id}")
        return run if run["status"] == "failed" else None

    run = api.wait_for(failed, 180, f"run {run_id} to fail for want of its bucket")
    assert "the artifact store s3://" in run["error"] and "at http://127.0.0.1:1" in run["error"]
    assert "could not be reached" in run["error"] and f"/api/v1/runs/{run_id}/resume" in run["error"]
    [waiting] = api.trainings(run_id)
    assert waiting.status in ("queued", "cancelled") and (waiting.attempts, waiting.artifacts_key) == (0, None)
    tries = hosts.logs().count(f"training {waiting.id}: the artifact store")
    assert tries >= 3, f"the first try and 2 retries (and any the sweep sent), each handed back; saw {tries}"

    assert hosts.stored, "the first test stores a run's files"
    for name, url in hosts.stored.items():  # what was stored before is all still there
        assert httpx.get(f"{api.url}{url}", headers=api.headers, timeout=30).status_code == 200, name

    api.processes.stop(cut_off)
    hosts.worker()  # a worker that reaches the bucket
    api.post(f"/runs/{run_id}/resume")
    api.wait_for_run(run_id)
    [trained] = api.trainings(run_id)
    assert (trained.status, trained.attempts) == ("ok", 1)
    assert SECRET not in hosts.logs()
