"""The offline designer: no LLM; evolves weights and structure over a library of reward terms.

A genome maps term names to weights (and a saturation scale for velocity terms). The
first round is seeded from the fitness metric and keywords of the task; later rounds
mutate the best genome so far: perturb weights, add or drop terms, saturate or not.
Every program it writes says, in its first line, that no LLM wrote it.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from envs import get_spec

LABEL = "offline designer (no LLM)"


@dataclass(frozen=True)
class Term:
    name: str
    expression: str
    sign: float
    default_weight: float
    saturable: bool = False
    needs: str | None = None
    """'feet', '3d' or None: when the env must offer it."""


TERMS: dict[str, Term] = {
    t.name: t
    for t in (
        Term("forward", "state.x_velocity", 1.0, 1.0, saturable=True),
        Term("backward", "-state.x_velocity", 1.0, 1.0, saturable=True),
        Term("sideways", "state.y_velocity", 1.0, 1.0, saturable=True, needs="3d"),
        Term("lateral_drift", "np.square(state.y_velocity)", -1.0, 0.5, needs="3d"),
        Term("healthy", "state.is_healthy.astype(np.float64)", 1.0, 1.0),
        Term("upright", "state.upright", 1.0, 0.5),
        Term("height", "state.z_position", 1.0, 1.0),
        Term("jump", "np.maximum(state.z_velocity, 0.0)", 1.0, 1.0, saturable=True),
        Term("pitch_spin", "state.angular_velocity[:, 1]", 1.0, 1.0, saturable=True),
        Term("reverse_pitch_spin", "-state.angular_velocity[:, 1]", 1.0, 1.0, saturable=True),
        Term("ctrl_cost", "np.sum(np.square(action), axis=-1)", -1.0, 0.1),
        Term("joint_speed_cost", "np.mean(np.square(state.joint_velocities), axis=-1)", -1.0, 0.001),
        Term("feet_contact", "np.mean(state.feet_contact.astype(np.float64), axis=-1)", 1.0, 0.2, needs="feet"),
        Term("airborne", "1.0 - np.max(state.feet_contact.astype(np.float64), axis=-1)", 1.0, 0.5, needs="feet"),
    )
}

FITNESS_SEEDS: dict[str, dict[str, float]] = {
    "forward_distance": {"forward": 1.0, "ctrl_cost": 0.1},
    "mean_x_velocity": {"forward": 1.0, "ctrl_cost": 0.1},
    "backward_distance": {"backward": 1.0, "ctrl_cost": 0.1},
    "survival_steps": {"healthy": 1.0, "upright": 0.5, "ctrl_cost": 0.01},
    "max_height": {"height": 1.0, "jump": 1.0, "ctrl_cost": 0.01},
    "flips": {"pitch_spin": 1.0, "ctrl_cost": 0.01},
}

KEYWORDS: list[tuple[str, dict[str, float]]] = [
    (r"\bback(ward)?s?\b(?!\s*flip)", {"backward": 1.0}),
    (r"\bforwards?\b|\brun\b|\bwalk\b|\bfast\b", {"forward": 1.0}),
    (r"flip|somersault|spin", {"pitch_spin": 1.0}),
    (r"jump|hop high|leap", {"jump": 1.0, "height": 0.5}),
    (r"stand|balance|stay up|upright|survive", {"healthy": 1.0, "upright": 0.5}),
    (r"sideways|left|right", {"sideways": 1.0}),
    (r"smooth|efficient|energy|gentle", {"ctrl_cost": 0.3}),
]

WEIGHT_RANGE = (1e-4, 20.0)


def _available(term: Term, env: str) -> bool:
    spec = get_spec(env)
    if term.needs == "feet":
        return bool(spec.feet)
    if term.needs == "3d":
        return not spec.planar
    return True


def seed_genome(env: str, fitness_name: str, task: str) -> dict:
    """The first genome: terms that the fitness and the task's words point to, plus a control cost."""
    weights: dict[str, float] = dict(FITNESS_SEEDS.get(fitness_name, {}))
    if not weights:
        for pattern, terms in KEYWORDS:
            if re.search(pattern, task, re.IGNORECASE):
                for name, w in terms.items():
                    weights.setdefault(name, w)
    if not weights:
        weights = {"forward": 1.0}
    weights.setdefault("ctrl_cost", 0.05)
    if "HEALTHY_REWARD" in get_spec(env).reference_reward:  # envs that end episodes on a fall
        weights.setdefault("healthy", 0.5)
    weights = {k: v for k, v in weights.items() if _available(TERMS[k], env)}
    return {"weights": weights, "saturation": {}}


def mutate(genome: dict, env: str, rng: random.Random, *, drop: frozenset[str] | set[str] = frozenset()) -> dict:
    """A child of ``genome``: log-normal weight changes, sometimes a term added, dropped or saturated.

    Terms in ``drop`` (diagnosed as carrying no signal) are removed and not added back.
    """
    weights = {k: v for k, v in genome["weights"].items() if k not in drop}
    saturation = dict(genome.get("saturation", {}))
    for name in list(weights):
        weights[name] = min(max(weights[name] * rng.lognormvariate(0.0, 0.5), WEIGHT_RANGE[0]), WEIGHT_RANGE[1])
    roll = rng.random()
    candidates = [t for t in TERMS.values() if t.name not in weights and t.name not in drop and _available(t, env)]
    if roll < 0.25 and candidates:
        term = rng.choice(candidates)
        weights[term.name] = term.default_weight * rng.uniform(0.2, 1.0)
    elif roll < 0.4 and len(weights) > 1:
        victim = rng.choice([k for k in weights if TERMS[k].sign < 0] or list(weights))
        weights.pop(victim)
        saturation.pop(victim, None)
    elif roll < 0.55:
        saturable = [k for k in weights if TERMS[k].saturable]
        if saturable:
            name = rng.choice(saturable)
            if name in saturation:
                saturation.pop(name)
            else:
                saturation[name] = round(rng.uniform(1.0, 8.0), 2)
    if not weights:
        weights = dict(genome["weights"])
    return {"weights": {k: round(v, 5) for k, v in weights.items()}, "saturation": saturation}


def render_program(genome: dict) -> str:
    """The reward program for ``genome``, under the reward contract."""
    lines = [
        f"# Written by the {LABEL}: weighted reward terms evolved towards the fitness.",
        "import numpy as np",
        "",
    ]
    for name, w in genome["weights"].items():
        lines.append(f"{name.upper()}_WEIGHT = {w!r}")
    for name, scale in genome.get("saturation", {}).items():
        lines.append(f"{name.upper()}_SCALE = {scale!r}")
    lines += ["", "", "def compute_reward(state, action):"]
    names = []
    for name in genome["weights"]:
        term = TERMS[name]
        expr = term.expression
        if name in genome.get("saturation", {}):
            expr = f"{name.upper()}_SCALE * np.tanh(({expr}) / {name.upper()}_SCALE)"
        sign = "-" if term.sign < 0 else ""
        lines.append(f"    {name} = {sign}{name.upper()}_WEIGHT * ({expr})")
        names.append(name)
    lines.append("    reward = " + " + ".join(names))
    lines.append("    return reward, {" + ", ".join(f'"{n}": {n}' for n in names) + "}")
    return "\n".join(lines) + "\n"
