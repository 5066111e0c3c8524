"""The state view: batched named fields derived from stacked raw rows (see ``envs.capture``).

Fields are computed on first access, in groups, with array operations over the leading
axis (N parallel envs, or T steps of one episode), so a reward that reads two fields
pays for two. The same view serves reward programs and fitness programs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from envs.capture import Layout
from envs.geometry import quat_angular_velocity, quat_to_euler, quat_upright


def _kin(lay: Layout, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = lay.kin_size
    return raw[:, :k], raw[:, k : 2 * k]


def _positions(lay: Layout, raw: np.ndarray) -> dict:
    _, now = _kin(lay, raw)
    nq = lay.nq
    if lay.spec.planar:  # root slide x, slide z, hinge y
        return {"x_position": now[:, 0].copy(), "y_position": np.zeros(len(raw)), "z_position": now[:, nq + 2].copy()}
    return {"x_position": now[:, nq].copy(), "y_position": now[:, nq + 1].copy(), "z_position": now[:, nq + 2].copy()}


def _velocities(lay: Layout, raw: np.ndarray) -> dict:
    before, now = _kin(lay, raw)
    nq, dt = lay.nq, lay.dt
    if lay.spec.planar:
        return {
            "x_velocity": (now[:, 0] - before[:, 0]) / dt,
            "y_velocity": np.zeros(len(raw)),
            "z_velocity": (now[:, nq + 2] - before[:, nq + 2]) / dt,
        }
    vel = (now[:, nq : nq + 3] - before[:, nq : nq + 3]) / dt
    return {"x_velocity": vel[:, 0], "y_velocity": vel[:, 1], "z_velocity": vel[:, 2]}


def _orientation(lay: Layout, raw: np.ndarray) -> dict:
    _, now = _kin(lay, raw)
    if lay.spec.planar:  # the body angle is the hinge
        pitch = now[:, 2].copy()
        zeros = np.zeros(len(raw))
        return {"roll": zeros, "pitch": pitch, "yaw": zeros, "upright": np.cos(pitch)}
    quat = now[:, lay.nq + 3 : lay.nq + 7]
    roll, pitch, yaw = quat_to_euler(quat)
    return {"roll": roll, "pitch": pitch, "yaw": yaw, "upright": quat_upright(quat)}


def _spin(lay: Layout, raw: np.ndarray) -> dict:
    before, now = _kin(lay, raw)
    if lay.spec.planar:
        w = np.zeros((len(raw), 3))
        w[:, 1] = (now[:, 2] - before[:, 2]) / lay.dt
        return {"angular_velocity": w}
    q = slice(lay.nq + 3, lay.nq + 7)
    return {"angular_velocity": quat_angular_velocity(before[:, q], now[:, q], lay.dt)}


def _com(lay: Layout, raw: np.ndarray) -> dict:
    before, now = _kin(lay, raw)
    c = slice(lay.nq + 7, lay.nq + 10)
    com, com_before = now[:, c], before[:, c]
    return {
        "com_position": com.copy(),
        "com_x_velocity": (com[:, 0] - com_before[:, 0]) / lay.dt,
        "com_y_velocity": (com[:, 1] - com_before[:, 1]) / lay.dt,
    }


def _qpos_qvel(lay: Layout, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, now = _kin(lay, raw)
    return now[:, : lay.nq], raw[:, lay.qvel_at : lay.bodies_at]


def _joints(lay: Layout, raw: np.ndarray) -> dict:
    qpos, qvel = _qpos_qvel(lay, raw)
    return {"joint_positions": qpos[:, lay.joint_qpos], "joint_velocities": qvel[:, lay.joint_dof]}


def _passive(lay: Layout, raw: np.ndarray) -> dict:
    qpos, qvel = _qpos_qvel(lay, raw)
    return {
        "passive_joint_positions": qpos[:, lay.passive_qpos],
        "passive_joint_velocities": qvel[:, lay.passive_dof],
        "passive_joint_names": lay.passive_joint_names,
    }


def _site_positions(lay: Layout, raw: np.ndarray) -> np.ndarray:
    return raw[:, lay.sites_at : lay.forces_at].reshape(len(raw), -1, 3)


def _health(lay: Layout, raw: np.ndarray) -> dict:
    return {"is_healthy": lay.spec.healthy(*_qpos_qvel(lay, raw), _site_positions(lay, raw))}


def _bodies(lay: Layout, raw: np.ndarray) -> dict:
    now = raw[:, lay.bodies_at : lay.bodies_before_at].reshape(len(raw), -1, 3)
    before = raw[:, lay.bodies_before_at : lay.sites_at].reshape(len(raw), -1, 3)
    return {"body_positions": now, "body_velocities": (now - before) / lay.dt, "body_names": lay.body_names}


def _sites(lay: Layout, raw: np.ndarray) -> dict:
    return {"site_positions": _site_positions(lay, raw), "site_names": lay.site_names}


def _contacts(lay: Layout, raw: np.ndarray) -> dict:
    return {
        "contact_forces": raw[:, lay.forces_at : lay.feet_at].reshape(len(raw), -1, 6),
        "contact_body_names": lay.contact_body_names,
    }


def _feet(lay: Layout, raw: np.ndarray) -> dict:
    return {"feet_contact": raw[:, lay.feet_at : lay.step_at] > 0.5, "feet_names": lay.feet_names}


def _step(lay: Layout, raw: np.ndarray) -> dict:
    return {"step": raw[:, lay.step_at].astype(np.int64)}


_GROUPS: list[Callable[[Layout, np.ndarray], dict]] = [
    _positions,
    _velocities,
    _orientation,
    _spin,
    _com,
    _joints,
    _passive,
    _health,
    _bodies,
    _sites,
    _contacts,
    _feet,
    _step,
]
_GROUP_OF: dict[str, Callable[[Layout, np.ndarray], dict]] = {}
for _group, _names in zip(
    _GROUPS,
    (
        ("x_position", "y_position", "z_position"),
        ("x_velocity", "y_velocity", "z_velocity"),
        ("roll", "pitch", "yaw", "upright"),
        ("angular_velocity",),
        ("com_position", "com_x_velocity", "com_y_velocity"),
        ("joint_positions", "joint_velocities"),
        ("passive_joint_positions", "passive_joint_velocities", "passive_joint_names"),
        ("is_healthy",),
        ("body_positions", "body_velocities", "body_names"),
        ("site_positions", "site_names"),
        ("contact_forces", "contact_body_names"),
        ("feet_contact", "feet_names"),
        ("step",),
    ),
    strict=True,
):
    _GROUP_OF.update(dict.fromkeys(_names, _group))


def _read_only(fields: dict) -> dict:
    """``fields`` with every array read-only (views of a read-only private copy, or fresh arrays)."""
    for value in fields.values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return fields


def _private(raw: np.ndarray) -> np.ndarray:
    """A read-only copy of ``raw`` that no one else holds: what a program sees cannot reach the engine's buffer."""
    copy = np.array(raw, dtype=np.float64, copy=True)
    copy.flags.writeable = False
    return copy


