"""The state view: raw MuJoCo data captured per env, turned into batched named fields.

Each env in a vector env writes one raw row per step (``StateCapture``); the rows are
stacked and ``build_state`` derives every field of the view with array operations, so
one reward call serves the whole batch. The same builder turns an episode's rows
(leading axis T) into the trajectory a fitness program reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import mujoco
import numpy as np

from envs.geometry import quat_angular_velocity, quat_to_euler, quat_upright
from envs.spec import EnvSpec


class State:
    """Named, batched fields of the state view; unknown names fail with the list of known ones."""

    def __init__(self, fields: dict[str, object]) -> None:
        self.__dict__.update(fields)

    def __getattr__(self, name: str) -> object:
        known = ", ".join(sorted(k for k in self.__dict__ if not k.startswith("_")))
        raise AttributeError(f"the state has no field '{name}'. Fields: {known}")

    def field_names(self) -> list[str]:
        return sorted(self.__dict__)


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

    @classmethod
    def from_env(cls, spec: EnvSpec, env: gym.Env) -> "Layout":
        u = env.unwrapped
        m = u.model
        joints = [int(m.actuator_trnid[a, 0]) for a in range(m.nu)]
        body_names = tuple(m.body(b).name or f"body_{b}" for b in range(1, m.nbody))
        return cls(
            spec=spec,
            dt=float(u.dt),
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

    # Row segments: kinematics before the step, kinematics after, then the rest.
    @property
    def kin_size(self) -> int:
        return self.nq + 3 + 4 + (3 if self.spec.center_of_mass else 0)

    @property
    def size(self) -> int:
        k = self.kin_size
        return (
            2 * k
            + self.nv
            + 3 * len(self.body_ids)
            + 6 * len(self.contact_body_names)
            + len(self.foot_geoms)
            + 1
        )


class StateCapture(gym.Wrapper):
    """Writes the raw state of its env after every step into ``row`` (a view into a shared batch buffer)."""

    def __init__(self, env: gym.Env, layout: Layout, row: np.ndarray | None = None) -> None:
        super().__init__(env)
        self.layout = layout
        self.row = np.zeros(layout.size) if row is None else row
        self._data = env.unwrapped.data
        self._model = env.unwrapped.model
        self._kin = np.zeros(layout.kin_size)
        self._mass = self._model.body_mass[:, None]
        self._steps = 0

    def _kinematics(self, out: np.ndarray) -> None:
        d, lay = self._data, self.layout
        nq = lay.nq
        out[:nq] = d.qpos
        out[nq : nq + 3] = d.xpos[lay.torso_id]
        out[nq + 3 : nq + 7] = d.xquat[lay.torso_id]
        if lay.spec.center_of_mass:
            out[nq + 7 : nq + 10] = (self._mass * d.xipos).sum(axis=0) / self._mass.sum()

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._kinematics(self._kin)
        self._steps = 0
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.capture()
        return obs, reward, terminated, truncated, info

    def capture(self) -> None:
        """Record the post-step row; the kinematics of the previous call become the 'before' part."""
        lay, row, d = self.layout, self.row, self._data
        k = lay.kin_size
        row[:k] = self._kin
        self._kinematics(row[k : 2 * k])
        self._kin[:] = row[k : 2 * k]
        i = 2 * k
        row[i : i + lay.nv] = d.qvel
        i += lay.nv
        nb = 3 * len(lay.body_ids)
        if nb:
            row[i : i + nb] = d.xpos[lay.body_ids].ravel()
            i += nb
        nc = 6 * len(lay.contact_body_names)
        if nc:
            row[i : i + nc] = d.cfrc_ext[1:].ravel()
            i += nc
        nf = len(lay.foot_geoms)
        if nf:
            row[i : i + nf] = 0.0
            if d.ncon:
                pairs = d.contact.geom
                touching = pairs[(pairs == lay.floor_geom).any(axis=1)]
                row[i : i + nf] = np.isin(lay.foot_geoms, touching)
            i += nf
        self._steps += 1
        row[i] = self._steps


def build_state(layout: Layout, raw: np.ndarray) -> State:
    """Derive the state view from stacked raw rows of shape (N, layout.size)."""
    lay, spec = layout, layout.spec
    n = raw.shape[0]
    k, nq, nv, dt = lay.kin_size, lay.nq, lay.nv, lay.dt
    before, now = raw[:, :k], raw[:, k : 2 * k]
    qpos = now[:, :nq]
    i = 2 * k
    qvel = raw[:, i : i + nv]
    i += nv
    torso, torso_before = now[:, nq : nq + 3], before[:, nq : nq + 3]
    quat, quat_before = now[:, nq + 3 : nq + 7], before[:, nq + 3 : nq + 7]
    zeros = np.zeros(n)
    f: dict[str, object] = {"dt": dt, "joint_names": lay.joint_names}
    if spec.planar:
        # Planar robots: root slide x, slide z, hinge y; the body angle is the hinge.
        f["x_position"] = qpos[:, 0].copy()
        f["y_position"] = zeros
        f["z_position"] = torso[:, 2].copy()
        f["x_velocity"] = (qpos[:, 0] - before[:, 0]) / dt
        f["y_velocity"] = zeros
        f["z_velocity"] = (torso[:, 2] - torso_before[:, 2]) / dt
        pitch = qpos[:, 2].copy()
        f["roll"], f["pitch"], f["yaw"] = zeros, pitch, zeros
        f["upright"] = np.cos(pitch)
        w = np.zeros((n, 3))
        w[:, 1] = (pitch - before[:, 2]) / dt
        f["angular_velocity"] = w
    else:
        f["x_position"] = torso[:, 0].copy()
        f["y_position"] = torso[:, 1].copy()
        f["z_position"] = torso[:, 2].copy()
        vel = (torso - torso_before) / dt
        f["x_velocity"], f["y_velocity"], f["z_velocity"] = vel[:, 0], vel[:, 1], vel[:, 2]
        f["roll"], f["pitch"], f["yaw"] = quat_to_euler(quat)
        f["upright"] = quat_upright(quat)
        f["angular_velocity"] = quat_angular_velocity(quat_before, quat, dt)
    if spec.center_of_mass:
        com, com_before = now[:, nq + 7 : nq + 10], before[:, nq + 7 : nq + 10]
        f["com_position"] = com.copy()
        f["com_x_velocity"] = (com[:, 0] - com_before[:, 0]) / dt
        f["com_y_velocity"] = (com[:, 1] - com_before[:, 1]) / dt
    f["joint_positions"] = qpos[:, lay.joint_qpos]
    f["joint_velocities"] = qvel[:, lay.joint_dof]
    f["is_healthy"] = spec.healthy(qpos, qvel)
    nb = len(lay.body_ids)
    if nb:
        f["body_positions"] = raw[:, i : i + 3 * nb].reshape(n, nb, 3)
        f["body_names"] = spec.bodies
        i += 3 * nb
    nc = len(lay.contact_body_names)
    if nc:
        f["contact_forces"] = raw[:, i : i + 6 * nc].reshape(n, nc, 6)
        f["contact_body_names"] = lay.contact_body_names
        i += 6 * nc
    nf = len(lay.foot_geoms)
    if nf:
        f["feet_contact"] = raw[:, i : i + nf] > 0.5
        f["feet_names"] = lay.feet_names
        i += nf
    f["step"] = raw[:, i].astype(np.int64)
    return State(f)


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
