"""The compact text description of an env that the designer sees (Text2Reward-style)."""

from __future__ import annotations

from envs.fitness import METRICS
from envs.make import layout_of
from envs.spec import EnvSpec


def describe(spec: EnvSpec) -> str:
    """Fields (shape, unit, meaning), named joints and bodies, action meaning, dt, episode length, termination."""
    layout = layout_of(spec)
    lines = [
        f"# {spec.name}",
        spec.summary,
        "",
        f"Control step dt = {layout.dt:g} s; episodes last at most 1000 steps.",
        f"Termination: {spec.termination}",
        f"Action (N, {len(layout.joint_names)}): {spec.action}",
        "",
        "## State fields (`state.<name>`, leading axis N = parallel envs)",
    ]
    if spec.planar:
        lines.insert(
            -1,
            "Planar robot: it moves in the x-z plane only, so y_position, y_velocity, roll and yaw are always 0; "
            "pitch is the torso's hinge angle, cumulative over full turns (+ tips the front, the +x end, down).\n",
        )
    width = max(len(f.name) for f in spec.fields())
    for f in spec.fields():
        lines.append(f"- {f.name.ljust(width)}  {f.shape:<10} {f.unit:<7} {f.meaning}")
    lines += ["", f"joint_names (J={len(layout.joint_names)}): {', '.join(layout.joint_names)}"]
    if layout.feet_names:
        lines.append(f"feet_names (F={len(layout.feet_names)}): {', '.join(layout.feet_names)}")
    if spec.bodies:
        lines.append(f"body_names (B={len(spec.bodies)}): {', '.join(spec.bodies)}")
    if layout.contact_body_names:
        lines.append(f"contact_body_names (C={len(layout.contact_body_names)}): {', '.join(layout.contact_body_names)}")
    return "\n".join(lines)


def describe_fitness() -> str:
    """The built-in fitness metrics, one line each."""
    return "\n".join(f"- {m.name}: {m.meaning}" for m in METRICS.values())
