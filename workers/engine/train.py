"""Train PPO with a candidate reward and measure the policy's fitness (runs inside the sandbox).

Reads like CleanRL: a settings dataclass, a ``make_env`` thunk, a seeding block, metric
keys grouped by prefix. ``train`` returns the ``TrainingResult`` that becomes ``result.json``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from envs import get_spec
from envs.capture import Layout
from envs.spec import EnvSpec, PPODefaults
from workers.engine.batched import BatchedEnv
from workers.engine.cost import FITNESS_FLOOR_SECONDS, CostBudget
from workers.engine.dryrun import dry_run_reward
from workers.engine.guard import Guard
from workers.engine.learner import POLICY_FILE, Learner, saved_timesteps
from workers.engine.ppo import learn
from workers.engine.result import Checkpoint, TrainingFailed, TrainingResult
from workers.engine.rollout import analyse_episode, episode_fitness, eval_seeds, rollout
from workers.engine.wrapper import ContractReward
from workers.program.program import Program, ProgramError, fitness_stats, load_program

Emit = Callable[[dict], None]
"""Sends one progress event to the parent process."""


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
    """Directory with the policy.pt of an earlier training of the same program to continue (successive
    halving); ``timesteps`` is then the total, including the steps already trained."""
    threads: int = 1
    """C threads that step the batch of envs (the learner keeps one torch thread)."""
    report_seconds: float = 5.0
    """Seconds between two progress events during training (the sandbox sets it from its watchdog's limit)."""
    reward_cost_ratio: float = 10.0
    """The most one reward call may cost, as a multiple of simulating the batch (the sandbox sets it)."""


def ppo_settings(spec: EnvSpec, overrides: dict) -> PPODefaults:
    """The env's PPO defaults with ``overrides`` applied; unknown names are refused."""
    known = set(PPODefaults.__dataclass_fields__)
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown PPO settings {sorted(unknown)}; known: {sorted(known)}")
    if "net_arch" in overrides:
        overrides = {**overrides, "net_arch": tuple(overrides["net_arch"])}
    return replace(spec.ppo, **overrides)


# ------------------------------------------------------------------------------------------------ the model


@dataclass
class Model:
    """The learner, and where its step count started (non-zero when continued)."""

    learner: Learner
    start_timesteps: int
    resumed: bool

    def policy(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions for raw observations (normalised as in training)."""
        return self.learner.policy(obs)


def build_model(config: TrainConfig, ppo: PPODefaults, env: BatchedEnv) -> Model:
    """A fresh learner for ``env``, or the one saved in ``config.resume_from`` continued."""
    resume = Path(config.resume_from) / POLICY_FILE if config.resume_from else None
    if resume is not None and resume.exists():
        learner = Learner.load(resume, ppo, config.seed)
        return Model(learner, learner.num_timesteps, resumed=True)
    return Model(Learner(env.obs_dim, env.act_dim, ppo, config.seed), 0, resumed=False)


# ------------------------------------------------------------------------------------------------ checkpoints


@dataclass
class Checkpoints:
    """Records, at each checkpoint, the window of training statistics and the policy's fitness."""

    spec: EnvSpec
    layout: Layout
    config: TrainConfig
    fitness: Program
    contract: ContractReward
    model: Model
    emit: Emit
    fitness_cost: CostBudget
    """The fitness program's cost budget over the whole training (checkpoints and the final evaluation)."""
    entries: list[Checkpoint] = field(default_factory=list)
    seconds: float = 0.0
    """Time spent measuring (kept out of the training speed)."""

    def record(self, timesteps: int) -> None:
        started = time.perf_counter()
        window = self.contract.take_window().summary()
        seeds = eval_seeds(self.config.seed, self.config.checkpoint_episodes)
        _, episodes = rollout(self.spec, self.model.policy, seeds, max_steps=self.config.episode_steps)
        values = episode_fitness(self.fitness, self.layout, episodes, self.fitness_cost)
        self.seconds += time.perf_counter() - started
        entry = Checkpoint(timesteps=timesteps, fitness=fitness_stats(values)[0], **window)
        self.entries.append(entry)
        self.emit(
            {
                "event": "checkpoint",
                "timesteps": timesteps,
                "total": self.config.timesteps,
                "fitness": entry["fitness"],
                "episode_return": window["episode_return"],
            }
        )


class Progress:
    """Calls ``checkpoints.record`` every ``every`` steps during training (not at the end: the caller does that),
    and reports progress every ``config.report_seconds`` and before each policy update."""

    def __init__(self, checkpoints: Checkpoints, every: int, total: int, start: int) -> None:
        self.checkpoints = checkpoints
        self.every = every
        self.total = total
        self.timesteps = start
        self.next_at = every * (1 + start // every)
        self.report_at = time.monotonic() + checkpoints.config.report_seconds

    def _report(self) -> None:  # the sandbox's watchdog kills a training that stops reporting
        self.report_at = time.monotonic() + self.checkpoints.config.report_seconds
        self.checkpoints.emit({"event": "progress", "timesteps": self.timesteps, "total": self.total})

    def on_rollout_end(self) -> None:  # the policy update that follows takes no steps
        self._report()

    def on_step(self, timesteps: int) -> None:
        self.timesteps = timesteps
        if time.monotonic() >= self.report_at:
            self._report()
        if timesteps >= self.next_at:
            self.next_at += self.every * (1 + (timesteps - self.next_at) // self.every)
            if timesteps < self.total:
                self.checkpoints.record(timesteps)


# ------------------------------------------------------------------------------------------------ evaluation


def final_evaluation(
    spec: EnvSpec,
    layout: Layout,
    config: TrainConfig,
    model: Model,
    fitness: Program,
    reward: Program,
    budget: CostBudget | None = None,
) -> tuple[list[float], list]:
    """Fitness of the final policy on the evaluation episodes, and what it did in each (trajectory analysis)."""
    seeds = eval_seeds(config.seed, config.eval_episodes)
    _, episodes = rollout(spec, model.policy, seeds, max_steps=config.episode_steps)
    values = episode_fitness(fitness, layout, episodes, budget)
    return values, [analyse_episode(layout, ep, reward) for ep in episodes]


# ------------------------------------------------------------------------------------------------ training


def train(config: TrainConfig, workdir: Path, emit: Emit) -> TrainingResult:
    """Dry-run, train, checkpoint, evaluate; writes policy.pt into ``workdir``."""
    started = time.perf_counter()
    spec = get_spec(config.env)
    ppo = ppo_settings(spec, config.ppo)
    dry = dry_run_reward(
        config.env,
        config.reward_source,
        seed=config.seed,
        episode_steps=config.episode_steps,
        cost_ratio=config.reward_cost_ratio,
        n_envs=ppo.n_envs,
    )
    reward = load_program(config.reward_source, "reward")
    fitness = load_program(config.fitness_source, "fitness")

    # Seeding
    torch.set_num_threads(1)  # small networks: more torch threads only spin against the simulator's threads
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)

    n = ppo.n_envs
    env = BatchedEnv(
        spec,
        [config.seed + i for i in range(n)],
        threads=config.threads,
        max_episode_steps=config.episode_steps,
        needs=reward.attributes,
    )
    layout = env.layout
    guard = Guard(cost_ratio=config.reward_cost_ratio)
    contract = ContractReward(env, reward, guard=guard)
    resume = Path(config.resume_from) / POLICY_FILE if config.resume_from else None
    resumed_from = saved_timesteps(resume) if resume is not None and resume.exists() else 0
    # Reported before the learner is built (its optimiser's first import takes seconds), so that the
    # watchdog's clock runs from here.
    emit({"event": "start", "total": config.timesteps, "n_envs": n, "resumed_from": resumed_from})
    model = build_model(config, ppo, env)
    learner = model.learner
    fitness_cost = CostBudget("compute_fitness", ratio=config.reward_cost_ratio, floor_seconds=FITNESS_FLOOR_SECONDS)
    checkpoints = Checkpoints(spec, layout, config, fitness, contract, model, emit, fitness_cost)
    every = max(1, config.timesteps // max(1, config.checkpoints))
    learn_start = time.perf_counter()
    stage = "training"
    try:
        if config.timesteps > learner.num_timesteps:  # a continued training may already have its budget
            progress = Progress(checkpoints, every, config.timesteps, model.start_timesteps)
            learn(learner, contract, config.timesteps, on_step=progress.on_step, on_rollout_end=progress.on_rollout_end)
        learn_seconds = time.perf_counter() - learn_start - checkpoints.seconds
        stage = "the evaluation"
        checkpoints.record(int(learner.num_timesteps))
        learner.save(workdir / POLICY_FILE)
        values, analysis = final_evaluation(spec, layout, config, model, fitness, reward, fitness_cost)
        mean, std = fitness_stats(values)
    except ProgramError as e:
        partial = TrainingResult(
            checkpoints=checkpoints.entries,
            dry_run=dry.to_dict(),
            timesteps=int(learner.num_timesteps),
            resumed_from_timesteps=model.start_timesteps,
            seconds=time.perf_counter() - started,
        )
        raise TrainingFailed(f"during {stage}: {e}", partial) from None
    result = TrainingResult(
        env=config.env,
        fitness_name=config.fitness_name,
        fitness={"mean": mean, "std": std, "per_episode": values},
        checkpoints=checkpoints.entries,
        components={name: [c["components"].get(name) for c in checkpoints.entries] for name in dry.components},
        episodes=analysis,
        dry_run=dry.to_dict(),
        warnings=list(dict.fromkeys(dry.warnings + contract.warnings)),
        timesteps=int(learner.num_timesteps),
        learn_seconds=learn_seconds,
        steps_per_second=(learner.num_timesteps - model.start_timesteps) / max(learn_seconds, 1e-9),
        ppo=asdict(ppo),
        seeds={"train": [config.seed + i for i in range(n)], "eval": eval_seeds(config.seed, config.eval_episodes)},
        artifacts={"policy": POLICY_FILE},
        resumed_from_timesteps=model.start_timesteps,
    )
    if config.video:
        from workers.engine.video import record_video

        result["artifacts"]["video"] = record_video(
            spec,
            model.policy,
            workdir / "video.mp4",
            seed=eval_seeds(config.seed, 1)[0],
            steps=config.video_steps,
            max_steps=config.episode_steps,
        )
    result["seconds"] = time.perf_counter() - started
    return result
