"""N envs of one MuJoCo model in one process, stepped together in C threads: the training engine's env.

Behaves as N Gymnasium v5 envs under ``TimeLimit`` with auto-reset (SB3's convention):
``step`` takes (N, act) actions and returns (N, ...) observations, the env's own rewards,
terminated and truncated flags, and for envs whose episode ended the final observation,
before they are reset. Each step also writes every env's raw state row into ``rows``
(``envs.rows``), the input of the state view the reward program reads. Env i's reset
noise comes from its own generator seeded with ``seeds[i]``, drawn as Gymnasium draws it,
so env i replays ``gym.make(id).reset(seed=seeds[i])`` and its later resets exactly.
No Python loop over envs, except over the envs that reset at a step (to draw their noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from envs.capture import Layout
from envs.model import compile_model
from envs.rows import ROW_FIELDS, BatchRows
from envs.spec import EnvSpec
from workers.engine.backend import make_backend


@dataclass
class Transition:
    """One vector step: (N, ...) arrays."""

    obs: np.ndarray
    """Observations to act on next (after auto-reset, the new episodes' first)."""
    env_reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    """Ended by the time limit and not terminated."""
    final_obs: np.ndarray
    """Observations the step reached, before any reset (where an episode ended, its last)."""

    @property
    def done(self) -> np.ndarray:
        return self.terminated | self.truncated


class _AfterReset:
    """The batch as Gymnasium's reset leaves an env: its mj_forward computes no contact forces, so the first
    observation of an episode reads them as zero (the engine's model computes them in every forward pass)."""

    def __init__(self, sim: object) -> None:
        self._sim = sim

    def __getattr__(self, name: str) -> object:
        value = getattr(self._sim, name)
        return np.zeros_like(value) if name == "cfrc_ext" else value


def episode_limit(spec: EnvSpec) -> int:
    """The env's own cap on episode length (Gymnasium's ``max_episode_steps``)."""
    return int(gym.spec(spec.gym_id).max_episode_steps or 1000)


class BatchedEnv:
    """``n`` envs of ``spec`` on ``threads`` C threads; ``auto_reset=False`` leaves ended envs as they are
    (evaluation steps them no more)."""

    def __init__(
        self,
        spec: EnvSpec,
        seeds: list[int],
        *,
        threads: int = 1,
        max_episode_steps: int | None = None,
        needs: frozenset[str] | None = None,
        backend: str = "cpu",
        auto_reset: bool = True,
    ) -> None:
        self.spec = spec
        self.dynamics = dyn = spec.dynamics
        self.compiled = compile_model(spec, contact_forces=dyn.contact_forces or spec.contact_forces)
        model = self.compiled.model
        self.num_envs = n = len(seeds)
        self.layout = Layout.from_model(spec, model, float(model.opt.timestep) * dyn.frame_skip)
        self.max_episode_steps = max_episode_steps or episode_limit(spec)
        self.auto_reset = auto_reset
        fields = tuple(dict.fromkeys(dyn.fields + ROW_FIELDS))
        self.sim = make_backend(backend, model, n, threads, fields)
        self.rows = np.zeros((n, self.layout.size))
        self.recorder = BatchRows(self.layout, self.compiled, self.rows, needs)
        self.action_low = model.actuator_ctrlrange[:, 0].astype(np.float32)
        self.action_high = model.actuator_ctrlrange[:, 1].astype(np.float32)
        self._mass = model.body_mass.copy()
        self._qpos0 = model.qpos0.copy()
        self._rngs = [np.random.default_rng(s) for s in seeds]
        self.elapsed = np.zeros(n, dtype=np.int64)
        self.obs = np.zeros_like(dyn.observe(self.sim))  # its shape, before the first reset
        self._after_reset = _AfterReset(self.sim) if dyn.contact_forces else self.sim

    @property
    def obs_dim(self) -> int:
        return int(self.obs.shape[1])

    @property
    def act_dim(self) -> int:
        return len(self.action_low)

    def _reset(self, ids: np.ndarray) -> None:
        starts = [self.dynamics.reset(self._rngs[i], self._qpos0, self.sim.model.nv) for i in ids]
        self.sim.reset(ids, np.stack([q for q, _ in starts]), np.stack([v for _, v in starts]))
        self.recorder.restart(self.sim, ids)
        self.elapsed[ids] = 0

    def _position(self) -> np.ndarray:
        position = self.dynamics.position
        return np.zeros(self.num_envs) if position is None else position(self.sim, self._mass)

    def reset(self) -> np.ndarray:
        """Reset every env (the first reset of env i uses its seed); the (N, obs) observations."""
        self._reset(np.arange(self.num_envs))
        self.obs = self.dynamics.observe(self._after_reset)  # type: ignore[arg-type]
        return self.obs.copy()

    def step(self, actions: np.ndarray) -> Transition:
        """Apply (N, act) actions (clipped to the action bounds, float32 as Gymnasium's Box) for one control step."""
        action = np.clip(np.asarray(actions, dtype=np.float32), self.action_low, self.action_high)
        dyn, sim = self.dynamics, self.sim
        before = self._position()
        sim.ctrl[:] = action
        sim.step(dyn.frame_skip)
        velocity = (self._position() - before) / self.layout.dt
        obs = dyn.observe(sim)
        healthy = self.spec.healthy(sim.qpos, sim.qvel, sim.site_xpos[:, self.layout.site_ids])
        reward = dyn.reward(velocity, action, healthy, sim)
        terminated = ~healthy if dyn.terminates else np.zeros(self.num_envs, dtype=bool)
        self.elapsed += 1
        truncated = (self.elapsed >= self.max_episode_steps) & ~terminated
        self.recorder.capture(sim)
        final = obs
        done = np.flatnonzero(terminated | truncated)
        if self.auto_reset and len(done):
            final = obs.copy()
            self._reset(done)
            obs[done] = dyn.observe(self._after_reset)[done]  # type: ignore[arg-type]
        self.obs = obs
        return Transition(obs.copy(), np.asarray(reward, dtype=np.float64), terminated, truncated, final)
