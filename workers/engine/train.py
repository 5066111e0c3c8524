"""Train PPO with a candidate reward and measure the policy's fitness (runs inside the sandbox).

Reads like CleanRL: a settings dataclass with a docstring per field (``TrainConfig``), an explicit
``make_env`` thunk (the batched engine under the candidate reward, as SB3's ``VecEnv``), a seeding
block, and the learner's metrics grouped by prefix in SB3's logger (``train/``, ``rollout/``,
``time/``; TensorBoard files under ``tb/``). The learner is Stable-Baselines3's PPO over
``VecNormalize``. ``train`` returns the ``TrainingResult`` that becomes ``result.json``.
"""

from __future__ import annotations

import shutil
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
from workers.engine.checkpoints import Checkpoints, Emit, Progress
from workers.engine.cost import FITNESS_FLOOR_SECONDS, CostBudget
from workers.engine.dryrun import dry_run_reward
from workers.engine.guard import Guard
from workers.engine.model import (
    POLICY_FILE,
    RESUME_DIR,
    TENSORBOARD_DIR,
    Model,
    build_model,
    can_resume,
    learn,
    save,
    snapshot,
)
from workers.engine.result import SavedFileError, TrainingFailed, TrainingResult, WarmStart
from workers.engine.rollout import analyse_episode, episode_fitness, eval_seeds, rollout
from workers.engine.saved import saved_timesteps
from workers.engine.start import frozen_policy, warmup_steps
from workers.engine.trajectories import TRAJECTORIES_FILE, write_trajectories
from workers.engine.wrapper import ContractReward
from workers.program.program import Program, ProgramError, fitness_stats, load_program


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
    """Most frames in the video: the whole episode is recorded, with steps skipped to keep within this (offscreen
    rendering costs about 0.1-0.2 s a frame on a CPU: 300 frames keep a video's cost where it was)."""
    ppo: dict = field(default_factory=dict)
    """Overrides of the env's PPO defaults, by ``PPODefaults``'s names (n_envs, n_steps, batch_size, net_arch, a
    ``lin_`` learning rate, ...); checked by the service's schema (``app.search.rules.hyperparams``)."""
    resume_from: str | None = None
    """Directory with the policy.zip and vecnormalize.pkl of an earlier training of the same program to continue
    (successive halving); ``timesteps`` is then the total, including the steps already trained."""
    warm_start_from: str | None = None
    """Directory with the policy.zip and vecnormalize.pkl of the parent candidate's training: this training starts
    from that policy (another reward: first a value warm-up with the policy frozen, then PPO); ``timesteps`` counts
    this training's own steps only."""
    value_warmup_rollouts: int = 2
    """Rollouts of value-only updates a warm-started training begins with (at most a fifth of its budget)."""
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
    arch = overrides.get("net_arch")
    if arch is not None:  # JSON lists, as the frozen settings keep them
        arch = {k: tuple(v) for k, v in arch.items()} if isinstance(arch, dict) else tuple(arch)
        overrides = {**overrides, "net_arch": arch}
    return replace(spec.ppo, **overrides)


# ------------------------------------------------------------------------------------------------ the env


def make_env(config: TrainConfig, spec: EnvSpec, n: int, reward: Program) -> Callable[[], ContractReward]:
    """A thunk that builds the training env: ``n`` envs of ``spec`` (env i seeded ``config.seed + i``) on the
    batched engine, rewarded by ``reward`` (one call per vector step) and re-checked by a ``Guard``."""

    def thunk() -> ContractReward:
        env = BatchedEnv(
            spec,
            [config.seed + i for i in range(n)],
            threads=config.threads,
            max_episode_steps=config.episode_steps,
            needs=reward.attributes,
        )
        return ContractReward(env, reward, guard=Guard(cost_ratio=config.reward_cost_ratio))

    return thunk


def warm_dir(config: TrainConfig, warnings: list[str]) -> Path | None:
    """The parent's directory to start from, or None (a parent without saved files is said in ``warnings``)."""
    if not config.warm_start_from or config.resume_from:
        return None
    directory = Path(config.warm_start_from)
    if can_resume(directory):
        return directory
    warnings.append("the parent's training left no policy.zip and vecnormalize.pkl: this one started from scratch")
    return None


def start_model(
    config: TrainConfig, contract: ContractReward, ppo: PPODefaults, workdir: Path, warnings: list[str]
) -> Model:
    """The model to train: continued, warm-started from the parent, or fresh. A parent whose files do not fit this
    training (other network sizes) is said in ``warnings``, and the training starts from scratch."""
    resume = resume_dir(config, warnings)
    warm = warm_dir(config, warnings)
    logdir = workdir / TENSORBOARD_DIR
    if warm is not None:
        try:
            return build_model(contract, ppo, config.seed, warm=warm, logdir=logdir)
        except SavedFileError as e:
            warnings.append(f"could not start from the parent's policy ({e}): this training started from scratch")
    return build_model(contract, ppo, config.seed, resume=resume, logdir=logdir)


def resume_dir(config: TrainConfig, warnings: list[str]) -> Path | None:
    """The directory to continue from, or None (a ``resume_from`` without saved files is said in ``warnings``)."""
    if not config.resume_from:
        return None
    directory = Path(config.resume_from)
    if can_resume(directory):
        return directory
    warnings.append("the training to continue left no policy.zip and vecnormalize.pkl: this one started afresh")
    return None


# ------------------------------------------------------------------------------------------------ evaluation


