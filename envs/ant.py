"""Ant-v5: a four-legged robot moving in 3D."""

import numpy as np

from envs.dynamics import BatchData, Dynamics, ctrl_cost, noise_reset
from envs.spec import EnvSpec, PPODefaults


def _obs(d: BatchData) -> np.ndarray:
    forces = np.clip(d.cfrc_ext, -1.0, 1.0)[:, 1:].reshape(len(d.qpos), -1)
    return np.concatenate([d.qpos[:, 2:], d.qvel, forces], axis=1)


def _torso_xy(d: BatchData, mass: np.ndarray) -> np.ndarray:
    return d.xpos[:, 1, :2].copy()  # Ant-v5's main_body = 1 (the torso)


def _reward(v: np.ndarray, action: np.ndarray, healthy: np.ndarray, d: BatchData) -> np.ndarray:
    n = len(v)
    contact = 5e-4 * np.sum(np.square(np.clip(d.cfrc_ext, -1.0, 1.0)).reshape(n, -1), axis=1)
    return (v[:, 0] * 1.0 + healthy * 1.0) - (ctrl_cost(0.5, action) + contact)


def _healthy(qpos: np.ndarray, qvel: np.ndarray, sites: np.ndarray) -> np.ndarray:
    finite = np.isfinite(qpos).all(axis=1) & np.isfinite(qvel).all(axis=1)
    return finite & (qpos[:, 2] >= 0.2) & (qpos[:, 2] <= 1.0)


DYNAMICS = Dynamics(
    "ant.xml", 5, noise_reset(0.1, "normal"), _obs, _reward, True, ("xpos", "cfrc_ext"), _torso_xy, contact_forces=True
)

REFERENCE_REWARD = '''\
import numpy as np

FORWARD_WEIGHT = 1.0
HEALTHY_REWARD = 1.0
CTRL_COST_WEIGHT = 0.5
CONTACT_COST_WEIGHT = 5e-4


def compute_reward(state, action):
    """Gymnasium's Ant-v5 reward: forward velocity + staying healthy - control and contact costs."""
    forward = FORWARD_WEIGHT * state.x_velocity
    healthy = HEALTHY_REWARD * state.is_healthy
    ctrl_cost = CTRL_COST_WEIGHT * np.sum(np.square(action), axis=-1)
    forces = np.clip(state.contact_forces, -1.0, 1.0)
    contact_cost = CONTACT_COST_WEIGHT * np.sum(np.square(forces), axis=(1, 2))
    reward = forward + healthy - ctrl_cost - contact_cost
    return reward, {
        "forward": forward,
        "healthy": healthy,
        "ctrl_cost": -ctrl_cost,
        "contact_cost": -contact_cost,
    }
'''

SPEC = EnvSpec(
    name="Ant-v5",
    title="3D quadruped, 8 joints",
    summary="A quadruped: a round torso with four two-segment legs, free to move and turn in 3D.",
    planar=False,
    action=(
        "8 torques in [-1, 1], hip and ankle of each leg, in the order of state.joint_names "
        "(hip_4, ankle_4, hip_1, ankle_1, hip_2, ankle_2, hip_3, ankle_3)."
    ),
    termination=(
        "The episode ends when the robot is unhealthy: torso height (z_position) outside [0.2, 1.0] m "
        "or a non-finite state. At most 1000 steps (50 s)."
    ),
    healthy=_healthy,
    reference_reward=REFERENCE_REWARD,
    feet=(
        ("front_left_foot", "left_ankle_geom"),
        ("front_right_foot", "right_ankle_geom"),
        ("back_left_foot", "third_ankle_geom"),
        ("back_right_foot", "fourth_ankle_geom"),
    ),
    dynamics=DYNAMICS,
    bodies=(
        ("torso", "the round torso (root body)"),
        ("front_left_leg", "front left leg: hip segment"),
        ("aux_1", "front left leg: upper segment (moved by hip_1)"),
        ("body_4", "front left leg: lower segment, the foot (moved by ankle_1)"),
        ("front_right_leg", "front right leg: hip segment"),
        ("aux_2", "front right leg: upper segment (moved by hip_2)"),
        ("body_7", "front right leg: lower segment, the foot (moved by ankle_2)"),
        ("back_leg", "back left leg: hip segment"),
        ("aux_3", "back left leg: upper segment (moved by hip_3)"),
        ("body_10", "back left leg: lower segment, the foot (moved by ankle_3)"),
        ("right_back_leg", "back right leg: hip segment"),
        ("aux_4", "back right leg: upper segment (moved by hip_4)"),
        ("body_13", "back right leg: lower segment, the foot (moved by ankle_4)"),
    ),
    contact_forces=True,
    # Not yet tuned by learning curves for the batched engine: sized like Hopper's, with larger minibatches.
    ppo=PPODefaults(n_envs=32, n_steps=128, batch_size=1024, gamma=0.99, gae_lambda=0.95),
)