class State:
    """Named, batched fields of the state view, computed when first read; unknown names list the known ones.

    Built from raw rows (``build_state``) or, in tests, from a dict of ready fields. Read-only:
    its arrays cannot be written and no attribute can be set, and it holds its own copy of the
    rows, so a program can neither change what it is shown for the next reader nor reach the
    engine's buffers through it.
    """

    def __init__(
        self, fields: dict[str, object] | None = None, *, layout: Layout | None = None, raw: np.ndarray | None = None
    ) -> None:
        own = {k: _private(v) if isinstance(v, np.ndarray) else v for k, v in (fields or {}).items()}
        self.__dict__["_layout"] = layout
        self.__dict__["_raw"] = None if raw is None else _private(raw)
        self.__dict__.update(own)

    def __getattr__(self, name: str) -> Any:
        layout = self.__dict__.get("_layout")
        if layout is not None and name in layout.fields and name in _GROUP_OF:
            self.__dict__.update(_read_only(_GROUP_OF[name](layout, self.__dict__["_raw"])))
            return self.__dict__[name]
        raise AttributeError(f"the state has no field '{name}'. Fields: {', '.join(self.field_names())}")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(
            f"cannot set state.{name}: the state is read-only; keep your own values in local variables"
        )

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete state.{name}: the state is read-only")

    def field_names(self) -> list[str]:
        names = {k for k in self.__dict__ if not k.startswith("_")}
        layout = self.__dict__.get("_layout")
        return sorted(names | set(layout.fields) if layout is not None else names)

    def has(self, name: str) -> bool:
        return name in self.field_names()


def build_state(layout: Layout, raw: np.ndarray) -> State:
    """The state view over (a private copy of) stacked raw rows of shape (N, layout.size) (or (T, size))."""
    return State({"dt": layout.dt, "joint_names": layout.joint_names}, layout=layout, raw=raw)


def select(state: State, index: int | slice | Sequence[int] | np.ndarray) -> State:
    """The same view over some of its envs (rows) only: ``select(state, [2])`` is env 2 alone, as a batch of one."""
    own = state.__dict__
    if own["_raw"] is not None:
        return State(
            {k: v for k, v in own.items() if not k.startswith("_") and not isinstance(v, np.ndarray)},
            layout=own["_layout"],
            raw=own["_raw"][index],
        )
    return State({k: v[index] if isinstance(v, np.ndarray) and v.ndim else v for k, v in own.items() if k[0] != "_"})