def final_evaluation(
    spec: EnvSpec,
    layout: Layout,
    config: TrainConfig,
    model: Model,
    fitness: Program,
    reward: Program,
    budget: CostBudget | None = None,
    keep: Path | None = None,
) -> tuple[list[float], list]:
    """Fitness of the final policy on the evaluation episodes, and what it did in each (trajectory analysis); with
    ``keep``, the episodes' rows and fitness are written there (``trajectories.npz``) for the screen."""
    seeds = eval_seeds(config.seed, config.eval_episodes)
    _, episodes = rollout(spec, model.policy, seeds, max_steps=config.episode_steps)
    values = episode_fitness(fitness, layout, episodes, budget)
    if keep is not None:
        write_trajectories(keep, episodes, values)
    return values, [analyse_episode(layout, ep, reward) for ep in episodes]


# ------------------------------------------------------------------------------------------------ training


def train(config: TrainConfig, workdir: Path, emit: Emit) -> TrainingResult:
    """Dry-run, train, checkpoint, evaluate; writes policy.zip, vecnormalize.pkl and tb/ into ``workdir``."""
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
    contract = make_env(config, spec, n, reward)()
    warnings: list[str] = []
    resume = Path(config.resume_from) if config.resume_from else None
    resumed_from = saved_timesteps(resume / POLICY_FILE) if resume is not None and can_resume(resume) else 0
    # Reported before SB3's PPO is built (3 s on the loaded 2-core machine), so that the watchdog's clock runs
    # from here.
    emit({"event": "start", "total": config.timesteps, "n_envs": n, "resumed_from": resumed_from})
    model = start_model(config, contract, ppo, workdir, warnings)
    warmup = warmup_steps(config.timesteps, n * ppo.n_steps, config.value_warmup_rollouts) if model.warm else 0
    fitness_cost = CostBudget("compute_fitness", ratio=config.reward_cost_ratio, floor_seconds=FITNESS_FLOOR_SECONDS)
    checkpoints = Checkpoints(
        spec,
        contract.layout,
        fitness,
        contract,
        model,
        emit,
        fitness_cost,
        seed=config.seed,
        total=config.timesteps,
        episodes=config.checkpoint_episodes,
        episode_steps=config.episode_steps,
    )
    every = max(1, config.timesteps // max(1, config.checkpoints))
    learn_start = time.perf_counter()
    stage = "training"
    try:
        if config.timesteps > model.ppo.num_timesteps:  # a continued training may already have its budget
            progress = Progress(
                checkpoints, every, model.start_timesteps, config.report_seconds, lambda: snapshot(model, workdir)
            )
            if warmup:  # the reward changed: its value function first, with the parent's policy held still
                with frozen_policy(model.ppo):
                    learn(model, warmup, progress)
            learn(model, config.timesteps, progress)
        learn_seconds = time.perf_counter() - learn_start - checkpoints.seconds
        stage = "the evaluation"
        checkpoints.record(int(model.ppo.num_timesteps))
        model.ppo.logger.dump(model.ppo.num_timesteps)  # the last update's statistics, into the TensorBoard files
        model.ppo.logger.close()
        artifacts: dict[str, str | None] = {**save(model, workdir)}
        keep = workdir / TRAJECTORIES_FILE
        values, analysis = final_evaluation(spec, contract.layout, config, model, fitness, reward, fitness_cost, keep)
        artifacts["trajectories"] = TRAJECTORIES_FILE
        mean, std = fitness_stats(values)
    except ProgramError as e:
        partial = TrainingResult(
            checkpoints=checkpoints.entries,
            dry_run=dry.to_dict(),
            timesteps=int(model.ppo.num_timesteps),
            resumed_from_timesteps=model.start_timesteps,
            seconds=time.perf_counter() - started,
        )
        raise TrainingFailed(f"during {stage}: {e}", partial) from None
    finally:  # ended here, not stopped from outside: the final files (or the failure) supersede the checkpoint
        shutil.rmtree(workdir / RESUME_DIR, ignore_errors=True)
    steps = int(model.ppo.num_timesteps)
    if (workdir / TENSORBOARD_DIR).is_dir():
        artifacts["tensorboard"] = TENSORBOARD_DIR
    result = TrainingResult(
        env=config.env,
        fitness_name=config.fitness_name,
        fitness={"mean": mean, "std": std, "per_episode": values},
        checkpoints=checkpoints.entries,
        components={name: [c["components"].get(name) for c in checkpoints.entries] for name in dry.components},
        episodes=analysis,
        dry_run=dry.to_dict(),
        warnings=list(dict.fromkeys(dry.warnings + contract.warnings + warnings)),
        timesteps=steps,
        learn_seconds=learn_seconds,
        steps_per_second=(steps - model.start_timesteps) / max(learn_seconds, 1e-9),
        ppo=asdict(ppo),
        seeds={"train": [config.seed + i for i in range(n)], "eval": eval_seeds(config.seed, config.eval_episodes)},
        episode_steps=config.episode_steps,
        artifacts=artifacts,
        resumed_from_timesteps=model.start_timesteps,
    )
    if model.warm:
        result["warm_start"] = WarmStart(ancestor_timesteps=model.ancestor_timesteps, value_warmup_steps=warmup)
    if config.video:
        from workers.engine.video import record_video

        info = record_video(
            spec,
            model.policy,
            workdir / "video.mp4",
            seed=eval_seeds(config.seed, 1)[0],
            max_frames=config.video_steps,
            max_steps=config.episode_steps,
        )
        result["artifacts"]["video"] = "video.mp4" if info is not None else None
        if info is not None:
            result["video"] = info
    result["seconds"] = time.perf_counter() - started
    return result
