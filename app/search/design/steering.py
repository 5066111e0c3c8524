"""How the offline designer turns what it reads into reward terms: the fitness program, feedback, diagnostics.

``read_intent`` maps what a fitness program reads (``app.search.rules.fitness_terms``) to terms of
the library in ``app.search.design.offline``; ``steer`` changes a parent genome for a person's
feedback ("too slow", "falls over", ...) and for run diagnostics that say the search is
stuck. Every change is written as a note that lands in the program's header comment.
Notes quote only this module's own words, never the feedback's text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import app.search.design.offline as offline
from app.search.design.diagnostics import STUCK, Code, RunFinding
from app.search.rules.fitness_terms import FitnessIntent, read_fitness
from envs import get_spec

FEEDBACK_CHARS = 2_000
"""Feedback is read up to this many characters (it is user input)."""

TASK_TERMS = frozenset(
    {
        "forward",
        "backward",
        "sideways",
        "sideways_negative",
        "height",
        "jump",
        "jump_power",
        "airborne",
        "pitch_spin",
        "reverse_pitch_spin",
        offline.SIGNAL,
    }
)
"""Terms that ask for a behaviour (as opposed to costs and staying alive)."""


def _add(weights: dict[str, float], name: str, w: float) -> None:
    weights[name] = max(weights.get(name, 0.0), w)


def intent_weights(intent: FitnessIntent) -> tuple[dict[str, float], list[str]]:
    """Terms for what the fitness reads, with one note per field saying why."""
    w: dict[str, float] = {}
    notes: list[str] = []
    z = intent.direction("z_position")
    if z > 0:
        hows = {u.how for u in intent.reads("z_position")}
        # a peak (max) is reached by jumping: paying height every step makes standing tall the best policy
        peak = hows <= {"max", "range", "other"}
        terms = (
            (("height", 0.3), ("jump", 1.0), ("jump_power", 1.0), ("airborne", 1.0))
            if peak
            else (("height", 1.0), ("jump", 0.5), ("jump_power", 0.3), ("airborne", 0.5))
        )
        for name, weight in terms:
            _add(w, name, weight)
        notes.append(
            f"the fitness wants z_position high ({', '.join(sorted(hows))}): height, upward speed, airborne time, "
            "peak bonus" + (" (a peak: upward speed and air time weigh more than height)" if peak else "")
        )
    if intent.direction("z_velocity") > 0:
        _add(w, "jump", 1.0)
        notes.append("the fitness wants upward velocity: reward rising")
    for field, plus, minus in (("x_velocity", "forward", "backward"), ("x_position", "forward", "backward")):
        d = intent.direction(field)
        if d:
            _add(w, plus if d > 0 else minus, 1.0)
            notes.append(
                f"the fitness wants {field} {'up' if d > 0 else 'down'}: reward moving {plus if d > 0 else minus}"
            )
    for field in ("y_velocity", "y_position"):
        d = intent.direction(field)
        if d:
            _add(w, "sideways" if d > 0 else "sideways_negative", 1.0)
            notes.append(f"the fitness wants {field} {'up' if d > 0 else 'down'}: reward moving sideways")
    spin = intent.direction("angular_velocity", column=1) or intent.direction("pitch")
    counted = any(u.absolute or u.compared for u in intent.reads("angular_velocity", column=1) + intent.reads("pitch"))
    if spin > 0 or (not spin and counted):
        _add(w, "pitch_spin", 1.0)
        notes.append("the fitness counts pitch turns: reward spinning about the pitch axis")
    elif spin < 0:
        _add(w, "reverse_pitch_spin", 1.0)
        notes.append("the fitness counts backward pitch turns: reward spinning the other way")
    if intent.direction("upright") > 0:
        _add(w, "upright", 1.0)
        _add(w, "healthy", 1.0)
        notes.append("the fitness wants the torso upright: upright and healthy bonuses")
    if intent.reads("is_healthy") or intent.reads("step"):
        _add(w, "healthy", 1.0)
        _add(w, "upright", 0.5)
        notes.append("the fitness counts healthy steps: reward staying alive and upright")
    still = [u for f in ("x_velocity", "y_velocity") for u in intent.reads(f) if u.absolute and u.sign < 0]
    if still and not w.get("forward") and not w.get("backward"):
        _add(w, "joint_speed_cost", 0.01)
        notes.append("the fitness penalises speed: joint speed cost (its per-step signal penalises the rest)")
    if intent.direction("joint_velocities") < 0:
        _add(w, "joint_speed_cost", 0.01)
    contact = intent.direction("feet_contact")
    if contact:
        _add(w, "feet_contact" if contact > 0 else "airborne", 0.5)
    return w, notes


def read_intent(env: str, source: str) -> offline.Seed:
    """The first round's terms for a fitness program: what it reads, and its per-step signal as a term."""
    intent = read_fitness(source, {f.name for f in get_spec(env).fields()})
    weights, notes = intent_weights(intent)
    if intent.signal:
        peak = all(u.how == "max" for u in intent.uses) and intent.uses
        weights[offline.SIGNAL] = 0.3 if peak else 1.0  # the per-step form of a peak pays for standing still too
        notes.append("the fitness's per-step form is a term of its own (fitness_signal)")
    notes.extend(intent.notes)
    return offline.Seed(weights, intent.signal, tuple(notes))


