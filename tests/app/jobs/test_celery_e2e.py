"""End to end with real processes: `rewardsmith serve --no-embedded-worker` (the API, as compose runs it) and
`rewardsmith worker` (a real Celery worker) on Redis and PostgreSQL, the LLM a loopback server replaying scripted
answers. A tiny task runs to 'succeeded'; a worker killed with SIGKILL mid-training is replaced and the run still
completes (the sweep re-dispatches the training once its heartbeat is stale); a restarted API has lost nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from celery import Celery
from celery.app.control import Control
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine

from app.db.models import Training
from tests.support.db import REDIS_URL, fresh_postgres_database
from tests.support.fake_openai import FakeOpenAI
from tests.support.fixtures import load_fixture
from tests.support.server import free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(420)]

ROOT = Path(__file__).resolve().parents[3]
CLI = [sys.executable, "-m", "app.cli"]
HEARTBEAT_SECONDS, LEASE_SECONDS = 2, 8
"""A running training beats every 2 s; one whose last heartbeat is older than 8 s is taken to be orphaned."""
TINY = {
    "env": "HalfCheetah-v5",
    "designer": "llm",
    "iterations": 1,
    "timesteps": 2048,
    "options": {
        "final_seeds": 0,
        "baselines": False,
        "train": {"eval_episodes": 1, "episode_steps": 100, "checkpoints": 2},
    },
}


# ------------------------------------------------------------------------------------------------- processes


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, including those in sessions of their own (the training sandbox calls setsid)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class Processes:
    """The processes this module starts, each in its own process group, logged to a file; all killed at the end."""

    logs: Path
    started: list[tuple[subprocess.Popen, Path]] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = self.logs / f"{name}-{len(self.started)}.log"
        proc = subprocess.Popen(
            argv, env=env, cwd=self.logs, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
        )
        self.started.append((proc, log))
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL to the process group, and to every descendant that left it."""
        below = descendants(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in below:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self, proc: subprocess.Popen, timeout: float = 20) -> None:
        """SIGTERM to the group; SIGKILL if it has not ended within ``timeout``."""
        if proc.poll() is None:
            below = descendants(proc.pid)
            os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout)
            for pid in below:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            self.kill(proc)

    def tails(self, chars: int = 2500) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-chars:]}" for _, log in self.started)

    def kill_all(self) -> None:
        for proc, _ in self.started:
            if proc.poll() is None:
                self.kill(proc)


# ---------------------------------------------------------------------------------------------------- stack


