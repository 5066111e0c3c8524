"""Reacher-v5: a two-link planar arm that must bring its fingertip to a target placed at random."""

import numpy as np

from envs.dynamics import BatchData, Dynamics, always_healthy
from envs.spec import EnvSpec, PPODefaults

FINGERTIP, TARGET = 3, 4
"""Body ids in reacher.xml."""


def _reset(rng: np.random.Generator, qpos0: np.ndarray, nv: int) -> tuple[np.ndarray, np.ndarray]:
    """Gymnasium's: arm angles with small noise; the target uniform in a disc of radius 0.2 (drawn until inside)."""
    qpos = rng.uniform(low=-0.1, high=0.1, size=len(qpos0)) + qpos0
    while True:
        goal = rng.uniform(low=-0.2, high=0.2, size=2)
        if np.linalg.norm(goal) < 0.2:
            break
    qpos[-2:] = goal
    qvel = rng.uniform(low=-0.005, high=0.005, size=nv)
    qvel[-2:] = 0
    return qpos, qvel


def _obs(d: BatchData) -> np.ndarray:
    theta = d.qpos[:, :2]
    to_target = (d.xpos[:, FINGERTIP] - d.xpos[:, TARGET])[:, :2]
    return np.concatenate([np.cos(theta), np.sin(theta), d.qpos[:, 2:], d.qvel[:, :2], to_target], axis=1)


def _reward(v: np.ndarray, action: np.ndarray, healthy: np.ndarray, d: BatchData) -> np.ndarray:
    distance = -np.linalg.norm(d.xpos[:, FINGERTIP] - d.xpos[:, TARGET], axis=1) * 1
    ctrl = -np.sum(np.square(action), axis=1) * 1
    return distance + ctrl


DYNAMICS = Dynamics("reacher.xml", 2, _reset, _obs, _reward, False, ("xpos",))

REFERENCE_REWARD = '''\
import numpy as np

DISTANCE_WEIGHT = 1.0
CTRL_COST_WEIGHT = 1.0


def compute_reward(state, action):
    """Gymnasium's Reacher-v5 reward: minus the fingertip-target distance, minus a control cost."""
    fingertip = state.body_positions[:, state.body_names.index("fingertip")]
    target = state.body_positions[:, state.body_names.index("target")]
    distance = -DISTANCE_WEIGHT * np.linalg.norm(fingertip - target, axis=-1)
    ctrl_cost = CTRL_COST_WEIGHT * np.sum(np.square(action), axis=-1)
    reward = distance - ctrl_cost
    return reward, {"distance": distance, "ctrl_cost": -ctrl_cost}
'''

SPEC = EnvSpec(
    name="Reacher-v5",
    title="two-link arm reaching a random target",
    summary=(
        "A two-link arm on a table, turning about its base in the x-y plane; a target is placed at random within "
        "0.2 m of the base at every reset. The task is to bring the fingertip to the target."
    ),
    planar=False,
    action="2 torques in [-1, 1]: the base joint (joint0) and the elbow (joint1) (same order as state.joint_names).",
    termination="Never terminates early; every episode lasts 50 steps (1 s).",
    healthy=always_healthy,
    reference_reward=REFERENCE_REWARD,
    dynamics=DYNAMICS,
    bodies=(
        ("body0", "the first link, turning about the fixed base (root body: its yaw is joint0)"),
        ("body1", "the second link, after the elbow"),
        ("fingertip", "the fingertip at the end of the arm"),
        ("target", "the target, placed at random at each reset (not moved by the arm)"),
    ),
    floor="ground",
    passive_joints=(("target_x", "the target's x offset, m"), ("target_y", "the target's y offset, m")),
    torso="body0",
    reference_fitness=("reach",),
    default_fitness="reach",
    # RL Zoo's Reacher settings (gamma 0.9, gae 1.0, lr 1.04e-4, clip 0.3, 5 epochs, vf 0.95, max grad 0.9), sized
    # for the batched engine; not yet tuned by learning curves here.
    ppo=PPODefaults(
        n_envs=32,  # chosen by learning curves (benchmarks/results/ppo_defaults.json)
        n_steps=128,
        batch_size=1024,
        n_epochs=10,
        learning_rate=3e-4,
        gamma=0.9,
        gae_lambda=1.0,
        clip_range=0.3,
        vf_coef=0.95,
        max_grad_norm=0.9,
    ),
    default_timesteps=1_000_000,
)
