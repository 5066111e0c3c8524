"""HalfCheetah-v5: a planar two-legged cat that can only move by running."""

import numpy as np

from envs.dynamics import BatchData, Dynamics, always_healthy, ctrl_cost, noise_reset, root_x
from envs.spec import EnvSpec, PPODefaults


def planar_obs(d: BatchData) -> np.ndarray:
    """Gymnasium's planar robots: qpos without the root's x, then qvel."""
    return np.concatenate([d.qpos[:, 1:], d.qvel], axis=1)


def _reward(v: np.ndarray, action: np.ndarray, healthy: np.ndarray, d: BatchData) -> np.ndarray:
    return 1.0 * v - ctrl_cost(0.1, action)


DYNAMICS = Dynamics("half_cheetah.xml", 5, noise_reset(0.1, "normal"), planar_obs, _reward, False, (), root_x)


REFERENCE_REWARD = '''\
import numpy as np

FORWARD_WEIGHT = 1.0
CTRL_COST_WEIGHT = 0.1


def compute_reward(state, action):
    """Gymnasium's HalfCheetah-v5 reward: forward velocity minus a control cost."""
    forward = FORWARD_WEIGHT * state.x_velocity
    ctrl_cost = CTRL_COST_WEIGHT * np.sum(np.square(action), axis=-1)
    reward = forward - ctrl_cost
    return reward, {"forward": forward, "ctrl_cost": -ctrl_cost}
'''

SPEC = EnvSpec(
    name="HalfCheetah-v5",
    title="planar cheetah, 6 joints",
    summary=(
        "A planar cheetah: a torso with a back leg and a front leg (thigh, shin, foot each), "
        "moving in the x-z plane. It cannot fall over in a way that ends the episode; it can flip onto its back."
    ),
    planar=True,
    action=(
        "6 torques in [-1, 1]: back thigh, back shin, back foot, front thigh, front shin, front foot "
        "(same order as state.joint_names)."
    ),
    termination="Never terminates early; every episode lasts 1000 steps (50 s).",
    healthy=always_healthy,
    reference_reward=REFERENCE_REWARD,
    feet=(("back_foot", "bfoot"), ("front_foot", "ffoot")),
    dynamics=DYNAMICS,
    bodies=(
        ("torso", "the torso (root body)"),
        ("bthigh", "back thigh"),
        ("bshin", "back shin"),
        ("bfoot", "back foot"),
        ("fthigh", "front thigh"),
        ("fshin", "front shin"),
        ("ffoot", "front foot"),
    ),
    # RL Zoo's gamma 0.98 / gae 0.92 with normalisation; 64 envs x 64 steps, minibatch 2048, lr 1.5e-3:
    # by learning curves, return 1,900 at 80k steps and 3,100 at 160k (10 epochs reach it sooner than 5).
    ppo=PPODefaults(
        n_envs=64, n_steps=64, batch_size=2048, n_epochs=10, learning_rate=1.5e-3, gamma=0.98, gae_lambda=0.92
    ),
)
