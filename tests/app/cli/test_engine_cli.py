"""`rewardsmith envs`, `check` and `evaluate` as a person uses them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import envs
from app.cli import cli
from app.config import get_settings

runner = CliRunner()

SOUND = "import numpy as np\n\n\ndef compute_reward(state, action):\n    return state.x_velocity, {'forward': state.x_velocity}\n"


def rewardsmith(*args: str, columns: int = 200):
    return runner.invoke(cli, list(args), env={"COLUMNS": str(columns)})


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def fenced_python(path: Path) -> str:
    return "\n\n".join(re.findall(r"```python\n(.*?)```", path.read_text(), re.S))


def test_envs_lists_the_five_envs_and_the_fitness_metrics() -> None:
    result = rewardsmith("envs")
    assert result.exit_code == 0, result.output
    for name in envs.names():
        assert name in result.output
    assert "forward_distance" in result.output and "flips" in result.output


def test_envs_show_prints_the_state_description_and_the_reference_reward() -> None:
    result = rewardsmith("envs", "show", "Hopper-v5")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("# Hopper-v5")
    for line in (
        "- x_velocity",
        "- is_healthy",
        "- feet_contact",
        "joint_names (J=3): thigh_joint, leg_joint, foot_joint",
    ):
        assert line in result.output
    assert envs.get_spec("Hopper-v5").reference_reward.strip() in result.output


@pytest.mark.parametrize("args", [("envs", "show", "Hoper-v5"), ("check", "--env", "Hoper-v5", "reward.py")])
def test_an_unknown_env_is_a_clear_error(args: tuple[str, ...]) -> None:
    result = rewardsmith(*args)
    assert result.exit_code == 2
    assert "unknown env 'Hoper-v5'. Did you mean 'Hopper-v5'?" in result.output
    assert "Traceback" not in result.output


def test_check_on_a_missing_file_says_so(tmp_path: Path) -> None:
    result = rewardsmith("check", "--env", "HalfCheetah-v5", str(tmp_path / "nope.py"))
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_check_needs_exactly_one_program(tmp_path: Path) -> None:
    path = write(tmp_path, "r.py", SOUND)
    result = rewardsmith("check", "--env", "HalfCheetah-v5", str(path), "--fitness", str(path))
    assert result.exit_code == 2 and "either a reward program FILE or --fitness FILE" in result.output


@pytest.mark.slow
def test_check_accepts_a_sound_program_with_a_summary(tmp_path: Path, llm_fixtures: Path) -> None:
    path = write(tmp_path, "reward.py", fenced_python(llm_fixtures / "cheetah_forward.md"))
    result = rewardsmith("check", "--env", "HalfCheetah-v5", str(path))
    assert result.exit_code == 0, result.output
    assert f"{path}: accepted (reward program, dry run on 256 states of HalfCheetah-v5)" in result.output
    for row in ("forward", "ctrl_cost", "flip_penalty", "reward"):
        assert re.search(rf"│ {row}\s+│ -?\d", result.output), row
    assert "warning: component 'flip_penalty' is constant" in result.output
    assert "isolation: isolated (own network namespace)" in result.output


@pytest.mark.slow
def test_check_prints_program_text_as_text_not_markup(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "reward.py",
        (
            "import numpy as np\n\n\ndef compute_reward(state, action):\n"
            "    return state.x_velocity, {'[/x]': state.x_velocity, '[bold]flat': 0.0 * state.x_velocity}\n"
        ),
    )
    result = rewardsmith("check", "--env", "HalfCheetah-v5", str(path))
    assert result.exit_code == 1, result.output  # component names must be identifiers; the refusal quotes the name
    assert "component name '[/x]' is not a short ASCII identifier" in result.output, "printed as text, not markup"


@pytest.mark.slow
def test_check_accepts_a_fitness_program(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "fit.py",
        "import numpy as np\n\n\ndef compute_fitness(traj):\n    return float(np.max(traj.z_position))\n",
    )
    result = rewardsmith("check", "--env", "Walker2d-v5", "--fitness", str(path))
    assert result.exit_code == 0, result.output
    assert "accepted (fitness program" in result.output and "fitness on a sampled episode: 1." in result.output


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fixture", "outcome", "reason"),
    [
        ("syntax_error", "rejected", "Python cannot parse it: expected ':'"),
        ("forbidden_import", "rejected", "importing `os` is not allowed"),
        ("wrong_field", "rejected", "the state has no field 'torso_velocity_x'"),
        ("python_branching", "rejected", "np.where"),
    ],
)
def test_check_rejects_a_bad_program_with_the_reason(
    fixture: str, outcome: str, reason: str, tmp_path: Path, llm_fixtures: Path
) -> None:
    path = write(tmp_path, "reward.py", fenced_python(llm_fixtures / f"{fixture}.md"))
    result = rewardsmith("check", "--env", "HalfCheetah-v5", str(path))
    assert result.exit_code == 1, result.output
    assert f"{path}: {outcome}" in result.output
    assert reason in result.output


@pytest.mark.slow
def test_check_rejects_a_reward_that_sums_over_the_batch(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "reward.py",
        SOUND.replace("return state.x_velocity,", "return np.sum(state.x_velocity) + 0 * state.x_velocity,"),
    )
    result = rewardsmith("check", "--env", "HalfCheetah-v5", str(path))
    assert result.exit_code == 1
    assert "depends on the other envs in the batch" in result.output


@pytest.mark.slow
def test_check_rejects_a_fitness_program_that_returns_an_array(tmp_path: Path) -> None:
    path = write(tmp_path, "fit.py", "def compute_fitness(traj):\n    return traj.x_velocity\n")
    result = rewardsmith("check", "--env", "HalfCheetah-v5", "--fitness", str(path))
    assert result.exit_code == 1
    assert "rejected" in result.output and "expected one number per episode" in result.output


@pytest.mark.parametrize(
    ("timesteps", "message"),
    [
        ("0", "--timesteps 0 is too small"),
        ("-5", "--timesteps -5 is too small"),
        (str(get_settings().max_timesteps_per_training + 1), "is above this installation's cap"),
    ],
)
def test_evaluate_refuses_an_absurd_budget_and_writes_nothing(timesteps: str, message: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    reward = write(tmp_path, "reward.py", SOUND)
    result = rewardsmith(
        "evaluate", "--env", "HalfCheetah-v5", "--reward", str(reward), "--out", str(out), "--timesteps", timesteps
    )
    assert result.exit_code == 2
    assert message in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fitness", "speed"], "unknown fitness metric 'speed'"),
        (["--fitness", "flips", "--fitness-file", "fit.py"], "either --fitness NAME or --fitness-file FILE"),
        (["--fitness-file", "bad_fit.py"], "The fitness program was rejected"),
        (["--eval-episodes", "0"], "--eval-episodes 0: Input should be greater than or equal to 1"),
        (["--timesteps", "1000", "--env", "Hoper-v5"], "Did you mean 'Hopper-v5'?"),
    ],
    ids=["unknown metric", "both fitness options", "bad fitness file", "no eval episodes", "unknown env"],
)
def test_evaluate_refuses_bad_options_before_training(extra: list[str], message: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    write(tmp_path, "fit.py", "def compute_fitness(traj):\n    return 1.0\n")
    write(tmp_path, "bad_fit.py", "import os\n\ndef compute_fitness(traj):\n    return 1.0\n")
    reward = write(tmp_path, "reward.py", SOUND)
    args = ["evaluate", "--env", "HalfCheetah-v5", "--reward", str(reward), "--out", str(out), "--timesteps", "2000"]
    args += [a if not a.endswith(".py") else str(tmp_path / a) for a in extra]
    result = rewardsmith(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not out.exists()


def test_evaluate_with_a_rejected_reward_records_why_and_exits_non_zero(tmp_path: Path) -> None:
    out = tmp_path / "out"
    reward = write(tmp_path, "reward.py", "import os\n" + SOUND)
    result = rewardsmith(
        "evaluate",
        "--env",
        "HalfCheetah-v5",
        "--reward",
        str(reward),
        "--out",
        str(out),
        "--timesteps",
        "2000",
        columns=1000,
    )
    assert result.exit_code == 1
    assert "HalfCheetah-v5: rejected" in result.output
    # the whole reason, rule included, as the program's author needs it
    assert "importing `os` is not allowed; only `numpy` and `math` may be imported [rule: imports]." in result.output
    doc = json.loads((out / "result.json").read_text())
    assert doc["status"] == "rejected" and "importing `os` is not allowed" in doc["error"]
    assert not (out / "policy.zip").exists()


@pytest.mark.slow
def test_evaluate_with_video_writes_the_video_of_the_whole_episode(tmp_path: Path) -> None:
    """--video is an explicit argument: the options' default (no video) must not undo it."""
    out = tmp_path / "out"
    reward = write(tmp_path, "reward.py", envs.get_spec("Hopper-v5").reference_reward)
    args = ["evaluate", "--env", "Hopper-v5", "--reward", str(reward), "--out", str(out), "--timesteps", "1000"]
    result = rewardsmith(*args, "--eval-episodes", "1", "--video")
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "result.json").read_text())
    assert doc["artifacts"]["video"] == "video.mp4" and (out / "video.mp4").stat().st_size > 1_000
    assert doc["video"]["steps"] >= 1 and doc["video"]["seconds"] == pytest.approx(doc["video"]["steps"] * 0.008)
    assert f"video: {out / 'video.mp4'} ({doc['video']['seconds']:.1f} s" in result.output


