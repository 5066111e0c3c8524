"""Sandboxed jobs started cold against jobs started on a spare (``workers.sandbox.spares``), side by side.

Two kinds of job, each the smallest real one: a dry run of HalfCheetah-v5's reference reward (what a person waits for
after pressing "check" in the dashboard), and a training of 2,048 steps with one checkpoint and one evaluation episode
(the shortest training a test or a successive-halving round runs). Cold and spare alternate, job after job, in one
process: a cold job runs with spares turned off; a spare job runs once the spare for it is ready (the wait for the
spare to be ready is not counted: in a worker it overlaps the job before). Reported per kind: the median wall time of
each way, the ratio, and the CPU time of the job's process (user + system, counted when it ends: a spare's imports
included, so in a worker that runs job after job the two ways cost the same CPU; a spare never used costs its
imports).

.venv/bin/python benchmarks/sandbox_spares.py [--quick] [--rounds N] [--out DIR]
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
from workers.sandbox import spares
from workers.sandbox.runner import Limits, _spare_key, run_job

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


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_for_spare(group: str) -> None:
    key = _spare_key(LIMITS, group)
    deadline = time.monotonic() + 120
    while spares.ready_pid(key) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(4.0 if group == "train" else 1.5)  # its imports: a spare counts as ready when started, not when warm


def measure(kind: str, job: Callable[[], str], rounds: int) -> dict:
    group = "train" if kind == "training" else "light"
    ways: dict[str, dict[str, list[float]]] = {w: {"seconds": [], "cpu": []} for w in ("cold", "spare")}
    for r in range(rounds):
        for way in ("cold", "spare") if r % 2 == 0 else ("spare", "cold"):
            if way == "cold":
                os.environ[spares.ENABLED_VARIABLE] = "0"
                spares.discard_all()
            else:
                os.environ[spares.ENABLED_VARIABLE] = "1"
                if spares.ready_pid(_spare_key(LIMITS, group)) is None:
                    job()  # leaves a spare behind
                wait_for_spare(group)
            cpu = children_cpu()
            started = time.perf_counter()
            outcome = job()
            seconds = time.perf_counter() - started
            ways[way]["seconds"].append(seconds)
            ways[way]["cpu"].append(children_cpu() - cpu)
            print(f"{kind:9s} {way:5s} round {r + 1}: {seconds:6.2f} s, children's CPU {ways[way]['cpu'][-1]:.2f} s")
            assert outcome == "ok", f"{kind} ended {outcome}"
    cold, spare = median(ways["cold"]["seconds"]), median(ways["spare"]["seconds"])
    return {
        "kind": kind,
        "rounds": rounds,
        "cold_seconds": ways["cold"]["seconds"],
        "spare_seconds": ways["spare"]["seconds"],
        "cold_cpu_seconds": ways["cold"]["cpu"],
        "spare_cpu_seconds": ways["spare"]["cpu"],
        "median_cold_seconds": cold,
        "median_spare_seconds": spare,
        "cold_over_spare": cold / spare if cold and spare else None,
        "median_cold_cpu_seconds": median(ways["cold"]["cpu"]),
        "median_spare_cpu_seconds": median(ways["spare"]["cpu"]),
    }


def plot(doc: dict, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    kinds = [k["kind"] for k in doc["kinds"]]
    xs = range(len(kinds))
    ax.bar([x - 0.2 for x in xs], [k["median_cold_seconds"] for k in doc["kinds"]], 0.4, label="cold")
    ax.bar([x + 0.2 for x in xs], [k["median_spare_seconds"] for k in doc["kinds"]], 0.4, label="on a spare")
    ax.set_xticks(list(xs), kinds)
    ax.set_ylabel("median wall time of the job (s)")
    ax.set_title(("QUICK: " if doc["quick"] else "") + "sandboxed job started cold vs on a spare")
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
            f"{k['kind']:9s}: cold {k['median_cold_seconds']:.2f} s, on a spare {k['median_spare_seconds']:.2f} s "
            f"({k['cold_over_spare']:.2f}x); CPU per job cold {k['median_cold_cpu_seconds']:.2f} s, "
            f"with its spare {k['median_spare_cpu_seconds']:.2f} s"
        )
    doc = {
        "quick": args.quick,
        "machine": machine_info() | {"load_start": start_load, "load_end": load_average()},
        "kinds": kinds,
    }
    write_outputs(args.out, "sandbox_spares", doc, plot)


if __name__ == "__main__":
    main()
