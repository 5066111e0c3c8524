"""Reading a fitness program: what it asks for, its per-step form, and bounds against hostile programs."""

from __future__ import annotations

import pytest

from app.search.rules.fitness_terms import MAX_SOURCE_CHARS, read_fitness, signal_reward
from envs import get_spec
from envs.fitness import METRICS
from workers.engine.evaluate import sandbox_check
from workers.program.policy import check_source
from workers.sandbox.runner import Limits

FIELDS = frozenset(f.name for f in get_spec("Hopper-v5").fields())


def program(body: str) -> str:
    return f"import numpy as np\n\n\ndef compute_fitness(traj):\n    return float({body})\n"


@pytest.mark.parametrize(
    ("body", "field", "how", "sign", "signal"),
    [
        ("np.max(traj.z_position)", "z_position", "max", 1.0, "(state.z_position)"),
        ("max(traj.z_position)", "z_position", "max", 1.0, "(state.z_position)"),
        ("-np.sum(traj.x_velocity) * traj.dt", "x_velocity", "sum", -1.0, "-(state.x_velocity)"),
        ("-np.mean(np.abs(traj.x_velocity - 1.5))", "x_velocity", "mean", -1.0, "-(np.abs(state.x_velocity - 1.5))"),
        ("np.sum(traj.upright > 0.9) * traj.dt", "upright", "count", 1.0, "(np.where(state.upright > 0.9, 1.0, 0.0))"),
        ("np.mean(traj.y_velocity)", "y_velocity", "mean", 1.0, "(state.y_velocity)"),
    ],
)
def test_the_reader_names_the_field_the_reduction_and_the_direction(body, field, how, sign, signal) -> None:
    intent = read_fitness(program(body), FIELDS)
    (use,) = intent.reads(field)
    assert (use.how, use.sign) == (how, sign)
    assert intent.signal == signal
    assert not intent.reads("dt")  # a time step is not a behaviour


def test_the_flips_metric_reads_as_pitch_turns_and_final_values_as_final() -> None:
    intent = read_fitness(METRICS["flips"].source, FIELDS)
    (use,) = intent.reads("angular_velocity", column=1)
    assert use.how == "sum" and intent.signal == "(state.angular_velocity[:, 1])"
    final = read_fitness(program("traj.x_position[-1]"), FIELDS)
    assert final.reads("x_position")[0].how == "final" and final.direction("x_position") == 1.0


@pytest.mark.slow
def test_the_per_step_form_is_a_valid_reward_program_that_runs_in_the_sandbox() -> None:
    signal = read_fitness(program("np.sum(traj.z_position > 1.3) - np.mean(np.abs(traj.x_velocity))"), FIELDS).signal
    assert signal is not None
    source = signal_reward(signal)
    check_source(source, "reward")
    res = sandbox_check("Hopper-v5", source, "reward", Limits(wall_seconds=60, memory_mb=4096, max_file_mb=64))
    assert res.outcome == "ok", res.error


@pytest.mark.parametrize(
    "source",
    [
        "x" * (MAX_SOURCE_CHARS + 1),
        "def compute_fitness(traj):\n    return " + "(" * 5000 + "traj.z_position[-1]" + ")" * 5000 + "\n",
        "def compute_fitness(traj):\n    return " + "-" * 50_000 + "1\n",
        "def compute_fitness(traj:\n",
        "def other(traj):\n    return 1.0\n",
        "def compute_fitness():\n    return 1.0\n",
        "import numpy as np\ndef compute_fitness(traj):\n"
        + "".join(f"    a{i} = np.max(traj.z_position + {i})\n" for i in range(2000))
        + "    return 0.0\n",
    ],
    ids=["too-long", "deep-parens", "many-negations", "syntax-error", "no-entry", "no-argument", "many-nodes"],
)
def test_hostile_or_broken_programs_give_a_bounded_answer_not_an_error(source: str) -> None:
    intent = read_fitness(source, FIELDS)
    assert intent.signal is None or len(intent.signal) <= 400
    assert len(intent.uses) <= 5000


def test_helper_variables_and_calls_outside_the_allow_list_give_no_per_step_form() -> None:
    source = "import numpy as np\ndef compute_fitness(traj):\n    z = traj.z_position\n    return float(np.max(z))\n"
    assert read_fitness(source, FIELDS).signal is None
    odd = program("np.max(np.cumsum(traj.z_position))")
    assert read_fitness(odd, FIELDS).signal is None


def test_steps_picked_by_index_have_no_per_step_form_but_the_last_step_and_columns_do() -> None:
    assert read_fitness(program("np.mean(traj.z_position[10:])"), FIELDS).signal is None
    assert read_fitness(program("np.max(traj.z_position - traj.z_position[0])"), FIELDS).signal is None
    assert read_fitness(program("np.sum(numpy.abs(traj.angular_velocity[:, 1]))"), FIELDS).signal == (
        "(np.abs(state.angular_velocity[:, 1]))"
    )
