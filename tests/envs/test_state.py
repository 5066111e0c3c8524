"""The state view: the documented fields with the documented shapes, and values that agree with the env."""

from __future__ import annotations

import numpy as np
import pytest

import envs
from envs.make import make_env
from envs.state import build_state

ALL = envs.names()
PLANAR = ["HalfCheetah-v5", "Hopper-v5", "Walker2d-v5"]
ROOT_FROM_QPOS = ["Swimmer-v5", "HumanoidStandup-v5"]
"""Their torso position is the root joints' qpos, as Gymnasium reports x_position."""
LOCOMOTION = [*PLANAR, "Ant-v5", "Humanoid-v5", *ROOT_FROM_QPOS]


def _parallel_state(name: str, n: int, steps: int = 5):
    """The state of ``n`` envs stepping side by side, each writing its row into one shared buffer (as in training)."""
    spec = envs.get_spec(name)
    probe = make_env(spec)
    buffer = np.zeros((n, probe.layout.size))
    probe.close()
    batch = [make_env(spec, row=buffer[i]) for i in range(n)]
    for i, env in enumerate(batch):
        env.reset(seed=i)
        env.action_space.seed(i)
    for _ in range(steps):
        for env in batch:
            env.step(env.action_space.sample())
    layout = batch[0].layout
    for env in batch:
        env.close()
    return spec, build_state(layout, buffer)


def _expected_shape(text: str, state, n: int) -> tuple[int, ...]:
    sizes = {"N": n, "J": len(state.joint_names), "B": len(state.body_names)}
    if "site_names" in state.field_names():
        sizes["S"] = len(state.site_names)
    if "passive_joint_names" in state.field_names():
        sizes["P"] = len(state.passive_joint_names)
    if "feet_names" in state.field_names():
        sizes["F"] = len(state.feet_names)
    if "contact_body_names" in state.field_names():
        sizes["C"] = len(state.contact_body_names)
    return tuple(sizes[p] if p in sizes else int(p) for p in text.strip("()").replace(" ", "").split(",") if p)


def _episode(name: str, *, seed: int, max_steps: int = 150):
    """One episode under random actions: the state of every step (leading axis T) and Gymnasium's infos."""
    spec = envs.get_spec(name)
    env = make_env(spec, max_episode_steps=max_steps)
    _, reset_info = env.reset(seed=seed)
    env.action_space.seed(seed)
    rows, infos = [], []
    while True:
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        rows.append(env.row.copy())
        infos.append(info)
        if terminated or truncated:
            break
    layout = env.layout
    env.close()
    return build_state(layout, np.stack(rows)), reset_info, infos


@pytest.mark.parametrize("n", [1, 8])
@pytest.mark.parametrize("name", ALL)
def test_every_documented_field_has_its_documented_shape(name: str, n: int) -> None:
    spec, state = _parallel_state(name, n)
    for field in spec.fields():
        value = getattr(state, field.name)
        if field.shape == "float":
            assert isinstance(value, float) and value > 0, field.name
            continue
        assert isinstance(value, np.ndarray), field.name
        assert value.shape == _expected_shape(field.shape, state, n), field.name
        assert np.all(np.isfinite(value)), field.name
    assert state.is_healthy.dtype == bool
    assert np.issubdtype(state.step.dtype, np.integer) and np.all(state.step == 5)
    assert len(state.joint_names) == state.joint_positions.shape[1] > 0
    if "feet_contact" in state.field_names():
        assert state.feet_contact.dtype == bool


def test_the_envs_of_a_batch_keep_their_own_rows() -> None:
    _, state = _parallel_state("Hopper-v5", 8, steps=3)
    # eight different seeds give eight different torso positions
    assert len(np.unique(state.x_position)) == 8


def test_an_unknown_field_fails_with_the_list_of_fields() -> None:
    _, state = _parallel_state("HalfCheetah-v5", 1, steps=1)
    with pytest.raises(AttributeError) as info:
        state.torso_velocity_x  # noqa: B018
    message = str(info.value)
    assert "no field 'torso_velocity_x'" in message
    assert "x_velocity" in message and "joint_positions" in message


