"""The offline designer: no LLM; evolves weights and structure over a library of reward terms.

A genome maps term names to weights (and a saturation scale for velocity terms), may carry
the fitness's own per-step signal as a term, and notes saying why it looks the way it does.
The first round is seeded from the fitness (a built-in metric, or what a fitness program
reads: see ``app.search.rules.fitness_terms`` and ``app.search.design.steering``) and the task's words;
later rounds mutate the best genome so far: perturb weights, add or drop terms, saturate or
not. Every program it writes says, in its first line, that no LLM wrote it, and in the lines
after it what the designer changed and why.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from envs import get_spec

LABEL = "offline designer (no LLM)"
SIGNAL = "fitness_signal"
"""The term that pays the fitness's own per-step form (``genome['signal']``, read from the fitness program)."""
MAX_NOTES = 8


@dataclass(frozen=True)
class Term:
    name: str
    expression: str
    sign: float
    default_weight: float
    saturable: bool = False
    needs: str | None = None
    """'feet', '3d', 'signal' or None: when the env (or the genome, for 'signal') must offer it."""


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
        Term("sideways_negative", "-state.y_velocity", 1.0, 1.0, saturable=True, needs="3d"),
        Term("jump_power", "np.square(np.maximum(state.z_velocity, 0.0))", 1.0, 0.3),
        Term("stillness", "np.square(state.x_velocity) + np.square(state.y_velocity)", -1.0, 0.5),
        Term("pitch_rate", "np.square(state.angular_velocity[:, 1])", -1.0, 0.05),
        Term(SIGNAL, "", 1.0, 1.0, needs="signal"),
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


def _available(term: Term, env: str, genome: dict | None = None) -> bool:
    spec = get_spec(env)
    if term.needs == "signal":
        return bool((genome or {}).get("signal"))
    if term.needs == "feet":
        return bool(spec.feet)
    if term.needs == "3d":
        return not spec.planar
    return True


@dataclass(frozen=True)
class Seed:
    """Terms read from a fitness program (``app.search.design.steering.read_intent``): weights, signal, why."""

    weights: dict[str, float]
    signal: str | None = None
    notes: tuple[str, ...] = ()


def seed_genome(env: str, fitness_name: str, task: str, seed: Seed | None = None) -> dict:
    """The first genome: terms that the fitness and the task's words point to, plus a control cost.

    A built-in metric seeds its own terms; a fitness program seeds the terms of what it reads
    (``seed``, with its per-step signal).
    """
    weights: dict[str, float] = dict(FITNESS_SEEDS.get(fitness_name, {}))
    notes: list[str] = []
    signal = None
    if not weights and seed is not None:
        weights, signal, notes = dict(seed.weights), seed.signal, list(seed.notes)
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
    genome: dict = {"weights": weights, "saturation": {}}
    if signal:
        genome["signal"] = signal
    genome["weights"] = {k: v for k, v in weights.items() if _available(TERMS[k], env, genome)}
    if notes:
        genome["notes"] = notes[:MAX_NOTES]
    return genome


def mutate(
    genome: dict,
    env: str,
    rng: random.Random,
    *,
    drop: frozenset[str] | set[str] = frozenset(),
    sigma: float = 0.5,
    keep_terms: bool = False,
) -> dict:
    """A child of ``genome``: log-normal weight changes (spread ``sigma``), sometimes (unless ``keep_terms``) a term
    added, dropped or saturated. Terms in ``drop`` (diagnosed as carrying no signal) are removed and not added back.
    """
    weights = {k: v for k, v in genome["weights"].items() if k not in drop}
    saturation = dict(genome.get("saturation", {}))
    for name in list(weights):
        weights[name] = min(max(weights[name] * rng.lognormvariate(0.0, sigma), WEIGHT_RANGE[0]), WEIGHT_RANGE[1])
    roll = 1.0 if keep_terms else rng.random()
    candidates = [
        t for t in TERMS.values() if t.name not in weights and t.name not in drop and _available(t, env, genome)
    ]
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
    child: dict = {"weights": {k: round(v, 5) for k, v in weights.items()}, "saturation": saturation}
    if genome.get("signal"):
        child["signal"] = genome["signal"]
    return child


def render_program(genome: dict) -> str:
    """The reward program for ``genome``, under the reward contract."""
    lines = [f"# Written by the {LABEL}: weighted reward terms evolved towards the fitness."]
    lines += [f"# {_comment(note)}" for note in genome.get("notes", [])[:MAX_NOTES]]
    lines += ["import numpy as np", ""]
    for name, w in genome["weights"].items():
        lines.append(f"{name.upper()}_WEIGHT = {w!r}")
    for name, scale in genome.get("saturation", {}).items():
        lines.append(f"{name.upper()}_SCALE = {scale!r}")
    lines += ["", "", "def compute_reward(state, action):"]
    names = []
    for name in genome["weights"]:
        term = TERMS[name]
        expr = genome["signal"] if name == SIGNAL else term.expression
        if name in genome.get("saturation", {}):
            expr = f"{name.upper()}_SCALE * np.tanh(({expr}) / {name.upper()}_SCALE)"
        sign = "-" if term.sign < 0 else ""
        lines.append(f"    {name} = {sign}{name.upper()}_WEIGHT * ({expr})")
        names.append(name)
    lines.append("    reward = " + " + ".join(names))
    lines.append("    return reward, {" + ", ".join(f'"{n}": {n}' for n in names) + "}")
    return "\n".join(lines) + "\n"


def _comment(note: str) -> str:
    """``note`` as one line of a comment: printable, no line breaks, bounded."""
    flat = "".join(ch if ch.isprintable() else " " for ch in str(note))
    return flat[:160]
