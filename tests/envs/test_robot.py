"""A user's robot from its MJCF: the env derived from the model, its state view, settings, and the batched engine.

These register robots in this process by compiling them (``description=None``), as a sandboxed
child does; tests/workers/engine/test_robot.py goes through the sandbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import envs
from envs.describe import describe
from envs.make import make_env
from envs.robot_data import RobotDescription
from envs.state import build_state
from envs.upload import RobotRefused
from workers.engine.batched import BatchedEnv
from workers.engine.dryrun import dry_run_reward
from workers.program.program import call_reward, load_program

ROBOTS = Path(__file__).resolve().parents[1] / "fixtures" / "robots"
QUADRUPED = {"quadruped.xml": (ROBOTS / "quadruped.xml").read_bytes()}
ARM = {"arm.xml": (ROBOTS / "arm.xml").read_bytes()}
LEGS = ("front_left", "front_right", "back_left", "back_right")


@pytest.fixture(scope="module")
def quadruped() -> Iterator[envs.EnvSpec]:
    yield envs.register_user_env("test_quadruped", QUADRUPED, {"termination": "height", "min_height": 0.22})
    envs.unregister_user_env("test_quadruped")


def test_the_env_is_derived_from_the_model(quadruped: envs.EnvSpec) -> None:
    assert envs.get_spec("test_quadruped") is quadruped and quadruped.gym_id == "rewardsmith/test_quadruped"
    d = quadruped.robot.description
    assert d.free and d.root_body == "torso" and quadruped.torso == "torso" and quadruped.root == "free_joint"
    assert [a.joint for a in d.actuators] == [f"{leg}_{j}" for leg in LEGS for j in ("hip", "knee")]
    assert [label for label, _ in quadruped.feet] == [f"{leg}_foot" for leg in LEGS]
    assert quadruped.floor == "ground" and len(quadruped.bodies) == 13
    settings = quadruped.robot.settings
    assert settings.frame_skip == 10 and settings.episode_steps == 1000 and settings.reset_noise == 0.1
    assert d.checks["realtime_factor"] >= 1.0 and d.checks["stability_steps"] == 1000
    text = describe(quadruped)
    assert "Control step dt = 0.05 s; episodes last at most 1000 steps." in text
    assert "Settings: frame_skip 10, episode_steps 1000, reset_noise 0.1, termination height." in text
    assert "falls below 0.22 m" in text and "- front_left_foot: a foot" in text


def test_the_state_view_has_root_joints_feet_bodies_forces_and_centre_of_mass(quadruped: envs.EnvSpec) -> None:
    env = make_env(quadruped, max_episode_steps=40)
    env.reset(seed=1)
    env.action_space.seed(1)
    rows = []
    for _ in range(40):
        env.step(env.action_space.sample())
        rows.append(env.row.copy())
    data = env.unwrapped.data
    state = build_state(env.layout, np.stack(rows))
    for field in quadruped.fields():
        assert state.has(field.name), field.name
    np.testing.assert_array_equal(state.z_position[-1], data.qpos[2])  # the root is its free joint
    np.testing.assert_array_equal(state.joint_positions[-1], data.qpos[7:])  # actuator order is qpos order here
    assert state.body_names[0] == "torso" and state.contact_forces.shape == (40, 13, 6)
    assert state.feet_contact.shape == (40, 4) and state.feet_contact.any()
    assert state.com_position.shape == (40, 3) and np.isfinite(state.com_x_velocity).all()
    moved = np.sum(state.x_velocity[1:]) * state.dt  # velocities are means over each step
    assert moved == pytest.approx(state.x_position[-1] - state.x_position[0], abs=1e-12)
    # the observation: joint positions without the root's x and y, then velocities; the action: control ranges
    obs, _, _, _, _ = env.step(np.zeros(8, dtype=np.float32))
    np.testing.assert_array_equal(obs, np.concatenate([data.qpos[2:], data.qvel]))
    assert env.action_space.shape == (8,) and env.action_space.low.tolist() == [-1.0] * 8
    env.close()


def test_a_reward_written_for_a_built_in_env_runs_unchanged_on_a_user_robot(quadruped: envs.EnvSpec) -> None:
    for built_in in ("HalfCheetah-v5", "Ant-v5"):  # common fields; Ant's contact forces and health too
        report = dry_run_reward("test_quadruped", envs.get_spec(built_in).reference_reward)
        assert "forward" in report.components and "ctrl_cost" in report.components, built_in
    by_name = (
        "import numpy as np\n\n\ndef compute_reward(state, action):\n"
        '    foot = state.body_positions[:, state.body_names.index("front_left_foot")]\n'
        "    lift = foot[:, 2]\n"
        '    return lift, {"lift": lift}\n'
    )
    assert dry_run_reward("test_quadruped", by_name).components == ["lift"]


def test_the_generic_reference_reward_is_the_engines_env_reward(quadruped: envs.EnvSpec) -> None:
    program = load_program(quadruped.reference_reward)
    engine = BatchedEnv(quadruped, [5, 6, 7, 8], max_episode_steps=60, needs=program.attributes)
    engine.reset()
    rng = np.random.default_rng(3)
    ended = 0
    for _ in range(200):
        actions = rng.uniform(-1, 1, size=(4, 8)).astype(np.float32)
        t = engine.step(actions)
        reward, components, _ = call_reward(program, build_state(engine.layout, engine.rows), actions)
        np.testing.assert_allclose(reward, t.env_reward, rtol=0, atol=1e-9)
        ended += int(t.terminated.sum())
    assert ended > 0 and set(components) == {"forward", "healthy", "ctrl_cost"}


def test_the_batched_engine_equals_the_robots_gymnasium_env(quadruped: envs.EnvSpec) -> None:
    seeds = [21, 22, 23]
    engine = BatchedEnv(quadruped, seeds, threads=2, max_episode_steps=30)
    gyms = [make_env(quadruped, max_episode_steps=30) for _ in seeds]
    np.testing.assert_array_equal(
        engine.reset(), np.stack([g.reset(seed=s)[0] for g, s in zip(gyms, seeds, strict=True)])
    )
    rng = np.random.default_rng(0)
    ended = {"terminated": 0, "truncated": 0}
    for step in range(300):
        scale = 1.0 if (step // 60) % 2 else 0.1  # gentle spells reach the time limit, wild ones fall
        actions = (scale * rng.uniform(-1, 1, size=(3, 8))).astype(np.float32)
        t = engine.step(actions)
        for i, g in enumerate(gyms):
            o, r, term, trunc, _ = g.step(actions[i])
            where = f"env {i} step {step}"
            np.testing.assert_allclose(t.final_obs[i], o, rtol=0, atol=1e-8, err_msg=where)
            assert abs(t.env_reward[i] - r) <= 1e-8 and bool(t.terminated[i]) == term, where
            keep = np.r_[0 : engine.layout.forces_at, engine.layout.step_at]  # not contact forces, feet
            np.testing.assert_allclose(engine.rows[i, keep], g.row[keep], atol=1e-8, err_msg=where)
            if term or trunc:
                ended["terminated" if term else "truncated"] += 1
                o, _ = g.reset()
            np.testing.assert_allclose(t.obs[i], o, rtol=0, atol=1e-8, err_msg=where)
    assert ended["terminated"] > 0 and ended["truncated"] > 0


def test_a_fixed_base_arm_has_its_base_as_root_and_its_target_as_passive_joints() -> None:
    spec = envs.register_user_env("test_arm", ARM)
    try:
        assert spec.torso == "base" and spec.root == "body" and not spec.robot.description.free
        assert [n for n, _ in spec.passive_joints] == ["target_x", "target_y"] and spec.feet == ()
        assert "no task of its own" in spec.reference_reward and "x_velocity" not in spec.reference_reward
        report = dry_run_reward("test_arm", spec.reference_reward)
        assert report.components == ["ctrl_cost"] and report.warnings == []
        with pytest.raises(RobotRefused, match="needs a free-floating root"):
            envs.register_user_env("test_arm2", ARM, {"termination": "upright"})
    finally:
        envs.unregister_user_env("test_arm")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"frame_skip": 0}, "frame_skip must be between 1 and 1,000"),
        ({"episode_steps": "long"}, "episode_steps must be a whole number"),
        ({"reset_noise": float("nan")}, "reset_noise must be a finite number"),
        ({"termination": "sometimes"}, "termination must be one of none, height, upright"),
        ({"min_height": 0.5, "max_height": 0.2}, "min_height (0.5) must be below max_height (0.2)"),
        ({"speed": 3}, "unknown robot settings ['speed']"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(settings: dict, message: str) -> None:
    with pytest.raises(RobotRefused) as info:
        envs.register_user_env("test_bad", QUADRUPED, settings)
    assert message in str(info.value)
    assert "test_bad" not in envs.user_names()


@pytest.mark.parametrize("name", ["Ant-v5", "1robot", "a/b", "x" * 49, ""])
def test_a_robot_cannot_take_a_built_in_or_odd_name(name: str) -> None:
    with pytest.raises(RobotRefused, match="is not accepted"):
        envs.register_user_env(name, QUADRUPED)


def test_registering_with_a_stored_description_compiles_nothing(quadruped: envs.EnvSpec) -> None:
    description = quadruped.robot.description.to_json()
    settings = quadruped.robot.settings.to_dict()
    # the trusted side never reads the files: a model MuJoCo could not even parse registers from its description
    spec = envs.register_user_env("test_stored", {"robot.xml": b"<not xml"}, settings, description=description)
    try:
        assert describe(spec).startswith("# test_stored") and spec.robot.description == quadruped.robot.description
        payload = envs.user_env_payload("test_stored")
        assert payload is not None and payload["files"] == {"robot.xml": "PG5vdCB4bWw="}
        assert envs.rebuild_user_env(payload).robot == spec.robot
        assert envs.user_env_payload("Ant-v5") is None
    finally:
        envs.unregister_user_env("test_stored")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"nq": 10**9}, "nq must be between 1 and 1,000"),
        ({"root_qpos": [0, 1]}, "root_qpos must hold the 7 addresses"),
        ({"bodies": [["torso\n", "x"]]}, "must be a printable name"),
        ({"actuators": []}, "the robot has no actuators"),
        ({"checks": {"x": "1"}}, "check x must be a finite number"),
        ({"timestep": True}, "timestep must be a finite number"),
    ],
)
def test_a_description_from_the_sandbox_is_read_back_strictly(
    quadruped: envs.EnvSpec, change: dict, message: str
) -> None:
    with pytest.raises(RobotRefused) as info:
        RobotDescription.from_json({**quadruped.robot.description.to_json(), **change})
    assert message in str(info.value)
