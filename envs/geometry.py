"""Vectorised rotation helpers for the state view (leading axis N)."""

from __future__ import annotations

import numpy as np


def quat_to_euler(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Roll, pitch, yaw (ZYX convention, rad) of unit quaternions ``q`` = (w, x, y, z), shape (N, 4)."""
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    roll = np.arctan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    pitch = np.arcsin(np.clip(2.0 * (w * y - z * x), -1.0, 1.0))
    yaw = np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    return roll, pitch, yaw


def quat_upright(q: np.ndarray) -> np.ndarray:
    """z-component of the body's up axis in the world frame (1 upright, -1 upside down)."""
    x, y = q[:, 1], q[:, 2]
    return 1.0 - 2.0 * (x * x + y * y)


def quat_angular_velocity(q_prev: np.ndarray, q_now: np.ndarray, dt: float) -> np.ndarray:
    """Mean world-frame angular velocity (N, 3) that turns ``q_prev`` into ``q_now`` over ``dt``.

    The relative rotation q_now * conj(q_prev) is expressed in the world frame; its
    rotation vector divided by dt is the average angular velocity over the step.
    """
    w1, x1, y1, z1 = q_now[:, 0], q_now[:, 1], q_now[:, 2], q_now[:, 3]
    w0, x0, y0, z0 = q_prev[:, 0], -q_prev[:, 1], -q_prev[:, 2], -q_prev[:, 3]
    w = w1 * w0 - x1 * x0 - y1 * y0 - z1 * z0
    x = w1 * x0 + x1 * w0 + y1 * z0 - z1 * y0
    y = w1 * y0 - x1 * z0 + y1 * w0 + z1 * x0
    z = w1 * z0 + x1 * y0 - y1 * x0 + z1 * w0
    sign = np.where(w < 0.0, -1.0, 1.0)  # shortest rotation
    w, x, y, z = w * sign, x * sign, y * sign, z * sign
    vec = np.stack([x, y, z], axis=-1)
    norm = np.linalg.norm(vec, axis=-1)
    angle = 2.0 * np.arctan2(norm, w)
    scale = np.where(norm > 1e-12, angle / np.maximum(norm, 1e-12), 2.0)
    return vec * (scale / dt)[:, None]
