"""A user robot as data: the settings its owner chose, and what compiling its model found.

Nothing here compiles or parses a model: the trusted side of the service builds an env from
these (``envs.robot``) without touching the uploaded files. ``RobotDescription`` is written
by a sandboxed child (``envs.mjcf.derive``) and read back with ``from_json``, which trusts
nothing in it: every field is type-checked and bounded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from envs.upload import RobotRefused

TERMINATIONS = ("none", "height", "upright")

MAX_NAME = 100
"""Characters in a body, joint, geom or actuator name."""
MAX_BODIES = 200
MAX_ACTUATORS = 64
MAX_QPOS = 1000
DEFAULT_CONTROL_STEP = 0.05
"""Seconds per control step a robot gets by default (as Ant's), rounded to whole physics steps."""


class RobotDataError(RobotRefused):
    """Settings or a description that cannot be used; the message names the field."""


def _number(value: object, what: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RobotDataError(f"{what} must be a finite number, not {_shown(value)}")
    if not low <= value <= high:
        raise RobotDataError(f"{what} must be between {low:g} and {high:g}, not {value:g}")
    return float(value)


def _integer(value: object, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RobotDataError(f"{what} must be a whole number, not {_shown(value)}")
    if not low <= value <= high:
        raise RobotDataError(f"{what} must be between {low:,} and {high:,}, not {value:,}")
    return value


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME or not value.isprintable():
        raise RobotDataError(f"{what} must be a printable name of 1 to {MAX_NAME} characters")
    return value


def _text(value: object, what: str, limit: int = 300) -> str:
    if not isinstance(value, str) or len(value) > limit or not value.isprintable():
        raise RobotDataError(f"{what} must be printable text of at most {limit} characters")
    return value


def _items(value: object, what: str, limit: int) -> list:
    if not isinstance(value, list | tuple) or len(value) > limit:
        raise RobotDataError(f"{what} must be a list of at most {limit} items")
    return list(value)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class RobotSettings:
    """What the owner of a robot chooses; every field has a default (None: derived from the model)."""

    frame_skip: int | None = None
    """Physics steps per control step (None: as close to 0.05 s as whole steps allow)."""
    episode_steps: int = 1000
    """Control steps per episode (the time limit)."""
    reset_noise: float = 0.1
    """Each joint position and velocity starts at its initial value plus uniform noise in [-this, this]."""
    termination: str = "none"
    """'none' (episodes run to the time limit), 'height' (the root's height leaves [min_height, max_height]) or
    'upright' (the root's up axis tips below min_upright); only a free-floating robot may end early."""
    min_height: float | None = None
    """With termination 'height': lowest healthy root height, m (None: half the initial height)."""
    max_height: float | None = None
    """With termination 'height': highest healthy root height, m (None: no upper bound)."""
    min_upright: float | None = None
    """With termination 'upright': lowest healthy z-component of the root's up axis (None: 0, i.e. on its side)."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RobotSettings:
        """Settings from user input; unknown names and values out of range are refused with the reason."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RobotDataError(f"unknown robot settings {unknown[:5]}; known: {sorted(known)}")
        s = cls(**data)
        if s.frame_skip is not None:
            _integer(s.frame_skip, "frame_skip", 1, 1000)
        _integer(s.episode_steps, "episode_steps", 10, 100_000)
        _number(s.reset_noise, "reset_noise", 0.0, 1.0)
        if s.termination not in TERMINATIONS:
            raise RobotDataError(f"termination must be one of {', '.join(TERMINATIONS)}, not {_shown(s.termination)}")
        for name in ("min_height", "max_height"):
            if getattr(s, name) is not None:
                _number(getattr(s, name), name, -100.0, 100.0)
        if s.min_upright is not None:
            _number(s.min_upright, "min_upright", -1.0, 1.0)
        if s.min_height is not None and s.max_height is not None and s.min_height >= s.max_height:
            raise RobotDataError(f"min_height ({s.min_height:g}) must be below max_height ({s.max_height:g})")
        return s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def resolved(self, timestep: float, root_height: float) -> RobotSettings:
        """These settings with every default that depends on the model filled in."""
        frame_skip = self.frame_skip or max(1, round(DEFAULT_CONTROL_STEP / timestep))
        min_height = self.min_height
        if self.termination == "height" and min_height is None:
            min_height = 0.5 * root_height
        min_upright = self.min_upright
        if self.termination == "upright" and min_upright is None:
            min_upright = 0.0
        return replace(self, frame_skip=frame_skip, min_height=min_height, min_upright=min_upright)


@dataclass(frozen=True)
class Actuator:
    name: str
    joint: str
    low: float
    high: float


@dataclass(frozen=True)
class RobotDescription:
    """What compiling a robot's model found: everything its env needs that is not in the settings."""

    root_body: str
    free: bool
    """Whether the root floats on a free joint (else it is the base of a fixed or jointed robot)."""
    root_qpos: tuple[int, ...]
    """qpos addresses of the root's free joint (x, y, z, quaternion), or () for a fixed base."""
    root_height: float
    """The root's initial height, m."""
    timestep: float
    nq: int
    nv: int
    actuators: tuple[Actuator, ...]
    bodies: tuple[tuple[str, str], ...]
    """(name, meaning) of every body but the world, in model order."""
    feet: tuple[tuple[str, str], ...]
    """(label, geom) of each foot: the leaf bodies' geoms that can touch the floor."""
    passive_joints: tuple[tuple[str, str], ...]
    floor: str
    """The ground plane's name ('' when the model has none)."""
    observed_qpos: tuple[int, ...]
    """qpos entries in the observation (all but the root's x and y)."""
    mass: float
    checks: Mapping[str, float] = field(default_factory=dict)
    """What the stability check measured (real-time factor, contacts, steps)."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(replace(self, checks={}))  # (asdict cannot copy the read-only mapping)
        data["checks"] = dict(self.checks)
        return data

    @classmethod
    def from_json(cls, data: object) -> RobotDescription:
        """A description read back from a sandboxed child: every field checked, nothing trusted."""
        if not isinstance(data, dict):
            raise RobotDataError("the robot description is not an object")
        missing = sorted({f.name for f in fields(cls)} - set(data))
        if missing:
            raise RobotDataError(f"the robot description lacks {missing[:5]}")
        nq = _integer(data["nq"], "nq", 1, MAX_QPOS)
        nv = _integer(data["nv"], "nv", 1, MAX_QPOS)
        qpos_index = [_integer(i, "a qpos address", 0, nq - 1) for i in _items(data["root_qpos"], "root_qpos", 7)]
        if len(qpos_index) not in (0, 7) or bool(qpos_index) != (data["free"] is True):
            raise RobotDataError("root_qpos must hold the 7 addresses of the free joint, or none for a fixed base")
        actuators = []
        for a in _items(data["actuators"], "actuators", MAX_ACTUATORS):
            if not isinstance(a, dict):
                raise RobotDataError("an actuator must be an object")
            low, high = _number(a.get("low"), "ctrl low", -1e6, 1e6), _number(a.get("high"), "ctrl high", -1e6, 1e6)
            if low >= high:
                raise RobotDataError("an actuator's control range must have low < high")
            actuators.append(Actuator(_name(a.get("name"), "actuator name"), _name(a.get("joint"), "joint"), low, high))
        if not actuators:
            raise RobotDataError("the robot has no actuators")
        checks = data["checks"]
        if not isinstance(checks, dict) or len(checks) > 20:
            raise RobotDataError("checks must be an object of at most 20 numbers")
        return cls(
            root_body=_name(data["root_body"], "root_body"),
            free=data["free"] is True,
            root_qpos=tuple(qpos_index),
            root_height=_number(data["root_height"], "root_height", -1e3, 1e3),
            timestep=_number(data["timestep"], "timestep", 1e-5, 1.0),
            nq=nq,
            nv=nv,
            actuators=tuple(actuators),
            bodies=_pairs(data["bodies"], "bodies", MAX_BODIES),
            feet=_pairs(data["feet"], "feet", MAX_BODIES),
            passive_joints=_pairs(data["passive_joints"], "passive_joints", MAX_QPOS),
            floor=_text(data["floor"], "floor", MAX_NAME),
            observed_qpos=tuple(
                _integer(i, "an observed qpos address", 0, nq - 1)
                for i in _items(data["observed_qpos"], "observed_qpos", MAX_QPOS)
            ),
            mass=_number(data["mass"], "mass", 0.0, 1e9),
            checks=MappingProxyType(
                {_name(k, "a check name"): _number(v, f"check {k}", -1e12, 1e12) for k, v in checks.items()}
            ),
        )


def _pairs(value: object, what: str, limit: int) -> tuple[tuple[str, str], ...]:
    out = []
    for item in _items(value, what, limit):
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise RobotDataError(f"each of {what} must be a (name, text) pair")
        out.append((_name(item[0], f"a name in {what}"), _text(item[1], f"a meaning in {what}")))
    return tuple(out)


@dataclass(frozen=True)
class RobotModel:
    """A user robot: its uploaded files (read-only), the main MJCF among them, its settings, its description."""

    files: Mapping[str, bytes]
    root_file: str
    settings: RobotSettings
    """As resolved for this model (``RobotSettings.resolved``)."""
    description: RobotDescription
