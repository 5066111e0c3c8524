"""Walker2d-v5: a planar two-legged walker."""

import numpy as np

from envs.dynamics import Dynamics, noise_reset, root_x
from envs.hopper import clipped_planar_obs, planar_healthy_reward
from envs.spec import EnvSpec, PPODefaults


def _healthy(qpos: np.ndarray, qvel: np.ndarray, sites: np.ndarray) -> np.ndarray:
    z_ok = (qpos[:, 1] > 0.8) & (qpos[:, 1] < 2.0)
    angle_ok = (qpos[:, 2] > -1.0) & (qpos[:, 2] < 1.0)
    return z_ok & angle_ok


DYNAMICS = Dynamics(
    "walker2d_v5.xml", 4, noise_reset(5e-3), clipped_planar_obs, planar_healthy_reward, True, (), root_x
)

REFERENCE_REWARD = '''\
import numpy as np

FORWARD_WEIGHT = 1.0
HEALTHY_REWARD = 1.0
CTRL_COST_WEIGHT = 1e-3


def compute_reward(state, action):
    """Gymnasium's Walker2d-v5 reward: forward velocity + staying healthy - control cost."""
    forward = FORWARD_WEIGHT * state.x_velocity
    healthy = HEALTHY_REWARD * state.is_healthy
    ctrl_cost = CTRL_COST_WEIGHT * np.sum(np.square(action), axis=-1)
    reward = forward + healthy - ctrl_cost
    return reward, {"forward": forward, "healthy": healthy, "ctrl_cost": -ctrl_cost}
'''

SPEC = EnvSpec(
    name="Walker2d-v5",
    title="planar biped, 6 joints",
    summary="A planar biped (torso, and two legs of thigh, leg, foot) walking in the x-z plane.",
    planar=True,
    action=(
        "6 torques in [-1, 1]: right thigh, right leg, right foot, left thigh, left leg, left foot "
        "(same order as state.joint_names)."
    ),
    termination=(
        "The episode ends when the robot is unhealthy: torso height (z_position) outside (0.8, 2.0) m "
        "or |pitch| at or above 1 rad. At most 1000 steps (8 s)."
    ),
    healthy=_healthy,
    reference_reward=REFERENCE_REWARD,
    feet=(("right_foot", "foot_geom"), ("left_foot", "foot_left_geom")),
    dynamics=DYNAMICS,
    bodies=(
        ("torso", "the torso (root body)"),
        ("thigh", "right thigh"),
        ("leg", "right leg (below the knee)"),
        ("foot", "right foot"),
        ("thigh_left", "left thigh"),
        ("leg_left", "left leg (below the knee)"),
        ("foot_left", "left foot"),
    ),
    # 8 envs x 256 steps beat 16 x 128 beyond the 2 seeds' spread in fitness at 60 s (benchmarks/results/ppo_defaults.json)
    # log std 0 (not -1), as Hopper: fitness 9.1..16.4 m at 80 s against 4.3..8.4 (benchmarks/results/ppo_defaults.json)
    ppo=PPODefaults(n_envs=8, n_steps=256, batch_size=256, gamma=0.99, gae_lambda=0.95, log_std_init=0.0),
)
