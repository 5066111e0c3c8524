"""Capturing raw MuJoCo state: where each piece sits in a row (``Layout``), and the code that fills rows.

A ``Recorder`` copies one Gymnasium env's post-step data into its row; ``StateCapture`` is the
same as a Gymnasium wrapper, for single envs (dry-run state samples, the env description, videos,
and the reference the batched engine is tested against). Training and evaluation write rows for a
whole batch at once instead (``envs.rows``, ``workers.engine.batched``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, SupportsFloat, cast

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
from gymnasium.spaces import Box

from envs.spec import EnvSpec


def mujoco_env(env: gym.Env) -> MujocoEnv:
    """The MuJoCo env under Gymnasium's wrappers (its model, data and control step)."""
    return cast(MujocoEnv, env.unwrapped)


def action_box(env: gym.Env) -> Box:
    """The env's action space (every registered env takes a box of torques)."""
    return cast(Box, env.action_space)


@dataclass(frozen=True)
class Layout:
    """Where each piece of raw data sits in a captured row, for one env model."""

    spec: EnvSpec
    dt: float
    nq: int
    nv: int
    torso_id: int
    joint_names: tuple[str, ...]
    joint_qpos: np.ndarray
    joint_dof: np.ndarray
    body_ids: np.ndarray
    contact_body_names: tuple[str, ...]
    feet_names: tuple[str, ...]
    foot_geoms: np.ndarray
    floor_geom: int
    fields: frozenset[str] = field(default=frozenset(), compare=False)
    """Names of the state fields this env offers (filled in by ``from_env``)."""

    @classmethod
    def from_env(cls, spec: EnvSpec, env: gym.Env) -> Layout:
        u = mujoco_env(env)
        return cls.from_model(spec, u.model, float(u.dt))

    @classmethod
    def from_model(cls, spec: EnvSpec, m: mujoco.MjModel, dt: float) -> Layout:
        """The layout of ``spec``'s rows for the compiled model ``m`` with control step ``dt``."""
        joints = [int(m.actuator_trnid[a, 0]) for a in range(m.nu)]
        body_names = tuple(m.body(b).name or f"body_{b}" for b in range(1, m.nbody))
        layout = cls(
            spec=spec,
            dt=dt,
            nq=int(m.nq),
            nv=int(m.nv),
            torso_id=int(m.body(spec.torso).id),
            joint_names=tuple(m.joint(j).name for j in joints),
            joint_qpos=np.array([m.jnt_qposadr[j] for j in joints]),
            joint_dof=np.array([m.jnt_dofadr[j] for j in joints]),
            body_ids=np.array([m.body(b).id for b in spec.bodies], dtype=int),
            contact_body_names=body_names if spec.contact_forces else (),
            feet_names=tuple(label for label, _ in spec.feet),
            foot_geoms=np.array([m.geom(g).id for _, g in spec.feet], dtype=int),
            floor_geom=int(m.geom("floor").id),
        )
        names = {f.name for f in spec.fields()}
        names |= {"joint_names"} | ({"feet_names"} if spec.feet else set()) | ({"body_names"} if spec.bodies else set())
        names |= {"contact_body_names"} if spec.contact_forces else set()
        object.__setattr__(layout, "fields", frozenset(names))
        return layout

    # Row segments: kinematics before the step, kinematics after, then the rest.
    @property
    def kin_size(self) -> int:
        return self.nq + 3 + 4 + (3 if self.spec.center_of_mass else 0)

    @property
    def qvel_at(self) -> int:
        return 2 * self.kin_size

    @property
    def bodies_at(self) -> int:
        return self.qvel_at + self.nv

    @property
    def forces_at(self) -> int:
        return self.bodies_at + 3 * len(self.body_ids)

    @property
    def feet_at(self) -> int:
        return self.forces_at + 6 * len(self.contact_body_names)

    @property
    def step_at(self) -> int:
        return self.feet_at + len(self.foot_geoms)

    @property
    def size(self) -> int:
        return self.step_at + 1