@pytest.mark.parametrize("name", LOCOMOTION)
def test_x_velocity_integrated_over_an_episode_is_the_displacement(name: str) -> None:
    state, reset_info, infos = _episode(name, seed=3)
    t = len(infos)
    assert t > 10
    assert np.array_equal(state.step, np.arange(1, t + 1))
    start_x = reset_info["x_position"]  # the torso after reset, as the env reports it
    assert np.sum(state.x_velocity) * state.dt == pytest.approx(state.x_position[-1] - start_x, abs=1e-9)
    env_x = np.array([i["x_position"] for i in infos])
    if name in PLANAR + ROOT_FROM_QPOS:
        np.testing.assert_allclose(state.x_position, env_x, atol=1e-9)
    else:
        # MuJoCo's body positions lag the joint positions by one physics substep
        np.testing.assert_allclose(state.x_position, env_x, atol=0.01)
    if name not in PLANAR:
        assert np.sum(state.y_velocity) * state.dt == pytest.approx(
            state.y_position[-1] - reset_info["y_position"], abs=1e-9
        )
    assert abs(np.sum(state.x_velocity) * state.dt) > 1e-3  # the robot did move


@pytest.mark.parametrize("name", PLANAR)
def test_planar_robots_have_zeros_off_their_plane(name: str) -> None:
    state, _, _ = _episode(name, seed=5, max_steps=100)
    for field in ("y_position", "y_velocity", "roll", "yaw"):
        assert np.all(getattr(state, field) == 0.0), field
    assert np.all(state.angular_velocity[:, [0, 2]] == 0.0)
    # the body angle moves, and it is what upright reads
    assert np.ptp(state.pitch) > 0.01
    np.testing.assert_allclose(state.upright, np.cos(state.pitch))


def test_a_3d_robot_reports_its_orientation() -> None:
    state, _, _ = _episode("Ant-v5", seed=2, max_steps=100)
    for angle in (state.roll, state.pitch, state.yaw):
        assert np.ptp(angle) > 0.0 and np.all(np.abs(angle) <= np.pi)
    assert np.all(np.abs(state.upright) <= 1.0 + 1e-12)
    assert np.any(state.angular_velocity != 0.0, axis=0).all()


def test_humanoid_centre_of_mass_velocity_is_the_envs_own() -> None:
    state, _, infos = _episode("Humanoid-v5", seed=1, max_steps=60)
    np.testing.assert_allclose(state.com_x_velocity, [i["x_velocity"] for i in infos], atol=1e-9)
    np.testing.assert_allclose(state.com_y_velocity, [i["y_velocity"] for i in infos], atol=1e-9)


def test_fields_are_computed_when_first_read_and_unknown_ones_list_the_known() -> None:
    from envs.make import sample_rows

    layout, rows = sample_rows(envs.get_spec("Ant-v5"), count=8)
    state = build_state(layout, rows)
    assert "angular_velocity" not in vars(state)
    assert state.angular_velocity.shape == (8, 3)
    assert "angular_velocity" in vars(state) and "roll" not in vars(state)
    assert state.has("contact_forces") and not state.has("feet_names_typo")
    with pytest.raises(AttributeError, match=r"no field 'torso_height'.*x_velocity"):
        _ = state.torso_height


def test_the_state_is_read_only_and_holds_its_own_copy_of_the_rows() -> None:
    from envs.make import sample_rows

    layout, rows = sample_rows(envs.get_spec("Ant-v5"), count=4)
    buffer = rows.copy()
    state = build_state(layout, buffer)
    with pytest.raises(AttributeError, match="the state is read-only"):
        state.step = np.full(4, 1000)
    with pytest.raises(AttributeError, match="read-only"):
        del state.dt
    for field in ("x_velocity", "body_positions", "contact_forces", "step", "joint_positions"):
        value = getattr(state, field)
        assert not value.flags.writeable, field
        assert not np.shares_memory(value, buffer), f"{field} reaches the buffer"
        with pytest.raises(ValueError, match="read-only"):
            value[...] = 0.0
    base = state.body_positions.base  # what `.base` (refused by the static check) would reach
    assert base is not None and not base.flags.writeable and not np.shares_memory(base, buffer)
    buffer[:, layout.step_at] = 999  # the engine's buffer moves on; the view a program holds does not
    assert state.step.tolist() == rows[:, layout.step_at].astype(int).tolist()


def test_select_is_the_view_of_some_envs_alone() -> None:
    from envs.make import sample_rows
    from envs.state import State, select

    layout, rows = sample_rows(envs.get_spec("Hopper-v5"), count=6)
    state = build_state(layout, rows)
    one = select(state, [4])
    assert one.x_velocity.shape == (1,) and one.x_velocity[0] == state.x_velocity[4] and one.dt == state.dt
    ready = State({"x_velocity": np.arange(6.0), "dt": 0.1, "joint_names": ("a",)})
    assert select(ready, [2, 3]).x_velocity.tolist() == [2.0, 3.0] and select(ready, [2]).joint_names == ("a",)


