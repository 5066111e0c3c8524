"""The compact text description of an env that the designer sees (Text2Reward-style)."""

from __future__ import annotations

from dataclasses import dataclass

from envs.fitness import METRICS, metrics_for
from envs.make import episode_limit, layout_of
from envs.spec import EnvSpec


@dataclass(frozen=True)
class Facts:
    """What the description says that comes from the model, not the spec."""

    dt: float
    joint_names: tuple[str, ...]
    episode_steps: int


def facts(spec: EnvSpec) -> Facts:
    """From a built-in env's model; from a user robot's stored description (nothing is compiled for it here)."""
    if spec.robot is not None:
        d, s = spec.robot.description, spec.robot.settings
        return Facts(d.timestep * int(s.frame_skip or 1), tuple(a.joint for a in d.actuators), s.episode_steps)
    layout = layout_of(spec)
    return Facts(layout.dt, layout.joint_names, episode_limit(spec))


def _named(title: str, items: tuple[tuple[str, str], ...]) -> list[str]:
    return ["", title, *(f"- {name}: {meaning}" for name, meaning in items)]


def describe(spec: EnvSpec) -> str:
    """Fields (shape, unit, meaning), named joints and bodies with their meaning, action, dt, episode length,
    termination; for a user robot its settings."""
    f = facts(spec)
    lines = [
        f"# {spec.name}",
        spec.summary,
        "",
        f"Control step dt = {f.dt:g} s; episodes last at most {f.episode_steps} steps.",
        f"Termination: {spec.termination}",
        f"Action (N, {len(f.joint_names)}): {spec.action}",
        f"Torso (the body the common fields describe): {spec.torso}.",
    ]
    if spec.robot is not None:
        s = spec.robot.settings
        lines.append(
            f"Settings: frame_skip {s.frame_skip}, episode_steps {s.episode_steps}, reset_noise {s.reset_noise:g}, "
            f"termination {s.termination}."
        )
    lines += ["", "## State fields (`state.<name>`, leading axis N = parallel envs)"]
    if spec.planar:
        lines.insert(
            -1,
            "Planar robot: it moves in the x-z plane only, so y_position, y_velocity, roll and yaw are always 0; "
            "pitch is the torso's hinge angle, cumulative over full turns (+ tips the front, the +x end, down).\n",
        )
    width = max(len(field.name) for field in spec.fields())
    for field in spec.fields():
        lines.append(f"- {field.name.ljust(width)}  {field.shape:<10} {field.unit:<7} {field.meaning}")
    lines += ["", f"joint_names (J={len(f.joint_names)}): {', '.join(f.joint_names)}"]
    if spec.feet:
        lines.append(f"feet_names (F={len(spec.feet)}): {', '.join(label for label, _ in spec.feet)}")
    if spec.contact_forces:
        lines.append(f"contact_body_names (C={len(spec.bodies)}): the same bodies, in the same order, as body_names")
    lines += _named(
        f"## Bodies (state.body_names, B={len(spec.bodies)}; index b of body_positions and body_velocities; "
        'e.g. state.body_positions[:, state.body_names.index("name")])',
        spec.bodies,
    )
    if spec.sites:
        lines += _named(f"## Sites (state.site_names, S={len(spec.sites)})", spec.sites)
    if spec.passive_joints:
        lines += _named(
            f"## Passive joints (state.passive_joint_names, P={len(spec.passive_joints)})", spec.passive_joints
        )
    return "\n".join(lines)


def describe_fitness(spec: EnvSpec | None = None) -> str:
    """The built-in fitness metrics (those that apply to ``spec``, when given), one line each."""
    metrics = metrics_for(spec) if spec is not None else list(METRICS.values())
    return "\n".join(f"- {m.name}: {m.meaning}" for m in metrics)
