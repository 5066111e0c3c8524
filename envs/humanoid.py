"""Humanoid-v5: a 3D biped with arms."""

import numpy as np

from envs.dynamics import BatchData, Dynamics, noise_reset
from envs.spec import EnvSpec, PPODefaults


def humanoid_obs(d: BatchData) -> np.ndarray:
    """Humanoid's and HumanoidStandup's: qpos without x, y; qvel; cinert, cvel, actuator forces, cfrc_ext."""
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


HUMANOID_FIELDS = ("cinert", "cvel", "qfrc_actuator", "cfrc_ext")
"""The derived MjData fields the humanoid observation reads."""


def _mass_centre_xy(d: BatchData, mass: np.ndarray) -> np.ndarray:
    return (np.einsum("b,nbj->nj", mass, d.xipos) / mass.sum())[:, :2]


def _reward(v: np.ndarray, action: np.ndarray, healthy: np.ndarray, d: BatchData) -> np.ndarray:
    n = len(v)
    ctrl = 0.1 * np.sum(np.square(d.ctrl), axis=1)  # Humanoid-v5 costs data.ctrl (float64), not the action
    contact = np.clip(5e-7 * np.sum(np.square(d.cfrc_ext).reshape(n, -1), axis=1), -np.inf, 10.0)
    return (1.25 * v[:, 0] + healthy * 5.0) - (ctrl + contact)


def _healthy(qpos: np.ndarray, qvel: np.ndarray, sites: np.ndarray) -> np.ndarray:
    return (qpos[:, 2] > 1.0) & (qpos[:, 2] < 2.0)


DYNAMICS = Dynamics(
    "humanoid.xml",
    5,
    noise_reset(1e-2),
    humanoid_obs,
    _reward,
    True,
    ("xipos", *HUMANOID_FIELDS),
    _mass_centre_xy,
    contact_forces=True,
)

HUMANOID_BODIES = (
    ("torso", "the upper torso with the head (root body)"),
    ("lwaist", "lower waist (abdomen)"),
    ("pelvis", "pelvis"),
    ("right_thigh", "right thigh"),
    ("right_shin", "right shin"),
    ("right_foot", "right foot"),
    ("left_thigh", "left thigh"),
    ("left_shin", "left shin"),
    ("left_foot", "left foot"),
    ("right_upper_arm", "right upper arm"),
    ("right_lower_arm", "right forearm with the hand"),
    ("left_upper_arm", "left upper arm"),
    ("left_lower_arm", "left forearm with the hand"),
)

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
    dynamics=DYNAMICS,
    bodies=HUMANOID_BODIES,
    contact_forces=True,
    center_of_mass=True,
    # Not yet tuned by learning curves for the batched engine.
    ppo=PPODefaults(n_envs=32, n_steps=128, batch_size=1024, gamma=0.99, gae_lambda=0.95, net_arch=(256, 256)),
    default_timesteps=10_000_000,
)