@pytest.mark.parametrize("name", ["Reacher-v5", "Pusher-v5", "Ant-v5"])
def test_every_body_is_named_and_placed_where_mujoco_has_it(name: str) -> None:
    spec = envs.get_spec(name)
    env = make_env(spec, max_episode_steps=30)
    env.reset(seed=4)
    env.action_space.seed(4)
    start = env.unwrapped.data.xpos[1:].copy()
    rows = []
    for _ in range(30):
        env.step(env.action_space.sample())
        rows.append(env.row.copy())
    data, layout = env.unwrapped.data, env.layout
    state = build_state(layout, np.stack(rows))
    model_bodies = [env.unwrapped.model.body(b).name or f"body_{b}" for b in range(1, env.unwrapped.model.nbody)]
    assert list(state.body_names) == model_bodies == [b for b, _ in spec.bodies]
    for b, body in enumerate(state.body_names):
        np.testing.assert_array_equal(state.body_positions[-1, state.body_names.index(body)], data.xpos[b + 1])
    # velocities are means over each step: they add up to the displacement of every body
    moved = np.sum(state.body_velocities, axis=0) * state.dt
    np.testing.assert_allclose(moved, state.body_positions[-1] - start, atol=1e-9)
    assert np.abs(moved).max() > 1e-3
    env.close()


def test_reacher_targets_are_drawn_at_random_within_reach_at_every_reset() -> None:
    spec = envs.get_spec("Reacher-v5")
    env = make_env(spec)
    targets = []
    for seed in range(12):
        env.reset(seed=seed)
        env.step(np.zeros(2, dtype=np.float32))
        state = build_state(env.layout, env.row[None])
        target = state.body_positions[0, state.body_names.index("target"), :2]
        targets.append(target)
        np.testing.assert_allclose(state.passive_joint_positions[0], env.unwrapped.data.qpos[2:])
    env.close()
    targets = np.array(targets)
    assert len(np.unique(targets.round(6), axis=0)) == 12
    assert np.all(np.linalg.norm(targets, axis=1) < 0.2 + 1e-9)


def test_pusher_objects_are_drawn_at_random_and_the_goal_stays() -> None:
    env = make_env(envs.get_spec("Pusher-v5"))
    objects, goals = [], []
    for seed in range(8):
        env.reset(seed=seed)
        env.step(np.zeros(7, dtype=np.float32))
        state = build_state(env.layout, env.row[None])
        objects.append(state.body_positions[0, state.body_names.index("object"), :2])
        goals.append(state.body_positions[0, state.body_names.index("goal"), :2])
    env.close()
    assert len(np.unique(np.round(objects, 6), axis=0)) == 8
    assert np.ptp(np.array(goals), axis=0).max() == 0.0
    assert np.all(np.linalg.norm(np.array(objects) - np.array(goals), axis=1) > 0.17)


def test_the_double_pendulum_shows_its_tip_and_pole_angles() -> None:
    env = make_env(envs.get_spec("InvertedDoublePendulum-v5"), max_episode_steps=20)
    env.reset(seed=1)
    env.step(np.array([0.5], dtype=np.float32))
    data = env.unwrapped.data
    state = build_state(env.layout, env.row[None])
    assert state.site_names == ("tip",) and state.passive_joint_names == ("hinge", "hinge2")
    np.testing.assert_array_equal(state.site_positions[0, 0], data.site_xpos[0])
    np.testing.assert_array_equal(state.passive_joint_positions[0], data.qpos[1:])
    np.testing.assert_array_equal(state.passive_joint_velocities[0], data.qvel[1:])
    assert state.is_healthy[0] == (data.site_xpos[0, 2] > 1)
    env.close()


def test_the_swimmer_heading_is_its_root_hinge() -> None:
    state, _, _ = _episode("Swimmer-v5", seed=3, max_steps=80)
    spec = envs.get_spec("Swimmer-v5")
    env = make_env(spec, max_episode_steps=80)
    env.reset(seed=3)
    env.action_space.seed(3)
    hinge = []
    for _ in range(len(state.step)):
        env.step(env.action_space.sample())
        hinge.append(env.unwrapped.data.qpos[2])
    env.close()
    wrapped = np.angle(np.exp(1j * np.array(hinge)))
    np.testing.assert_allclose(state.yaw, wrapped, atol=1e-9)
    assert np.all(state.upright == pytest.approx(1.0)) and np.all(state.z_position == state.z_position[0])
