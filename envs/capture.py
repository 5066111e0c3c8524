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
    root_qpos: np.ndarray
    """qpos addresses the torso's pose is read from ('free_joint': 7, 'planar_xy': 3), else empty."""
    joint_names: tuple[str, ...]
    joint_qpos: np.ndarray
    joint_dof: np.ndarray
    body_names: tuple[str, ...]
    body_ids: np.ndarray
    site_names: tuple[str, ...]
    site_ids: np.ndarray
    passive_joint_names: tuple[str, ...]
    passive_qpos: np.ndarray
    passive_dof: np.ndarray
    contact_body_names: tuple[str, ...]
    feet_names: tuple[str, ...]
    foot_geoms: np.ndarray
    floor_geom: int
    """-1 when the model has no floor (then there are no feet)."""
    fields: frozenset[str] = field(default=frozenset(), compare=False)
    """Names of the state fields this env offers (filled in by ``from_model``)."""

    @classmethod
    def from_env(cls, spec: EnvSpec, env: gym.Env) -> Layout:
        u = mujoco_env(env)
        return cls.from_model(spec, u.model, float(u.dt))

    @classmethod
    def from_model(cls, spec: EnvSpec, m: mujoco.MjModel, dt: float) -> Layout:
        """The layout of ``spec``'s rows for the compiled model ``m`` with control step ``dt``."""
        joints = [int(m.actuator_trnid[a, 0]) for a in range(m.nu)]
        passive = [int(m.joint(name).id) for name, _ in spec.passive_joints]
        body_names = body_names_of(m)
        torso = int(m.body(spec.torso).id)
        layout = cls(
            spec=spec,
            dt=dt,
            nq=int(m.nq),
            nv=int(m.nv),
            torso_id=torso,
            root_qpos=_root_qpos(spec, m, torso),
            joint_names=tuple(m.joint(j).name for j in joints),
            joint_qpos=np.array([m.jnt_qposadr[j] for j in joints], dtype=int),
            joint_dof=np.array([m.jnt_dofadr[j] for j in joints], dtype=int),
            body_names=body_names,
            body_ids=np.arange(1, m.nbody, dtype=int),
            site_names=tuple(name for name, _ in spec.sites),
            site_ids=np.array([m.site(name).id for name, _ in spec.sites], dtype=int),
            passive_joint_names=tuple(name for name, _ in spec.passive_joints),
            passive_qpos=np.array([m.jnt_qposadr[j] for j in passive], dtype=int),
            passive_dof=np.array([m.jnt_dofadr[j] for j in passive], dtype=int),
            contact_body_names=body_names if spec.contact_forces else (),
            feet_names=tuple(label for label, _ in spec.feet),
            foot_geoms=np.array([m.geom(g).id for _, g in spec.feet], dtype=int),
            floor_geom=int(m.geom(spec.floor).id) if spec.feet else -1,
        )
        names = {f.name for f in spec.fields()} | {"joint_names", "body_names"}
        names |= {"feet_names"} if spec.feet else set()
        names |= {"site_names"} if spec.sites else set()
        names |= {"passive_joint_names"} if spec.passive_joints else set()
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
        """Body positions after the step, then (at ``bodies_before_at``) before it."""
        return self.qvel_at + self.nv

    @property
    def bodies_before_at(self) -> int:
        return self.bodies_at + 3 * len(self.body_ids)

    @property
    def sites_at(self) -> int:
        return self.bodies_before_at + 3 * len(self.body_ids)

    @property
    def forces_at(self) -> int:
        return self.sites_at + 3 * len(self.site_ids)

    @property
    def feet_at(self) -> int:
        return self.forces_at + 6 * len(self.contact_body_names)

    @property
    def step_at(self) -> int:
        return self.feet_at + len(self.foot_geoms)

    @property
    def size(self) -> int:
        return self.step_at + 1


