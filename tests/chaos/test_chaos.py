"""Kill -9 anything, lose nothing, leave nothing behind: a real installation on loopback, SIGKILL at random points of a
run, what was killed started again, and then the run must have succeeded with every candidate trained exactly once,
every artifact readable and no process of it left.

Faults: `serve` (its workers and their sandboxes must die with it), the process running a
training (a pool process or a worker's main process), the sandboxed training itself, and in
the production configuration Redis and PostgreSQL (servers of this test's own, on free
ports). The order and the moments are random; the seed is printed on failure
(REWARDSMITH_CHAOS_SEED repeats a run).
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.chaos import Installation, wait_until
from tests.support.faults import EMBEDDED_FAULTS, Fault, inject, judge

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

SEED = int(os.environ.get("REWARDSMITH_CHAOS_SEED") or random.SystemRandom().randrange(2**31))


def chaos_run(root: Path, *, production: bool, faults: list[str]) -> None:
    """One run of one candidate per fault under ``faults`` (in order, each at a random moment of a training), judged
    at the end. A fault can end or stall every training at work (a killed ``serve`` takes both of its worker's), so
    with fewer trainings than faults a fast machine finishes the run before the last one."""
    samples = len(faults)
    rng = random.Random(SEED)
    inst = Installation(root, production=production)
    context = f"seed {SEED} (REWARDSMITH_CHAOS_SEED), faults {faults}"
    try:
        inst.start()
        run_id = inst.submit(samples)
        happened: list[Fault] = []
        for kind in faults:
            fault = inject(inst, run_id, kind, rng)
            if fault is None:
                run = inst.get(f"/runs/{run_id}")
                raise AssertionError(
                    f"the run ended ({run['status']}: {run.get('error')}) before the {kind} fault; {context}\n"
                    f"{inst.tails()}"
                )
            happened.append(fault)
            assert not fault.left_running, f"left running after the {kind} fault: {fault.left_running}; {context}"
        wait_until(lambda: inst.run_status(run_id) not in ("queued", "running"), 240, f"run {run_id} to end; {context}")
        verdict = judge(inst, run_id)
        revived = f"; the worker stopped itself for a stall {inst.revived} time(s)" if inst.revived else ""
        print(f"{context}: {happened}; {verdict}{revived}")  # shown with -s, and on failure
        assert verdict.ok, f"{verdict}; {context}\n{inst.tails()}"
        assert verdict.candidates == samples and verdict.attempts >= 2
        inst.stop()
        left = {}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (left := inst.leftovers()):
            time.sleep(0.2)
        assert not left, f"processes of the run left after it stopped: {left}; {context}"
    finally:
        inst.kill_everything()


def test_an_embedded_installation_finishes_its_run_through_sigkills_of_serve_a_worker_and_a_sandbox(
    tmp_path: Path,
) -> None:
    faults = random.Random(SEED).sample(EMBEDDED_FAULTS, len(EMBEDDED_FAULTS))
    chaos_run(tmp_path, production=False, faults=faults)


@pytest.mark.skipif(not Path("/usr/lib/postgresql/15/bin/initdb").exists(), reason="needs PostgreSQL 15's initdb")
def test_a_production_installation_finishes_its_run_through_restarts_of_redis_and_postgres_and_a_worker_kill() -> None:
    faults = random.Random(SEED).sample(["redis", "postgres", "worker"], 3)
    root = Path(tempfile.mkdtemp(prefix="rewardsmith-chaos-"))
    root.chmod(0o755)  # the postgres user reaches its cluster's directory through it
    try:
        chaos_run(root, production=True, faults=faults)
    finally:
        shutil.rmtree(root, ignore_errors=True)
