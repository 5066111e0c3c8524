"""Warm start against from scratch: a child reward trained from its parent's policy, and the same reward trained
from a fresh policy, at the same added budget (issue 22, ROSKA's idea).

The parent: HalfCheetah-v5's reference reward, trained ``--parent-steps`` steps. The child: another reward (forward
speed with a heavier control cost and a pay for keeping the torso level), trained ``--added`` more steps, once from
the parent's policy (``warm_start_from``: value warm-up with the policy frozen, then PPO) and once from scratch, on
the same seeds. Fitness is the forward distance of 5 deterministic held-out episodes of 1,000 steps. Reported: the
fitness of each at every checkpoint and at the end, and the ratio warm / scratch at the same added budget.

.venv/bin/python benchmarks/warm_start.py [--quick] [--parent-steps N] [--added N] [--seeds 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _common import RESULTS, load_average, machine_info, pyplot, save_figure, write_outputs

import envs
from envs.fitness import get_metric
from workers.engine.train import TrainConfig, train

ENV = "HalfCheetah-v5"
CHILD = """import numpy as np


def compute_reward(state, action):
    forward = state.x_velocity
    ctrl = -0.3 * np.sum(action * action, axis=1)
    level = -0.5 * np.abs(state.pitch)
    return forward + ctrl + level, {"forward": forward, "ctrl": ctrl, "level": level}
"""


def one(config: TrainConfig, workdir: Path) -> dict:
    started = time.perf_counter()
    result = train(config, workdir, lambda e: None)
    return {
        "fitness": result["fitness"]["mean"] if result.get("fitness") else None,
        "curve": [(c["timesteps"], c["fitness"]) for c in result["checkpoints"]],
        "timesteps": result["timesteps"],
        "warm_start": result.get("warm_start"),
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets: checks the script runs, measures nothing")
    parser.add_argument("--parent-steps", type=int, default=40_000)
    parser.add_argument("--added", type=int, default=16_384)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.parent_steps, args.added, args.seeds = 4096, 2048, 1
    spec = envs.get_spec(ENV)
    fitness = get_metric("forward_distance").source
    doc: dict = {
        "quick": args.quick,
        "machine": machine_info() | {"load_average_at_start": load_average()},
        "settings": {
            "env": ENV,
            "parent_steps": args.parent_steps,
            "added_steps": args.added,
            "seeds": args.seeds,
            "fitness": "forward_distance, 5 deterministic held-out episodes of 1,000 steps",
            "child_reward": CHILD,
        },
        "seeds": [],
    }
    base = {"env": ENV, "fitness_source": fitness, "fitness_name": "forward_distance", "checkpoints": 4}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            root = Path(tmp) / str(seed)
            for name in ("parent", "warm", "scratch"):
                (root / name).mkdir(parents=True)
            parent = one(
                TrainConfig(**base, reward_source=spec.reference_reward, timesteps=args.parent_steps, seed=seed),
                root / "parent",
            )
            warm = one(
                TrainConfig(
                    **base,
                    reward_source=CHILD,
                    timesteps=args.added,
                    seed=seed + 100,
                    warm_start_from=str(root / "parent"),
                ),
                root / "warm",
            )
            scratch = one(
                TrainConfig(**base, reward_source=CHILD, timesteps=args.added, seed=seed + 100), root / "scratch"
            )
            row = {"seed": seed, "parent": parent, "warm": warm, "scratch": scratch}
            doc["seeds"].append(row)
            print(
                f"seed {seed}: parent {parent['fitness']:.2f} m after {args.parent_steps:,} steps; child after "
                f"{args.added:,} added steps: warm {warm['fitness']:.2f} m ({warm['seconds']:.0f} s), "
                f"scratch {scratch['fitness']:.2f} m ({scratch['seconds']:.0f} s)"
            )
    warm_f = [r["warm"]["fitness"] for r in doc["seeds"]]
    scratch_f = [r["scratch"]["fitness"] for r in doc["seeds"]]
    doc["summary"] = {
        "warm_mean": statistics.mean(warm_f),
        "scratch_mean": statistics.mean(scratch_f),
        "warm_minus_scratch_m": statistics.mean(warm_f) - statistics.mean(scratch_f),
        "ratio_per_seed": [w / s if s > 0 else None for w, s in zip(warm_f, scratch_f, strict=True)],
    }
    doc["machine"]["load_average_at_end"] = load_average()
    print(
        f"\nat {args.added:,} added steps: warm {doc['summary']['warm_mean']:.2f} m, "
        f"scratch {doc['summary']['scratch_mean']:.2f} m (ratio per seed {doc['summary']['ratio_per_seed']})"
    )
    write_outputs(args.out, "warm_start_quick" if args.quick else "warm_start", doc, plot)


def plot(doc: dict, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for row in doc["seeds"]:
        for name, style in (("warm", "-"), ("scratch", "--")):
            xs, ys = zip(*row[name]["curve"], strict=True) if row[name]["curve"] else ((), ())
            ax.plot(xs, ys, style, label=f"{name}, seed {row['seed']}")
    ax.set_xlabel("added training steps")
    ax.set_ylabel("fitness (forward distance, m; 1 episode per checkpoint)")
    ax.set_title("child reward: from the parent's policy vs from scratch")
    ax.legend()
    save_figure(fig, path)


if __name__ == "__main__":
    main()
