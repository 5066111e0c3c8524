"""What an env is to rewardsmith: the Gymnasium id, its state view, its reference reward, PPO defaults."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from envs.dynamics import Dynamics
from envs.robot_data import RobotModel


@dataclass(frozen=True)
class Field:
    """One entry of the state view, as the designer sees it."""

    name: str
    shape: str
    unit: str
    meaning: str


COMMON_FIELDS: tuple[Field, ...] = (
    Field("x_position", "(N,)", "m", "torso position along x (forward)"),
    Field("y_position", "(N,)", "m", "torso position along y (left)"),
    Field("z_position", "(N,)", "m", "torso height above the floor"),
    Field("x_velocity", "(N,)", "m/s", "torso velocity along x, mean over the last control step (+ is forward)"),
    Field("y_velocity", "(N,)", "m/s", "torso velocity along y, mean over the last control step"),
    Field("z_velocity", "(N,)", "m/s", "torso vertical velocity, mean over the last control step (+ is up)"),
    Field("roll", "(N,)", "rad", "torso rotation about x"),
    Field("pitch", "(N,)", "rad", "torso rotation about y"),
    Field("yaw", "(N,)", "rad", "torso rotation about z (heading)"),
    Field("upright", "(N,)", "1", "z-component of the torso's up axis: 1 upright, -1 upside down"),
    Field(
        "angular_velocity",
        "(N, 3)",
        "rad/s",
        "torso angular velocity about world x, y, z, mean over the last control step",
    ),
    Field(
        "joint_positions", "(N, J)", "rad", "actuated joint angles, in the order of state.joint_names (= action order)"
    ),
    Field("joint_velocities", "(N, J)", "rad/s", "actuated joint angular velocities, same order"),
    Field("is_healthy", "(N,)", "bool", "the env's own health test (the episode ends when it turns False)"),
    Field("dt", "float", "s", "control time step"),
    Field("step", "(N,)", "int", "step index within the episode, 1 after the first action"),
)

FEET_FIELD = Field(
    "feet_contact", "(N, F)", "bool", "whether each foot touches the floor, in the order of state.feet_names"
)
BODY_FIELDS = (
    Field("body_positions", "(N, B, 3)", "m", "world position of every body, in the order of state.body_names"),
    Field(
        "body_velocities",
        "(N, B, 3)",
        "m/s",
        "world linear velocity of every body, mean over the last control step, same order",
    ),
)
SITE_FIELD = Field(
    "site_positions", "(N, S, 3)", "m", "world positions of named points on bodies, in the order of state.site_names"
)
PASSIVE_FIELDS = (
    Field(
        "passive_joint_positions",
        "(N, P)",
        "rad or m",
        "unactuated joints (hinges in rad, slides in m), in the order of state.passive_joint_names",
    ),
    Field("passive_joint_velocities", "(N, P)", "rad/s or m/s", "their velocities, same order"),
)
CONTACT_FIELD = Field(
    "contact_forces",
    "(N, C, 6)",
    "N·m, N",
    "external contact wrench (torque xyz, force xyz) on every body, in the order of state.contact_body_names",
)
COM_FIELDS = (
    Field("com_position", "(N, 3)", "m", "whole-body centre of mass"),
    Field("com_x_velocity", "(N,)", "m/s", "centre-of-mass velocity along x, mean over the last control step"),
    Field("com_y_velocity", "(N,)", "m/s", "centre-of-mass velocity along y, mean over the last control step"),
)


@dataclass(frozen=True)
class PPODefaults:
    """PPO settings of the engine's learner for one env (SB3's names and meanings).

    Sized for a batched engine: many envs and large minibatches, so that one training keeps the
    simulator's threads busy; chosen by learning curves against wall-clock (benchmarks/).
    """

    n_envs: int = 8
    n_steps: int = 256
    batch_size: int = 128
    n_epochs: int = 10
    learning_rate: float | str = 3e-4
    """A number, or ``lin_<number>`` (RL Zoo's notation): from <number> down to 0 over the training (see
    ``rate_start``)."""
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float | str = 0.2
    """A number or ``lin_<number>``, as ``learning_rate``."""
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: float | None = None
    """SB3 stops an update's epochs once the approximate KL passes 1.5 × this (None: never)."""
    net_arch: tuple[int, ...] | dict[str, tuple[int, ...]] = (64, 64)
    """Hidden layer sizes of the policy and the value network, or different ones: ``{"pi": ..., "vf": ...}``."""
    log_std_init: float = -1.0
    """The policy's initial log standard deviation of actions. RL Zoo starts HalfCheetah at -2; Hopper learns fastest
    with SB3's 0 (``benchmarks/results/ppo_defaults.json``)."""
    activation_fn: str = "tanh"
    """One of ``ACTIVATIONS`` (SB3's default, tanh)."""
    ortho_init: bool = True
    normalize_obs: bool = True
    normalize_reward: bool = True


