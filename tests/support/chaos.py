"""A rewardsmith installation on loopback whose parts can be killed with SIGKILL at any moment and started again.

Two configurations: embedded (`rewardsmith serve` with its Celery workers, SQLite database and
broker) and production (`serve --no-embedded-worker`, a `rewardsmith worker`, and a Redis and a
PostgreSQL of this installation's own, on free ports: the machine's shared servers are never
touched). Used by the chaos test (tests/chaos) and the soak benchmark (benchmarks/soak.py).

Every process of the installation carries its root directory in its environment (the data dir;
the sandboxes' TMPDIR), which is how ``leftovers`` finds what a kill left behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine

from app.db.models import Candidate, Run, Training
from app.jobs.watchdog import EXIT_STALLED
from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "app.cli"]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
LEASE_SECONDS, HEARTBEAT_SECONDS, SWEEP_SECONDS = 8, 2, 3
STALL_SECONDS = 20
"""A worker whose queues held work for this long while it had a free slot stops itself (``app.jobs.watchdog``)."""
TASK = {
    "env": "HalfCheetah-v5",
    "description": "make the cheetah run forward",
    "designer": "offline",
    "iterations": 1,
    "samples": 2,
    "timesteps": 49152,  # ~7 s a training (forked warm, quiet machine); at 16k runs ended before their last fault
    "options": {
        "final_seeds": 0,
        "baselines": False,
        "train": {"eval_episodes": 1, "episode_steps": 100, "checkpoints": 2},
    },
}
"""Tiny: one iteration of offline candidates (`submit` says how many), each a training of a few seconds."""


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ").strip()[:160]
    except OSError:
        return "(gone)"


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) and fields[0] != "Z" and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def marked(marker: str) -> dict[int, str]:
    """Live processes whose environment mentions ``marker``, with their command lines."""
    found = {}
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "environ").read_bytes() and alive(int(entry.name)):
                found[int(entry.name)] = command_line(int(entry.name))
    return found


def wait_until(predicate, seconds: float, what: str, every: float = 0.25) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # a service being restarted answers with errors for a moment
            if value := predicate():
                return value
        time.sleep(every)
    raise AssertionError(f"gave up after {seconds:.0f} s waiting for {what}")


# ------------------------------------------------------------------------------------------ servers of our own


@dataclass
class OwnRedis:
    """A redis-server of this installation's own, append-only like compose.yaml's."""

    directory: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        argv += ["--appendonly", "yes", "--save", ""]
        log = (self.directory / "redis.log").open("a")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=_plain())
        wait_until(lambda: _redis_ping(self.port), 30, "redis to answer")

    def kill(self) -> None:
        _kill_group(self.proc)


def _redis_ping(port: int) -> bool:
    client = redis.Redis(port=port, socket_timeout=1)
    try:
        return bool(client.ping())
    finally:
        client.close()


@dataclass
class OwnPostgres:
    """A PostgreSQL cluster of this installation's own (initdb refuses root: it runs as the postgres user)."""

    directory: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.directory, "postgres", "postgres")
        argv = [str(PG_BIN / "initdb"), "-D", str(self.directory / "data"), "-A", "trust", "-U", "postgres"]
        subprocess.run([*argv, "--no-sync"], check=True, capture_output=True, env=_plain(), **_as_postgres())

    def start(self) -> None:
        argv = [str(PG_BIN / "postgres"), "-D", str(self.directory / "data"), "-p", str(self.port)]
        argv += ["-k", str(self.directory), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
        log = (self.directory / "postgres.log").open("a")
        shutil.chown(self.directory / "postgres.log", "postgres", "postgres")
        self.proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=_plain(), **_as_postgres()
        )
        ready = [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)]
        wait_until(lambda: subprocess.run(ready, capture_output=True).returncode == 0, 60, "postgres to answer")

    def kill(self) -> None:
        """SIGKILL to the postmaster and its backends (a crash: it recovers from its WAL at the next start)."""
        _kill_group(self.proc)


def _as_postgres() -> dict:
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


def _plain() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}


