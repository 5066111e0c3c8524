"""PPO steps/s on HalfCheetah-v5: the reference reward through contract + wrapper + sandbox vs plain SB3.

Issue: "PPO steps/s on HalfCheetah-v5 with the reference reward through the whole contract + wrapper + sandbox,
against plain SB3 with Gymnasium's reward, same hyperparameters, side by side in one run. Target: the ratio
>= 0.95. Also print raw env steps/s."

A = rewardsmith: ``workers.engine.evaluate.evaluate_reward`` with the env's reference reward program (sandboxed
subprocess, the batched engine writing raw rows (workers.engine.batched.BatchedEnv), ContractReward wrapper calling the program once per vector step, VecNormalize).
B = plain SB3: a subprocess (this file with ``--baseline-child``) that builds PPO with exactly the same
hyperparameters (``envs.get_spec(env).ppo``) on a DummyVecEnv of ``gymnasium.make(env)`` + VecNormalize, with
torch.set_num_threads(1) and OMP_NUM_THREADS=1 like the sandbox, and times ``model.learn``.

The pairs run A, B, A, B, ... in one process so that both sides see the same machine load. Figures:
(a) learn-phase steps/s (primary; the target's ratio A/B), (b) whole-process wall time (secondary: includes the
sandbox start, imports, the dry run and the one-episode evaluation on A's side), and raw env steps/s with the
contract's own per-step cost in microseconds.

    .venv/bin/python benchmarks/training_overhead.py            # 3 pairs x 100,000 steps
    .venv/bin/python benchmarks/training_overhead.py --quick    # 1 pair x 8,192 steps, to validate
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS, ROOT, finite, machine_info, median, pyplot, save_figure, write_outputs

NAME = "training_overhead"
TARGET = 0.95
SANDBOX_OPTIONS = {"checkpoints": 1, "eval_episodes": 1, "checkpoint_episodes": 1}
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


# ------------------------------------------------------------------------------------------------ B: plain SB3


def baseline_child(env_id: str, timesteps: int, seed: int) -> None:
    """Runs in its own process: plain SB3 PPO with Gymnasium's reward; prints one JSON line."""
    t0 = time.perf_counter()
    import gymnasium as gym
    import numpy as np
    import torch
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    import envs
    from workers.engine.model import new_ppo

    imported = time.perf_counter()
    ppo = envs.get_spec(env_id).ppo
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    np.random.seed(seed)
    vec = DummyVecEnv([lambda: gym.make(env_id) for _ in range(ppo.n_envs)])
    vec.seed(seed)
    venv = VecNormalize(vec, norm_obs=ppo.normalize_obs, norm_reward=ppo.normalize_reward, gamma=ppo.gamma)
    model = new_ppo(venv, ppo, seed)
    start = time.perf_counter()
    model.learn(total_timesteps=timesteps)
    learn_seconds = time.perf_counter() - start
    vec.close()
    print(
        json.dumps(
            finite(
                {
                    "timesteps": int(model.num_timesteps),
                    "learn_seconds": learn_seconds,
                    "steps_per_second": model.num_timesteps / learn_seconds,
                    "import_seconds": imported - t0,
                    "setup_seconds": start - imported,
                    "torch_threads": torch.get_num_threads(),
                }
            ),
            allow_nan=False,
        )
    )