def body_names_of(m: mujoco.MjModel) -> tuple[str, ...]:
    """Every body's name but the world's, in model order; an unnamed body is body_<id>."""
    return tuple(m.body(b).name or f"body_{b}" for b in range(1, m.nbody))


def _root_qpos(spec: EnvSpec, m: mujoco.MjModel, torso: int) -> np.ndarray:
    if spec.root == "free_joint":
        free_type = int(mujoco.mjtJoint.mjJNT_FREE)
        free = [j for j in range(m.njnt) if m.jnt_bodyid[j] == torso and int(m.jnt_type[j]) == free_type]
        if not free:
            raise ValueError(f"{spec.name}: root 'free_joint' but the body '{spec.torso}' has no free joint")
        return np.arange(m.jnt_qposadr[free[0]], m.jnt_qposadr[free[0]] + 7)
    if spec.root == "planar_xy":  # slide x, slide y, hinge z on the torso, in that order
        joints = [j for j in range(m.njnt) if m.jnt_bodyid[j] == torso]
        return np.array([m.jnt_qposadr[j] for j in joints[:3]], dtype=int)
    return np.zeros(0, dtype=int)


def root_pose(layout: Layout, qpos: np.ndarray, xpos: np.ndarray, xquat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The torso's world position (n, 3) and unit quaternion (n, 4) from (n, ...) qpos, xpos, xquat."""
    a, torso = layout.root_qpos, layout.torso_id
    if len(a) == 7:  # a free joint: its qpos is the pose at the end of the step (xpos lags it by one substep)
        quat = qpos[:, a[3:]]
        return qpos[:, a[:3]], quat / np.linalg.norm(quat, axis=1, keepdims=True)
    if len(a) == 3:  # slides along x and y, a hinge about z
        half = 0.5 * qpos[:, a[2]]
        zeros = np.zeros(len(qpos))
        pos = np.stack([qpos[:, a[0]], qpos[:, a[1]], xpos[:, torso, 2]], axis=1)
        return pos, np.stack([np.cos(half), zeros, zeros, np.sin(half)], axis=1)
    return xpos[:, torso], xquat[:, torso]


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
        nb, ns = len(layout.body_ids), len(layout.site_ids)
        nc, nf = len(layout.contact_body_names), len(layout.foot_geoms)
        moving = wanted("body_positions", "body_velocities")
        self._bodies = row[layout.bodies_at : layout.bodies_before_at].reshape(nb, 3) if moving else None
        self._bodies_before = row[layout.bodies_before_at : layout.sites_at].reshape(nb, 3) if moving else None
        self._last_bodies = np.zeros((nb, 3))
        self._sites = row[layout.sites_at : layout.forces_at].reshape(ns, 3) if ns else None
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
        pos, quat = root_pose(lay, d.qpos[None], d.xpos[None], d.xquat[None])
        out[nq : nq + 3] = pos[0]
        out[nq + 3 : nq + 7] = quat[0]
        if self._com:
            out[nq + 7 : nq + 10] = (self._mass * d.xipos).sum(axis=0) / self._mass.sum()

    def restart(self) -> None:
        """After a reset: the reset state is the 'before' of the first step."""
        self._kinematics(self._kin)
        self._last_bodies[:] = self.data.xpos[self.layout.body_ids]
        self.steps = 0

    def capture(self) -> None:
        """Record the post-step row; the kinematics of the previous call become the 'before' part."""
        d, lay = self.data, self.layout
        self._before[:] = self._kin
        self._kinematics(self._now)
        self._kin[:] = self._now
        self._qvel[:] = d.qvel
        if self._bodies is not None and self._bodies_before is not None:
            self._bodies_before[:] = self._last_bodies
            self._bodies[:] = d.xpos[lay.body_ids]
            self._last_bodies[:] = self._bodies
        if self._sites is not None:
            self._sites[:] = d.site_xpos[lay.site_ids]
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
