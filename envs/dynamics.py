"""Gymnasium v5's MuJoCo envs, vectorised: observation, reward, health and reset noise for N envs at once.

Each function takes (N, ...) arrays of MjData fields across a batch (``BatchData``) and
returns (N, ...) arrays, computed as Gymnasium's env of the same name computes them for
one env, with its default arguments (``exclude_current_positions_from_observation``,
contact forces in the observation, weights, healthy ranges, ``reset_noise_scale``).
The batched engine (``workers.engine.batched``) steps the simulation and calls these;
tests compare the two to 1e-8 over thousands of steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from envs.spec import EnvSpec


class BatchData(Protocol):
    """(N, ...) views of MjData fields across a batch of simulations of one model."""

    qpos: np.ndarray
    qvel: np.ndarray
    ctrl: np.ndarray
    xpos: np.ndarray
    xipos: np.ndarray
    cinert: np.ndarray
    cvel: np.ndarray
    qfrc_actuator: np.ndarray
    cfrc_ext: np.ndarray


@dataclass(frozen=True)
class Dynamics:
    """What one Gymnasium env does around ``mj_step``, for a batch."""

    xml_file: str
    """Gymnasium's MJCF asset."""
    frame_skip: int
    """Physics steps per control step."""
    reset_noise_scale: float
    qvel_noise: str
    """'normal' (scale * standard normal) or 'uniform' (in [-scale, scale]): Gymnasium's reset_model."""
    observe: Callable[[BatchData], np.ndarray]
    position: Callable[[BatchData, np.ndarray], np.ndarray]
    """The position whose change over a step is the forward velocity: (N,) x or (N, 2) xy; takes body masses."""
    reward: Callable[[np.ndarray, np.ndarray, np.ndarray, BatchData], np.ndarray]
    """Env reward from (velocity, action, healthy, data)."""
    terminates: bool
    """Whether an unhealthy state ends the episode."""
    fields: tuple[str, ...]
    """The derived MjData fields it reads (the engine binds only these)."""
    contact_forces: bool = False
    """Whether it reads cfrc_ext (the model then computes it every step)."""

    def reset_noise(self, rng: np.random.Generator, nq: int, nv: int) -> tuple[np.ndarray, np.ndarray]:
        """Noise added to qpos0 and to zero velocities, drawn as Gymnasium's reset_model draws it."""
        s = self.reset_noise_scale
        qpos = rng.uniform(low=-s, high=s, size=nq)
        if self.qvel_noise == "normal":
            return qpos, s * rng.standard_normal(nv)
        return qpos, rng.uniform(low=-s, high=s, size=nv)


def _ctrl_cost(weight: float, action: np.ndarray) -> np.ndarray:
    # Gymnasium squares the action as given (float32), so the cost is float32 as there.
    return weight * np.sum(np.square(action), axis=1)


def _planar_obs(d: BatchData) -> np.ndarray:
    return np.concatenate([d.qpos[:, 1:], d.qvel], axis=1)


def _planar_clipped_obs(d: BatchData) -> np.ndarray:
    return np.concatenate([d.qpos[:, 1:], np.clip(d.qvel, -10, 10)], axis=1)


def _root_x(d: BatchData, mass: np.ndarray) -> np.ndarray:
    return d.qpos[:, 0].copy()


def _torso_xy(d: BatchData, mass: np.ndarray) -> np.ndarray:
    return d.xpos[:, 1, :2].copy()  # Ant-v5's main_body = 1 (the torso)


def _mass_centre_xy(d: BatchData, mass: np.ndarray) -> np.ndarray:
    return (np.einsum("b,nbj->nj", mass, d.xipos) / mass.sum())[:, :2]


def _cheetah_reward(v: np.ndarray, action: np.ndarray, healthy: np.ndarray, d: BatchData) -> np.ndarray:
    return 1.0 * v - _ctrl_cost(0.1, action)


def _planar_healthy_reward(v: np.ndarray, action: np.ndarray, healthy: np.ndarray, d: BatchData) -> np.ndarray:
    return (1.0 * v + healthy * 1.0) - _ctrl_cost(1e-3, action)


def _ant_obs(d: BatchData) -> np.ndarray:
    forces = np.clip(d.cfrc_ext, -1.0, 1.0)[:, 1:].reshape(len(d.qpos), -1)
    return np.concatenate([d.qpos[:, 2:], d.qvel, forces], axis=1)


def _ant_reward(v: np.ndarray, action: np.ndarray, healthy: np.ndarray, d: BatchData) -> np.ndarray:
    n = len(v)
    contact = 5e-4 * np.sum(np.square(np.clip(d.cfrc_ext, -1.0, 1.0)).reshape(n, -1), axis=1)
    return (v[:, 0] * 1.0 + healthy * 1.0) - (_ctrl_cost(0.5, action) + contact)


def _humanoid_obs(d: BatchData) -> np.ndarray:
    n = len(d.qpos)
    return np.concatenate(
        [
            d.qpos[:, 2:],
            d.qvel,
            d.cinert[:, 1:].reshape(n, -1),
            d.cvel[:, 1:].reshape(n, -1),
            d.qfrc_actuator[:, 6:],
            d.cfrc_ext[:, 1:].reshape(n, -1),
        ],
        axis=1,
    )


def _humanoid_reward(v: np.ndarray, action: np.ndarray, healthy: np.ndarray, d: BatchData) -> np.ndarray:
    n = len(v)
    ctrl = 0.1 * np.sum(np.square(d.ctrl), axis=1)  # Humanoid-v5 costs data.ctrl (float64), not the action
    contact = np.clip(5e-7 * np.sum(np.square(d.cfrc_ext).reshape(n, -1), axis=1), -np.inf, 10.0)
    return (1.25 * v[:, 0] + healthy * 5.0) - (ctrl + contact)


DYNAMICS: dict[str, Dynamics] = {
    "HalfCheetah-v5": Dynamics("half_cheetah.xml", 5, 0.1, "normal", _planar_obs, _root_x, _cheetah_reward, False, ()),
    "Hopper-v5": Dynamics(
        "hopper.xml", 4, 5e-3, "uniform", _planar_clipped_obs, _root_x, _planar_healthy_reward, True, ()
    ),
    "Walker2d-v5": Dynamics(
        "walker2d_v5.xml", 4, 5e-3, "uniform", _planar_clipped_obs, _root_x, _planar_healthy_reward, True, ()
    ),
    "Ant-v5": Dynamics(
        "ant.xml", 5, 0.1, "normal", _ant_obs, _torso_xy, _ant_reward, True, ("xpos", "cfrc_ext"), contact_forces=True
    ),
    "Humanoid-v5": Dynamics(
        "humanoid.xml",
        5,
        1e-2,
        "uniform",
        _humanoid_obs,
        _mass_centre_xy,
        _humanoid_reward,
        True,
        ("xipos", "cinert", "cvel", "qfrc_actuator", "cfrc_ext"),
        contact_forces=True,
    ),
}


def dynamics_of(spec: EnvSpec) -> Dynamics:
    """The batched dynamics of a registered env; an env without one cannot be trained by the engine."""
    try:
        return DYNAMICS[spec.name]
    except KeyError:
        raise ValueError(
            f"the batched engine has no dynamics for '{spec.name}'; add an entry to envs.dynamics.DYNAMICS"
        ) from None
