"""SB3's PPO against the hand-written PPO it replaced, on the same batched engine, side by side in one run.

Both learners train on exactly what a training builds: ``BatchedEnv`` under ``ContractReward`` with the env's
reference reward program and the env's ``PPODefaults`` (n_envs, n_steps, batch size, epochs, network):

- **sb3**: the product's path, ``workers.engine.model`` (SB3 ``PPO`` over ``VecNormalize`` over the
  ``ContractReward`` VecEnv, the budget cut to whole vector steps), with a callback that does nothing;
- **hand**: the hand-written learner as it was (``benchmarks/handwritten_ppo.py``, a frozen copy).

Each training runs in its own subprocess, one torch thread and ``--threads`` C threads each, and the two sides
alternate (hand, sb3, hand, sb3, ...) so that a busy spell on a shared machine hits both. Reported per run:
steps/s over the learning phase (wall clock) and per CPU second (process time, less sensitive to other users
of the machine), the load average before and after; per env the ratio sb3/hand of each alternation.

    .venv/bin/python benchmarks/learner_comparison.py                  # 2 envs x 2 alternations x 100k steps
    .venv/bin/python benchmarks/learner_comparison.py --quick          # 1 alternation x 8k steps (validation)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import RESULTS, ROOT, finite, load_average, machine_info, median, pyplot, save_figure, write_outputs

NAME = "learner_comparison"
ENVS = ("HalfCheetah-v5", "Hopper-v5")
SIDES = ("hand", "sb3")


def child(side: str, env: str, steps: int, seed: int, threads: int) -> dict:
    """One training in this process; returns the learning phase's wall and CPU seconds."""
    import torch

    from envs import get_spec
    from workers.engine.batched import BatchedEnv
    from workers.engine.wrapper import ContractReward
    from workers.program.program import load_program

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    spec = get_spec(env)
    program = load_program(spec.reference_reward)
    n = spec.ppo.n_envs
    contract = ContractReward(
        BatchedEnv(spec, [seed + i for i in range(n)], threads=threads, needs=program.attributes), program
    )
    if side == "hand":
        from handwritten_ppo import Learner, learn

        learner = Learner(contract.env.obs_dim, contract.env.act_dim, spec.ppo, seed)
        wall, cpu = time.perf_counter(), time.process_time()
        learn(learner, contract, steps, on_step=lambda _: None, on_rollout_end=lambda: None)
        trained = learner.num_timesteps
    else:
        from stable_baselines3.common.callbacks import BaseCallback

        from workers.engine.model import build_model
        from workers.engine.model import learn as sb3_learn

        class Nothing(BaseCallback):
            def _on_step(self) -> bool:
                return True

        model = build_model(contract, spec.ppo, seed)
        wall, cpu = time.perf_counter(), time.process_time()
        sb3_learn(model, steps, Nothing())
        trained = int(model.ppo.num_timesteps)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"steps": trained, "wall_seconds": wall, "cpu_seconds": cpu, "ppo": spec.ppo.__dict__}


def run_child(side: str, env: str, steps: int, seed: int, threads: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", side, env, str(steps), str(seed), str(threads)]
    thread_env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    before = load_average()
    done = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **thread_env}, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{side} {env} failed:\n{done.stderr[-3000:]}")
    r = json.loads(done.stdout.strip().splitlines()[-1])
    r.update(
        side=side,
        load_before=before,
        load_after=load_average(),
        steps_per_second=r["steps"] / r["wall_seconds"],
        steps_per_cpu_second=r["steps"] / r["cpu_seconds"],
    )
    return r


def plot(doc: dict, path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(doc["envs"]), figsize=(5.5 * len(doc["envs"]), 4.2), squeeze=False)
    for ax, (env, res) in zip(axes[0], doc["envs"].items(), strict=False):
        for k, side in enumerate(SIDES):
            runs = [r for r in res["runs"] if r["side"] == side]
            xs = [i + 0.38 * (k - 0.5) for i in range(len(runs))]
            ax.bar(xs, [r["steps_per_second"] for r in runs], 0.36, label=f"{side} (wall)")
            ax.scatter(xs, [r["steps_per_cpu_second"] for r in runs], color="k", marker="_", s=200, zorder=3)
        ax.set_xticks(range(res["alternations"]), [f"pair {i + 1}" for i in range(res["alternations"])])
        ratio = res["ratio_sb3_over_hand"]["wall_median"]
        ax.set_title(f"{env}: sb3/hand {ratio:.2f} (wall, median)" + (" QUICK" if doc["quick"] else ""))
        ax.set_ylabel("env steps / s (bars: wall; black: per CPU second)")
        ax.legend(loc="lower right")
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--alternations", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="C threads stepping each training's batch")
    parser.add_argument("--envs", default=",".join(ENVS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        side, env, steps, seed, threads = args.child
        print(json.dumps(finite(child(side, env, int(steps), int(seed), int(threads))), default=float, allow_nan=False))
        return
    steps = 8192 if args.quick else args.steps
    alternations = 1 if args.quick else args.alternations
    doc: dict = {
        "quick": args.quick,
        "machine": machine_info(),
        "settings": {"steps": steps, "alternations": alternations, "threads": args.threads, "torch_threads": 1},
        "envs": {},
    }
    for env in args.envs.split(","):
        runs = []
        for pair in range(alternations):
            for side in SIDES:
                r = run_child(side, env, steps, pair, args.threads)
                runs.append(r)
                print(
                    f"{env} pair {pair + 1} {side:>4}: {r['steps_per_second']:8,.0f} steps/s wall, "
                    f"{r['steps_per_cpu_second']:8,.0f} per CPU s  (load {r['load_before']} -> {r['load_after']})",
                    flush=True,
                )
        wall = [runs[2 * i + 1]["steps_per_second"] / runs[2 * i]["steps_per_second"] for i in range(alternations)]
        cpu = [
            runs[2 * i + 1]["steps_per_cpu_second"] / runs[2 * i]["steps_per_cpu_second"] for i in range(alternations)
        ]
        doc["envs"][env] = {
            "runs": runs,
            "alternations": alternations,
            "ratio_sb3_over_hand": {"wall": wall, "cpu": cpu, "wall_median": median(wall), "cpu_median": median(cpu)},
        }
        print(f"{env}: sb3/hand wall {[round(x, 3) for x in wall]}, per CPU second {[round(x, 3) for x in cpu]}")
    doc["machine"]["load_average_at_end"] = load_average()
    write_outputs(args.out, NAME, doc, plot)


if __name__ == "__main__":
    main()