ACTIVATIONS: dict[str, str] = {
    "tanh": "Tanh",
    "relu": "ReLU",
    "elu": "ELU",
    "leaky_relu": "LeakyReLU",
    "gelu": "GELU",
    "silu": "SiLU",
}
"""The activation functions a policy may use: name → class in ``torch.nn``."""

LINEAR = "lin_"
_LINEAR = re.compile(r"lin_((?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")


def rate_start(value: float | str) -> tuple[float, bool]:
    """A learning rate or clip range as (value at the start, whether it decays linearly to 0 over the training).

    A number is constant; ``lin_<number>`` (RL Zoo's notation, e.g. ``lin_3e-4``) is a linear schedule. The text is
    matched against a plain decimal number, never evaluated; anything else is a ValueError.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"a rate must be a number or 'lin_<number>', got {type(value).__name__}")
    if isinstance(value, str):
        match = _LINEAR.fullmatch(value)
        if match is None:
            raise ValueError(f"a rate must be a number or 'lin_<number>' such as lin_3e-4, got {value[:40]!r}")
        return float(match.group(1)), True
    return float(value), False


@dataclass(frozen=True)
class EnvSpec:
    """A MuJoCo env as rewardsmith knows it: one of Gymnasium's, or a user's robot (``robot``)."""

    name: str
    title: str
    summary: str
    planar: bool
    action: str
    termination: str
    healthy: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    """Vectorised health test on (qpos, qvel, sites) of shape (N, nq), (N, nv), (N, S, 3) (the world positions of
    ``sites``); the env's own rule."""
    reference_reward: str
    """The env's own reward, written as a reward program (equal to Gymnasium's to 1e-6); for a user robot, a
    generic one (``envs.robot``)."""
    ppo: PPODefaults
    dynamics: Dynamics
    """What the batched engine computes around each step (observation, reward, reset)."""
    bodies: tuple[tuple[str, str], ...]
    """(name, meaning) of every body of the model but the world, in model order: the order of ``body_positions``
    (unnamed bodies are called body_<id>)."""
    feet: tuple[tuple[str, str], ...] = ()
    """(label, geom name) of each foot."""
    floor: str = "floor"
    """The ground geom that feet touch."""
    sites: tuple[tuple[str, str], ...] = ()
    """(name, meaning) of the sites whose world positions appear in ``site_positions``."""
    passive_joints: tuple[tuple[str, str], ...] = ()
    """(name, meaning) of unactuated joints whose positions and velocities the state view offers."""
    root: str = "body"
    """How the torso's pose is read: 'body' (the torso body's frame, as Gymnasium's rewards read it), 'free_joint'
    (the torso's free joint in qpos), 'planar_xy' (slide x, slide y, hinge z in qpos). Planar (x-z) robots read
    their own way (``planar``)."""
    contact_forces: bool = False
    center_of_mass: bool = False
    reference_fitness: tuple[str, ...] = ("forward_distance", "mean_x_velocity")
    """Fitness metrics the reference reward was made for (normalized scores are only given for these)."""
    default_fitness: str = "forward_distance"
    torso: str = "torso"
    default_timesteps: int = 1_000_000
    """RL Zoo's training budget for this env, for a reference."""
    extra_fields: tuple[Field, ...] = field(default=())
    robot: RobotModel | None = None
    """A user robot's uploaded model and settings (None for Gymnasium's envs)."""

    @property
    def gym_id(self) -> str:
        """The id ``gymnasium.make`` knows it by (user robots are registered under rewardsmith/)."""
        return self.name if self.robot is None else f"rewardsmith/{self.name}"

    def fields(self) -> tuple[Field, ...]:
        """Every field of this env's state view, common ones first."""
        extra: list[Field] = []
        if self.feet:
            extra.append(FEET_FIELD)
        extra.extend(BODY_FIELDS)
        if self.sites:
            extra.append(SITE_FIELD)
        if self.passive_joints:
            extra.extend(PASSIVE_FIELDS)
        if self.contact_forces:
            extra.append(CONTACT_FIELD)
        if self.center_of_mass:
            extra.extend(COM_FIELDS)
        return COMMON_FIELDS + tuple(extra) + self.extra_fields