def run_baseline(env_id: str, timesteps: int, seed: int) -> dict:
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--baseline-child",
            "--env",
            env_id,
            "--timesteps",
            str(timesteps),
            "--seed",
            str(seed),
        ],
        env={**os.environ, **THREAD_ENV, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"the plain SB3 baseline failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = wall
    return result


# ------------------------------------------------------------------------------------------ A: the whole contract


def run_contract(env_id: str, timesteps: int, seed: int, workdir: Path, wall_limit: float) -> dict:
    import envs
    from workers.engine.evaluate import evaluate_reward
    from workers.sandbox.runner import Limits

    spec = envs.get_spec(env_id)
    out = workdir / f"contract-{time.monotonic_ns()}"
    started = time.monotonic()
    result = evaluate_reward(
        env=env_id,
        reward_source=spec.reference_reward,
        fitness_name=spec.default_fitness,
        fitness_source=None,
        timesteps=timesteps,
        seed=seed,
        out=out,
        limits=Limits(wall_seconds=wall_limit),
        video=False,
        options=dict(SANDBOX_OPTIONS),
    )
    wall = time.monotonic() - started
    if result.get("status") != "ok":
        raise RuntimeError(
            f"the sandboxed training ended '{result.get('status')}': {result.get('error')}\n"
            f"{result.get('stderr_tail', '')[-3000:]}"
        )
    return {
        "timesteps": int(result["timesteps"]),
        "learn_seconds": float(result["learn_seconds"]),
        "steps_per_second": float(result["steps_per_second"]),
        "engine_seconds": float(result["seconds"]),
        "wall_seconds": wall,
        "fitness": result["fitness"]["mean"] if result.get("fitness") else None,
        "isolation": result.get("isolation", {}),
    }


# ------------------------------------------------------------------------------------------------ raw env speed


def raw_env_speed(env_id: str, steps: int, calls: int, seed: int, repeats: int) -> dict:
    """Env steps/s of a plain env, of a StateCapture env, vectorised with and without the contract; µs per call.

    Each measurement runs ``repeats`` times, interleaved, and the median is reported (the machine is noisy).
    """
    import gymnasium as gym
    import numpy as np
    from stable_baselines3.common.vec_env import DummyVecEnv

    import envs
    from envs.make import layout_of, make_env
    from envs.state import build_state
    from workers.engine.wrapper import ContractReward
    from workers.program.program import call_reward, load_program

    spec = envs.get_spec(env_id)
    n = spec.ppo.n_envs
    rng = np.random.default_rng(seed)
    program = load_program(spec.reference_reward, "reward")
    layout = layout_of(spec)

    def single(env) -> float:
        actions = rng.uniform(env.action_space.low, env.action_space.high, size=(steps, env.action_space.shape[0]))
        env.reset(seed=seed)
        t = time.perf_counter()
        for a in actions:
            _, _, term, trunc, _ = env.step(a)
            if term or trunc:
                env.reset()
        dt = time.perf_counter() - t
        env.close()
        return steps / dt

    def vectorised(vec) -> float:
        low, high = vec.action_space.low, vec.action_space.high
        vec_steps = max(1, steps // n)
        actions = rng.uniform(low, high, size=(vec_steps, n, low.shape[0])).astype(np.float32)
        vec.seed(seed)
        vec.reset()
        t = time.perf_counter()
        for a in actions:
            vec.step(a)
        dt = time.perf_counter() - t
        vec.close()
        return vec_steps * n / dt

    def contract_vec() -> float:
        # Exactly what training builds: the batched engine, the contract wrapper on top.
        from workers.engine.batched import BatchedEnv

        contract = ContractReward(BatchedEnv(spec, [seed + i for i in range(n)], needs=program.attributes), program)
        vec_steps = max(1, steps // n)
        actions = rng.uniform(-1, 1, size=(vec_steps, n, contract.env.act_dim)).astype(np.float32)
        contract.reset()
        t = time.perf_counter()
        for a in actions:
            contract.step(a)
        return vec_steps * n / (time.perf_counter() - t)

    measures = {
        "plain_env_steps_per_second": lambda: single(gym.make(env_id)),
        "statecapture_env_steps_per_second": lambda: single(make_env(spec)),
        "plain_vec_steps_per_second": lambda: vectorised(DummyVecEnv([lambda: gym.make(env_id) for _ in range(n)])),
        "contract_vec_steps_per_second": contract_vec,
    }
    samples: dict[str, list[float]] = {k: [] for k in measures}
    for _ in range(repeats):
        for key, fn in measures.items():
            samples[key].append(fn())
    out: dict = {"env": env_id, "steps": steps, "n_envs": n, "repeats": repeats, "samples": samples}
    out.update({k: median(v) for k, v in samples.items()})

    # The contract's own cost per vector step, on a buffer filled by real steps.
    buffer = np.zeros((n, layout.size))
    envs_ = [make_env(spec, row=buffer[i]) for i in range(n)]
    for i, e in enumerate(envs_):
        e.reset(seed=seed + i)
        for _ in range(10):
            e.step(e.action_space.sample())
    action = rng.uniform(-1, 1, size=(n, envs_[0].action_space.shape[0]))
    for e in envs_:
        e.close()

    def per_call(fn) -> float:
        for _ in range(min(100, calls)):
            fn()
        runs = []
        for _ in range(repeats):
            t = time.perf_counter()
            for _ in range(calls):
                fn()
            runs.append((time.perf_counter() - t) / calls * 1e6)
        return median(runs)

    state = build_state(layout, buffer)
    build_us = per_call(lambda: build_state(layout, buffer))
    reward_us = per_call(lambda: call_reward(program, state, action))
    both_us = per_call(lambda: call_reward(program, build_state(layout, buffer), action))
    out["contract_calls_timed"] = calls
    out["build_state_us_per_vector_step"] = build_us
    out["call_reward_us_per_vector_step"] = reward_us
    out["contract_us_per_vector_step"] = both_us
    out["contract_us_per_env_step"] = both_us / n
    out["plain_env_us_per_step"] = 1e6 / out["plain_env_steps_per_second"]
    out["statecapture_us_per_step"] = 1e6 / out["statecapture_env_steps_per_second"] - out["plain_env_us_per_step"]
    out["plain_vec_us_per_env_step"] = 1e6 / out["plain_vec_steps_per_second"]
    out["contract_vec_us_per_env_step"] = 1e6 / out["contract_vec_steps_per_second"]
    out["contract_vec_ratio"] = out["contract_vec_steps_per_second"] / out["plain_vec_steps_per_second"]
    return out


# ---------------------------------------------------------------------------------------------------- reporting


def summarise(pairs: list[dict]) -> dict:
    ratios = [p["ratio_learn"] for p in pairs]
    walls = [p["ratio_wall"] for p in pairs]
    return {
        "pairs": len(pairs),
        "ratio_learn_median": median(ratios),
        "ratio_learn_min": min(ratios),
        "ratio_learn_max": max(ratios),
        "ratio_wall_median": median(walls),
        "ratio_wall_min": min(walls),
        "ratio_wall_max": max(walls),
        "contract_steps_per_second_median": median([p["contract"]["steps_per_second"] for p in pairs]),
        "baseline_steps_per_second_median": median([p["baseline"]["steps_per_second"] for p in pairs]),
        "contract_wall_seconds_median": median([p["contract"]["wall_seconds"] for p in pairs]),
        "baseline_wall_seconds_median": median([p["baseline"]["wall_seconds"] for p in pairs]),
        "target": TARGET,
        "meets_target": median(ratios) >= TARGET,
    }


def plot(doc: dict, path: Path) -> None:
    plt = pyplot()
    pairs, raw, s = doc["pairs"], doc.get("raw_env"), doc["summary"]
    fig, axes = plt.subplots(1, 3 if raw else 2, figsize=(17 if raw else 12, 5))
    idx = list(range(1, len(pairs) + 1))
    w = 0.38
    ax = axes[0]
    a = [p["contract"]["steps_per_second"] for p in pairs]
    b = [p["baseline"]["steps_per_second"] for p in pairs]
    ax.bar([i - w / 2 for i in idx], b, w, label="plain SB3 (Gymnasium reward)", color="#888888")
    ax.bar([i + w / 2 for i in idx], a, w, label="rewardsmith (contract + wrapper + sandbox)", color="#1f77b4")
    for i, p in zip(idx, pairs, strict=False):
        ax.annotate(
            f"{p['ratio_learn']:.3f}",
            (i, max(p["contract"]["steps_per_second"], p["baseline"]["steps_per_second"])),
            ha="center",
            va="bottom",
            fontsize=9,
        )
    ax.set_xticks(idx)
    ax.set_xlabel("pair (ratio A/B above the bars)")
    ax.set_ylabel("PPO steps/s (learn phase)")
    ax.set_title(f"learn-phase steps/s: median ratio {s['ratio_learn_median']:.3f} (target ≥ {TARGET})")
    ax.set_ylim(0, max(a + b) * 1.3)
    ax.legend(fontsize=8, loc="upper left")

    ax = axes[1]
    a = [p["contract"]["wall_seconds"] for p in pairs]
    b = [p["baseline"]["wall_seconds"] for p in pairs]
    ax.bar([i - w / 2 for i in idx], b, w, label="plain SB3 process", color="#888888")
    ax.bar([i + w / 2 for i in idx], a, w, label="evaluate_reward (sandbox, dry run, eval)", color="#1f77b4")
    ax.set_xticks(idx)
    ax.set_xlabel("pair")
    ax.set_ylabel("whole-process wall time, s")
    ax.set_title(f"wall time: median steps/s ratio {s['ratio_wall_median']:.3f}")
    ax.set_ylim(0, max(a + b) * 1.3)
    ax.legend(fontsize=8, loc="upper left")

    if raw:
        ax = axes[2]
        labels = [
            "MuJoCo env\nstep",
            "StateCapture\n(extra)",
            "build_state\n(/N envs)",
            "call_reward\n(/N envs)",
            f"vec x{raw['n_envs']}\nplain",
            f"vec x{raw['n_envs']}\n+contract",
        ]
        n = raw["n_envs"]
        vals = [
            raw["plain_env_us_per_step"],
            raw["statecapture_us_per_step"],
            raw["build_state_us_per_vector_step"] / n,
            raw["call_reward_us_per_vector_step"] / n,
            raw["plain_vec_us_per_env_step"],
            raw["contract_vec_us_per_env_step"],
        ]
        colors = ["#888888", "#1f77b4", "#1f77b4", "#1f77b4", "#888888", "#1f77b4"]
        ax.bar(range(len(vals)), vals, color=colors)
        for i, v in enumerate(vals):
            ax.annotate(f"{v:.1f}", (i, v), ha="center", va="bottom", fontsize=8)
        ax.set_ylim(0, max(vals) * 1.15)
        ax.set_xticks(range(len(vals)))
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_ylabel("µs per env step (median of interleaved repeats)")
        ax.set_title(
            f"raw env: {raw['plain_env_steps_per_second']:,.0f} steps/s; contract {raw['contract_us_per_env_step']:.1f} µs/env step"
        )
    mode = " (QUICK: validation only)" if doc["settings"]["quick"] else ""
    fig.suptitle(
        f"{doc['settings']['env']}: {doc['settings']['timesteps']:,} steps × {len(pairs)} pairs, "
        f"{doc['machine']['cpu_count']} CPUs ({doc['machine']['cpu_model']}){mode}",
        fontsize=10,
    )
    save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--env", default="HalfCheetah-v5")
    ap.add_argument("--pairs", type=int, default=3, help="A/B pairs (A = rewardsmith, B = plain SB3)")
    ap.add_argument("--timesteps", type=int, default=100_000, help="PPO steps of each training")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--raw-steps", type=int, default=20_000, help="env steps of each raw-speed measurement")
    ap.add_argument("--raw-calls", type=int, default=5_000, help="timed calls of build_state / call_reward")
    ap.add_argument("--raw-repeats", type=int, default=3, help="interleaved repeats of each raw measurement (median)")
    ap.add_argument(
        "--warmup-steps",
        type=int,
        default=2_048,
        help="an unrecorded A and B of this many steps first (page cache, imports); 0 for none",
    )
    ap.add_argument("--wall-limit", type=float, default=7200.0, help="sandbox wall-clock limit of one training, s")
    ap.add_argument("--quick", action="store_true", help="1 pair x 8,192 steps, small raw measurements, no warm-up")
    ap.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON and PNG")
    ap.add_argument("--baseline-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.baseline_child:
        baseline_child(args.env, args.timesteps, args.seed)
        return
    if args.quick:
        args.pairs, args.timesteps, args.raw_steps, args.raw_calls, args.warmup_steps = 1, 8_192, 2_000, 500, 0
        args.raw_repeats = min(args.raw_repeats, 2)

    doc: dict = {
        "benchmark": NAME,
        "issue": "PPO steps/s with the reference reward through contract + wrapper + sandbox vs plain SB3; target ratio >= 0.95",
        "settings": {
            "env": args.env,
            "pairs": args.pairs,
            "timesteps": args.timesteps,
            "seed": args.seed,
            "raw_steps": args.raw_steps,
            "raw_calls": args.raw_calls,
            "raw_repeats": args.raw_repeats,
            "warmup_steps": args.warmup_steps,
            "quick": args.quick,
            "sandbox_options": SANDBOX_OPTIONS,
            "order": "A (rewardsmith), B (plain SB3), A, B, ...",
        },
        "machine": machine_info(),
    }
    from dataclasses import asdict

    import envs

    doc["settings"]["ppo"] = asdict(envs.get_spec(args.env).ppo)
    print(f"{NAME}: {args.env}, {args.pairs} pair(s) x {args.timesteps:,} steps, PPO {doc['settings']['ppo']}")
    print(
        f"machine: {doc['machine']['cpu_count']} CPUs ({doc['machine']['cpu_model']}), load {doc['machine']['load_average_at_start']}"
    )

    t = time.monotonic()
    raw = raw_env_speed(args.env, args.raw_steps, args.raw_calls, args.seed, args.raw_repeats)
    doc["raw_env"] = raw
    print(
        f"\nraw env ({args.raw_steps:,} random-action steps, median of {args.raw_repeats}, {time.monotonic() - t:.0f} s):"
    )
    print(
        f"  plain {args.env}:                 {raw['plain_env_steps_per_second']:9,.0f} steps/s  ({raw['plain_env_us_per_step']:.1f} µs/step)"
    )
    print(
        f"  make_env (single-env StateCapture, eval only):{raw['statecapture_env_steps_per_second']:9,.0f} steps/s  (+{raw['statecapture_us_per_step']:.1f} µs/step)"
    )
    print(f"  DummyVecEnv x{raw['n_envs']} plain:             {raw['plain_vec_steps_per_second']:9,.0f} env steps/s")
    print(
        f"  DummyVecEnv x{raw['n_envs']} + ContractReward:  {raw['contract_vec_steps_per_second']:9,.0f} env steps/s  (ratio {raw['contract_vec_ratio']:.3f})"
    )
    print(
        f"  contract per vector step of {raw['n_envs']}: build_state {raw['build_state_us_per_vector_step']:.1f} µs + "
        f"call_reward {raw['call_reward_us_per_vector_step']:.1f} µs = {raw['contract_us_per_vector_step']:.1f} µs "
        f"({raw['contract_us_per_env_step']:.1f} µs per env step)"
    )

    with tempfile.TemporaryDirectory(prefix="rewardsmith-bench-") as tmp:
        workdir = Path(tmp)
        if args.warmup_steps:
            print(f"\nwarm-up: one A and one B of {args.warmup_steps:,} steps (not recorded)")
            run_contract(args.env, args.warmup_steps, args.seed, workdir, args.wall_limit)
            run_baseline(args.env, args.warmup_steps, args.seed)
        pairs = []
        print(
            f"\n{'pair':>4} {'A steps/s':>10} {'B steps/s':>10} {'ratio':>7}   {'A wall s':>9} {'B wall s':>9} {'ratio':>7}"
        )
        for i in range(args.pairs):
            a = run_contract(args.env, args.timesteps, args.seed, workdir, args.wall_limit)
            b = run_baseline(args.env, args.timesteps, args.seed)
            pair = {
                "pair": i + 1,
                "contract": a,
                "baseline": b,
                "ratio_learn": a["steps_per_second"] / b["steps_per_second"],
                # steps per whole-process second, so that > 1 still means A is faster
                "ratio_wall": (a["timesteps"] / a["wall_seconds"]) / (b["timesteps"] / b["wall_seconds"]),
            }
            pairs.append(pair)
            print(
                f"{i + 1:>4} {a['steps_per_second']:>10,.0f} {b['steps_per_second']:>10,.0f} {pair['ratio_learn']:>7.3f}   "
                f"{a['wall_seconds']:>9.1f} {b['wall_seconds']:>9.1f} {pair['ratio_wall']:>7.3f}",
                flush=True,
            )
    doc["pairs"] = pairs
    doc["summary"] = s = summarise(pairs)
    doc["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]

    print("\nsummary (A = rewardsmith contract + wrapper + sandbox, B = plain SB3, same PPO settings and seed)")
    print(
        f"  learn-phase steps/s ratio A/B: median {s['ratio_learn_median']:.3f} (min {s['ratio_learn_min']:.3f}, "
        f"max {s['ratio_learn_max']:.3f}) — target ≥ {TARGET}: {'MET' if s['meets_target'] else 'NOT MET'}"
    )
    print(
        f"  median learn steps/s: A {s['contract_steps_per_second_median']:,.0f}, B {s['baseline_steps_per_second_median']:,.0f}"
    )
    print(
        f"  whole-process wall: median A {s['contract_wall_seconds_median']:.1f} s, B {s['baseline_wall_seconds_median']:.1f} s; "
        f"steps per wall second ratio {s['ratio_wall_median']:.3f} (A also pays the sandbox start, dry run, a 1-episode "
        "checkpoint and evaluation, saving)"
    )
    if args.quick:
        print("  (--quick: too short for the target; run without --quick for the real figures)")
    write_outputs(args.out, NAME, doc, plot)


if __name__ == "__main__":
    main()
