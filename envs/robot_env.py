"""A user robot as a Gymnasium MuJoCo env: what ``gymnasium.make`` builds for it (single envs, videos, dry runs).

It computes its observation, reward, health and reset with the same ``Dynamics`` as the
batched engine, applied to a batch of one, and steps as Gymnasium's MujocoEnv steps
(``mj_step`` then ``mj_rnePostConstraint``): the engine is tested against it as against
Gymnasium's own envs. Built only where a model may be compiled (inside a sandbox).
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
from gymnasium.spaces import Box

from envs.model import compile_model
from envs.spec import EnvSpec


class _One:
    """MjData's fields as (1, ...) arrays, the shape ``Dynamics`` functions take."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        self.model = model
        self._data = data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._data, name)[None]


class UserRobotEnv(MujocoEnv):
    """The env of a registered user robot (``envs.register_user_env``); ``spec`` is its EnvSpec."""

    metadata = {"render_modes": ["human", "rgb_array", "depth_array", "rgbd_tuple"]}  # noqa: RUF012 (Gymnasium's)

    def __init__(self, spec: EnvSpec, render_mode: str | None = None, width: int = 480, height: int = 480) -> None:
        self.rs_spec = spec
        self._compiled = compile_model(spec, contact_forces=True)
        model = self._compiled.model
        distance = max(1.0, 3.0 * float(model.stat.extent))  # the robot fills about a third of the frame
        camera = {"trackbodyid": int(model.body(spec.torso).id), "distance": distance, "elevation": -20.0}
        # MujocoEnv checks that its model path exists; the model comes from _initialize_simulation instead.
        super().__init__(
            __file__,
            spec.dynamics.frame_skip,
            observation_space=None,
            render_mode=render_mode,
            width=width,
            height=height,
            default_camera_config=camera,
        )
        self.metadata = {**self.metadata, "render_fps": int(np.round(1.0 / self.dt))}
        self._one = _One(self.model, self.data)
        self._mass = self.model.body_mass.copy()
        shape = spec.dynamics.observe(self._one).shape[1:]
        self.observation_space = Box(low=-np.inf, high=np.inf, shape=shape, dtype=np.float64)

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        model = self._compiled.model
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        return model, mujoco.MjData(model)

    def _position(self) -> np.ndarray:
        position = self.rs_spec.dynamics.position
        return np.zeros(1) if position is None else position(self._one, self._mass)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, np.float64, bool, bool, dict[str, np.float64]]:
        dyn = self.rs_spec.dynamics
        before = self._position()
        self.do_simulation(action, self.frame_skip)
        velocity = (self._position() - before) / self.dt
        healthy = self.rs_spec.healthy(self.data.qpos[None], self.data.qvel[None], np.zeros((1, 0, 3)))
        reward = dyn.reward(velocity, np.asarray(action)[None], healthy, self._one)
        terminated = bool(dyn.terminates and not healthy[0])
        if self.render_mode == "human":
            self.render()
        return dyn.observe(self._one)[0], np.float64(reward[0]), terminated, False, {}

    def reset_model(self) -> np.ndarray:
        qpos, qvel = self.rs_spec.dynamics.reset(self.np_random, self.init_qpos, self.model.nv)
        self.set_state(qpos, qvel)
        return self.rs_spec.dynamics.observe(self._one)[0]
