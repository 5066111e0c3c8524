"""What an env does around ``mj_step``, for a batch: observation, reward, reset, as Gymnasium v5 does it for one.

Each robot module declares its ``Dynamics`` (``EnvSpec.dynamics``): functions of (N, ...) arrays
of MjData fields across a batch (``BatchData``) that compute, for N envs at once, what
Gymnasium's env of the same name computes for one, with its default arguments; a user robot's
are derived from its model (``envs.robot``). The batched engine (``workers.engine.batched``)
steps the simulation and calls these. How closely it matches Gymnasium is measured per env in
tests/workers/engine/test_batched.py: exact (1e-8) for positions, velocities, terminations and
every observation and reward that does not read contact forces; where they do (Ant, Humanoid,
HumanoidStandup) the test states and asserts the rate at which they agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import mujoco
import numpy as np


class BatchData(Protocol):
    """(N, ...) views of MjData fields across a batch of simulations of one model (and that model)."""

    model: mujoco.MjModel
    qpos: np.ndarray
    qvel: np.ndarray
    ctrl: np.ndarray
    xpos: np.ndarray
    xipos: np.ndarray
    site_xpos: np.ndarray
    cinert: np.ndarray
    cvel: np.ndarray
    qfrc_actuator: np.ndarray
    qfrc_constraint: np.ndarray
    cfrc_ext: np.ndarray


Reset = Callable[[np.random.Generator, np.ndarray, int], tuple[np.ndarray, np.ndarray]]
"""(the env's generator, qpos0, nv) -> the (qpos, qvel) an episode starts from, drawn as Gymnasium's reset_model."""

Reward = Callable[[np.ndarray, np.ndarray, np.ndarray, BatchData], np.ndarray]
"""(velocity, action, healthy, data) -> (N,) env rewards."""


@dataclass(frozen=True)
class Dynamics:
    """What one env does around ``mj_step``, for a batch."""

    xml_file: str
    """Gymnasium's MJCF asset ('' for a user robot, whose uploaded files are the model)."""
    frame_skip: int
    """Physics steps per control step."""
    reset: Reset
    observe: Callable[[BatchData], np.ndarray]
    reward: Reward
    terminates: bool
    """Whether an unhealthy state ends the episode."""
    fields: tuple[str, ...]
    """The derived MjData fields it reads (the engine binds only these)."""
    position: Callable[[BatchData, np.ndarray], np.ndarray] | None = None
    """The position whose change over a step is the velocity the reward pays: (N,) x or (N, 2) xy; takes body
    masses. None: the reward pays no velocity."""
    contact_forces: bool = False
    """Whether it reads cfrc_ext (the model then computes it every step)."""


def noise_reset(scale: float, qvel: str = "uniform") -> Reset:
    """Gymnasium's usual reset_model: qpos0 plus uniform noise in [-scale, scale], and velocities either uniform
    in the same range or ``scale`` times a standard normal (``qvel='normal'``), drawn in that order."""

    def reset(rng: np.random.Generator, qpos0: np.ndarray, nv: int) -> tuple[np.ndarray, np.ndarray]:
        qpos = qpos0 + rng.uniform(low=-scale, high=scale, size=len(qpos0))
        if qvel == "normal":
            return qpos, scale * rng.standard_normal(nv)
        return qpos, rng.uniform(low=-scale, high=scale, size=nv)

    return reset


def ctrl_cost(weight: float, action: np.ndarray) -> np.ndarray:
    """Gymnasium squares the action as given (float32), so the cost is float32 as there."""
    return weight * np.sum(np.square(action), axis=1)


def root_x(d: BatchData, mass: np.ndarray) -> np.ndarray:
    """The first joint's position: x of the planar robots' root slide."""
    return d.qpos[:, 0].copy()


def always_healthy(qpos: np.ndarray, qvel: np.ndarray, sites: np.ndarray) -> np.ndarray:
    """The health test of an env that never ends an episode early."""
    return np.ones(qpos.shape[0], dtype=bool)