class Recorder:
    """Fills one row with an env's raw state after each step (``capture``); ``restart`` after a reset.

    ``needs`` names the state fields someone will read; raw data only they use (feet
    contacts, body positions, contact forces) is then skipped. None: capture everything.
    """

    def __init__(self, env: gym.Env, layout: Layout, row: np.ndarray, needs: frozenset[str] | None = None) -> None:
        self.layout = layout
        self.row = row
        self.data = mujoco_env(env).data
        model = mujoco_env(env).model
        self._mass = model.body_mass[:, None]
        self._kin = np.zeros(layout.kin_size)
        self.steps = 0
        k = layout.kin_size

        def wanted(*names: str) -> bool:
            return needs is None or any(n in needs for n in names)

        # Views into the row, made once: a step then only copies into them.
        self._before, self._now = row[:k], row[k : 2 * k]
        self._qvel = row[layout.qvel_at : layout.bodies_at]
        nb, nc, nf = len(layout.body_ids), len(layout.contact_body_names), len(layout.foot_geoms)
        self._bodies = (
            row[layout.bodies_at : layout.forces_at].reshape(nb, 3) if nb and wanted("body_positions") else None
        )
        self._forces = (
            row[layout.forces_at : layout.feet_at].reshape(nc, 6) if nc and wanted("contact_forces") else None
        )
        self._feet = row[layout.feet_at : layout.step_at] if nf and wanted("feet_contact") else None
        self._com = layout.spec.center_of_mass and wanted("com_position", "com_x_velocity", "com_y_velocity")
        self._foot_of = np.full(model.ngeom, -1)  # geom id -> index of the foot it belongs to
        self._foot_of[layout.foot_geoms] = np.arange(nf)

    def _kinematics(self, out: np.ndarray) -> None:
        d, lay = self.data, self.layout
        nq = lay.nq
        out[:nq] = d.qpos
        out[nq : nq + 3] = d.xpos[lay.torso_id]
        out[nq + 3 : nq + 7] = d.xquat[lay.torso_id]
        if self._com:
            out[nq + 7 : nq + 10] = (self._mass * d.xipos).sum(axis=0) / self._mass.sum()

    def restart(self) -> None:
        """After a reset: the reset state is the 'before' of the first step."""
        self._kinematics(self._kin)
        self.steps = 0

    def capture(self) -> None:
        """Record the post-step row; the kinematics of the previous call become the 'before' part."""
        d, lay = self.data, self.layout
        self._before[:] = self._kin
        self._kinematics(self._now)
        self._kin[:] = self._now
        self._qvel[:] = d.qvel
        if self._bodies is not None:
            self._bodies[:] = d.xpos[lay.body_ids]
        if self._forces is not None:
            self._forces[:] = d.cfrc_ext[1:]
        if self._feet is not None:
            self._feet[:] = 0.0
            if d.ncon:
                pairs = d.contact.geom
                on_floor = (pairs[:, 0] == lay.floor_geom) | (pairs[:, 1] == lay.floor_geom)
                feet = self._foot_of[(pairs[:, 0] + pairs[:, 1] - lay.floor_geom)[on_floor]]
                self._feet[feet[feet >= 0]] = 1.0
        self.steps += 1
        self.row[lay.step_at] = self.steps


class StateCapture(gym.Wrapper):
    """A single env that records its raw state after every step into ``row``."""

    def __init__(self, env: gym.Env, layout: Layout, row: np.ndarray | None = None) -> None:
        super().__init__(env)
        self.layout = layout
        self.row = np.zeros(layout.size) if row is None else row
        self.recorder = Recorder(env, layout, self.row)

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self.recorder.restart()
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.recorder.capture()
        return obs, reward, terminated, truncated, info


def quiet_mujoco() -> None:
    """Route MuJoCo warnings to Python logging instead of MUJOCO_LOG.TXT in the working directory."""
    import logging

    log = logging.getLogger("mujoco")
    seen: set[str] = set()

    def warn(message: str) -> None:
        if message not in seen:
            seen.add(message)
            log.debug("MuJoCo: %s", message)

    mujoco.set_mju_user_warning(warn)