@dataclass
class Stack:
    env: dict[str, str]
    processes: Processes
    llm: FakeOpenAI
    db: Engine
    token: str
    control: Control
    api_proc: subprocess.Popen | None = None
    url: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def start_api(self) -> None:
        port = free_port()
        self.api_proc = self.processes.start(
            "api", [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-embedded-worker"], self.env
        )
        self.url = f"http://127.0.0.1:{port}"
        self.wait_for(lambda: self._ready(), 90, "the API to answer /readyz with 200")

    def _ready(self) -> bool:
        assert self.api_proc.poll() is None, f"rewardsmith serve exited:\n{self.processes.tails()}"
        try:
            return httpx.get(f"{self.url}/readyz", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False

    def start_worker(self) -> subprocess.Popen:
        """`rewardsmith worker`; returns once it answers a ping over the broker."""
        proc = self.processes.start("worker", [*CLI, "worker", "--queues", "llm,train", "--concurrency", "2"], self.env)
        known = {name for reply in self.control.ping(timeout=0.5) for name in reply}

        def answers() -> bool:
            assert proc.poll() is None, f"the worker exited:\n{self.processes.tails()}"
            return bool({name for reply in self.control.ping(timeout=1.0) for name in reply} - known)

        self.wait_for(answers, 90, "the Celery worker to answer a ping")
        return proc

    def get(self, path: str) -> Any:
        r = httpx.get(f"{self.url}/api/v1{path}", headers=self.headers, timeout=30)
        assert r.status_code == 200, (path, r.status_code, r.text)
        return r.json() if r.headers["content-type"].startswith("application/json") else r.content

    def post(self, path: str, body: dict | None = None) -> dict:
        r = httpx.post(f"{self.url}/api/v1{path}", headers=self.headers, json=body, timeout=30)
        assert r.status_code in (200, 201), (path, r.status_code, r.text)
        return r.json()

    def wait_for(self, predicate: Callable[[], Any], seconds: float, what: str, every: float = 0.5) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(every)
        raise AssertionError(f"gave up after {seconds:.0f} s waiting for {what}\n{self.processes.tails()}")

    def wait_for_run(self, run_id: int, seconds: float = 240) -> dict:
        def finished() -> dict | None:
            run = self.get(f"/runs/{run_id}")
            assert run["status"] not in ("failed", "cancelled"), f"run {run_id} ended {run}\n{self.processes.tails()}"
            return run if run["status"] == "succeeded" else None

        return self.wait_for(finished, seconds, f"run {run_id} to succeed", every=1.0)

    def trainings(self, run_id: int) -> list[Any]:
        """The run's trainings as rows, read from the database directly."""
        with self.db.connect() as conn:
            return list(conn.execute(select(Training).where(Training.run_id == run_id).order_by(Training.id)))


CLAIM = "rewardsmith-e2e-claim"
"""A key that marks a Redis database as taken by one test run (several runs may share this Redis)."""


@pytest.fixture(scope="module")
def redis_db() -> Iterator[str]:
    """A Redis database of this module's own: the first of 15 down to 8 that is empty and that this run claims
    atomically (SET NX), so two runs at once never share one; emptied of everything but the claim before and after."""
    for number in range(15, 7, -1):
        client = redis.Redis.from_url(f"{REDIS_URL}/{number}")
        if client.dbsize() == 0 and client.set(CLAIM, os.getpid(), nx=True, ex=1800):
            break
        client.close()
    else:
        pytest.fail("no free Redis database among 8-15 for the end-to-end test")
    try:
        yield f"{REDIS_URL}/{number}"
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_db: str) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("e2e")
    processes = Processes(logs)
    with fresh_postgres_database("rs_e2e") as db_url, FakeOpenAI(default=load_fixture("cheetah_forward_v2")) as llm:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REWARDSMITH_", "OPENAI_"))}
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                "MUJOCO_GL": "egl",
                "REWARDSMITH_DATABASE_URL": db_url,
                "REWARDSMITH_BROKER_URL": redis_db,
                "REWARDSMITH_DATA_DIR": str(logs / "data"),
                "OPENAI_BASE_URL": llm.base_url,
                "OPENAI_API_KEY": "sk-test",
                "REWARDSMITH_LLM_MODEL": "fake-model",
                "REWARDSMITH_LLM_BACKOFF_SECONDS": "0.05",
                "REWARDSMITH_TRAINING_LEASE_SECONDS": str(LEASE_SECONDS),
                "REWARDSMITH_TRAINING_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
                "REWARDSMITH_SWEEP_SECONDS": "3",
                # Redis hands an unacknowledged message to another worker after the visibility timeout, which must
                # exceed the longest training (sandbox limit + 120 s); recovery here comes from the sweep, well before.
                "REWARDSMITH_SANDBOX_WALL_SECONDS": "120",
                "REWARDSMITH_BROKER_VISIBILITY_TIMEOUT": "300",
            }
        )
        out = subprocess.run(
            [*CLI, "users", "create", "tester"], env=env, cwd=logs, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        db = create_engine(db_url)
        probe = Celery("e2e-probe", broker=redis_db)
        s = Stack(env, processes, llm, db, token=out.stdout.strip().splitlines()[-1].split()[-1], control=probe.control)
        try:
            s.start_api()
            yield s
        finally:
            processes.kill_all()
            probe.close()
            db.dispose()


# ---------------------------------------------------------------------------------------------------- tests


def test_a_task_runs_to_success_and_survives_an_api_restart(stack: Stack) -> None:
    worker = stack.start_worker()
    stack.llm.script([load_fixture("cheetah_forward"), load_fixture("cheetah_helpers")])
    task = stack.post("/tasks", {**TINY, "samples": 2, "description": "make the cheetah run forward"})
    assert task["status"] == "queued" and task["designer"] == "llm"

    run = stack.wait_for_run(task["run_id"])
    assert run["best_candidate_id"] is not None and isinstance(run["best_fitness"], float)
    assert run["progress"]["trainings_done"] == run["progress"]["trainings_total"] == 2
    assert run["progress"]["candidates"] == {"trained": 2}
    assert run["usage"]["requests"] >= 1 and run["usage"]["total_tokens"] > 0
    assert run["usage"]["timesteps_trained"] == 2 * 2048
    design = stack.llm.requests[0]
    assert design["model"] == "fake-model" and design["n"] == 2

    candidates = stack.get(f"/runs/{task['run_id']}/candidates")
    assert [c["status"] for c in candidates] == ["trained", "trained"]
    best = stack.get(f"/candidates/{run['best_candidate_id']}")
    assert "def compute_reward" in best["code"] and best["trainings"][0]["status"] == "ok"
    names = {a["name"]: a["url"] for a in best["artifacts"]}
    assert {"policy.zip", "vecnormalize.pkl", "result.json", "reward.py"} <= set(names)
    policy = httpx.get(f"{stack.url}{names['policy.zip']}", headers=stack.headers, timeout=30)
    assert policy.status_code == 200 and policy.content[:2] == b"PK"  # SB3's zip, served as bytes

    stack.processes.stop(worker)  # the next test kills its own worker; this one ends gracefully
    before = {
        "run": stack.get(f"/runs/{task['run_id']}"),
        "task": stack.get(f"/tasks/{task['id']}"),
        "candidate": stack.get(f"/candidates/{run['best_candidate_id']}"),
    }
    stack.processes.stop(stack.api_proc)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{stack.url}/healthz", timeout=2)
    stack.start_api()
    after = {
        "run": stack.get(f"/runs/{task['run_id']}"),
        "task": stack.get(f"/tasks/{task['id']}"),
        "candidate": stack.get(f"/candidates/{run['best_candidate_id']}"),
    }
    assert after == before


def test_a_worker_killed_mid_training_is_replaced_and_the_run_completes(stack: Stack) -> None:
    first = stack.start_worker()
    stack.llm.script([load_fixture("cheetah_forward")])
    task = stack.post("/tasks", {**TINY, "samples": 1, "description": "make the cheetah sprint forward"})
    run_id = task["run_id"]

    def running() -> Any:
        return next((t for t in stack.trainings(run_id) if t.status == "running"), None)

    training = stack.wait_for(running, 120, "a training to start", every=0.2)
    stack.processes.kill(first)  # kill -9 of the worker's process group (and its sandboxed training)
    assert first.returncode == -signal.SIGKILL
    [orphan] = stack.trainings(run_id)
    assert (orphan.id, orphan.status, orphan.attempts) == (training.id, "running", 1), (
        "the training ended before the worker was killed; the test did not kill it mid-training"
    )
    assert stack.get(f"/runs/{run_id}")["status"] == "running"

    stack.start_worker()
    run = stack.wait_for_run(run_id, seconds=LEASE_SECONDS + 200)
    [retaken] = stack.trainings(run_id)
    assert (retaken.status, retaken.attempts) == ("ok", 2)
    assert run["best_candidate_id"] is not None and run["progress"]["trainings_done"] == 1
    assert run["usage"]["timesteps_trained"] == 2048


def test_a_worker_stopped_with_sigterm_mid_training_hands_it_back_and_the_next_worker_trains_it_once(
    stack: Stack,
) -> None:
    for proc, log in stack.processes.started:  # the workers earlier tests left: this one must take the training
        if log.name.startswith("worker-"):
            stack.processes.stop(proc)
    first = stack.start_worker()
    stack.llm.script([load_fixture("cheetah_forward")])
    body = {**TINY, "timesteps": 6144, "samples": 1, "description": "make the cheetah trot forward"}
    task = stack.post("/tasks", body)  # a training longer than the grace: waiting for it would show
    run_id = task["run_id"]

    def running() -> Any:
        return next((t for t in stack.trainings(run_id) if t.status == "running"), None)

    stack.wait_for(running, 120, "a training to start", every=0.2)
    stopping = time.monotonic()
    first.send_signal(signal.SIGTERM)  # the worker's main process only, as `docker stop` does
    first.wait(timeout=60)
    grace = 10  # REWARDSMITH_SHUTDOWN_GRACE_SECONDS's default
    assert time.monotonic() - stopping < grace, "the worker waited for its training instead of handing it back"
    [handed] = stack.trainings(run_id)
    assert (handed.status, handed.attempts) == ("queued", 0), "the training was not handed back"

    stack.start_worker()  # the API's sweep sends the handed-back training to it
    run = stack.wait_for_run(run_id, seconds=200)
    [trained] = stack.trainings(run_id)
    assert (trained.status, trained.attempts) == ("ok", 1)
    assert run["usage"]["timesteps_trained"] == 6144
