"""Dry runs: call a checked program on states sampled from the env before any training.

A reward program is called at N=1 and N=8 (shapes, finite values, stable component
names, components that add up, each env's reward independent of the rest of the batch),
on every sampled state, on states spread over whole episodes and on states carrying every
step index an episode reaches, and on batches that look like training's: real batches of
the training's N envs stepped together from reset, and batches of N envs all on the same
late step. Those calls are charged to the training's cost budget (``workers.engine.cost``),
at the training's N. A fitness program is called on sampled episodes and on full-length
episodes of distinct rows, a real one among them where the env allows, each charged to a
budget next to simulating its episode. Problems that would only show up hours into training
show up here; training re-checks the rest (``workers.engine.guard``).
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from envs import get_spec
from envs.capture import Layout, action_box
from envs.make import episode_limit, sample_rows
from envs.spec import EnvSpec
from envs.state import build_state
from workers.engine.batched import BatchedEnv
from workers.engine.cost import FITNESS_FLOOR_SECONDS, CostBudget
from workers.engine.guard import check_alone
from workers.program.policy import ProgramRejected, Violation
from workers.program.program import Program, ProgramError, call_fitness, call_reward, load_program

REAL_STEPS = 24
"""Steps of the real batch of the training's N envs, from reset (every call charged and timed)."""
LATE_BATCHES = 4
"""Batches of the training's N envs all on one late step (the last step among them)."""

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
    simulation_ms: float | None = None
    """Milliseconds one env step takes on this machine, state captured: what the cost of a call is measured against."""
    episode_steps: int | None = None
    """The step indices the program was called with went up to this (the longest episode of the training)."""
    fitness_value: float | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _reject(program: Program, e: ProgramError, kind: str) -> ProgramRejected:
    if e.line is None:  # a check of what the program returned: point at the entry function
        return ProgramRejected("dry run", [_at_entry(program, "dry run", str(e), kind)], kind)
    return ProgramRejected("dry run", [Violation("dry run", e.line, e.column or 1, str(e))], kind)


def _actions(spec: EnvSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    low, high = _env_facts(spec)[:2]
    actions = rng.uniform(low, high, size=(n, low.shape[0])).astype(np.float32)
    actions.flags.writeable = False  # as in training
    return actions


_FACTS: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}


def _env_facts(spec: EnvSpec) -> tuple[np.ndarray, np.ndarray, float]:
    """The action bounds of ``spec``, and the milliseconds one env step takes here (median of 50, state captured).

    Steps are timed in this thread's CPU time: 50 steps take a few milliseconds, which one moment of a busy machine
    could stretch tenfold in wall time, and the figure is kept for the process's life as every fitness's allowance.
    Kept per built-in env; a user robot may be registered again under its name with another model."""
    if spec.name not in _FACTS or spec.robot is not None:
        from envs.make import make_env

        env = make_env(spec)
        box = action_box(env)
        env.reset(seed=0)
        box.seed(0)
        times = []
        for _ in range(50):
            action = box.sample()
            t = time.thread_time()
            _, _, terminated, truncated, _ = env.step(action)
            times.append(time.thread_time() - t)
            if terminated or truncated:
                env.reset()
        _FACTS[spec.name] = (box.low.copy(), box.high.copy(), float(np.median(times)) * 1e3)
        env.close()
    return _FACTS[spec.name]


def _time_call(fn: Callable[[], object], repeats: int = 20, budget_seconds: float = 1.0) -> float:
    """Median milliseconds of ``fn()``; fewer repeats when calls are slow."""
    times: list[float] = []
    spent = 0.0
    while len(times) < repeats and (spent < budget_seconds or len(times) < 3):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        spent += times[-1]
    return float(np.median(times) * 1000.0)


def _whole_episode(
    layout: Layout, rows: np.ndarray, episode_steps: int, rng: np.random.Generator | None = None
) -> np.ndarray:
    """``rows`` repeated to ``episode_steps`` rows that carry the step indices 1 to ``episode_steps``, in order
    (or shuffled, given ``rng``).

    Random actions rarely keep a robot up for a whole episode, so sampled states stop early;
    these carry every step index an episode can reach, so that a program that changes late
    in an episode (NaN after step 150) shows it before training.
    """
    out = rows[np.arange(episode_steps) % len(rows)].copy()
    steps = np.arange(1, episode_steps + 1)
    out[:, layout.step_at] = steps if rng is None else rng.permutation(steps)
    return out


