"""Built-in fitness metrics: fitness programs under the contract that measure what their names say."""

from __future__ import annotations

import math

import numpy as np
import pytest

import envs
from envs.fitness import METRICS, get_metric, metrics_for
from envs.make import make_env
from envs.state import State, build_state
from workers.engine.dryrun import dry_run_fitness, dry_run_reward
from workers.program.policy import check_source
from workers.program.program import call_fitness, load_program


def _episode(name: str, *, seed: int, max_steps: int | None):
    spec = envs.get_spec(name)
    env = make_env(spec, max_episode_steps=max_steps)
    _, reset_info = env.reset(seed=seed)
    env.action_space.seed(seed)
    rows, infos = [], []
    terminated = truncated = False
    while not (terminated or truncated):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        rows.append(env.row.copy())
        infos.append(info)
    layout = env.layout
    env.close()
    return build_state(layout, np.stack(rows)), reset_info, infos, terminated


def _fitness(name: str, traj) -> float:
    return call_fitness(load_program(get_metric(name).source, "fitness"), traj)


def _env_for(metric: str, preferred: str) -> str:
    """``preferred`` when the metric applies to it, else the first env it applies to."""
    fits = [n for n in envs.names() if METRICS[metric].applies_to(envs.get_spec(n))]
    return preferred if preferred in fits else fits[0]


@pytest.mark.parametrize("metric", list(METRICS))
def test_every_built_in_metric_is_a_fitness_program_that_passes_the_dry_run(metric: str) -> None:
    source = get_metric(metric).source
    check_source(source, "fitness")
    report = dry_run_fitness(_env_for(metric, "Hopper-v5"), source)
    assert report.kind == "fitness" and math.isfinite(report.fitness_value)


@pytest.mark.parametrize("metric", [m for m in METRICS if METRICS[m].sparse_reward])
def test_the_sparse_baseline_of_a_metric_is_a_sound_reward_program(metric: str) -> None:
    report = dry_run_reward(_env_for(metric, "HalfCheetah-v5"), METRICS[metric].sparse_reward)
    assert report.components == ["fitness"]


@pytest.mark.parametrize("name", envs.names())
def test_every_env_has_its_reference_and_default_metrics_among_those_that_apply(name: str) -> None:
    spec = envs.get_spec(name)
    applicable = {m.name for m in metrics_for(spec)}
    assert spec.default_fitness in applicable and set(spec.reference_fitness) <= applicable
    assert ("reach" in applicable) == (name == "Reacher-v5") and ("push" in applicable) == (name == "Pusher-v5")


@pytest.mark.parametrize(
    ("env", "metric", "info_key"), [("Reacher-v5", "reach", "reward_dist"), ("Pusher-v5", "push", "reward_dist")]
)
def test_reach_and_push_are_the_final_distance_gymnasium_reports(env: str, metric: str, info_key: str) -> None:
    traj, _, infos, _ = _episode(env, seed=5, max_steps=None)  # the env's own limit
    assert len(infos) == {"Reacher-v5": 50, "Pusher-v5": 100}[env]  # whole episodes: neither ends early
    # Gymnasium's reward_dist is minus the distance at each step (weight 1): the last one is the metric
    assert _fitness(metric, traj) == pytest.approx(infos[-1][info_key], abs=1e-12)
    assert _fitness(metric, traj) < -0.01


def test_upright_seconds_counts_the_time_the_pole_stays_up() -> None:
    traj, _, infos, terminated = _episode("InvertedPendulum-v5", seed=2, max_steps=1000)
    assert terminated and 1 < len(infos) < 1000  # random pushes topple the pole
    assert _fitness("upright_seconds", traj) == pytest.approx((len(infos) - 1) * traj.dt)
    assert _fitness("survival_steps", traj) == len(infos)


def test_mean_height_is_the_mean_torso_height() -> None:
    traj, _, _, _ = _episode("HumanoidStandup-v5", seed=0, max_steps=20)
    assert _fitness("mean_height", traj) == pytest.approx(float(np.mean(traj.z_position)))
    assert 0.0 < _fitness("mean_height", traj) < 0.3  # it starts lying down


def test_distance_metrics_measure_the_envs_own_displacement() -> None:
    traj, reset_info, infos, _ = _episode("HalfCheetah-v5", seed=4, max_steps=200)
    moved = infos[-1]["x_position"] - reset_info["x_position"]
    assert abs(moved) > 0.01
    assert _fitness("forward_distance", traj) == pytest.approx(moved, abs=1e-9)
    assert _fitness("backward_distance", traj) == pytest.approx(-moved, abs=1e-9)
    assert _fitness("mean_x_velocity", traj) == pytest.approx(moved / (200 * traj.dt), abs=1e-9)


def test_survival_steps_counts_the_steps_before_an_early_end() -> None:
    traj, _, infos, terminated = _episode("Hopper-v5", seed=0, max_steps=1000)
    assert terminated and len(infos) < 1000  # random actions topple the hopper
    assert _fitness("survival_steps", traj) == len(infos)


def test_max_height_is_the_highest_torso_point() -> None:
    traj, _, _, _ = _episode("Walker2d-v5", seed=1, max_steps=100)
    assert _fitness("max_height", traj) == pytest.approx(float(np.max(traj.z_position)))
    assert 0.8 < _fitness("max_height", traj) < 2.0


@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_one_full_turn_about_the_pitch_axis_is_one_flip_either_way(direction: float) -> None:
    t, dt = 100, 0.01
    spin = np.zeros((t, 3))
    spin[:, 1] = direction * 2 * np.pi / (t * dt)  # one turn over the episode
    traj = State({"angular_velocity": spin, "dt": dt, "step": np.arange(1, t + 1)})
    assert _fitness("flips", traj) == pytest.approx(1.0)
    spin[: t // 2, 1] *= -1.0  # half a turn forwards, then back: no net flip
    traj = State({"angular_velocity": spin, "dt": dt, "step": np.arange(1, t + 1)})  # a state holds its own copy
    assert _fitness("flips", traj) == pytest.approx(0.0, abs=1e-12)
