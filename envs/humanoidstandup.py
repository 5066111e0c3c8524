"""HumanoidStandup-v5: the 3D humanoid, lying on its back, must stand up."""

import numpy as np

from envs.dynamics import BatchData, Dynamics, always_healthy, noise_reset
from envs.humanoid import HUMANOID_BODIES, HUMANOID_FIELDS, humanoid_obs
from envs.spec import EnvSpec, PPODefaults


def _reward(v: np.ndarray, action: np.ndarray, healthy: np.ndarray, d: BatchData) -> np.ndarray:
    n = len(v)
    uph = (d.qpos[:, 2] - 0) / d.model.opt.timestep
    ctrl = 0.1 * np.sum(np.square(d.ctrl), axis=1)  # costs data.ctrl (float64), not the action
    impact = np.clip(0.5e-6 * np.sum(np.square(d.cfrc_ext).reshape(n, -1), axis=1), -np.inf, 10.0)
    return uph - ctrl - impact + 1


DYNAMICS = Dynamics(
    "humanoidstandup.xml", 5, noise_reset(1e-2), humanoid_obs, _reward, False, HUMANOID_FIELDS, contact_forces=True
)

REFERENCE_REWARD = '''\
import numpy as np

UPH_WEIGHT = 1.0
PHYSICS_STEPS_PER_CONTROL_STEP = 5
CTRL_COST_WEIGHT = 0.1
IMPACT_COST_WEIGHT = 0.5e-6
IMPACT_COST_MAX = 10.0
ALIVE_BONUS = 1.0


def compute_reward(state, action):
    """Gymnasium's HumanoidStandup-v5 reward: torso height divided by the physics timestep, plus 1, minus control
    and impact costs."""
    timestep = state.dt / PHYSICS_STEPS_PER_CONTROL_STEP
    height = UPH_WEIGHT * state.z_position / timestep + ALIVE_BONUS  # Gymnasium adds 1 to every step's reward
    ctrl_cost = CTRL_COST_WEIGHT * np.sum(np.square(action), axis=-1)
    impact_cost = IMPACT_COST_WEIGHT * np.sum(np.square(state.contact_forces), axis=(1, 2))
    impact_cost = np.minimum(impact_cost, IMPACT_COST_MAX)
    reward = height - ctrl_cost - impact_cost
    return reward, {"height": height, "ctrl_cost": -ctrl_cost, "impact_cost": -impact_cost}
'''

SPEC = EnvSpec(
    name="HumanoidStandup-v5",
    title="3D humanoid standing up, 17 joints",
    summary=(
        "The 3D humanoid of Humanoid-v5 (torso, abdomen, pelvis, two legs, two arms), starting lying on its back "
        "on the floor. The task is to stand up: its torso height (z_position) is what the reward pays."
    ),
    planar=False,
    action="17 torques in [-0.4, 0.4], in the order of state.joint_names (abdomen, hips, knees, shoulders, elbows).",
    termination="Never terminates early; every episode lasts 1000 steps (15 s).",
    healthy=always_healthy,
    reference_reward=REFERENCE_REWARD,
    dynamics=DYNAMICS,
    bodies=HUMANOID_BODIES,
    feet=(("right_foot", "right_foot"), ("left_foot", "left_foot")),
    root="free_joint",
    contact_forces=True,
    center_of_mass=True,
    reference_fitness=("mean_height", "max_height"),
    default_fitness="mean_height",
    # Not tuned by learning curves (no RL Zoo PPO entry): Humanoid's.
    ppo=PPODefaults(n_envs=32, n_steps=128, batch_size=1024, gamma=0.99, gae_lambda=0.95, net_arch=(256, 256)),
    default_timesteps=10_000_000,
)