def dry_run_reward(
    env: str,
    source: str,
    *,
    seed: int = 0,
    episode_steps: int | None = None,
    cost_ratio: float | None = None,
    n_envs: int | None = None,
) -> DryRunReport:
    """Load and exercise a reward program; raises ``ProgramRejected`` with the first problem found.

    ``episode_steps``: the longest episode training will have (default: the env's own limit);
    ``cost_ratio``: reject a program whose calls cost more than this multiple of simulating
    the same batches (None: only warn); ``n_envs``: the training's batch size (default: the
    env's PPO default), at which batches like training's are made and timed.
    """
    spec = get_spec(env)
    program = load_program(source, "reward")
    steps = episode_steps or episode_limit(spec)
    n = n_envs or spec.ppo.n_envs
    layout, rows = sample_rows(spec, seed=seed)
    _, spread = sample_rows(spec, seed=seed + 1, count=64, episode_steps=steps, every=max(1, steps // 64))
    rng = np.random.default_rng(seed)
    swept = _whole_episode(layout, rows, steps, rng)
    actions = _actions(spec, max(rows.shape[0], steps, n), rng)
    report = DryRunReport("reward", env, rows.shape[0], episode_steps=steps)
    state1, state8 = build_state(layout, rows[:1]), build_state(layout, rows[:8])
    try:
        _, one, w1 = call_reward(program, state1, actions[:1])
        reward8, eight, w8 = call_reward(program, state8, actions[:8])
        if sorted(one) != sorted(eight):
            raise ProgramError(
                f"component names differ between calls: {sorted(one)} at N=1, {sorted(eight)} at N=8. "
                "Return the same components for every batch."
            )
        check_alone(program, state8, actions[:8], reward8, eight, range(8))
        reward, comps, wall = call_reward(program, build_state(layout, rows), actions[: rows.shape[0]])
        late = [call_reward(program, build_state(layout, r), actions[: len(r)]) for r in (spread, swept)]
        for names in [comps, *(c for _, c, _ in late)]:
            if sorted(names) != sorted(eight):
                raise ProgramError(f"component names change with the state: {sorted(eight)} vs {sorted(names)}.")
        latest = int(np.argmax(swept[:, layout.step_at]))
        alone = {latest, *(int(i) for i in rng.choice(steps, size=min(3, steps), replace=False))}
        check_alone(program, build_state(layout, swept), actions[:steps], *late[1][:2], sorted(alone))
        pool = np.concatenate([rows, spread])
        report.ms_per_call[f"N={n}"] = _training_batches(spec, program, n, steps, cost_ratio, sorted(eight), pool)
    except ProgramError as e:
        raise _reject(program, e, "reward") from None
    except _OverBudget as e:
        raise ProgramRejected("dry run", [_at_entry(program, "cost", str(e), "reward")], "reward") from None
    report.warnings.extend(dict.fromkeys(w1 + w8 + wall + late[0][2] + late[1][2]))
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
    report.simulation_ms = _env_facts(spec)[2]
    report.ms_per_call = {
        "N=1": _time_call(lambda: program.fn(state1, actions[:1])),
        "N=8": _time_call(lambda: program.fn(state8, actions[:8])),
        **report.ms_per_call,
    }
    if report.ms_per_call["N=8"] > 5.0:
        report.warnings.append(
            f"one call takes {report.ms_per_call['N=8']:.1f} ms at N=8, slower than the simulation; "
            "avoid Python loops over the batch"
        )
    return report


class _OverBudget(Exception):
    """A program over its cost budget in the dry run (a ``ProgramError`` from ``CostBudget``, kept apart so that
    it is reported under the rule 'cost')."""


def _training_batches(
    spec: EnvSpec, program: Program, n: int, steps: int, cost_ratio: float | None, names: list[str], pool: np.ndarray
) -> float:
    """Call ``program`` on batches like training's; returns the median milliseconds of a call at N=``n``.

    First a real batch of ``n`` envs stepped together from reset for ``REAL_STEPS`` steps (seeds and
    the envs compared alone drawn from the operating system's entropy), every call charged to the
    budget at this N; then ``LATE_BATCHES`` batches of ``n`` distinct sampled states all on one late
    step. Raises ``ProgramError`` (a broken call) or ``_OverBudget``.
    """
    draw = np.random.default_rng(secrets.randbits(128))
    env = BatchedEnv(
        spec, [int(s) for s in draw.integers(2**31, size=n)], max_episode_steps=steps, needs=program.attributes
    )
    budget = CostBudget("compute_reward", ratio=cost_ratio or np.inf)
    real = min(REAL_STEPS, steps)
    compared = {0, *(int(t) for t in draw.choice(real, size=min(2, real), replace=False))}
    times: list[float] = []
    env.reset()
    for t in range(real):
        action = draw.uniform(env.action_low, env.action_high, size=(n, env.act_dim)).astype(np.float32)
        action.flags.writeable = False  # as in training
        started = time.perf_counter()
        env.step(action)
        stepped = time.perf_counter()
        state = build_state(env.layout, env.rows)
        reward, comps, _ = call_reward(program, state, action)
        times.append(time.perf_counter() - stepped)
        try:
            budget.charge(times[-1], stepped - started, f"{n} envs")
        except ProgramError as e:
            raise _OverBudget(f"{e} (at the training's N, on a batch stepped from reset)") from None
        if sorted(comps) != names:
            raise ProgramError(f"component names change in a batch of {n}: {names} vs {sorted(comps)}.")
        if t in compared:
            check_alone(program, state, action, reward, comps, [int(i) for i in draw.choice(n, min(2, n), False)])
    layout = env.layout
    late = [steps, *(int(s) for s in draw.integers(real + 1, steps + 1, size=LATE_BATCHES - 1))] if steps > real else []
    for step in late:
        batch = pool[draw.choice(len(pool), size=n, replace=n > len(pool))]
        batch[:, layout.step_at] = step
        action = draw.uniform(env.action_low, env.action_high, size=(n, env.act_dim)).astype(np.float32)
        action.flags.writeable = False
        state = build_state(layout, batch)
        reward, comps, _ = call_reward(program, state, action)
        if sorted(comps) != names:
            raise ProgramError(f"component names change in a batch of {n} at step {step}: {names} vs {sorted(comps)}.")
        check_alone(program, state, action, reward, comps, [int(i) for i in draw.choice(n, min(2, n), False)])
    return float(np.median(times) * 1000.0)


def _at_entry(program: Program, rule: str, message: str, kind: str) -> Violation:
    """A violation located at the entry function (for findings about the program as a whole)."""
    code = getattr(program.fn, "__code__", None)
    line = code.co_firstlineno if code is not None and code.co_filename == f"<{kind}>" else 0
    return Violation(rule, line, 1, message)


def _episodes(rows: np.ndarray) -> list[np.ndarray]:
    """Split sampled rows into episodes (the last column of a row is its step index, 1 at an episode's start)."""
    starts = [*list(np.flatnonzero(rows[:, -1] == 1)), rows.shape[0]]
    return [rows[a:b] for a, b in itertools.pairwise(starts) if b > a]


def dry_run_fitness(
    env: str, source: str, *, seed: int = 0, episode_steps: int | None = None, cost_ratio: float | None = None
) -> DryRunReport:
    """Load and exercise a fitness program on two sampled episodes (whole episodes, as in evaluation), and on one
    as long as evaluation's (``episode_steps``, default the env's limit), of distinct states (``_full_length``).

    Each call is charged to a budget of ``cost_ratio`` times simulating its episode (None: not enforced).
    """
    spec = get_spec(env)
    program = load_program(source, "fitness")
    layout, rows = sample_rows(spec, seed=seed, count=240, episode_steps=120)
    episodes = _episodes(rows)[:2]
    steps = episode_steps or episode_limit(spec)
    report = DryRunReport("fitness", env, sum(len(ep) for ep in episodes), episode_steps=steps)
    budget = CostBudget("compute_fitness", ratio=cost_ratio or np.inf, floor_seconds=FITNESS_FLOOR_SECONDS)
    step_seconds = _env_facts(spec)[2] / 1000.0
    try:
        values = [_charged(program, build_state(layout, ep), budget, step_seconds) for ep in episodes]
        for ep in _full_length(spec, layout, steps):
            _charged(program, build_state(layout, ep), budget, step_seconds)
    except ProgramError as e:
        raise _reject(program, e, "fitness") from None
    except _OverBudget as e:
        raise ProgramRejected("dry run", [_at_entry(program, "cost", str(e), "fitness")], "fitness") from None
    report.fitness_value = values[0]
    traj = build_state(layout, episodes[0])
    report.ms_per_call = {f"T={len(episodes[0])}": _time_call(lambda: program.fn(traj), repeats=5)}
    return report


def _charged(program: Program, traj: object, budget: CostBudget, step_seconds: float) -> float:
    """``call_fitness`` timed and charged to ``budget`` against simulating the episode's steps. Both in this thread's
    CPU time, as ``_env_facts`` measured the steps: a busy moment of the machine stretches neither."""
    started = time.thread_time()
    value = call_fitness(program, traj)
    steps = len(traj.step)  # type: ignore[attr-defined]
    try:
        budget.charge(time.thread_time() - started, steps * step_seconds, f"{steps:,}-step episodes")
    except ProgramError as e:
        raise _OverBudget(str(e)) from None
    return value


def _full_length(spec: EnvSpec, layout: Layout, steps: int) -> list[np.ndarray]:
    """An episode as long as evaluation's (``steps``) of distinct states under random actions, from a seed the
    program cannot know: one real episode where the env does not end it early (HalfCheetah), otherwise real
    episodes one after another, carrying the step indices 1 to ``steps``."""
    _, rows = sample_rows(spec, seed=secrets.randbits(31), count=steps, episode_steps=steps)
    rows[:, layout.step_at] = np.arange(1, steps + 1)
    return [rows]


def _stats(x: np.ndarray) -> dict[str, float]:
    return {"mean": float(np.mean(x)), "min": float(np.min(x)), "max": float(np.max(x))}