@dataclass(frozen=True)
class Rule:
    """A feedback phrase and what it changes: weights multiplied (terms added at their default when absent)."""

    pattern: str
    said: str
    scale: dict[str, float]
    why: str
    unsaturate: tuple[str, ...] = ()


RULES: tuple[Rule, ...] = (
    Rule(
        r"too slow|faster|sluggish|more speed|speed up",
        "too slow",
        {"forward": 1.5, "backward": 1.5, "sideways": 1.5, "sideways_negative": 1.5, "ctrl_cost": 0.7},
        "more reward for speed, less control cost",
        unsaturate=("forward", "backward", "sideways", "sideways_negative"),
    ),
    Rule(
        r"too fast|slower|slow down|reckless",
        "too fast",
        {"forward": 0.7, "backward": 0.7, "ctrl_cost": 1.5},
        "less reward for speed, more control cost",
    ),
    Rule(
        r"fall|fell|tips? over|topples?|collapses?",
        "falls over",
        {"healthy": 2.0, "upright": 2.0},
        "more reward for staying healthy and upright",
    ),
    Rule(
        r"jitter|shak|twitch|vibrat|spasm|erratic",
        "jittery",
        {"ctrl_cost": 2.0, "joint_speed_cost": 3.0},
        "higher control and joint speed costs",
    ),
    Rule(
        r"on its back|upside down|flipped over|belly up",
        "on its back",
        {"upright": 3.0, "pitch_spin": 0.5, "reverse_pitch_spin": 0.5},
        "more reward for an upright torso, less for spinning",
    ),
    Rule(
        r"stands? still|not moving|doesn.t move|does nothing|frozen|idle|stuck",
        "stands still",
        {**{t: 2.0 for t in TASK_TERMS}, "healthy": 0.5, "ctrl_cost": 0.5},
        "task terms doubled, the alive bonus and control cost halved (standing is paid too well)",
    ),
    Rule(
        r"higher|not high|jump more|too low|bigger jumps?",
        "not high enough",
        {"height": 1.5, "jump": 1.5, "jump_power": 1.5, "airborne": 1.5},
        "more reward for height and upward speed",
    ),
)


def feedback_changes(texts: list[str]) -> list[Rule]:
    """The rules the feedback texts match, in the order of ``RULES``, each once."""
    joined = " ".join(t[:FEEDBACK_CHARS] for t in texts).lower()[: FEEDBACK_CHARS * 4]
    return [r for r in RULES if re.search(r.pattern, joined)]


def _scaled(genome: dict, env: str, scale: dict[str, float]) -> dict[str, float]:
    weights = dict(genome["weights"])
    for name, factor in scale.items():
        term = offline.TERMS[name]
        if name in weights:
            weights[name] = min(max(weights[name] * factor, offline.WEIGHT_RANGE[0]), offline.WEIGHT_RANGE[1])
        elif factor > 1.0 and name not in TASK_TERMS and offline._available(term, env, genome):
            weights[name] = term.default_weight  # a cost or bonus the feedback asks for that was missing
    return {k: round(v, 5) for k, v in weights.items()}


def steer(
    genome: dict,
    env: str,
    *,
    feedback: list[str],
    run_diagnostics: list[RunFinding],
    learner_problems: list[Code] | None = None,
) -> tuple[dict, bool]:
    """``genome`` changed for the feedback and for a stuck search, with notes; (genome, stuck).

    ``stuck``: a run diagnostic says the candidates could not be told apart or never improved, so
    the caller should mutate further from this genome. ``learner_problems``: the parent's training
    had only learner problems (``app.search.design.learner``), so the reward may be fine: it is not
    boosted for a stuck search, and a note says why.
    """
    notes: list[str] = []
    out = {**genome, "weights": dict(genome["weights"]), "saturation": dict(genome.get("saturation", {}))}
    for rule in feedback_changes(feedback):
        out["weights"] = _scaled(out, env, rule.scale)
        for name in rule.unsaturate:
            out["saturation"].pop(name, None)
        changed = ", ".join(f"{k} x{v:g}" for k, v in rule.scale.items() if k in out["weights"])
        notes.append(f"feedback said '{rule.said}': {rule.why} ({changed or 'no matching term'})")
    codes = sorted({str(d["code"]) for d in run_diagnostics if d["code"] in STUCK})
    if learner_problems:
        notes.append(
            f"learner problem in the parent's training ({', '.join(learner_problems)}): the reward may be fine, so "
            "only its weights change, a little" + (f"; no boost for {', '.join(codes)}" if codes else "")
        )
        codes = []
    stuck = bool(codes)
    if stuck:
        boost = {t: 2.0 for t in TASK_TERMS} | {"healthy": 0.5, "ctrl_cost": 0.5}
        out["weights"] = _scaled(out, env, boost)
        if out.get("signal") and offline.SIGNAL not in out["weights"]:
            out["weights"][offline.SIGNAL] = 2.0
        notes.append(
            f"the run diagnostics say {', '.join(codes)}: task terms doubled, alive bonus and control cost halved, "
            "wider mutations"
        )
    out["notes"] = notes[: offline.MAX_NOTES]
    return out, stuck
