"""Swimmer-v5: a three-segment snake swimming in a viscous fluid in the x-y plane."""

import numpy as np

from envs.dynamics import BatchData, Dynamics, always_healthy, ctrl_cost, noise_reset
from envs.spec import EnvSpec, PPODefaults


def _obs(d: BatchData) -> np.ndarray:
    return np.concatenate([d.qpos[:, 2:], d.qvel], axis=1)


def _root_xy(d: BatchData, mass: np.ndarray) -> np.ndarray:
    return d.qpos[:, 0:2].copy()


def _reward(v: np.ndarray, action: np.ndarray, healthy: np.ndarray, d: BatchData) -> np.ndarray:
    return 1.0 * v[:, 0] - ctrl_cost(1e-4, action)


DYNAMICS = Dynamics("swimmer.xml", 4, noise_reset(0.1), _obs, _reward, False, (), _root_xy)

REFERENCE_REWARD = '''\
import numpy as np

FORWARD_WEIGHT = 1.0
CTRL_COST_WEIGHT = 1e-4


def compute_reward(state, action):
    """Gymnasium's Swimmer-v5 reward: forward velocity minus a control cost."""
    forward = FORWARD_WEIGHT * state.x_velocity
    ctrl_cost = CTRL_COST_WEIGHT * np.sum(np.square(action), axis=-1)
    reward = forward - ctrl_cost
    return reward, {"forward": forward, "ctrl_cost": -ctrl_cost}
'''

SPEC = EnvSpec(
    name="Swimmer-v5",
    title="three-segment swimmer, 2 joints",
    summary=(
        "A snake of three capsules in a viscous fluid, moving in the x-y plane (seen from above) by undulating "
        "its two joints. It cannot fall; it moves by pushing against the fluid."
    ),
    planar=False,
    action="2 torques in [-1, 1]: the joint between front and middle segment, and between middle and back.",
    termination="Never terminates early; every episode lasts 1000 steps (40 s).",
    healthy=always_healthy,
    reference_reward=REFERENCE_REWARD,
    dynamics=DYNAMICS,
    bodies=(
        ("torso", "the front segment (root body; its position is the swimmer's, its yaw the heading)"),
        ("mid", "the middle segment"),
        ("back", "the back segment"),
    ),
    root="planar_xy",
    # RL Zoo's Swimmer setting (gamma 0.9999, with normalisation), sized for the batched engine; not yet tuned here.
    # chosen by learning curves (benchmarks/results/ppo_defaults.json)
    ppo=PPODefaults(n_envs=8, n_steps=512, batch_size=512, gamma=0.9999, gae_lambda=0.95),
)
