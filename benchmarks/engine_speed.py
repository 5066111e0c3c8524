"""Which batched MuJoCo stepping to build the engine on: env-steps/s of mujoco.batch against mujoco.rollout.

Steps N HalfCheetah-v5 simulations (5 substeps per env step, random controls) for a few seconds each way,
side by side in one run, at N = 16 / 64 / 256 and T threads:

- **batch**: ``mujoco.batch.Batch`` — live (N, ...) views, ``step(nstep=5)``: what the engine uses;
- **rollout**: ``mujoco.rollout.Rollout`` with its persistent pool — state in, (N, 5, nstate) states out, the
  last one fed back as the next initial state;
- **engine**: the whole ``BatchedEnv.step`` on top of the batch (Gymnasium's observation, reward, termination,
  auto-reset and the state-view rows), to show what the env layer costs;
- **gymnasium**: one ``gymnasium.make`` env in a Python loop, for scale.

.venv/bin/python benchmarks/engine_speed.py [--quick] [--threads 2] [--seconds 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import RESULTS, load_average, machine_info, median, pyplot, save_figure, write_outputs

ENV = "HalfCheetah-v5"


def _rate(step, n: int, seconds: float) -> float:
    """Env steps/s of calling ``step()`` (one step of ``n`` envs) for about ``seconds``."""
    step()  # warm
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        count += 1
    return count * n / (time.perf_counter() - started)


def measure(n: int, threads: int, seconds: float) -> dict[str, float]:
    import mujoco
    import numpy as np
    from mujoco import rollout
    from mujoco.batch import Batch

    import envs
    from workers.engine.batched import BatchedEnv

    spec = envs.get_spec(ENV)
    engine = BatchedEnv(spec, list(range(n)), threads=threads)
    model = engine.compiled.model
    rng = np.random.default_rng(0)
    controls = rng.uniform(-1, 1, size=(64, n, model.nu))
    k = [0]

    batch = Batch(model, n, threads)
    ctrl = batch.bind("ctrl")

    def batch_step() -> None:
        k[0] += 1
        ctrl[:] = controls[k[0] % 64]
        batch.step(nstep=5)

    datas = [mujoco.MjData(model) for _ in range(threads)]
    spec_ = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state = np.zeros((n, mujoco.mj_stateSize(model, spec_)))
    mujoco.mj_getState(model, datas[0], state[0], spec_)
    state[:] = state[0]
    pool = rollout.Rollout(nthread=threads)

    def rollout_step() -> None:
        k[0] += 1
        control = np.repeat(controls[k[0] % 64][:, None, :], 5, axis=1)
        out, _ = pool.rollout(model, datas, state, control, nstep=5, skip_checks=False)
        state[:] = out[:, -1]

    engine.reset()
    actions = controls.astype(np.float32)

    def engine_step() -> None:
        k[0] += 1
        engine.step(actions[k[0] % 64])

    import gymnasium as gym

    from envs.capture import quiet_mujoco

    quiet_mujoco()  # MuJoCo's compiler warnings to logging, not MUJOCO_LOG.TXT
    env = gym.make(ENV)
    env.reset(seed=0)

    def gym_step() -> None:
        k[0] += 1
        _, _, term, trunc, _ = env.step(actions[k[0] % 64][0])
        if term or trunc:
            env.reset()

    rates = {
        "batch": _rate(batch_step, n, seconds),
        "rollout": _rate(rollout_step, n, seconds),
        "engine": _rate(engine_step, n, seconds),
        "gymnasium": _rate(gym_step, 1, seconds / 2),
    }
    pool.close()
    return rates


def plot(doc: dict, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    sizes = [r["n"] for r in doc["runs"]]
    for name in ("batch", "rollout", "engine", "gymnasium"):
        ax.plot(sizes, [r["steps_per_second"][name] for r in doc["runs"]], marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("envs in the batch (N)")
    ax.set_ylabel("env steps / s")
    quick = " (QUICK)" if doc["quick"] else ""
    ax.set_title(f"{ENV}, {doc['settings']['threads']} threads{quick}")
    ax.legend()
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    seconds = 0.5 if args.quick else args.seconds
    doc = {"quick": args.quick, "machine": machine_info(), "settings": {"threads": args.threads, "seconds": seconds}}
    runs = []
    for n in (16, 64, 256):
        rates = measure(n, args.threads, seconds)
        runs.append({"n": n, "steps_per_second": rates})
        print(f"N={n:4d}  " + "  ".join(f"{k} {v:9,.0f}" for k, v in rates.items()))
    doc["runs"] = runs
    doc["batch_over_rollout_median"] = median(
        [r["steps_per_second"]["batch"] / r["steps_per_second"]["rollout"] for r in runs]
    )
    doc["machine"]["load_average_at_end"] = load_average()
    write_outputs(args.out, "engine_speed", doc, plot)


if __name__ == "__main__":
    main()
