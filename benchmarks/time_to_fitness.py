"""Time to fitness: plain SB3 against SB3 on the batched engine, and the simulation-only ceiling, side by side.

For every registered env (or ``--envs``) with its reference reward, 3 seeds each, every training capped at the
same wall-clock:

- **(a) sb3**: plain Stable-Baselines3 PPO with per-env Gymnasium stepping and the product's settings before the
  engine: 8 ``DummyVecEnv`` Gymnasium envs, n_steps 256, batch 128, 10 epochs, ``VecNormalize``, 1 torch
  thread, Gymnasium's reward;
- **(b) engine**: SB3's PPO as a training runs it (``workers.engine.model``): ``BatchedEnv`` on ``--threads``
  C threads under ``ContractReward`` (the reference reward program, one call per vector step) as SB3's
  ``VecEnv``, ``VecNormalize`` on top, the env's ``PPODefaults``;
- **(c) ceiling**: the same ``BatchedEnv`` (same N, same threads) stepped with random actions, no learner.

Each training runs in its own subprocess. Every ``--eval-every`` seconds of training the clock stops and the
policy plays ``--eval-episodes`` deterministic episodes (one batch, Gymnasium's own return); evaluation time
is not counted. Reported: steps/s of each for every env, the return against training wall-clock (plot), and
the seconds to first reach each target of issue 17 (HalfCheetah 3,000; Hopper 1,000; also HalfCheetah 1,500
and Hopper 2,000), median and spread over seeds. Envs without a target report speed and final return.

.venv/bin/python benchmarks/time_to_fitness.py [--quick] [--cap SECONDS] [--threads 2] [--envs A,B] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import RESULTS, ROOT, finite, load_average, machine_info, median, pyplot, save_figure, write_outputs

TARGETS = {"HalfCheetah-v5": (1500.0, 3000.0), "Hopper-v5": (1000.0, 2000.0)}
"""Returns to time, by env (issue 17: HalfCheetah 3,000 and Hopper 1,000); other envs have none."""
SB3_SETTINGS = {"n_envs": 8, "n_steps": 256, "batch_size": 128, "n_epochs": 10, "threads": 1}
SIDES = {"sb3": ("a", "tab:gray"), "engine": ("b", "tab:blue"), "sb3_same": ("a'", "tab:orange")}
"""The sides a run may time, in the order they print: (the letter the tables give it, its colour in the plot)."""


# ------------------------------------------------------------------------------------------------ in the child


class Clock:
    """Training wall-clock that stops while the policy is evaluated."""

    def __init__(self) -> None:
        self.spent = 0.0
        self.started = time.perf_counter()

    def now(self) -> float:
        return self.spent + (time.perf_counter() - self.started)

    def pause(self) -> None:
        self.spent = self.now()

    def resume(self) -> None:
        self.started = time.perf_counter()


def _evaluate(env: str, policy, episodes: int, seed: int) -> float:
    from envs import get_spec
    from workers.engine.rollout import rollout

    _, eps = rollout(get_spec(env), policy, [10_000 + 100 * seed + i for i in range(episodes)])
    return float(sum(e.env_return for e in eps) / len(eps))


def child_sb3(env: str, seed: int, cap: float, every: float, episodes: int, same: bool = False) -> dict:
    """Plain SB3 on Gymnasium's envs: with the old product settings (``SB3_SETTINGS``), or with ``same``, with the
    env's current ``PPODefaults`` (the engine's side's settings, so that only the engine differs)."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from envs import get_spec
    from envs.capture import quiet_mujoco
    from workers.engine.model import new_ppo

    quiet_mujoco()  # MuJoCo's compiler warnings to logging, not MUJOCO_LOG.TXT
    torch.set_num_threads(1)
    ppo = get_spec(env).ppo
    n_envs = ppo.n_envs if same else SB3_SETTINGS["n_envs"]
    venv = VecNormalize(
        DummyVecEnv([lambda: gym.make(env)] * n_envs),
        gamma=ppo.gamma,
        norm_obs=ppo.normalize_obs if same else True,
        norm_reward=ppo.normalize_reward if same else True,
    )
    venv.seed(seed)
    if same:
        model = new_ppo(venv, ppo, seed)
    else:
        model = PPO(
            "MlpPolicy",
            venv,
            n_steps=SB3_SETTINGS["n_steps"],
            batch_size=SB3_SETTINGS["batch_size"],
            n_epochs=SB3_SETTINGS["n_epochs"],
            learning_rate=3e-4,
            gamma=ppo.gamma,
            gae_lambda=ppo.gae_lambda,
            policy_kwargs={"net_arch": [64, 64], "log_std_init": -1.0},
            seed=seed,
            device="cpu",
        )
    clock, curve = Clock(), []

    def policy(obs):
        return model.predict(venv.normalize_obs(obs), deterministic=True)[0]

    class Every(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.next = every

        def _on_step(self) -> bool:
            if clock.now() >= self.next:
                self.next += every
                clock.pause()
                curve.append((clock.spent, int(self.num_timesteps), _evaluate(env, policy, episodes, seed)))
                clock.resume()
            return clock.now() < cap

    model.learn(total_timesteps=10**9, callback=Every())
    clock.pause()
    curve.append((clock.spent, int(model.num_timesteps), _evaluate(env, policy, episodes, seed)))
    return {"curve": curve, "steps": int(model.num_timesteps), "seconds": clock.spent}


def child_engine(env: str, seed: int, cap: float, every: float, episodes: int, threads: int) -> dict:
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    from envs import get_spec
    from workers.engine.batched import BatchedEnv
    from workers.engine.model import build_model, learn
    from workers.engine.wrapper import ContractReward
    from workers.program.program import load_program

    torch.set_num_threads(1)  # as training does: the networks are small, the threads go to the simulator
    spec = get_spec(env)
    program = load_program(spec.reference_reward)
    batched = BatchedEnv(
        spec, [seed * 1000 + i for i in range(spec.ppo.n_envs)], threads=threads, needs=program.attributes
    )
    model = build_model(ContractReward(batched, program), spec.ppo, seed)
    clock, curve = Clock(), []

    class Every(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.next = every

        def _on_step(self) -> bool:
            if clock.now() >= self.next:
                self.next += every
                clock.pause()
                curve.append((clock.spent, int(self.num_timesteps), _evaluate(env, model.policy, episodes, seed)))
                clock.resume()
            return clock.now() < cap

    learn(model, 10**9, Every())
    clock.pause()
    steps = int(model.ppo.num_timesteps)
    curve.append((clock.spent, steps, _evaluate(env, model.policy, episodes, seed)))
    return {"curve": curve, "steps": steps, "seconds": clock.spent, "ppo": spec.ppo.__dict__}


def child_ceiling(env: str, seconds: float, threads: int) -> dict:
    import numpy as np

    from envs import get_spec
    from workers.engine.batched import BatchedEnv

    spec = get_spec(env)
    batched = BatchedEnv(spec, list(range(spec.ppo.n_envs)), threads=threads)
    batched.reset()
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(64, batched.num_envs, batched.act_dim)).astype(np.float32)
    k, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        batched.step(actions[k % 64])
        k += 1
    return {"steps_per_second": k * batched.num_envs / (time.perf_counter() - started), "n_envs": batched.num_envs}


# ------------------------------------------------------------------------------------------------ the parent


def _run_child(args: list[str], threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *args]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def first_reach(curve: list, threshold: float) -> float | None:
    return next((t for t, _, ret in curve if ret >= threshold), None)


def summarise(runs: list[dict], thresholds: tuple[float, ...]) -> dict:
    out: dict = {"steps_per_second": [], "final_return": [], "time_to": {}}
    for r in runs:
        out["steps_per_second"].append(r["steps"] / r["seconds"])
        out["final_return"].append(r["curve"][-1][2])
    for th in thresholds:
        times = [first_reach(r["curve"], th) for r in runs]
        reached = [t for t in times if t is not None]
        middle = statistics.median([math.inf if t is None else t for t in times]) if times else math.inf
        out["time_to"][str(int(th))] = {
            "per_seed": times,
            "reached": f"{len(reached)}/{len(times)}",
            "median": middle if math.isfinite(middle) else None,  # a seed that never got there counts as slowest
            # too many seeds never got there within the cap: the median is beyond it, by how much is not known
            "median_at_least": min(r["seconds"] for r in runs) if times and not math.isfinite(middle) else None,
            "min": min(reached) if reached else None,
            "max": max(reached) if reached else None,
        }
    sps = out["steps_per_second"]
    out["steps_per_second_median"] = median(sps)
    out["steps_per_second_spread"] = [min(sps), max(sps)]
    out["final_return_median"] = median(out["final_return"])
    out["final_return_spread"] = [min(out["final_return"]), max(out["final_return"])]
    return out


def _time_ratios(slow: dict, fast: dict, key: str = "median") -> dict:
    """Per threshold, ``slow``'s time (its ``key``) over ``fast``'s median; None where either is missing."""
    return {
        th: (slow["time_to"][th][key] / fast["time_to"][th]["median"])
        if slow["time_to"][th].get(key) and fast["time_to"][th]["median"]
        else None
        for th in slow["time_to"]
    }


def env_result(runs: dict[str, list], ceiling: dict, thresholds: tuple[float, ...]) -> dict:
    """One env's sides summarised, its ceiling, and the ratios between the sides."""
    res: dict = {side: {"runs": runs[side], **summarise(runs[side], thresholds)} for side in runs}
    res["ceiling"] = ceiling
    a, b = res["sb3"], res["engine"]
    res["ratios"] = {
        "engine_over_sb3_steps_per_second": b["steps_per_second_median"] / a["steps_per_second_median"],
        "engine_over_ceiling_steps_per_second": b["steps_per_second_median"] / ceiling["steps_per_second"],
        "time_to_threshold_sb3_over_engine": _time_ratios(a, b),
        "time_to_threshold_sb3_over_engine_at_least": _time_ratios(a, b, "median_at_least"),
        "final_return_engine_minus_sb3_median": b["final_return_median"] - a["final_return_median"],
    }
    if "sb3_same" in res:  # the engine's own share: the same settings on both sides
        d = res["sb3_same"]
        res["ratios"]["engine_over_sb3_same_steps_per_second"] = (
            b["steps_per_second_median"] / d["steps_per_second_median"]
        )
        res["ratios"]["time_to_threshold_sb3_same_over_engine"] = _time_ratios(d, b)
    return res


def plot(doc: dict, path: Path) -> None:
    plt = pyplot()
    panels = len(doc["envs"]) + 1
    cols = min(3, panels)
    rows = -(-panels // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(5.5 * cols, 4.2 * rows), squeeze=False)
    axes = list(grid.flat)
    for ax in axes[panels:]:
        ax.axis("off")
    for ax, (env, res) in zip(axes, doc["envs"].items(), strict=False):
        for side in [k for k in SIDES if k in res]:
            for i, run in enumerate(res[side]["runs"]):
                t = [p[0] for p in run["curve"]]
                ret = [p[2] for p in run["curve"]]
                ax.plot(
                    t,
                    ret,
                    color=SIDES[side][1],
                    alpha=0.8,
                    label=f"({SIDES[side][0]}) {side}" if i == 0 else None,
                )
        for th in TARGETS.get(env, ()):
            ax.axhline(th, color="k", lw=0.6, ls=":")
        ax.set_title(f"{env}" + (" (QUICK)" if doc["quick"] else ""))
        ax.set_xlabel("training wall-clock (s, evaluation excluded)")
        ax.set_ylabel("evaluation return (Gymnasium reward)")
        ax.legend(loc="upper left")
    ax = axes[panels - 1]
    names = list(doc["envs"])
    for k, (label, get) in enumerate(
        (
            ("(a) sb3", lambda r: r["sb3"]["steps_per_second_median"]),
            ("(b) engine", lambda r: r["engine"]["steps_per_second_median"]),
            ("(c) ceiling", lambda r: r["ceiling"]["steps_per_second"]),
        )
    ):
        ax.bar([i + 0.27 * (k - 1) for i in range(len(names))], [get(doc["envs"][n]) for n in names], 0.27, label=label)
    ax.set_xticks(range(len(names)), names, rotation=20)
    ax.set_ylabel("env steps / s (median over seeds)")
    ax.set_title("training speed")
    ax.legend()
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cap", type=float, default=110.0, help="training wall-clock of each run, seconds")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-every", type=float, default=10.0)
    parser.add_argument("--eval-episodes", type=int, default=3)
    parser.add_argument("--envs", default=None, help="comma-separated env names (default: every registered env)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--sb3-same-settings",
        action="store_true",
        help="also plain SB3 with the env's current PPODefaults (only the engine differs from side b)",
    )
    parser.add_argument(
        "--name",
        default="time_to_fitness",
        help="file name of the JSON and plot (a short all-envs run beside the main one)",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, env, seed, cap, every, episodes, threads = args.child
        if kind in ("sb3", "sb3_same"):
            res = child_sb3(env, int(seed), float(cap), float(every), int(episodes), same=kind == "sb3_same")
        elif kind == "engine":
            res = child_engine(env, int(seed), float(cap), float(every), int(episodes), int(threads))
        else:
            res = child_ceiling(env, float(cap), int(threads))
        print(json.dumps(finite(res), default=float, allow_nan=False))
        return
    cap = 6.0 if args.quick else args.cap
    every = 3.0 if args.quick else args.eval_every
    seeds = 1 if args.quick else args.seeds
    doc: dict = {
        "quick": args.quick,
        "machine": machine_info(),
        "settings": {
            "cap_seconds_per_run": cap,
            "note": f"each training is capped at {cap:g} s of training wall-clock (evaluations not counted); "
            "the whole benchmark takes envs x seeds x 2 trainings of that, plus evaluations",
            "seeds": seeds,
            "threads_engine": args.threads,
            "eval_every_seconds": every,
            "eval_episodes": args.eval_episodes,
            "sb3": SB3_SETTINGS,
        },
        "envs": {},
    }
    t0 = time.perf_counter()
    from envs import names

    for env in args.envs.split(",") if args.envs else names():
        thresholds = TARGETS.get(env, ())
        ceiling = _run_child(["ceiling", env, "0", str(min(cap, 10.0)), "0", "0", str(args.threads)], args.threads)
        print(f"{env}: (c) ceiling {ceiling['steps_per_second']:,.0f} env steps/s (N={ceiling['n_envs']})", flush=True)
        sides = [("sb3", 1), ("engine", args.threads)] + ([("sb3_same", 1)] if args.sb3_same_settings else [])
        runs: dict[str, list] = {side: [] for side, _ in sides}
        for seed in range(seeds):  # interleaved, so that a busy spell hits every side
            for side, threads in sides:
                r = _run_child(
                    [side, env, str(seed), str(cap), str(every), str(args.eval_episodes), str(threads)], threads
                )
                runs[side].append(r)
                print(
                    f"{env} seed {seed} ({side}): {r['steps'] / r['seconds']:,.0f} steps/s, "
                    f"final return {r['curve'][-1][2]:,.0f}, curve {[(round(t), round(x)) for t, _, x in r['curve']]}",
                    flush=True,
                )
        res = env_result(runs, ceiling, thresholds)
        doc["envs"][env] = res
    doc["total_seconds"] = time.perf_counter() - t0
    doc["machine"]["load_average_at_end"] = load_average()
    write_outputs(args.out, args.name, doc, plot)
    for env, res in doc["envs"].items():
        print(
            f"\n{env}: steps/s a {res['sb3']['steps_per_second_median']:,.0f}  b {res['engine']['steps_per_second_median']:,.0f}  c {res['ceiling']['steps_per_second']:,.0f}"
        )
        print(f"  ratios {json.dumps(finite(res['ratios']), default=float, allow_nan=False)}")
        for side in [k for k in SIDES if k in res]:
            print(
                f"  {side}: time_to {json.dumps(finite(res[side]['time_to']), allow_nan=False)}  final {res[side]['final_return_median']:,.0f} {res[side]['final_return_spread']}"
            )


if __name__ == "__main__":
    main()
