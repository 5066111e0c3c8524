"""Loading programs and checking what they return: errors point at the program's own lines, never the engine's."""

from __future__ import annotations

import numpy as np
import pytest

from envs.state import State
from workers.sandbox.policy import ProgramRejected
from workers.sandbox.program import REWARD_BOUND, ProgramError, call_fitness, call_reward, load_program


def batch(n: int, **fields: object) -> State:
    base = {"x_velocity": np.linspace(-1.0, 1.0, n), "z_position": np.full(n, 1.2), "dt": 0.05}
    return State({**base, **fields})


def reward_program(body: str, helpers: str = "") -> str:
    return f"import numpy as np\n\n{helpers}def compute_reward(state, action):\n{body}"


def test_a_loaded_program_returns_checked_float_arrays() -> None:
    program = load_program(
        reward_program(
            "    fwd = state.x_velocity\n    healthy = state.x_velocity > -2\n"
            "    return fwd + healthy, {'forward': fwd, 'healthy': healthy}\n"
        )
    )
    reward, components, warnings = call_reward(program, batch(4), np.zeros((4, 2)))
    assert reward.dtype == np.float64 and reward.shape == (4,)
    assert components["healthy"].dtype == np.float64 and components["healthy"].tolist() == [1.0] * 4
    assert warnings == []


def test_an_error_in_a_helper_shows_the_programs_lines_only() -> None:
    helpers = "def pick(values, i):\n    return values[i]\n\n\n"
    program = load_program(reward_program("    r = pick(state.x_velocity, 10)\n    return r, {'r': r}\n", helpers))
    with pytest.raises(ProgramError) as info:
        call_reward(program, batch(2), np.zeros((2, 2)))
    message = str(info.value)
    assert info.value.line == 4  # the innermost line: the helper's indexing
    assert "IndexError" in message and "Check array shapes" in message
    assert "line 8, in compute_reward: r = pick(state.x_velocity, 10)" in message
    assert "line 4, in pick: return values[i]" in message
    assert "File " not in message and "workers" not in message and "program.py" not in message


def test_a_python_if_on_a_batch_passes_alone_and_fails_in_a_batch_with_advice() -> None:
    program = load_program(
        reward_program(
            "    if state.x_velocity > 0:\n        bonus = 1.0\n    else:\n        bonus = 0.0\n"
            "    r = state.x_velocity + bonus\n    return r, {'r': r}\n"
        )
    )
    reward, _, _ = call_reward(program, batch(1), np.zeros((1, 2)))
    assert reward.shape == (1,)
    with pytest.raises(ProgramError, match=r"use np\.where\(cond, a, b\)") as info:
        call_reward(program, batch(8), np.zeros((8, 2)))
    assert info.value.line == 4


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        ("state.x_velocity", "expected a tuple (reward, components)"),
        ("(state.x_velocity, [state.x_velocity])", "expected a tuple (reward, components)"),
        ("(np.stack([state.x_velocity, state.x_velocity], axis=-1), {})", "has shape (3, 2), expected (3,)"),
        ("(state.x_velocity[:2], {})", "has shape (2,), expected (3,)"),
        ("(state.x_velocity / 0.0, {})", "not finite (NaN or inf) for 3 of 3 envs"),
        ("(np.log(state.x_velocity), {})", "not finite (NaN or inf) for 2 of 3 envs"),
        ("(state.x_velocity * 1e9, {})", f"exceeds ±{REWARD_BOUND:g}"),
        ("(None, {})", "the reward is not numeric (None)"),
        ("('fast', {})", "the reward is not numeric"),
        ("((-1.5) ** 0.5 * state.x_velocity, {})", "the reward is complex"),
        ("(state.x_velocity, {'forward': None})", "component 'forward' is not numeric (None)"),
        ("(state.x_velocity, {1: state.x_velocity})", "component names must be non-empty strings"),
    ],
)
def test_what_the_program_returns_is_checked_against_the_contract(returned: str, expected: str) -> None:
    program = load_program(reward_program(f"    return {returned}\n"))
    with np.errstate(all="ignore"), pytest.raises(ProgramError) as info:
        call_reward(program, batch(3), np.zeros((3, 2)))
    assert expected in str(info.value)


def test_a_scalar_is_broadcast_with_a_warning() -> None:
    program = load_program(reward_program("    return 1.0, {'alive': 1.0}\n"))
    reward, components, warnings = call_reward(program, batch(3), np.zeros((3, 2)))
    assert reward.tolist() == [1.0, 1.0, 1.0] and components["alive"].shape == (3,)
    assert any("the reward is a scalar" in w for w in warnings)
    assert any("component 'alive' is a scalar" in w for w in warnings)


def test_a_module_level_failure_is_a_rejection_at_load_with_its_line() -> None:
    with pytest.raises(ProgramRejected) as info:
        load_program("import numpy as np\n\nSCALE = 1 / 0\n\ndef compute_reward(state, action):\n    return 1.0, {}\n")
    assert info.value.stage == "load"
    assert info.value.violations[0].line == 3
    assert "ZeroDivisionError" in str(info.value)


def test_a_fitness_program_returns_one_float() -> None:
    program = load_program(
        "import numpy as np\n\ndef compute_fitness(traj):\n    return np.sum(traj.x_velocity) * traj.dt\n", "fitness"
    )
    value = call_fitness(program, batch(5))
    assert isinstance(value, float) and value == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        ("traj.x_velocity", "expected one number per episode"),
        ("None", "the fitness is not numeric (None)"),
        ("float('nan')", "non-finite"),
        ("traj.missing", "the state has no field 'missing'"),
    ],
)
def test_a_fitness_program_that_does_not_return_one_number_fails(returned: str, expected: str) -> None:
    program = load_program(f"def compute_fitness(traj):\n    return {returned}\n", "fitness")
    with pytest.raises(ProgramError) as info:
        call_fitness(program, batch(5))
    assert expected in str(info.value)
