"""Sandboxed jobs started cold against jobs forked from a fork server (``workers.sandbox.forkserver``), side by side.

Two kinds of job, each the smallest real one: a dry run of HalfCheetah-v5's reference reward (what a person waits for
after pressing "check" in the dashboard), and a training of 2,048 steps with one checkpoint and one evaluation episode
(the shortest training a test or a successive-halving round runs; ``evaluate`` runs a dry run first, so it is two
jobs). Cold and forked alternate, job after job, in one process: a cold job runs with fork servers turned off; a
forked job runs once its server is up (its start is not counted: a worker pays it once). Reported per kind: the median
wall time of each way, the ratio, and the CPU time of the jobs' processes (user + system, counted when they end; for
forked jobs, what their servers reaped).

.venv/bin/python benchmarks/sandbox_forkserver.py [--quick] [--rounds N] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import RESULTS, load_average, machine_info, median, pyplot, save_figure, write_outputs

import envs
from workers.engine.evaluate import evaluate_reward
from workers.sandbox import forkserver
from workers.sandbox.runner import Limits, run_job

ENV = "HalfCheetah-v5"
LIMITS = Limits(wall_seconds=300)


def dry_run() -> str:
    source = envs.get_spec(ENV).reference_reward
    return run_job({"type": "dry_run", "env": ENV, "kind": "reward", "source": source}, LIMITS).outcome


def training() -> str:
    with tempfile.TemporaryDirectory() as out:
        result = evaluate_reward(
            env=ENV,
            reward_source=envs.get_spec(ENV).reference_reward,
            fitness_name=None,
            fitness_source=None,
            timesteps=2048,
            seed=0,
            out=Path(out),
            limits=LIMITS,
            options={"checkpoints": 1, "eval_episodes": 1, "checkpoint_episodes": 1},
        )
    return str(result["status"])


def jobs_cpu() -> float:
    """CPU of the jobs this process ran so far: its reaped children's, and what its fork servers reaped."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = usage.ru_utime + usage.ru_stime
    for pid in forkserver.server_pids():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime
    return total


def measure(kind: str, job: Callable[[], str], rounds: int) -> dict:
    ways: dict[str, dict[str, list[float]]] = {w: {"seconds": [], "cpu": []} for w in ("cold", "forked")}
    for r in range(rounds):
        for way in ("cold", "forked") if r % 2 == 0 else ("forked", "cold"):
            os.environ[forkserver.ENABLED_VARIABLE] = "0" if way == "cold" else "1"
            if way == "forked" and not forkserver.server_pids():
                job()  # starts the servers this kind of job uses
            cpu = jobs_cpu()
            started = time.perf_counter()
            outcome = job()
            seconds = time.perf_counter() - started
            ways[way]["seconds"].append(seconds)
            ways[way]["cpu"].append(jobs_cpu() - cpu)
            print(f"{kind:9s} {way:6s} round {r + 1}: {seconds:6.2f} s, the jobs' CPU {ways[way]['cpu'][-1]:.2f} s")
            assert outcome == "ok", f"{kind} ended {outcome}"
    cold, forked = median(ways["cold"]["seconds"]), median(ways["forked"]["seconds"])
    return {
        "kind": kind,
        "rounds": rounds,
        "cold_seconds": ways["cold"]["seconds"],
        "forked_seconds": ways["forked"]["seconds"],
        "cold_cpu_seconds": ways["cold"]["cpu"],
        "forked_cpu_seconds": ways["forked"]["cpu"],
        "median_cold_seconds": cold,
        "median_forked_seconds": forked,
        "cold_over_forked": cold / forked if cold and forked else None,
        "median_cold_cpu_seconds": median(ways["cold"]["cpu"]),
        "median_forked_cpu_seconds": median(ways["forked"]["cpu"]),
    }


def plot(doc: dict, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    kinds = [k["kind"] for k in doc["kinds"]]
    xs = range(len(kinds))
    ax.bar([x - 0.2 for x in xs], [k["median_cold_seconds"] for k in doc["kinds"]], 0.4, label="cold")
    ax.bar([x + 0.2 for x in xs], [k["median_forked_seconds"] for k in doc["kinds"]], 0.4, label="forked")
    ax.set_xticks(list(xs), kinds)
    ax.set_ylabel("median wall time of the job (s)")
    ax.set_title(("QUICK: " if doc["quick"] else "") + "sandboxed job started cold vs forked from a server")
    ax.legend()
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    start_load = load_average()
    kinds = [measure("dry run", dry_run, rounds), measure("training", training, rounds)]
    for k in kinds:
        print(
            f"{k['kind']:9s}: cold {k['median_cold_seconds']:.2f} s, forked {k['median_forked_seconds']:.2f} s "
            f"({k['cold_over_forked']:.2f}x); CPU cold {k['median_cold_cpu_seconds']:.2f} s, "
            f"forked {k['median_forked_cpu_seconds']:.2f} s"
        )
    doc = {
        "quick": args.quick,
        "machine": machine_info() | {"load_start": start_load, "load_end": load_average()},
        "kinds": kinds,
    }
    write_outputs(args.out, "sandbox_forkserver", doc, plot)


if __name__ == "__main__":
    main()
