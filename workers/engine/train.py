"""Train PPO with a candidate reward and measure the policy's fitness (runs inside the sandbox).

Reads like CleanRL: a settings dataclass, a ``make_env`` thunk, a seeding block, metric
keys grouped by prefix. Returns the result dict that becomes ``result.json``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from envs import get_spec
from envs.make import make_env, make_gym_env
from envs.spec import EnvSpec, PPODefaults
from workers.engine.dryrun import dry_run_reward
from workers.engine.guard import Guard
from workers.engine.ppo import new_ppo
from workers.engine.rollout import analyse_episode, episode_fitness, eval_seeds, rollout
from workers.engine.vec import CaptureVecEnv
from workers.engine.wrapper import ContractReward
from workers.sandbox.program import ProgramError, load_program


@dataclass
class TrainConfig:
    """One training of one reward program."""

    env: str
    """Registered env name, e.g. HalfCheetah-v5."""
    reward_source: str
    """The reward program (Python source under the reward contract)."""
    fitness_source: str
    """The fitness program (built-in metric source or a user's program)."""
    fitness_name: str = "custom"
    """Name shown for the fitness."""
    timesteps: int = 50_000
    """Total env steps of PPO training (over all parallel envs)."""
    seed: int = 0
    """Seeds training envs (seed + i), the policy, and the evaluation seeds (kept apart)."""
    checkpoints: int = 10
    """How many times during training to record component statistics and fitness."""
    checkpoint_episodes: int = 1
    """Deterministic episodes per checkpoint fitness measurement."""
    eval_episodes: int = 5
    """Deterministic episodes of the final evaluation."""
    episode_steps: int | None = None
    """Cap on episode length (default: the env's own limit, 1000)."""
    video: bool = False
    """Record an mp4 of one deterministic episode of the final policy."""
    video_steps: int = 300
    """Frames in the video (one per control step)."""
    ppo: dict = field(default_factory=dict)
    """Overrides of the env's PPO defaults (n_envs, n_steps, batch_size, net_arch, ...)."""
    resume_from: str | None = None
    """Directory with policy.zip and vecnormalize.pkl of an earlier training of the same program to continue
    (successive halving); ``timesteps`` is then the total, including the steps already trained."""
    report_seconds: float = 5.0
    """Seconds between two progress events during training (the sandbox sets it from its watchdog's limit)."""
    reward_cost_ratio: float = 10.0
    """The most one reward call may cost, as a multiple of simulating the batch (the sandbox sets it)."""


def _ppo_settings(spec: EnvSpec, overrides: dict) -> PPODefaults:
    known = set(PPODefaults.__dataclass_fields__)
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown PPO settings {sorted(unknown)}; known: {sorted(known)}")
    if "net_arch" in overrides:
        overrides = {**overrides, "net_arch": tuple(overrides["net_arch"])}
    return replace(spec.ppo, **overrides)


def train(config: TrainConfig, workdir: Path, emit: Callable[[dict], None]) -> dict:
    """Dry-run, train, checkpoint, evaluate; writes policy.zip and vecnormalize.pkl into ``workdir``."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import VecNormalize

    started = time.perf_counter()
    spec = get_spec(config.env)
    ppo = _ppo_settings(spec, config.ppo)
    dry = dry_run_reward(
        config.env,
        config.reward_source,
        seed=config.seed,
        episode_steps=config.episode_steps,
        cost_ratio=config.reward_cost_ratio,
    )
    reward = load_program(config.reward_source, "reward")
    fitness = load_program(config.fitness_source, "fitness")

    # Seeding
    torch.set_num_threads(1)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)

    n = ppo.n_envs
    probe = make_env(spec)
    layout = probe.layout
    probe.close()
    buffer = np.zeros((n, layout.size))

    def thunk():
        return make_gym_env(spec, max_episode_steps=config.episode_steps)

    vec = CaptureVecEnv([thunk] * n, layout, buffer, needs=reward.attributes & layout.fields)
    vec.seed(config.seed)
    guard = Guard(seed=config.seed, cost_ratio=config.reward_cost_ratio)
    contract = ContractReward(vec, reward, layout, buffer, guard=guard)
    resume = Path(config.resume_from) if config.resume_from else None
    if resume is not None and (resume / "policy.zip").exists() and (resume / "vecnormalize.pkl").exists():
        venv = VecNormalize.load(str(resume / "vecnormalize.pkl"), contract)
        venv.training = True
        model = PPO.load(resume / "policy.zip", env=venv, device="cpu")
        model.set_random_seed(config.seed)
    else:
        resume = None
        venv = VecNormalize(contract, norm_obs=ppo.normalize_obs, norm_reward=ppo.normalize_reward, gamma=ppo.gamma)
    model = model if resume is not None else new_ppo(venv, ppo, config.seed)

    def policy(obs: np.ndarray) -> np.ndarray:
        actions, _ = model.predict(venv.normalize_obs(obs), deterministic=True)
        return actions

    checkpoints: list[dict] = []
    eval_time = [0.0]
    every = max(1, config.timesteps // max(1, config.checkpoints))

    def checkpoint(timesteps: int) -> None:
        t = time.perf_counter()
        window = contract.take_window().summary()
        _, episodes = rollout(
            spec, policy, eval_seeds(config.seed, config.checkpoint_episodes), max_steps=config.episode_steps
        )
        values = episode_fitness(fitness, layout, episodes)
        eval_time[0] += time.perf_counter() - t
        entry = {"timesteps": timesteps, "fitness": float(np.mean(values)), **window}
        checkpoints.append(entry)
        emit(
            {
                "event": "checkpoint",
                "timesteps": timesteps,
                "total": config.timesteps,
                "fitness": entry["fitness"],
                "episode_return": window["episode_return"],
            }
        )

    class Checkpoints(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.next_at = every * (1 + model.num_timesteps // every)
            self.report_at = time.monotonic() + config.report_seconds

        def _report(self) -> None:  # the sandbox's watchdog kills a training that stops reporting
            self.report_at = time.monotonic() + config.report_seconds
            emit({"event": "progress", "timesteps": self.num_timesteps, "total": config.timesteps})

        def _on_rollout_end(self) -> None:  # and before each policy update, which takes no steps
            self._report()

        def _on_step(self) -> bool:
            if time.monotonic() >= self.report_at:
                self._report()
            if self.num_timesteps >= self.next_at:
                self.next_at += every
                if self.num_timesteps < config.timesteps:
                    checkpoint(self.num_timesteps)
            return True

    start_timesteps = int(model.num_timesteps) if resume is not None else 0
    emit({"event": "start", "total": config.timesteps, "n_envs": n, "resumed_from": start_timesteps})
    learn_start = time.perf_counter()
    stage = "training"

    def failed(e: ProgramError) -> dict:
        return {
            "outcome": "failed",
            "error": f"during {stage}: {e}",
            "checkpoints": checkpoints,
            "dry_run": dry.to_dict(),
            "timesteps": int(model.num_timesteps),
            "resumed_from_timesteps": start_timesteps,
            "seconds": time.perf_counter() - started,
        }

    try:
        remaining = config.timesteps - model.num_timesteps
        if remaining > 0:  # a continued training may already have its budget (PPO rounds up to whole rollouts)
            model.learn(total_timesteps=remaining, callback=Checkpoints(), reset_num_timesteps=resume is None)
        learn_seconds = time.perf_counter() - learn_start - eval_time[0]
        stage = "the evaluation"
        checkpoint(int(model.num_timesteps))
        model.save(workdir / "policy.zip")
        venv.save(str(workdir / "vecnormalize.pkl"))
        _, episodes = rollout(
            spec, policy, eval_seeds(config.seed, config.eval_episodes), max_steps=config.episode_steps
        )
        values = episode_fitness(fitness, layout, episodes)
        analysis = [analyse_episode(layout, ep, reward) for ep in episodes]
    except ProgramError as e:
        return failed(e)
    result = {
        "env": config.env,
        "fitness_name": config.fitness_name,
        "fitness": {"mean": float(np.mean(values)), "std": float(np.std(values)), "per_episode": values},
        "checkpoints": checkpoints,
        "components": {name: [c["components"].get(name) for c in checkpoints] for name in dry.components},
        "episodes": analysis,
        "dry_run": dry.to_dict(),
        "warnings": list(dict.fromkeys(dry.warnings + contract.warnings)),
        "timesteps": int(model.num_timesteps),
        "learn_seconds": learn_seconds,
        "steps_per_second": (model.num_timesteps - start_timesteps) / max(learn_seconds, 1e-9),
        "ppo": asdict(ppo),
        "seeds": {"train": [config.seed + i for i in range(n)], "eval": eval_seeds(config.seed, config.eval_episodes)},
        "artifacts": {"policy": "policy.zip", "normalization": "vecnormalize.pkl"},
        "resumed_from_timesteps": start_timesteps,
    }
    if config.video:
        from workers.engine.video import record_video

        result["artifacts"]["video"] = record_video(
            spec,
            policy,
            workdir / "video.mp4",
            seed=eval_seeds(config.seed, 1)[0],
            steps=config.video_steps,
            max_steps=config.episode_steps,
        )
    vec.close()
    result["seconds"] = time.perf_counter() - started
    return result
