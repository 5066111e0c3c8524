"""InvertedDoublePendulum-v5: a cart on a rail that must keep two stacked poles balanced upright."""

import numpy as np

from envs.dynamics import BatchData, Dynamics, noise_reset
from envs.spec import EnvSpec, PPODefaults


def _healthy(qpos: np.ndarray, qvel: np.ndarray, sites: np.ndarray) -> np.ndarray:
    return sites[:, 0, 2] > 1  # the tip's height, as Gymnasium's y <= 1 ends the episode


def _obs(d: BatchData) -> np.ndarray:
    return np.concatenate(
        [
            d.qpos[:, :1],
            np.sin(d.qpos[:, 1:]),
            np.cos(d.qpos[:, 1:]),
            np.clip(d.qvel, -10, 10),
            np.clip(d.qfrc_constraint, -10, 10)[:, :1],
        ],
        axis=1,
    )


def _reward(v: np.ndarray, action: np.ndarray, healthy: np.ndarray, d: BatchData) -> np.ndarray:
    tip = d.site_xpos[:, 0]
    x, y = tip[:, 0], tip[:, 2]
    v1, v2 = d.qvel[:, 1], d.qvel[:, 2]
    distance = 0.01 * x**2 + (y - 2) ** 2
    velocity = 1e-3 * v1**2 + 5e-3 * v2**2
    alive = 10.0 * healthy
    return alive - distance - velocity


DYNAMICS = Dynamics(
    "inverted_double_pendulum.xml", 5, noise_reset(0.1, "normal"), _obs, _reward, True, ("qfrc_constraint",)
)

REFERENCE_REWARD = '''\
import numpy as np

ALIVE_REWARD = 10.0


def compute_reward(state, action):
    """Gymnasium's InvertedDoublePendulum-v5 reward: 10 while the tip is above 1 m, minus the tip's distance from
    the top (2 m, above the rail's centre) and the poles' angular velocities."""
    tip = state.site_positions[:, state.site_names.index("tip")]
    distance = 0.01 * tip[:, 0] ** 2 + (tip[:, 2] - 2) ** 2
    spin = state.passive_joint_velocities
    velocity = 1e-3 * spin[:, 0] ** 2 + 5e-3 * spin[:, 1] ** 2
    alive = ALIVE_REWARD * state.is_healthy
    reward = alive - distance - velocity
    return reward, {"alive": alive, "distance": -distance, "velocity": -velocity}
'''

SPEC = EnvSpec(
    name="InvertedDoublePendulum-v5",
    title="cart with two stacked poles to balance",
    summary=(
        "A cart that slides along a rail (x in [-1, 1] m) with two poles stacked on it (0.6 m each). The task is "
        "to keep both upright: the tip of the upper pole near 1.2 m high (site 'tip'; z = 1.2 when straight up)."
    ),
    planar=False,
    action="1 force in [-1, 1] on the cart along the rail (the slider joint).",
    termination="The episode ends when the tip of the upper pole falls to 1 m or lower. At most 1000 steps (50 s).",
    healthy=_healthy,
    reference_reward=REFERENCE_REWARD,
    dynamics=DYNAMICS,
    bodies=(
        ("cart", "the cart on the rail (root body)"),
        ("pole", "the lower pole, hinged on the cart"),
        ("pole2", "the upper pole, hinged on top of the lower one"),
    ),
    sites=(("tip", "the top end of the upper pole"),),
    passive_joints=(
        ("hinge", "the lower pole's angle from upright, rad"),
        ("hinge2", "the upper pole's angle relative to the lower pole, rad"),
    ),
    torso="cart",
    reference_fitness=("survival_steps", "upright_seconds"),
    default_fitness="upright_seconds",
    # Not tuned by learning curves (no RL Zoo PPO entry): the engine's defaults, sized like Hopper's.
    # chosen by learning curves (benchmarks/results/ppo_defaults.json)
    ppo=PPODefaults(n_envs=16, n_steps=128, batch_size=1024, learning_rate=1e-3, gamma=0.99, gae_lambda=0.95),
    default_timesteps=1_000_000,
)
