"""The batched engine is Gymnasium v5: same initial state and actions -> same observations, rewards, ends, rows."""

from __future__ import annotations

import numpy as np
import pytest

from envs import get_spec, names
from envs.make import make_env
from envs.state import build_state
from workers.engine.batched import BatchedEnv

STEPS = 1_200
N = 3


def _actions(rng: np.random.Generator, n: int, dim: int, step: int) -> np.ndarray:
    """Random actions, with bursts of large ones so that robots fall (terminations) as well as walk."""
    scale = 1.0 if (step // 50) % 2 else 0.3
    return (scale * rng.uniform(-1.0, 1.0, size=(n, dim))).astype(np.float32)


@pytest.mark.parametrize("env", names())
def test_batched_env_equals_gymnasium(env: str) -> None:
    spec = get_spec(env)
    seeds = [11 + i for i in range(N)]
    limit = 50  # several episodes per env within the run: time limits and auto-resets
    batched = BatchedEnv(spec, seeds, threads=2, max_episode_steps=limit)
    gyms = [make_env(spec, max_episode_steps=limit) for _ in seeds]
    obs = batched.reset()
    ref = np.stack([g.reset(seed=s)[0] for g, s in zip(gyms, seeds, strict=True)])
    np.testing.assert_allclose(obs, ref, rtol=0, atol=1e-8)
    rng = np.random.default_rng(0)
    ended = {"terminated": 0, "truncated": 0}
    lay = batched.layout
    feet = slice(lay.feet_at, lay.step_at)
    feet_agree: list[bool] = []
    forces_agree: list[bool] = []
    contact_forces = batched.dynamics.contact_forces
    nbody = batched.sim.model.nbody
    exact = np.arange(obs.shape[1]) < obs.shape[1] - (6 * (nbody - 1) if contact_forces else 0)

    def without_feet(row: np.ndarray) -> np.ndarray:  # and without contact forces (see below)
        return np.delete(row, np.arange(lay.forces_at, lay.step_at))

    for step in range(STEPS):
        actions = _actions(rng, N, batched.act_dim, step)
        t = batched.step(actions)
        for i, g in enumerate(gyms):
            o, r, term, trunc, _ = g.step(actions[i])
            where = f"{env} env {i} step {step}"
            np.testing.assert_allclose(t.final_obs[i, exact], o[exact], rtol=0, atol=1e-8, err_msg=where)
            forces_agree.append(np.allclose(t.final_obs[i], o, rtol=0, atol=1e-8) and abs(t.env_reward[i] - r) <= 1e-8)
            if not contact_forces:
                assert abs(t.env_reward[i] - r) <= 1e-8, where
            assert bool(t.terminated[i]) == term and bool(t.truncated[i]) == (trunc and not term), where
            np.testing.assert_allclose(without_feet(batched.rows[i]), without_feet(g.row), atol=1e-8, err_msg=where)
            feet_agree.append(np.array_equal(batched.rows[i, feet], g.row[feet]))
            if term or trunc:
                ended["terminated" if term else "truncated"] += 1
                o, _ = g.reset()
            np.testing.assert_allclose(t.obs[i, exact], o[exact], rtol=0, atol=1e-8, err_msg=where)
    assert ended["truncated"] > 0
    # Feet contacts come from MuJoCo's contact sensor, evaluated in the step's last forward pass; MuJoCo 4's
    # mj_step leaves in MjData.contact (which Gymnasium's side reads) the contacts of a later collision pass, so
    # the two disagree on the substep where a contact starts or ends.
    # Known gap: Ant and Humanoid observe the contact forces (cfrc_ext), which the engine computes in the step's
    # last forward pass and Gymnasium by mj_rnePostConstraint after mj_step. Under MuJoCo 4 that call pairs the
    # later contact list with the forward pass's constraint forces (a step that ends with no contact listed
    # gets no contact force, though the pass that moved the robot had some), so the two differ on many steps
    # with contacts; positions, velocities, terminations and every other observation stay exact.
    assert np.mean(feet_agree) >= (0.75 if contact_forces else 0.95), f"feet agree on {np.mean(feet_agree):.1%}"
    if not contact_forces:
        assert np.mean(forces_agree) == 1.0
    print(f"{env}: feet agree {np.mean(feet_agree):.1%}, obs+reward agree {np.mean(forces_agree):.1%}")
    if spec.termination.startswith("The episode ends"):
        assert ended["terminated"] > 0, f"{env}: no episode terminated; the test would not cover terminations"


def test_state_view_from_the_batch_equals_the_single_env_view() -> None:
    spec = get_spec("Ant-v5")
    batched = BatchedEnv(spec, [3, 4])
    single = make_env(spec)
    batched.reset()
    single.reset(seed=3)
    rng = np.random.default_rng(1)
    for _ in range(40):
        a = rng.uniform(-1, 1, size=(2, batched.act_dim)).astype(np.float32)
        batched.step(a)
        single.step(a[0])
    ours, theirs = build_state(batched.layout, batched.rows[:1]), build_state(single.layout, single.row[None])
    for name in ("x_velocity", "upright", "angular_velocity", "contact_forces", "joint_positions", "body_positions"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=0, atol=1e-8, err_msg=name)
