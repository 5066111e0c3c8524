"""During training: checkpoints (the window of statistics and the policy's fitness on held-out seeds) and progress
events for the sandbox's watchdog, as one SB3 callback."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from stable_baselines3.common.callbacks import BaseCallback

from envs.capture import Layout
from envs.spec import EnvSpec
from workers.engine.cost import CostBudget
from workers.engine.model import Model
from workers.engine.result import Checkpoint
from workers.engine.rollout import episode_fitness, eval_seeds, rollout
from workers.engine.window import LearnerWindow
from workers.engine.wrapper import ContractReward
from workers.program.program import Program, fitness_stats

Emit = Callable[[dict], None]
"""Sends one progress event to the parent process."""


@dataclass
class Checkpoints:
    """Records, at each checkpoint, the window of training and learner statistics and the policy's fitness on
    ``episodes`` deterministic episodes of held-out evaluation seeds."""

    spec: EnvSpec
    layout: Layout
    fitness: Program
    contract: ContractReward
    model: Model
    emit: Emit
    fitness_cost: CostBudget
    """The fitness program's cost budget over the whole training (checkpoints and the final evaluation)."""
    seed: int
    total: int
    episodes: int = 1
    episode_steps: int | None = None
    learner: LearnerWindow = field(default_factory=LearnerWindow)
    entries: list[Checkpoint] = field(default_factory=list)
    seconds: float = 0.0
    """Time spent measuring (kept out of the training speed)."""

    def observe_learner(self) -> None:
        """Keep the statistics of the policy update SB3's logger holds now (once per update)."""
        self.learner.observe(self.model.ppo.logger.name_to_value)

    def record(self, timesteps: int) -> None:
        started = time.perf_counter()
        self.observe_learner()
        window = self.contract.take_window().summary()
        seeds = eval_seeds(self.seed, self.episodes)
        _, episodes = rollout(self.spec, self.model.policy, seeds, max_steps=self.episode_steps)
        values = episode_fitness(self.fitness, self.layout, episodes, self.fitness_cost)
        self.seconds += time.perf_counter() - started
        entry = Checkpoint(timesteps=timesteps, fitness=fitness_stats(values)[0], **window)
        learner = self.learner.take()
        if learner is not None:
            entry["learner"] = learner  # type: ignore[typeddict-item]
        self.entries.append(entry)
        self.emit(
            {
                "event": "checkpoint",
                "timesteps": timesteps,
                "total": self.total,
                "fitness": entry["fitness"],
                "episode_return": window["episode_return"],
                "checkpoint": entry,
            }
        )


class Progress(BaseCallback):
    """Calls ``checkpoints.record`` every ``every`` steps during training (not at the end: the caller does that),
    keeps the learner's statistics after each policy update, and reports progress every ``report_seconds`` and
    before each policy update (the sandbox's watchdog kills a training that stops reporting)."""

    def __init__(
        self,
        checkpoints: Checkpoints,
        every: int,
        start: int,
        report_seconds: float,
        snapshot: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.checkpoints = checkpoints
        self.snapshot = snapshot
        self.every = every
        self.total = checkpoints.total
        self.report_seconds = report_seconds
        self.num_timesteps = start
        self.next_at = every * (1 + start // every)
        self.report_at = time.monotonic() + report_seconds

    def _report(self) -> None:
        self.report_at = time.monotonic() + self.report_seconds
        self.checkpoints.emit({"event": "progress", "timesteps": self.num_timesteps, "total": self.total})

    def _on_rollout_start(self) -> None:  # the policy update before this rollout has just been logged
        self.checkpoints.observe_learner()

    def _on_rollout_end(self) -> None:  # the policy update that follows takes no steps
        self._report()

    def _on_step(self) -> bool:
        timesteps = self.num_timesteps
        if time.monotonic() >= self.report_at:
            self._report()
        if timesteps >= self.next_at:
            self.next_at += self.every * (1 + (timesteps - self.next_at) // self.every)
            if timesteps < self.total:
                if self.snapshot is not None:  # first: once the checkpoint is reported, a stop resumes from here
                    self.snapshot()
                self.checkpoints.record(timesteps)
        return True
