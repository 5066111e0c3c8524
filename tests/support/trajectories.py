"""Recorded HalfCheetah episodes for the trajectory screen's tests, made cheaply: open-loop sine gaits (no training)
of which some run 5 to 20 m forward in 200 steps and some end up on the cheetah's back, written as a training writes
its final evaluation (``trajectories.npz``), with the forward distance as their fitness."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import envs
from envs.fitness import get_metric
from workers.engine.rollout import episode_fitness, rollout
from workers.engine.trajectories import write_trajectories
from workers.program.program import load_program

ENV = "HalfCheetah-v5"
RUNNERS = (23, 7, 18, 3)
"""Gaits (draws of ``gaits``) that run 5 to 20 m forward in 200 steps."""
FLIPPERS = (11, 0, 36)
"""Gaits that end up on the cheetah's back."""

SOUND = """import numpy as np


def compute_reward(state, action):
    forward = state.x_velocity
    ctrl = -0.1 * np.sum(action * action, axis=1)
    return forward + ctrl, {"forward": forward, "ctrl": ctrl}
"""
PAYS_FOR_FALLING = """import numpy as np


def compute_reward(state, action):
    flipped = 1.0 - state.upright
    return flipped, {"flipped": flipped}
"""
CONSTANT = """import numpy as np


def compute_reward(state, action):
    alive = np.ones_like(state.x_velocity)
    return alive, {"alive": alive}
"""


def gaits(chosen: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frequencies, phases and amplitudes of open-loop sine gaits: draws ``chosen`` of a fixed random sequence."""
    rng = np.random.default_rng(0)
    draws = [(rng.uniform(0.5, 4), rng.uniform(0, 2 * np.pi, 6), rng.uniform(0.3, 1.0)) for _ in range(40)]
    f, ph, amp = zip(*(draws[i] for i in chosen), strict=True)
    return np.array(f), np.array(ph), np.array(amp)


def record_gaits(path: Path) -> Path:
    """``path`` (a trajectories.npz) with 7 episodes of 200 steps: four runners, then three flippers."""
    spec = envs.get_spec(ENV)
    f, ph, amp = gaits(RUNNERS + FLIPPERS)
    step = [0]

    def policy(obs: np.ndarray) -> np.ndarray:
        step[0] += 1
        return amp[:, None] * np.sin(f[:, None] * step[0] * 0.1 * np.pi + ph)

    layout, episodes = rollout(spec, policy, [1] * len(f), max_steps=200)
    fitness = episode_fitness(load_program(get_metric("forward_distance").source, "fitness"), layout, episodes)
    write_trajectories(path, episodes, fitness)
    return path
