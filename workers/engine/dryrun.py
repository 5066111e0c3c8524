"""Dry runs: call a checked program on states sampled from the env before any training.

A reward program is called at N=1 and N=8 (shapes, finite values, stable component
names, components that add up, each env's reward independent of the rest of the batch)
and on every sampled state; a fitness program on two sampled episodes. Problems that
would only show up hours into training show up here.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from envs import get_spec
from envs.capture import Layout, action_box
from envs.make import sample_rows
from envs.spec import EnvSpec
from envs.state import build_state
from workers.sandbox.policy import ProgramRejected, Violation
from workers.sandbox.program import Program, ProgramError, call_fitness, call_reward, load_program

SUM_TOLERANCE = 1e-6


@dataclass
class DryRunReport:
    """What a dry run saw: the program's components, their ranges, its speed, and warnings."""

    kind: str
    env: str
    states: int
    components: list[str] = field(default_factory=list)
    reward: dict[str, float] = field(default_factory=dict)
    component_stats: dict[str, dict[str, float]] = field(default_factory=dict)
    ms_per_call: dict[str, float] = field(default_factory=dict)
    fitness_value: float | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _reject(program: Program, e: ProgramError, kind: str) -> ProgramRejected:
    line, column = e.line, e.column
    if line is None:  # a check of what the program returned: point at the entry function
        code = getattr(program.fn, "__code__", None)
        line = code.co_firstlineno if code is not None and code.co_filename == f"<{kind}>" else 0
        column = 1
    return ProgramRejected("dry run", [Violation("dry run", line, column or 1, str(e))], kind)


def _actions(spec: EnvSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    low, high = _action_bounds(spec)
    return rng.uniform(low, high, size=(n, low.shape[0])).astype(np.float32)


_BOUNDS: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def _action_bounds(spec: EnvSpec) -> tuple[np.ndarray, np.ndarray]:
    if spec.name not in _BOUNDS:
        from envs.make import make_env

        env = make_env(spec)
        box = action_box(env)
        _BOUNDS[spec.name] = (box.low.copy(), box.high.copy())
        env.close()
    return _BOUNDS[spec.name]


def _time_call(fn: Callable[[], object], repeats: int = 20) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000.0)


def dry_run_reward(env: str, source: str, *, seed: int = 0) -> DryRunReport:
    """Load and exercise a reward program; raises ``ProgramRejected`` with the first problem found."""
    spec = get_spec(env)
    program = load_program(source, "reward")
    layout, rows = sample_rows(spec, seed=seed)
    rng = np.random.default_rng(seed)
    actions = _actions(spec, rows.shape[0], rng)
    report = DryRunReport("reward", env, rows.shape[0])
    try:
        _, one, w1 = call_reward(program, build_state(layout, rows[:1]), actions[:1])
        state8 = build_state(layout, rows[:8])
        reward8, eight, w8 = call_reward(program, state8, actions[:8])
        if sorted(one) != sorted(eight):
            raise ProgramError(
                f"component names differ between calls: {sorted(one)} at N=1, {sorted(eight)} at N=8. "
                "Return the same components for every batch."
            )
        _check_per_env(program, layout, rows[:8], actions[:8], reward8, eight)
        reward, comps, wall = call_reward(program, build_state(layout, rows), actions)
        if sorted(comps) != sorted(eight):
            raise ProgramError(f"component names change with the state: {sorted(eight)} vs {sorted(comps)}.")
    except ProgramError as e:
        raise _reject(program, e, "reward") from None
    report.warnings.extend(dict.fromkeys(w1 + w8 + wall))
    report.components = list(comps)
    report.reward = _stats(reward)
    report.component_stats = {k: _stats(v) for k, v in comps.items()}
    if comps:
        total = np.sum(np.stack(list(comps.values())), axis=0)
        gap = np.max(np.abs(total - reward))
        if gap > SUM_TOLERANCE * max(1.0, float(np.max(np.abs(reward)))):
            report.warnings.append(
                f"the components do not add up to the reward (largest gap {gap:.3g}); the reflection reports on "
                "components, so return every term you add, with the sign it has in the sum"
            )
    else:
        report.warnings.append("no components returned; the reflection cannot say which term drives the behaviour")
    for name, values in comps.items():
        if np.ptp(values) == 0.0 and values.size > 1:
            report.warnings.append(f"component '{name}' is constant ({values[0] + 0.0:.3g}) on every sampled state")
    state1 = build_state(layout, rows[:1])
    report.ms_per_call = {
        "N=1": _time_call(lambda: program.fn(state1, actions[:1])),
        "N=8": _time_call(lambda: program.fn(state8, actions[:8])),
    }
    if report.ms_per_call["N=8"] > 5.0:
        report.warnings.append(
            f"one call takes {report.ms_per_call['N=8']:.1f} ms at N=8, slower than the simulation; "
            "avoid Python loops over the batch"
        )
    return report


def _check_per_env(
    program: Program, layout: Layout, rows: np.ndarray, actions: np.ndarray, reward: np.ndarray, components: dict
) -> None:
    """Each env's reward must depend on that env only: a batch of N gives what N batches of one give.

    A reduction without ``axis=-1`` (``np.sum(action ** 2)``, ``x - np.mean(x)``) mixes the
    envs of a batch; PPO would then credit every env with the others' progress.
    """
    for i in range(rows.shape[0]):
        alone, comps, _ = call_reward(program, build_state(layout, rows[i : i + 1]), actions[i : i + 1])
        pairs = [("the reward", alone[0], reward[i])]
        pairs += [(f"component '{k}'", comps[k][0], components[k][i]) for k in components if k in comps]
        for what, single, batched in pairs:
            if not np.isclose(single, batched, rtol=1e-6, atol=1e-9):
                raise ProgramError(
                    f"{what} of one env depends on the other envs in the batch: env {i} gets {single:.6g} when "
                    f"called alone and {batched:.6g} in a batch of {rows.shape[0]}. Reduce per env with axis=-1 "
                    "(np.sum(np.square(action), axis=-1)), never over the batch axis (np.sum(x), np.mean(x) "
                    "without an axis), and keep no state between calls."
                )


def _episodes(rows: np.ndarray) -> list[np.ndarray]:
    """Split sampled rows into episodes (the last column of a row is its step index, 1 at an episode's start)."""
    starts = [*list(np.flatnonzero(rows[:, -1] == 1)), rows.shape[0]]
    return [rows[a:b] for a, b in itertools.pairwise(starts) if b > a]


def dry_run_fitness(env: str, source: str, *, seed: int = 0) -> DryRunReport:
    """Load and exercise a fitness program on two sampled episodes (whole episodes, as in evaluation)."""
    spec = get_spec(env)
    program = load_program(source, "fitness")
    layout, rows = sample_rows(spec, seed=seed, count=240, episode_steps=120)
    episodes = _episodes(rows)[:2]
    report = DryRunReport("fitness", env, sum(len(ep) for ep in episodes))
    try:
        values = [call_fitness(program, build_state(layout, ep)) for ep in episodes]
    except ProgramError as e:
        raise _reject(program, e, "fitness") from None
    report.fitness_value = values[0]
    traj = build_state(layout, episodes[0])
    report.ms_per_call = {f"T={len(episodes[0])}": _time_call(lambda: program.fn(traj), repeats=5)}
    return report


def _stats(x: np.ndarray) -> dict[str, float]:
    return {"mean": float(np.mean(x)), "min": float(np.min(x)), "max": float(np.max(x))}
