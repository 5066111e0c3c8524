"""Faults for a chaos run: SIGKILL a part of an ``Installation`` at a random point, start again what was killed, and
judge the run at the end (lost, duplicated, unreadable, left behind). Shared by tests/chaos and benchmarks/soak.py."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.chaos import Installation, alive, children, command_line, wait_until

EMBEDDED_FAULTS = ("serve", "worker", "sandbox")
PRODUCTION_FAULTS = ("serve", "worker", "sandbox", "redis", "postgres")
SANDBOX = "workers.sandbox.child"


@dataclass
class Fault:
    """One fault as it happened."""

    kind: str
    detail: str = ""
    at: float = 0.0
    """time.time() of the kill."""
    recovered_seconds: float | None = None
    """From the kill to work going on again (a training's sandbox running, or the service answering)."""
    left_running: dict[int, str] = field(default_factory=dict)
    """Processes of what was killed still alive afterwards (must stay empty)."""


def descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        for child in children(todo.pop()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def training_sandboxes(inst: Installation) -> dict[int, int]:
    """The installation's sandboxed processes that train (not dry runs), each with the process that started it."""
    found = {}
    for pid, cmd in inst.leftovers().items():
        if SANDBOX not in cmd:
            continue
        try:
            job = json.loads(Path(f"/proc/{pid}/cwd/job.json").read_text())
            parent = _parent(pid)
            if SANDBOX in command_line(parent):  # forked from a fork server: its parent started the job
                parent = _parent(parent)
        except (OSError, ValueError, IndexError):
            continue
        if job.get("type") == "train":
            found[pid] = parent
    return found


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def training_with_sandbox(inst: Installation, run_id: int) -> tuple[int, int] | None:
    """(worker process, its sandbox) of a training at work now."""
    sandboxes = training_sandboxes(inst)
    return next(((parent, pid) for pid, parent in sandboxes.items() if alive(parent)), None)


def _gone_within(pids: set[int], seconds: float) -> dict[int, str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return {p: command_line(p) for p in pids if alive(p)}


def inject(inst: Installation, run_id: int, kind: str, rng: random.Random) -> Fault | None:
    """Wait for a training at work (for `serve`, half the time only a random moment from now: the design, or the
    start, may be under way), then a random moment more, and kill ``kind`` with SIGKILL; start again what does not
    come back by itself. None when the run ended before the moment came."""
    if kind == "serve" and rng.random() < 0.5:
        time.sleep(rng.uniform(0.0, 3.0))
        if inst.run_status(run_id) not in ("queued", "running"):
            return None
        return _kill(inst, run_id, kind, rng, None)
    at_work = wait_until(
        lambda: training_with_sandbox(inst, run_id) or inst.run_status(run_id) not in ("queued", "running"),
        240,
        f"a training of run {run_id} at work (before the {kind} fault)\n{inst.tails()}",
    )
    if not isinstance(at_work, tuple):
        return None
    time.sleep(rng.uniform(0.0, 2.0))
    found = training_with_sandbox(inst, run_id)
    if found is None and kind in ("worker", "sandbox"):
        return inject(inst, run_id, kind, rng)  # it ended in the meantime: wait for the next one
    return _kill(inst, run_id, kind, rng, found)


def _kill(inst: Installation, run_id: int, kind: str, rng: random.Random, found: tuple[int, int] | None) -> Fault:
    fault = Fault(kind)
    before = set(training_sandboxes(inst))
    if kind == "serve":
        assert inst.serve is not None
        doomed = descendants(inst.serve.pid) | {inst.serve.pid}
        fault.at = time.time()
        os.kill(inst.serve.pid, signal.SIGKILL)
        inst.serve.wait()
        fault.left_running = _gone_within(doomed, 10)
        when = "a training at work" if found else f"run {inst.run_status(run_id)}, no training at work"
        fault.detail = f"serve and {len(doomed) - 1} processes below it ({when})"
        inst.start_serve()
    elif kind == "worker":
        assert found is not None
        pool, _ = found
        main = _parent(pool)
        victim = rng.choice([pool, main])
        doomed = descendants(victim) | {victim}
        fault.detail = "the worker's main process" if victim == main else "the pool process running the training"
        fault.at = time.time()
        os.kill(victim, signal.SIGKILL)
        fault.left_running = _gone_within(doomed, 10)
        if inst.production and inst.worker is not None and victim == inst.worker.pid:
            inst.worker.wait()
            inst.start_worker()  # under serve, serve starts it again
    elif kind == "sandbox":
        assert found is not None
        _, sandbox = found
        fault.detail = "the sandboxed training process"
        fault.at = time.time()
        os.kill(sandbox, signal.SIGKILL)
    elif kind in ("redis", "postgres"):
        server = inst.redis if kind == "redis" else inst.postgres
        assert server is not None
        fault.detail = f"{kind} (SIGKILL, started again after a moment)"
        fault.at = time.time()
        server.kill()
        time.sleep(rng.uniform(0.5, 2.0))
        server.start()
    else:
        raise ValueError(f"unknown fault {kind!r}")
    fault.recovered_seconds = _recovery(inst, run_id, kind, fault.at, before)
    return fault


def _recovery(inst: Installation, run_id: int, kind: str, at: float, before: set[int]) -> float:
    """Seconds from the kill until work goes on: the service answers again (redis, postgres, and a production
    `serve`, which runs no training), or a training's sandbox is at work again, or the run has ended."""

    def service() -> bool:
        return httpx.get(f"{inst.url}/readyz", timeout=3).status_code == 200

    def training() -> bool:
        if inst.run_status(run_id) not in ("queued", "running"):
            return True
        return bool(set(training_sandboxes(inst)) - before)

    serving_only = kind in ("redis", "postgres") or (kind == "serve" and inst.production)  # trainings ran on
    wait_until(service if serving_only else training, 240, f"work to go on after the {kind} fault")
    return time.time() - at


# ------------------------------------------------------------------------------------------ judging the run


@dataclass
class Verdict:
    status: str
    candidates: int
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    attempts: int = 0
    """Training attempts in all (1 per candidate without faults)."""

    @property
    def ok(self) -> bool:
        return self.status == "succeeded" and not (self.lost or self.duplicated or self.unreadable)


def judge(inst: Installation, run_id: int) -> Verdict:
    """Was every candidate trained exactly once, with every artifact readable?"""
    run = inst.get(f"/runs/{run_id}")
    trainings = inst.trainings(run_id)
    designed = [c for c in inst.candidates(run_id) if c.status not in ("rejected", "duplicate")]
    v = Verdict(run["status"], len(designed), attempts=sum(t.attempts for t in trainings))
    for c in designed:
        mine = [t for t in trainings if t.candidate_id == c.id]
        ok = [t for t in mine if t.status == "ok"]
        if c.status != "trained" or not ok:
            v.lost.append(f"candidate {c.id}: {c.status}, trainings {[(t.id, t.status) for t in mine]}")
        if len(mine) > 1 or len(ok) > 1:
            v.duplicated.append(f"candidate {c.id} has {len(mine)} trainings: {[(t.id, t.status) for t in mine]}")
        candidate_dir = inst.data_dir / "artifacts" / f"run-{run_id}" / f"candidate-{c.id}"
        dirs = sorted(p.name for p in candidate_dir.glob("*"))
        if dirs != [f"training-{t.id}" for t in mine]:
            v.duplicated.append(f"candidate {c.id}: training directories {dirs}")
        for t in mine:
            attempts = sorted(p.name for p in (candidate_dir / f"training-{t.id}").glob("*"))
            if not _one_recorded_attempt(attempts, t.artifacts_key):
                v.duplicated.append(f"training {t.id}: attempt directories {attempts}, recorded {t.artifacts_key}")
        v.unreadable += _unreadable(inst, c.id)
    v.duplicated += [f"{log.name}: {line.strip()[:300]}" for log in inst.logs for line in _superseded(log)]
    return v


def _one_recorded_attempt(attempts: list[str], recorded: str | None) -> bool:
    """Whether the recorded attempt has its directory and no attempt came after it. An earlier attempt may have left
    files: one whose worker was killed after uploading but before recording is trained again (the record is the
    commit), and that is not a duplicate; two attempts at work at once are, and the worker's log says so."""
    numbers = [int(a.removeprefix("attempt-")) for a in attempts if a.removeprefix("attempt-").isdigit()]
    last = os.path.basename(recorded or "")
    if last not in attempts or len(numbers) != len(attempts):
        return False
    return max(numbers) == int(last.removeprefix("attempt-"))


def _superseded(log: Path) -> list[str]:
    """Lines in which a worker said its attempt ended after another worker had taken the training over."""
    return [line for line in log.read_text(errors="replace").splitlines() if "took the training over" in line]


def _unreadable(inst: Installation, candidate_id: int) -> list[str]:
    """The candidate's artifacts, fetched as a user would: each must come back whole."""
    bad = []
    doc = inst.get(f"/candidates/{candidate_id}")
    names = {a["name"] for a in doc["artifacts"]}
    if not {"result.json", "reward.py"} <= names or not names & {"policy.pt", "policy.zip"}:
        bad.append(f"candidate {candidate_id}: artifacts {sorted(names)}")
    for a in doc["artifacts"]:
        r = httpx.get(f"{inst.url}{a['url']}", headers={"Authorization": f"Bearer {inst.token}"}, timeout=30)
        try:
            assert r.status_code == 200 and r.content, r.status_code
            if a["name"].endswith(".json"):
                json.loads(r.content)
            elif a["name"].endswith((".pt", ".zip")):
                assert zipfile.ZipFile(io.BytesIO(r.content)).testzip() is None
            elif a["name"] == "reward.py":
                assert r.text == doc["code"]
        except Exception as e:
            bad.append(f"candidate {candidate_id}: {a['name']} unreadable ({type(e).__name__}: {e})")
    return bad
