"""Built-in fitness metrics. Each is a fitness program under the same rules as a reward program.

``traj`` holds the state fields of one evaluation episode with leading axis T (one row
per step taken); velocities are means over each step, so their sum times ``dt`` is an
exact displacement.
"""

from __future__ import annotations

from dataclasses import dataclass

from envs.spec import EnvSpec


@dataclass(frozen=True)
class FitnessMetric:
    name: str
    meaning: str
    source: str
    sparse_reward: str | None = None
    """The fitness itself paid per step, as a reward program (the 'sparse' baseline of the normalized score)."""
    bodies: tuple[str, ...] = ()
    """Bodies an env must have for the metric to apply (it reads their positions by name)."""

    def applies_to(self, spec: EnvSpec) -> bool:
        names = {name for name, _ in spec.bodies}
        return all(b in names for b in self.bodies)


def _between(a: str, b: str, var: str) -> str:
    """Lines that set ``gap`` to the distance between bodies ``a`` and ``b`` at every step of ``var``."""
    return (
        f'    {a}_at = {var}.body_positions[:, {var}.body_names.index("{a}")]\n'
        f'    {b}_at = {var}.body_positions[:, {var}.body_names.index("{b}")]\n'
        f"    gap = np.linalg.norm({a}_at - {b}_at, axis=-1)\n"
    )


def _sparse(expression: str, prelude: str = "") -> str:
    return (
        "import numpy as np\n\n\ndef compute_reward(state, action):\n"
        '    """The fitness signal itself, paid per step."""\n'
        f"{prelude}"
        f"    fitness = {expression}\n"
        '    return fitness, {"fitness": fitness}\n'
    )


def _program(body: str, doc: str) -> str:
    return f'import math\nimport numpy as np\n\n\ndef compute_fitness(traj):\n    """{doc}"""\n{body}'


METRICS: dict[str, FitnessMetric] = {
    m.name: m
    for m in (
        FitnessMetric(
            "forward_distance",
            "metres travelled along +x during the episode",
            _program("    return float(np.sum(traj.x_velocity) * traj.dt)\n", "Metres travelled along +x."),
            _sparse("state.x_velocity * state.dt"),
        ),
        FitnessMetric(
            "backward_distance",
            "metres travelled along -x during the episode",
            _program("    return float(-np.sum(traj.x_velocity) * traj.dt)\n", "Metres travelled along -x."),
            _sparse("-state.x_velocity * state.dt"),
        ),
        FitnessMetric(
            "mean_x_velocity",
            "mean torso velocity along +x over the episode, m/s",
            _program("    return float(np.mean(traj.x_velocity))\n", "Mean forward velocity, m/s."),
            _sparse("state.x_velocity * state.dt"),
        ),
        FitnessMetric(
            "survival_steps",
            "number of steps before the episode ended (early termination or the time limit)",
            _program("    return float(traj.step[-1])\n", "Steps survived."),
            _sparse("np.ones_like(state.x_velocity)"),
        ),
        FitnessMetric(
            "max_height",
            "highest torso height reached during the episode, m",
            _program("    return float(np.max(traj.z_position))\n", "Highest torso height, m."),
        ),
        FitnessMetric(
            "mean_height",
            "mean torso height over the episode, m",
            _program("    return float(np.mean(traj.z_position))\n", "Mean torso height, m."),
            _sparse("state.z_position * state.dt"),
        ),
        FitnessMetric(
            "upright_seconds",
            "seconds during which the env's own health test held (the pendulums: the pole up; others: not fallen)",
            _program("    return float(np.sum(traj.is_healthy) * traj.dt)\n", "Seconds healthy (upright)."),
            _sparse("np.where(state.is_healthy, state.dt, 0.0)"),
        ),
        FitnessMetric(
            "reach",
            "minus the fingertip-target distance at the end of the episode, m (0: on the target)",
            _program(
                _between("fingertip", "target", "traj") + "    return float(-gap[-1])\n",
                "Minus the final fingertip-target distance, m.",
            ),
            _sparse("-gap * state.dt", _between("fingertip", "target", "state")),
            bodies=("fingertip", "target"),
        ),
        FitnessMetric(
            "push",
            "minus the object-goal distance at the end of the episode, m (0: on the goal)",
            _program(
                _between("object", "goal", "traj") + "    return float(-gap[-1])\n",
                "Minus the final object-goal distance, m.",
            ),
            _sparse("-gap * state.dt", _between("object", "goal", "state")),
            bodies=("object", "goal"),
        ),
        FitnessMetric(
            "flips",
            "net full rotations about the pitch axis (either direction; 1.0 = one full flip)",
            _program(
                "    turned = np.sum(traj.angular_velocity[:, 1]) * traj.dt\n"
                "    return float(abs(turned) / (2.0 * math.pi))\n",
                "Net turns about the pitch axis.",
            ),
        ),
    )
}


def metrics_for(spec: EnvSpec) -> list[FitnessMetric]:
    """The built-in metrics that apply to ``spec`` (those that read named bodies need them)."""
    return [m for m in METRICS.values() if m.applies_to(spec)]


class UnknownFitnessError(ValueError):
    """A fitness metric name that is not built in."""


def get_metric(name: str) -> FitnessMetric:
    """The built-in metric ``name``, or an error that lists the known ones."""
    try:
        return METRICS[name]
    except KeyError:
        known = ", ".join(METRICS)
        raise UnknownFitnessError(
            f"unknown fitness metric '{name}'. Built-in metrics: {known}; "
            "or pass a fitness program with --fitness-file."
        ) from None
