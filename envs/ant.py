"""Ant-v5: a four-legged robot moving in 3D."""

import numpy as np

from envs.spec import EnvSpec, PPODefaults


def _healthy(qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
    finite = np.isfinite(qpos).all(axis=1) & np.isfinite(qvel).all(axis=1)
    return finite & (qpos[:, 2] >= 0.2) & (qpos[:, 2] <= 1.0)


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
    bodies=("torso", "front_left_leg", "front_right_leg", "back_leg", "right_back_leg"),
    contact_forces=True,
    # Not yet tuned by learning curves for the batched engine: sized like Hopper's, with larger minibatches.
    ppo=PPODefaults(n_envs=32, n_steps=128, batch_size=1024, gamma=0.99, gae_lambda=0.95),
)
