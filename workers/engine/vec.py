"""Vectorised envs that record each env's raw state into one buffer, with no wrapper per env.

Behaves as SB3's DummyVecEnv (auto-reset, terminal observation in info) and fills
``buffer[i]`` after every step of env i, before an auto-reset, so the candidate reward
sees the state the step reached.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from envs.capture import Layout, Recorder


class CaptureVecEnv(DummyVecEnv):
    """A DummyVecEnv whose envs write their raw state into ``buffer`` (N, layout.size)."""

    def __init__(
        self,
        env_fns: list[Callable[[], gym.Env]],
        layout: Layout,
        buffer: np.ndarray,
        needs: frozenset[str] | None = None,
    ) -> None:
        super().__init__(env_fns)
        self.buffer = buffer
        self.recorders = [Recorder(env, layout, buffer[i], needs) for i, env in enumerate(self.envs)]

    def reset(self) -> VecEnvObs:
        obs = super().reset()
        for r in self.recorders:
            r.restart()
        return obs

    def step_wait(self) -> VecEnvStepReturn:
        for i, (env, recorder) in enumerate(zip(self.envs, self.recorders, strict=False)):
            obs, self.buf_rews[i], terminated, truncated, self.buf_infos[i] = env.step(self.actions[i])
            recorder.capture()
            self.buf_dones[i] = terminated or truncated
            self.buf_infos[i]["TimeLimit.truncated"] = truncated and not terminated
            if self.buf_dones[i]:
                self.buf_infos[i]["terminal_observation"] = obs
                obs, self.reset_infos[i] = env.reset()
                recorder.restart()
            self._save_obs(i, obs)
        return self._obs_from_buf(), np.copy(self.buf_rews), np.copy(self.buf_dones), [dict(i) for i in self.buf_infos]
