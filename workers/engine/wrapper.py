"""The candidate reward as a wrapper of the batched env: one reward call per vector step.

The env's own reward stays in ``info["env_reward"]``, so the true return is always
logged next to the candidate's. Per-component statistics accumulate between
checkpoints; completed episodes are recorded with both returns and how they ended.
What is recorded comes from the wrapper's own counters, never from what the program was
shown, and the program's calls are re-checked during training (``workers.engine.guard``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from envs.state import State, build_state
from workers.engine.batched import BatchedEnv, Transition
from workers.engine.guard import Guard
from workers.program.program import Program, ProgramError, call_reward


class RunningStats:
    """Mean, min and max of named streams of arrays, without keeping them; one row of values per name.

    ``add`` takes all names of a step at once, so a step costs a few array operations
    whatever the number of components.
    """

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.total = np.zeros(0)
        self.count = np.zeros(0)
        self.low = np.zeros(0)
        self.high = np.zeros(0)
        self._rows: np.ndarray | None = None
        self._names: tuple[str, ...] = ()

    def add(self, names: tuple[str, ...], values: np.ndarray) -> None:
        """Accumulate ``values`` of shape (len(names), N)."""
        if names != self._names:
            for name in names:
                if name not in self.index:
                    self.index[name] = len(self.index)
                    self.total = np.append(self.total, 0.0)
                    self.count = np.append(self.count, 0.0)
                    self.low = np.append(self.low, np.inf)
                    self.high = np.append(self.high, -np.inf)
            order = [self.index[n] for n in names]
            self._names = names
            self._rows = None if order == list(range(len(self.index))) else np.array(order)
        rows = self._rows
        if rows is None:  # the usual case: the same names in the same order every step
            self.total += values.sum(axis=1)
            self.count += values.shape[1]
            np.minimum(self.low, values.min(axis=1), out=self.low)
            np.maximum(self.high, values.max(axis=1), out=self.high)
            return
        self.total[rows] += values.sum(axis=1)
        self.count[rows] += values.shape[1]
        self.low[rows] = np.minimum(self.low[rows], values.min(axis=1))
        self.high[rows] = np.maximum(self.high[rows], values.max(axis=1))

    def summary(self, name: str) -> dict[str, float] | None:
        i = self.index.get(name)
        if i is None or not self.count[i]:
            return None
        return {"mean": float(self.total[i] / self.count[i]), "min": float(self.low[i]), "max": float(self.high[i])}

    def names(self) -> list[str]:
        return list(self.index)


REWARD = "\0reward"
"""The row of the reward itself (a name no component can have)."""


@dataclass
class Window:
    """What happened in training since the last checkpoint."""

    stats: RunningStats = field(default_factory=RunningStats)
    episode_returns: list[float] = field(default_factory=list)
    episode_env_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)
    terminated: int = 0
    truncated: int = 0

    def summary(self) -> dict:
        def mean(xs: list) -> float | None:
            return float(np.mean(xs)) if xs else None

        return {
            "components": {k: self.stats.summary(k) for k in self.stats.names() if k != REWARD},
            "reward": self.stats.summary(REWARD),
            "episodes": len(self.episode_lengths),
            "episode_return": mean(self.episode_returns),
            "episode_env_return": mean(self.episode_env_returns),
            "episode_length": mean(self.episode_lengths),
            "terminated": self.terminated,
            "truncated": self.truncated,
        }


@dataclass
class RewardStep(Transition):
    """One vector step under the candidate reward: the env's step (its own reward kept, so the true return is
    always logged) plus the candidate program's ``reward``, (N,)."""

    reward: np.ndarray


class ContractReward:
    """Replaces the env's reward with the candidate program's, computed on the batched state view.

    Wraps a ``BatchedEnv``, whose ``rows`` hold every env's raw state after each step;
    ``guard`` re-checks the program's calls (defaults: ``Guard()``).
    """

    def __init__(self, env: BatchedEnv, program: Program, *, guard: Guard | None = None) -> None:
        self.env = env
        self.num_envs = env.num_envs
        self.program = program
        self.layout = env.layout
        self.buffer = env.rows
        self.guard = guard or Guard()
        self.window = Window()
        self.warnings: list[str] = []
        self.steps = 0
        n = env.num_envs
        self._returns = np.zeros(n)
        self._env_returns = np.zeros(n)
        self._lengths = np.zeros(n, dtype=np.int64)

    def reset(self) -> np.ndarray:
        self._returns[:] = 0.0
        self._env_returns[:] = 0.0
        self._lengths[:] = 0
        return self.env.reset()

    def batch_state(self) -> State:
        """The state view of the step just taken: the program's own read-only copy of it."""
        return build_state(self.layout, self.buffer)

    def step(self, actions: np.ndarray) -> RewardStep:
        """Step every env with ``actions`` and reward the step with the program (one call for the batch)."""
        started = time.perf_counter()
        t = self.env.step(actions)
        stepped = time.perf_counter()
        state = self.batch_state()
        action = np.clip(np.asarray(actions, dtype=np.float32), self.env.action_low, self.env.action_high)
        action.flags.writeable = False
        try:
            reward, components, warnings = call_reward(self.program, state, action)
            called = time.perf_counter()
            self.guard.after_call(
                self.program,
                state,
                action,
                reward,
                components,
                step_seconds=stepped - started,
                reward_seconds=called - stepped,
            )
        except ProgramError as e:
            raise ProgramError(
                f"at training step {self.steps * self.num_envs}: {e}", line=e.line, column=e.column
            ) from None
        for w in warnings:
            if w not in self.warnings:
                self.warnings.append(w)
        self.steps += 1
        self._record(reward, components, t.env_reward, t.terminated, t.truncated)
        return RewardStep(t.obs, t.env_reward, t.terminated, t.truncated, t.final_obs, reward=reward.astype(np.float64))

    def _record(
        self,
        reward: np.ndarray,
        components: dict,
        env_reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> None:
        win = self.window
        win.stats.add((REWARD, *components), np.array([reward, *components.values()]))
        self._returns += reward
        self._env_returns += env_reward
        self._lengths += 1
        done = np.flatnonzero(terminated | truncated)
        if len(done):
            win.episode_returns.extend(self._returns[done].tolist())
            win.episode_env_returns.extend(self._env_returns[done].tolist())
            win.episode_lengths.extend(self._lengths[done].tolist())
            win.truncated += int(truncated[done].sum())
            win.terminated += int(terminated[done].sum())
            self._returns[done] = 0.0
            self._env_returns[done] = 0.0
            self._lengths[done] = 0

    def take_window(self) -> Window:
        """The statistics since the last call, and a fresh window."""
        win, self.window = self.window, Window()
        return win