@pytest.mark.slow
def test_evaluate_trains_and_writes_the_result(tmp_path: Path) -> None:
    out = tmp_path / "out"
    reward = write(tmp_path, "reward.py", envs.get_spec("Hopper-v5").reference_reward)
    result = rewardsmith(
        "evaluate",
        "--env",
        "Hopper-v5",
        "--reward",
        str(reward),
        "--out",
        str(out),
        "--timesteps",
        "1000",
        "--eval-episodes",
        "1",
        "--fitness",
        "survival_steps",
    )
    assert result.exit_code == 0, result.output
    assert "Hopper-v5: ok" in result.output and "fitness (survival_steps)" in result.output
    doc = json.loads((out / "result.json").read_text())
    assert doc["status"] == "ok" and doc["fitness_name"] == "survival_steps"
    assert len(doc["fitness"]["per_episode"]) == 1 and doc["fitness"]["mean"] >= 1
    assert (out / "policy.zip").exists() and (out / "vecnormalize.pkl").exists()
    assert "(stable_baselines3.PPO.load)" in result.output and f"tensorboard --logdir {out}" in result.output
    assert list((out / "tb").glob("events.out.tfevents.*")), "tensorboard --logdir works on the output directory"


@pytest.mark.slow
def test_check_shows_terminal_controls_from_paths_and_program_errors_escaped(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "re\x1b[2Jward.py",
        "import numpy as np\n\n\ndef compute_reward(state, action):\n"
        "    assert np.all(state.step < 0), 'bad\\x1b]0;pwned\\x07 [rule: none]'\n"
        "    return state.x_velocity, {}\n",
    )
    result = rewardsmith("check", "--env", "HalfCheetah-v5", str(path))
    assert result.exit_code == 1, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "re\\x1b[2Jward.py: rejected" in result.output
    assert "AssertionError: bad\\x1b]0;pwned\\x07 [rule: none]" in result.output


def test_an_error_is_printed_as_text_with_its_rule(tmp_path: Path) -> None:
    out = tmp_path / "out"
    reward = write(tmp_path, "reward.py", SOUND)
    fitness = write(tmp_path, "fit.py", "import os\n\ndef compute_fitness(traj):\n    return 1.0\n")
    args = ["evaluate", "--env", "HalfCheetah-v5", "--reward", str(reward), "--out", str(out)]
    result = rewardsmith(*args, "--fitness-file", str(fitness), columns=1000)
    assert result.exit_code == 2
    assert "importing `os` is not allowed; only `numpy` and `math` may be imported [rule: imports]" in result.output