def _kill_group(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


# ------------------------------------------------------------------------------------------ the installation


@dataclass
class Installation:
    """rewardsmith on loopback under ``root``, in one of the two configurations."""

    root: Path
    production: bool = False
    env: dict[str, str] = field(default_factory=dict)
    serve: subprocess.Popen | None = None
    worker: subprocess.Popen | None = None
    redis: OwnRedis | None = None
    postgres: OwnPostgres | None = None
    url: str = ""
    token: str = ""
    db: Engine | None = None
    logs: list[Path] = field(default_factory=list)
    revived: int = 0
    """Times the production worker stopped itself for a stall and was started again (as compose or systemd do)."""
    _stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def start(self) -> None:
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REWARDSMITH_", "OPENAI_"))}
        env.update(
            PYTHONPATH=str(ROOT),
            MUJOCO_GL="egl",
            TMPDIR=str(self.root / "tmp"),  # the sandboxes' work dirs: their only mark of this installation
            REWARDSMITH_DATA_DIR=str(self.data_dir),
            REWARDSMITH_TRAINING_LEASE_SECONDS=str(LEASE_SECONDS),
            REWARDSMITH_TRAINING_HEARTBEAT_SECONDS=str(HEARTBEAT_SECONDS),
            REWARDSMITH_SWEEP_SECONDS=str(SWEEP_SECONDS),
            REWARDSMITH_SHUTDOWN_GRACE_SECONDS="5",
            REWARDSMITH_SANDBOX_WALL_SECONDS="240",
            REWARDSMITH_BROKER_VISIBILITY_TIMEOUT="600",
            REWARDSMITH_WORKER_STALL_SECONDS=str(STALL_SECONDS),
        )
        if self.production:
            self.redis = OwnRedis(self.root / "redis")
            self.postgres = OwnPostgres(self.root / "postgres")
            self.postgres.init()
            self.postgres.start()
            self.redis.start()
            env.update(REWARDSMITH_DATABASE_URL=self.postgres.url, REWARDSMITH_BROKER_URL=self.redis.url)
        self.env = env
        out = subprocess.run(
            [*CLI, "users", "create", "chaos", "--admin"], env=env, cwd=self.root, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr[-2000:]
        self.token = out.stdout.strip().splitlines()[-1].split()[-1]
        self.db = create_engine(
            self.postgres.url if self.postgres else f"sqlite:///{self.data_dir / 'rewardsmith.sqlite3'}",
            pool_pre_ping=True,
        )
        self.start_serve()
        if self.production:
            self.start_worker()
            threading.Thread(target=self._revive_stalled_worker, daemon=True).start()

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = self.root / f"{name}-{len(self.logs)}.log"
        self.logs.append(log)
        return subprocess.Popen(
            argv, env=self.env, cwd=self.root, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
        )

    def start_serve(self) -> None:
        port = free_port()
        argv = [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
        self.serve = self._spawn("serve", argv + (["--no-embedded-worker"] if self.production else []))
        self.url = f"http://127.0.0.1:{port}"
        wait_until(self._ready, 90, f"rewardsmith serve to answer\n{self.tails()}")

    def _ready(self) -> bool:
        assert self.serve is not None and self.serve.poll() is None, f"serve exited:\n{self.tails()}"
        return httpx.get(f"{self.url}/readyz", timeout=3).status_code == 200

    def start_worker(self) -> None:
        self.worker = self._spawn("worker", [*CLI, "worker", "--queues", "llm,train", "--concurrency", "2"])

    def _revive_stalled_worker(self) -> None:
        """Start the production worker again when it stopped itself for a stall, as its supervisor would (`serve`
        does that for its own workers). Only for that exit code: the faults start again what they kill."""
        while not self._stopping.wait(0.5):
            if self.worker is not None and self.worker.poll() == EXIT_STALLED:
                self.revived += 1
                self.start_worker()

    def get(self, path: str) -> Any:
        r = httpx.get(f"{self.url}/api/v1{path}", headers={"Authorization": f"Bearer {self.token}"}, timeout=30)
        assert r.status_code == 200, (path, r.status_code, r.text[:500])
        return r.json() if r.headers["content-type"].startswith("application/json") else r.content

    def submit(self, samples: int = 2) -> int:
        """Start the tiny task with ``samples`` candidates (one training each)."""
        r = httpx.post(
            f"{self.url}/api/v1/tasks",
            json={**TASK, "samples": samples},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        assert r.status_code == 201, r.text[:500]
        return r.json()["run_id"]

    def trainings(self, run_id: int) -> list[Any]:
        assert self.db is not None
        with self.db.connect() as conn:
            return list(conn.execute(select(Training).where(Training.run_id == run_id).order_by(Training.id)))

    def candidates(self, run_id: int) -> list[Any]:
        assert self.db is not None
        with self.db.connect() as conn:
            return list(conn.execute(select(Candidate).where(Candidate.run_id == run_id).order_by(Candidate.id)))

    def run_status(self, run_id: int) -> str:
        assert self.db is not None
        with self.db.connect() as conn:
            return conn.execute(select(Run.status).where(Run.id == run_id)).scalar_one()

    def tails(self, chars: int = 2500) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}" for p in self.logs[-4:])

    def leftovers(self) -> dict[int, str]:
        """Processes of this installation still alive (by the root in their environment)."""
        return marked(str(self.root))

    def stop(self) -> None:
        """Stop everything: serve and worker with SIGTERM (as a service manager does), then the servers."""
        self._stopping.set()
        for proc in (self.worker, self.serve):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    _kill_group(proc)
        for server in (self.redis, self.postgres):
            if server is not None:
                server.kill()
        if self.db is not None:
            self.db.dispose()

    def kill_everything(self) -> None:
        """What a failed test leaves: every process of the installation, by its mark, then the servers."""
        self._stopping.set()
        for pid in self.leftovers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for server in (self.redis, self.postgres):
            if server is not None:
                server.kill()
