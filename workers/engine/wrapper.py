"""The candidate reward on the batched env, behind SB3's ``VecEnv`` interface: one reward call per vector step.

``ContractReward`` is what SB3's PPO trains on (under ``VecNormalize``): ``step_wait`` steps the
whole batch (``BatchedEnv``), calls the reward program once for it, and returns SB3's
(obs, reward, done, infos). The env's own reward stays in ``info["env_reward"]``, so the true
return is always logged next to the candidate's; an episode that ended carries its
``terminal_observation``, ``TimeLimit.truncated`` (so PPO bootstraps a time limit from the value
of where it stopped) and ``episode`` (SB3's Monitor record). Per-component statistics
accumulate between checkpoints; completed episodes are recorded with both returns and how they
ended. What is recorded comes from the wrapper's own counters, never from what the program was
shown, and the program's calls are re-checked during training (``workers.engine.guard``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

from envs.state import State, build_state
from workers.engine.batched import BatchedEnv, Transition
from workers.engine.guard import Guard
from workers.engine.window import ENV_REWARD, REWARD, Window
from workers.program.program import Program, ProgramError, call_reward


@dataclass
class RewardStep(Transition):
    """One vector step under the candidate reward: the env's step (its own reward kept, so the true return is
    always logged) plus the candidate program's ``reward``, (N,)."""

    reward: np.ndarray


class ContractReward(VecEnv):
    """Replaces the env's reward with the candidate program's, computed on the batched state view.

    Wraps a ``BatchedEnv``, whose ``rows`` hold every env's raw state after each step;
    ``guard`` re-checks the program's calls (defaults: ``Guard()``). Env i's episodes are seeded by
    the ``BatchedEnv``'s ``seeds[i]``; SB3's ``seed()`` does not reseed them.
    """

    def __init__(self, env: BatchedEnv, program: Program, *, guard: Guard | None = None) -> None:
        observation_space = spaces.Box(-np.inf, np.inf, (env.obs_dim,), np.float64)
        action_space = spaces.Box(env.action_low, env.action_high, dtype=np.float32)
        self.env = env
        super().__init__(env.num_envs, observation_space, action_space)
        self.program = program
        self.layout = env.layout
        self.buffer = env.rows
        self.guard = guard or Guard()
        self.window = Window()
        self.warnings: list[str] = []
        self.steps = 0
        n = env.num_envs
        self._actions: np.ndarray | None = None
        self._returns = np.zeros(n)
        self._env_returns = np.zeros(n)
        self._lengths = np.zeros(n, dtype=np.int64)
        self._started = time.monotonic()

    def reset(self) -> np.ndarray:
        self._returns[:] = 0.0
        self._env_returns[:] = 0.0
        self._lengths[:] = 0
        self._reset_seeds()
        return self.env.reset()

    def batch_state(self) -> State:
        """The state view of the step just taken: the program's own read-only copy of it."""
        return build_state(self.layout, self.buffer)

    def reward_step(self, actions: np.ndarray) -> RewardStep:
        """Step every env with ``actions`` and reward the step with the program (one call for the batch); the
        statistics of the step are recorded."""
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
        step = RewardStep(t.obs, t.env_reward, t.terminated, t.truncated, t.final_obs, reward=reward.astype(np.float64))
        self._record(step, components)
        return step

    # -------------------------------------------------------------------------------- SB3's VecEnv

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        """One vector step in SB3's terms; infos carry the env's reward, and for ended episodes what SB3 reads."""
        assert self._actions is not None, "step_async comes first"
        returns, lengths = self._returns.copy(), self._lengths.copy()  # before the step: its record resets them
        step = self.reward_step(self._actions)
        infos: list[dict[str, Any]] = [{"env_reward": r} for r in step.env_reward.tolist()]
        elapsed = round(time.monotonic() - self._started, 6)
        for i in np.flatnonzero(step.done):  # the envs whose episode ended at this step, not every env
            r, length = float(returns[i] + step.reward[i]), int(lengths[i] + 1)
            infos[i]["terminal_observation"] = step.final_obs[i]
            infos[i]["TimeLimit.truncated"] = bool(step.truncated[i])
            infos[i]["episode"] = {"r": r, "l": length, "t": elapsed}
        return step.obs, step.reward.astype(np.float32), step.done, infos

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The batched env's attribute, once per env (the envs of a batch share their settings)."""
        value = None if attr_name == "render_mode" else getattr(self.env, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError(f"cannot set '{attr_name}' per env: the envs of the batched engine share one model")

    def env_method(self, method_name: str, *args: Any, indices: VecEnvIndices = None, **kwargs: Any) -> list[Any]:
        raise AttributeError(f"cannot call '{method_name}' per env: the batched engine steps its envs together")

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    # -------------------------------------------------------------------------------- statistics

    def _record(self, step: RewardStep, components: dict[str, np.ndarray]) -> None:
        win = self.window
        win.stats.add((REWARD, ENV_REWARD, *components), np.array([step.reward, step.env_reward, *components.values()]))
        self._returns += step.reward
        self._env_returns += step.env_reward
        self._lengths += 1
        done = np.flatnonzero(step.done)
        if len(done):
            win.episode_returns.extend(self._returns[done].tolist())
            win.episode_env_returns.extend(self._env_returns[done].tolist())
            win.episode_lengths.extend(self._lengths[done].tolist())
            win.truncated += int(step.truncated[done].sum())
            win.terminated += int(step.terminated[done].sum())
            self._returns[done] = 0.0
            self._env_returns[done] = 0.0
            self._lengths[done] = 0

    def take_window(self) -> Window:
        """The statistics since the last call, and a fresh window."""
        win, self.window = self.window, Window()
        return win
