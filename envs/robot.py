"""A user robot's env, built from its description and settings: state view, dynamics, a generic reward, PPO sizes.

Pure: nothing here compiles the model (``envs.derive`` does that, in a sandbox), so the
trusted side can describe and validate a user env from stored data alone. The env is what
Gymnasium's locomotion envs are for their robots: the observation is the joint positions
without the root's x and y, then the velocities; the action is each actuator's control range;
the torso of the common state fields is the root body.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from envs.dynamics import BatchData, Dynamics, noise_reset
from envs.geometry import quat_upright
from envs.robot_data import RobotModel
from envs.spec import EnvSpec, PPODefaults

HEALTHY_REWARD = 1.0
CTRL_COST_WEIGHT = 0.1

_REFERENCE = '''\
import numpy as np
{constants}
CTRL_COST_WEIGHT = {ctrl}
CTRL_LIMITS = {limits}


def compute_reward(state, action):
    """rewardsmith's generic reward for a user robot (not its author's): {doc}."""
{terms}    ctrl_cost = CTRL_COST_WEIGHT * np.mean(np.square(action / np.asarray(CTRL_LIMITS)), axis=-1)
    reward = {total}ctrl_cost
    return reward, {{{components}"ctrl_cost": -ctrl_cost}}
'''


def _healthy(model: RobotModel) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    s, d = model.settings, model.description
    z = d.root_qpos[2] if d.root_qpos else None
    quat = list(d.root_qpos[3:7])

    def healthy(qpos: np.ndarray, qvel: np.ndarray, sites: np.ndarray) -> np.ndarray:
        ok = np.isfinite(qpos).all(axis=1) & np.isfinite(qvel).all(axis=1)
        if s.termination == "height" and z is not None:
            ok &= qpos[:, z] >= (s.min_height if s.min_height is not None else -np.inf)
            ok &= qpos[:, z] <= (s.max_height if s.max_height is not None else np.inf)
        if s.termination == "upright" and quat:
            q = qpos[:, quat]
            ok &= quat_upright(q / np.linalg.norm(q, axis=1, keepdims=True)) >= (s.min_upright or 0.0)
        return ok

    return healthy


def _limits(model: RobotModel) -> np.ndarray:
    return np.array([max(abs(a.low), abs(a.high)) for a in model.description.actuators])


def _dynamics(model: RobotModel) -> Dynamics:
    d, s = model.description, model.settings
    observed = np.array(d.observed_qpos, dtype=int)
    xy = list(d.root_qpos[:2])
    root = 1 + [name for name, _ in d.bodies].index(d.root_body)
    limits = _limits(model)
    bonus = HEALTHY_REWARD if s.termination != "none" else 0.0
    forward = 1.0 if d.free else 0.0

    def observe(data: BatchData) -> np.ndarray:
        return np.concatenate([data.qpos[:, observed], data.qvel], axis=1)

    def position(data: BatchData, mass: np.ndarray) -> np.ndarray:  # as the state view reads the root
        return data.qpos[:, xy].copy() if xy else data.xpos[:, root, :2].copy()

    def reward(v: np.ndarray, action: np.ndarray, healthy: np.ndarray, data: BatchData) -> np.ndarray:
        ctrl = CTRL_COST_WEIGHT * np.mean(np.square(action / limits), axis=-1)
        return (forward * v[:, 0] + bonus * healthy) - ctrl

    return Dynamics(
        xml_file="",
        frame_skip=int(s.frame_skip or 1),
        reset=noise_reset(s.reset_noise),
        observe=observe,
        reward=reward,
        terminates=s.termination != "none",
        fields=("xpos",),
        position=position,
    )


def reference_reward(model: RobotModel) -> str:
    """The generic reward as a reward program (equal to the engine's env reward for this robot): forward velocity
    of a free-floating root (plus a bonus while healthy when episodes can end), minus a control cost; a fixed-base
    robot has no generic goal, so it pays only the control cost."""
    moving = model.description.free
    ending = model.settings.termination != "none"
    constants, terms, total, components = "", "", "", ""
    if moving:
        constants += "\nFORWARD_WEIGHT = 1.0"
        terms += "    forward = FORWARD_WEIGHT * state.x_velocity\n"
        total, components = "forward ", '"forward": forward, '
    if ending:
        constants += f"\nHEALTHY_REWARD = {HEALTHY_REWARD}"
        terms += "    healthy = HEALTHY_REWARD * state.is_healthy\n"
        total, components = total + "+ healthy ", components + '"healthy": healthy, '
    doc = "forward velocity of the root" if moving else "no task of its own (a fixed base): only a control cost"
    doc += ", plus a bonus for every step it stays healthy" if ending else ""
    doc += ", minus a control cost on actions scaled to their ranges" if moving else ""
    return _REFERENCE.format(
        constants=constants,
        ctrl=CTRL_COST_WEIGHT,
        limits=repr(tuple(float(x) for x in _limits(model))),
        doc=doc,
        terms=terms,
        total=total + "- " if total else "-",
        components=components,
    )


def ppo_defaults(model: RobotModel) -> PPODefaults:
    """Generic PPO settings, the network scaled by the size of observation and action."""
    d = model.description
    size = len(d.observed_qpos) + d.nv + len(d.actuators)
    net = (64, 64) if size <= 64 else (128, 128) if size <= 160 else (256, 256)
    return PPODefaults(n_envs=16, n_steps=128, batch_size=512, net_arch=net)


def _termination(model: RobotModel) -> str:
    s = model.settings
    limit = f"At most {s.episode_steps} steps."
    if s.termination == "height":
        upper = f" or above {s.max_height:g} m" if s.max_height is not None else ""
        return f"The episode ends when the root's height (z_position) falls below {s.min_height:g} m{upper}. {limit}"
    if s.termination == "upright":
        return f"The episode ends when upright falls below {s.min_upright:g} (the root tips over). {limit}"
    return f"Never terminates early. {limit}"


def make_spec(name: str, model: RobotModel) -> EnvSpec:
    """The env of the user robot ``name``."""
    d = model.description
    ranges = ", ".join(f"{a.joint} [{a.low:g}, {a.high:g}]" for a in d.actuators[:20])
    kind = "free-floating" if d.free else "fixed-base"
    return EnvSpec(
        name=name,
        title=f"user robot, {kind}, {len(d.actuators)} actuators",
        summary=(
            f"A user's robot from its MJCF: {kind}, root body '{d.root_body}', {len(d.bodies)} bodies, "
            f"{len(d.actuators)} actuated joints, {len(d.feet)} feet, {d.mass:.3g} kg."
        ),
        planar=False,
        action=f"{len(d.actuators)} actuator controls, each in its control range: {ranges}.",
        termination=_termination(model),
        healthy=_healthy(model),
        reference_reward=reference_reward(model),
        ppo=ppo_defaults(model),
        dynamics=_dynamics(model),
        bodies=d.bodies,
        feet=d.feet,
        floor=d.floor or "floor",
        passive_joints=d.passive_joints,
        root="free_joint" if d.free else "body",
        contact_forces=True,
        center_of_mass=True,
        torso=d.root_body,
        default_timesteps=1_000_000,
        robot=model,
    )
