"""Deterministic evaluation episodes: trajectories for fitness and for trajectory analysis."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from envs.capture import Layout
from envs.spec import EnvSpec
from envs.state import State, build_state
from workers.engine.batched import BatchedEnv
from workers.engine.cost import CostBudget
from workers.program.program import Program, call_fitness, call_reward

EVAL_SEED_BASE = 1_000_003
"""Evaluation seeds start here, far from the training seeds (seed + env index)."""


def eval_seeds(seed: int, count: int) -> list[int]:
    return [EVAL_SEED_BASE + 1000 * seed + i for i in range(count)]


@dataclass
class Episode:
    """One evaluation episode: raw rows (T, D), how it ended, the env's own return."""

    seed: int
    rows: np.ndarray
    actions: np.ndarray
    terminated: bool
    env_return: float
    seconds: float = 0.0
    """Its share of the rollout's wall time (simulation and policy): what a fitness call on it is measured against."""

    def state(self, layout: Layout) -> State:
        return build_state(layout, self.rows)


Policy = Callable[[np.ndarray], np.ndarray]


def rollout(
    spec: EnvSpec, policy: Policy, seeds: list[int], *, max_steps: int | None = None, threads: int = 1
) -> tuple[Layout, list[Episode]]:
    """Run one episode per seed, all in one batch (env i reset with seeds[i]), so the policy sees one batch per step."""
    env = BatchedEnv(spec, seeds, threads=threads, max_episode_steps=max_steps, auto_reset=False)
    m = len(seeds)
    started = time.perf_counter()
    obs = env.reset()
    rows: list[np.ndarray] = []
    acts: list[np.ndarray] = []
    returns = np.zeros(m)
    length = np.zeros(m, dtype=np.int64)
    terminated = np.zeros(m, dtype=bool)
    alive = np.ones(m, dtype=bool)
    while alive.any():
        actions = np.clip(policy(obs), env.action_low, env.action_high).astype(np.float32)
        actions[~alive] = 0.0  # ended episodes are stepped on, unrecorded, until the last one ends
        t = env.step(actions)
        rows.append(env.rows.copy())
        acts.append(actions)
        returns += np.where(alive, t.env_reward, 0.0)
        length += alive
        terminated |= alive & t.terminated
        alive &= ~t.done
        obs = t.obs
    all_rows, all_acts = np.stack(rows), np.stack(acts)
    share = (time.perf_counter() - started) / max(1, int(length.sum()))
    episodes = [
        Episode(s, all_rows[: length[i], i], all_acts[: length[i], i], bool(terminated[i]), float(returns[i]))
        for i, s in enumerate(seeds)
    ]
    for ep in episodes:
        ep.seconds = share * len(ep.rows)
    return env.layout, episodes


def episode_fitness(
    program: Program, layout: Layout, episodes: list[Episode], budget: CostBudget | None = None
) -> list[float]:
    """The fitness of each episode; each call is charged to ``budget`` (if given) against the episode's own
    ``seconds``, so that a fitness program slow on real evaluation episodes fails with the figures."""
    values = []
    for ep in episodes:
        started = time.perf_counter()
        values.append(call_fitness(program, ep.state(layout)))
        if budget is not None:
            budget.charge(time.perf_counter() - started, ep.seconds, f"{len(ep.rows):,}-step episodes")
    return values


def analyse_episode(layout: Layout, ep: Episode, reward: Program | None = None) -> dict:
    """What the robot actually did in one episode, in numbers (for reflection and review)."""
    s = ep.state(layout)
    t = len(ep.rows)
    summary = {
        "seed": ep.seed,
        "steps": t,
        "ended": "terminated (unhealthy)" if ep.terminated else "time limit",
        "env_return": ep.env_return,
        "distance_x": float(np.sum(s.x_velocity) * s.dt),
        "distance_y": float(np.sum(s.y_velocity) * s.dt),
        "mean_x_velocity": float(np.mean(s.x_velocity)),
        "height": {
            "min": float(np.min(s.z_position)),
            "mean": float(np.mean(s.z_position)),
            "max": float(np.max(s.z_position)),
        },
        "upright_mean": float(np.mean(s.upright)),
        "upside_down_fraction": float(np.mean(s.upright < 0.0)),
        "pitch_turns": float(np.sum(s.angular_velocity[:, 1]) * s.dt / (2 * np.pi)),
        "healthy_fraction": float(np.mean(s.is_healthy)),
        "action_magnitude": float(np.mean(np.abs(ep.actions))),
    }
    if s.has("feet_contact"):
        summary["feet_contact_fraction"] = dict(
            zip(s.feet_names, np.mean(s.feet_contact, axis=0).round(3).tolist(), strict=False)
        )
    if ep.terminated:
        last = build_state(layout, ep.rows[-1:])
        summary["at_end"] = {
            "z_position": float(last.z_position[0]),
            "pitch": float(last.pitch[0]),
            "upright": float(last.upright[0]),
        }
    if reward is not None:
        actions = ep.actions.copy()
        actions.flags.writeable = False  # as in training
        r, comps, _ = call_reward(reward, s, actions)
        summary["reward_return"] = float(np.sum(r))
        summary["component_returns"] = {k: float(np.sum(v)) for k, v in comps.items()}
    return summary
