"""The env registry: Gymnasium's eleven MuJoCo envs, clear errors for unknown names, the description the designer
reads."""

from __future__ import annotations

import re

import pytest

import envs
from envs.describe import describe
from envs.fitness import UnknownFitnessError, get_metric

ALL = [
    "HalfCheetah-v5",
    "Hopper-v5",
    "Walker2d-v5",
    "Ant-v5",
    "Humanoid-v5",
    "Reacher-v5",
    "Pusher-v5",
    "Swimmer-v5",
    "InvertedPendulum-v5",
    "InvertedDoublePendulum-v5",
    "HumanoidStandup-v5",
]

# The state view table of DESIGN.md ("every locomotion env has at least these fields").
DESIGN_FIELDS = {
    "x_position": "(N,)",
    "y_position": "(N,)",
    "z_position": "(N,)",
    "x_velocity": "(N,)",
    "y_velocity": "(N,)",
    "z_velocity": "(N,)",
    "roll": "(N,)",
    "pitch": "(N,)",
    "yaw": "(N,)",
    "upright": "(N,)",
    "angular_velocity": "(N, 3)",
    "joint_positions": "(N, J)",
    "joint_velocities": "(N, J)",
    "is_healthy": "(N,)",
    "dt": "float",
    "step": "(N,)",
}


def test_the_registry_holds_every_gymnasium_mujoco_v5_env() -> None:
    assert envs.names() == ALL
    for name in ALL:
        spec = envs.get_spec(name)
        assert spec.name == spec.gym_id == name
        assert spec.planar == (name in {"HalfCheetah-v5", "Hopper-v5", "Walker2d-v5"})


def test_an_unknown_env_names_the_closest_match_and_lists_all() -> None:
    with pytest.raises(envs.UnknownEnvError) as info:
        envs.get_spec("Hoper-v5")
    message = str(info.value)
    assert "unknown env 'Hoper-v5'" in message
    assert "Did you mean 'Hopper-v5'?" in message
    assert all(name in message for name in ALL)
    assert isinstance(info.value, ValueError)


def test_a_name_far_from_every_env_gets_no_guess() -> None:
    with pytest.raises(envs.UnknownEnvError, match="Known envs: HalfCheetah-v5") as info:
        envs.get_spec("CartPole-v1")
    assert "Did you mean" not in str(info.value)


@pytest.mark.parametrize("name", ALL)
def test_every_env_declares_the_design_fields_with_their_shapes(name: str) -> None:
    declared = {f.name: f.shape for f in envs.get_spec(name).fields()}
    for field, shape in DESIGN_FIELDS.items():
        assert declared.get(field) == shape, f"{name}: {field}"


@pytest.mark.parametrize("name", ALL)
def test_the_description_names_every_field_joint_and_the_termination(name: str) -> None:
    spec = envs.get_spec(name)
    text = describe(spec)
    assert text.startswith(f"# {name}")
    for field in spec.fields():
        assert re.search(rf"^- {field.name}\s+{re.escape(field.shape)}\s", text, re.M), field.name
    joints = re.search(r"^joint_names \(J=(\d+)\): (.+)$", text, re.M)
    assert joints is not None
    assert int(joints.group(1)) == len(joints.group(2).split(", ")) > 0
    assert spec.termination in text
    assert ("Planar robot" in text) == spec.planar


def test_an_unknown_fitness_metric_lists_the_built_in_ones() -> None:
    with pytest.raises(UnknownFitnessError) as info:
        get_metric("speed")
    assert "forward_distance" in str(info.value) and "--fitness-file" in str(info.value)


@pytest.mark.parametrize("name", ALL)
def test_every_body_of_the_model_is_named_with_a_meaning_in_the_description(name: str) -> None:
    import mujoco

    from envs.model import compile_model

    spec = envs.get_spec(name)
    model = compile_model(spec, contact_forces=False).model
    names = [model.body(b).name or f"body_{b}" for b in range(1, model.nbody)]
    assert [b for b, _ in spec.bodies] == names
    assert all(meaning for _, meaning in spec.bodies)
    assert spec.torso in names and isinstance(model, mujoco.MjModel)
    text = describe(spec)
    for body, meaning in spec.bodies:
        assert f"- {body}: {meaning}" in text
    for site, meaning in spec.sites + spec.passive_joints:
        assert f"- {site}: {meaning}" in text
    assert 'state.body_names.index("name")' in text
