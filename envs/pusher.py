"""Pusher-v5: a seven-joint arm that must push a cylinder, placed at random, to a goal on the table."""

import numpy as np

from envs.dynamics import BatchData, Dynamics, always_healthy
from envs.spec import EnvSpec, PPODefaults

TIPS_ARM, OBJECT, GOAL = 10, 11, 12
"""Body ids in pusher_v5.xml."""


def _reset(rng: np.random.Generator, qpos0: np.ndarray, nv: int) -> tuple[np.ndarray, np.ndarray]:
    """Gymnasium's: the arm at rest; the object (slides y, x) drawn until more than 0.17 m from the goal at (0, 0)."""
    qpos = qpos0.copy()
    goal = np.asarray([0, 0])
    while True:
        cylinder = np.concatenate([rng.uniform(low=-0.3, high=0, size=1), rng.uniform(low=-0.2, high=0.2, size=1)])
        if np.linalg.norm(cylinder - goal) > 0.17:
            break
    qpos[-4:-2] = cylinder
    qpos[-2:] = goal
    qvel = rng.uniform(low=-0.005, high=0.005, size=nv)
    qvel[-4:] = 0
    return qpos, qvel


def _obs(d: BatchData) -> np.ndarray:
    return np.concatenate(
        [d.qpos[:, :7], d.qvel[:, :7], d.xpos[:, TIPS_ARM], d.xpos[:, OBJECT], d.xpos[:, GOAL]], axis=1
    )


def _reward(v: np.ndarray, action: np.ndarray, healthy: np.ndarray, d: BatchData) -> np.ndarray:
    near = -np.linalg.norm(d.xpos[:, OBJECT] - d.xpos[:, TIPS_ARM], axis=1) * 0.5
    dist = -np.linalg.norm(d.xpos[:, OBJECT] - d.xpos[:, GOAL], axis=1) * 1
    ctrl = -np.sum(np.square(action), axis=1) * 0.1
    return dist + ctrl + near


DYNAMICS = Dynamics("pusher_v5.xml", 5, _reset, _obs, _reward, False, ("xpos",))

REFERENCE_REWARD = '''\
import numpy as np

NEAR_WEIGHT = 0.5
DISTANCE_WEIGHT = 1.0
CTRL_COST_WEIGHT = 0.1


def compute_reward(state, action):
    """Gymnasium's Pusher-v5 reward: minus the object-goal distance, minus the hand-object distance (half
    weight), minus a control cost."""
    bodies = state.body_names
    hand = state.body_positions[:, bodies.index("tips_arm")]
    thing = state.body_positions[:, bodies.index("object")]
    goal = state.body_positions[:, bodies.index("goal")]
    near = -NEAR_WEIGHT * np.linalg.norm(thing - hand, axis=-1)
    distance = -DISTANCE_WEIGHT * np.linalg.norm(thing - goal, axis=-1)
    ctrl_cost = CTRL_COST_WEIGHT * np.sum(np.square(action), axis=-1)
    reward = distance + near - ctrl_cost
    return reward, {"distance": distance, "near": near, "ctrl_cost": -ctrl_cost}
'''

_LINKS = (
    ("r_shoulder_pan_link", "shoulder, turning about the vertical (root body: its yaw is the pan joint)"),
    ("r_shoulder_lift_link", "shoulder lift"),
    ("r_upper_arm_roll_link", "upper arm roll"),
    ("r_upper_arm_link", "upper arm"),
    ("r_elbow_flex_link", "elbow"),
    ("r_forearm_roll_link", "forearm roll"),
    ("r_forearm_link", "forearm"),
    ("r_wrist_flex_link", "wrist flex"),
    ("r_wrist_roll_link", "wrist roll"),
    ("tips_arm", "the hand: the arm's tip, which pushes"),
    ("object", "the cylinder to push, placed at random at each reset; slides on the table"),
    ("goal", "the goal the object must reach (fixed at the same place in every episode)"),
)

SPEC = EnvSpec(
    name="Pusher-v5",
    title="seven-joint arm pushing an object to a goal",
    summary=(
        "A seven-joint arm above a table (no gravity), with a cylinder on the table placed at random at each reset "
        "and a goal marker. The task is to push the cylinder onto the goal."
    ),
    planar=False,
    action=(
        "7 torques in [-2, 2]: shoulder pan, shoulder lift, upper arm roll, elbow flex, forearm roll, wrist flex, "
        "wrist roll (same order as state.joint_names)."
    ),
    termination="Never terminates early; every episode lasts 100 steps (5 s).",
    healthy=always_healthy,
    reference_reward=REFERENCE_REWARD,
    dynamics=DYNAMICS,
    bodies=_LINKS,
    floor="table",
    passive_joints=(
        ("obj_slidey", "the object's y offset on the table, m"),
        ("obj_slidex", "the object's x offset on the table, m"),
        ("goal_slidey", "the goal's y offset, m"),
        ("goal_slidex", "the goal's x offset, m"),
    ),
    torso="r_shoulder_pan_link",
    reference_fitness=("push",),
    default_fitness="push",
    # Not tuned by learning curves (RL Zoo has no PPO entry for Pusher): the engine's defaults sized like Reacher's.
    # chosen by learning curves (benchmarks/results/ppo_defaults.json)
    ppo=PPODefaults(n_envs=32, n_steps=128, batch_size=1024, learning_rate=6e-4, gamma=0.99, gae_lambda=0.95),
    default_timesteps=1_000_000,
)
