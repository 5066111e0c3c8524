"""InvertedPendulum-v5: a cart on a rail that must keep a pole balanced upright."""

import numpy as np

from envs.dynamics import BatchData, Dynamics, noise_reset
from envs.spec import EnvSpec, PPODefaults


def _healthy(qpos: np.ndarray, qvel: np.ndarray, sites: np.ndarray) -> np.ndarray:
    finite = np.isfinite(qpos).all(axis=1) & np.isfinite(qvel).all(axis=1)
    return finite & (np.abs(qpos[:, 1]) <= 0.2)


def _obs(d: BatchData) -> np.ndarray:
    return np.concatenate([d.qpos, d.qvel], axis=1)


def _reward(v: np.ndarray, action: np.ndarray, healthy: np.ndarray, d: BatchData) -> np.ndarray:
    return healthy.astype(np.float64)  # Gymnasium's int(not terminated)


DYNAMICS = Dynamics("inverted_pendulum.xml", 2, noise_reset(0.01), _obs, _reward, True, ())

REFERENCE_REWARD = '''\
import numpy as np


def compute_reward(state, action):
    """Gymnasium's InvertedPendulum-v5 reward: 1 for every step the pole stays within 0.2 rad of upright."""
    alive = np.where(state.is_healthy, 1.0, 0.0)
    return alive, {"alive": alive}
'''

SPEC = EnvSpec(
    name="InvertedPendulum-v5",
    title="cart-pole: balance one pole",
    summary=(
        "A cart that slides along a rail (x in [-1, 1] m) with a pole hinged on it. The task is to keep the pole "
        "upright by moving the cart; the pole's angle is state.passive_joint_positions[:, 0] (0 = upright)."
    ),
    planar=False,
    action="1 force in [-3, 3] on the cart along the rail (the slider joint).",
    termination=(
        "The episode ends when the pole leans more than 0.2 rad from upright (|hinge| > 0.2), or the state is not "
        "finite. At most 1000 steps (40 s)."
    ),
    healthy=_healthy,
    reference_reward=REFERENCE_REWARD,
    dynamics=DYNAMICS,
    bodies=(("cart", "the cart on the rail (root body)"), ("pole", "the pole, hinged on the cart")),
    passive_joints=(("hinge", "the pole's angle from upright, rad (+ leans towards +x)"),),
    torso="cart",
    reference_fitness=("survival_steps", "upright_seconds"),
    default_fitness="upright_seconds",
    # Not tuned by learning curves (no RL Zoo PPO entry): the engine's defaults, few envs for a short task.
    ppo=PPODefaults(n_envs=8, n_steps=256, batch_size=256, gamma=0.99, gae_lambda=0.95),
    default_timesteps=100_000,
)
