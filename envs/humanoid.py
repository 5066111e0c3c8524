"""Humanoid-v5: a 3D biped with arms."""

import numpy as np

from envs.spec import EnvSpec, PPODefaults


def _healthy(qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
    return (qpos[:, 2] > 1.0) & (qpos[:, 2] < 2.0)


REFERENCE_REWARD = '''\
import numpy as np

FORWARD_WEIGHT = 1.25
HEALTHY_REWARD = 5.0
CTRL_COST_WEIGHT = 0.1
CONTACT_COST_WEIGHT = 5e-7
CONTACT_COST_MAX = 10.0


def compute_reward(state, action):
    """Gymnasium's Humanoid-v5 reward: centre-of-mass velocity + staying healthy - control and contact costs."""
    forward = FORWARD_WEIGHT * state.com_x_velocity
    healthy = HEALTHY_REWARD * state.is_healthy
    ctrl_cost = CTRL_COST_WEIGHT * np.sum(np.square(action), axis=-1)
    contact_cost = CONTACT_COST_WEIGHT * np.sum(np.square(state.contact_forces), axis=(1, 2))
    contact_cost = np.minimum(contact_cost, CONTACT_COST_MAX)
    reward = forward + healthy - ctrl_cost - contact_cost
    return reward, {
        "forward": forward,
        "healthy": healthy,
        "ctrl_cost": -ctrl_cost,
        "contact_cost": -contact_cost,
    }
'''

SPEC = EnvSpec(
    name="Humanoid-v5",
    title="3D humanoid, 17 joints",
    summary="A 3D humanoid: torso, abdomen, pelvis, two legs (thigh, shin, foot) and two arms.",
    planar=False,
    action="17 torques in [-0.4, 0.4], in the order of state.joint_names (abdomen, hips, knees, shoulders, elbows).",
    termination=(
        "The episode ends when the robot is unhealthy: torso height (z_position) outside (1.0, 2.0) m. "
        "At most 1000 steps (15 s)."
    ),
    healthy=_healthy,
    reference_reward=REFERENCE_REWARD,
    feet=(("right_foot", "right_foot"), ("left_foot", "left_foot")),
    bodies=("torso", "pelvis", "right_foot", "left_foot", "right_lower_arm", "left_lower_arm"),
    contact_forces=True,
    center_of_mass=True,
    # Not yet tuned by learning curves for the batched engine.
    ppo=PPODefaults(n_envs=32, n_steps=128, batch_size=1024, gamma=0.99, gae_lambda=0.95, net_arch=(256, 256)),
    default_timesteps=10_000_000,
)
