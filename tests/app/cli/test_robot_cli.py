"""`rewardsmith envs add`, `envs show`, `envs remove` as a person uses them, and a robot used by name by `check` and
`evaluate`: on a data directory of the test's own, the robot stored in its database in between (the commands run
in this process; the evaluation, slow, as a process of its own)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

import app.search.records.robots as robots
import envs
from app.cli import cli as app_cli
from app.config import get_settings
from tests.envs.test_mjcf import MESH, SECRET, binary_stl, robot
from tests.support.robots import ROBOTS

FORWARD = "import numpy as np\n\n\ndef compute_reward(state, action):\n    return state.x_velocity, {'forward': state.x_velocity}\n"


def rewardsmith(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The command as a person runs it: a process of its own, configured by the environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("REWARDSMITH_", "OPENAI_"))}
    clean |= {"REWARDSMITH_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Result]]:
    """The commands in this process (faster than a process each), on a data directory of this test's own."""
    for name in [k for k in os.environ if k.startswith(("REWARDSMITH_", "OPENAI_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("REWARDSMITH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(app_cli, list(args), env={"COLUMNS": "200"})
    get_settings.cache_clear()
    for name in envs.user_names():
        robots.forget(name)


def test_a_robot_is_added_shown_used_by_name_and_removed(cli, tmp_path: Path) -> None:
    added = cli(
        "envs", "add", "cli_quad", str(ROBOTS / "quadruped.xml"), "--episode-steps", "200", "--termination", "height"
    )
    assert added.exit_code == 0, added.output
    assert "added cli_quad" in added.output

    shown = cli("envs", "show", "cli_quad")
    assert shown.exit_code == 0, shown.output
    out = shown.output
    assert out.startswith("# cli_quad") and "- front_left_foot: a foot" in out
    assert "## Fitness metrics for this env" in out and "- forward_distance:" in out and "- reach:" not in out
    for row in ("frame_skip", "episode_steps", "reset_noise", "termination", "min_height", "max_height", "min_upright"):
        assert f"│ {row} " in out, row  # every setting, its default resolved (min_height: half the start height)
    assert "│ min_height                 │ 0.15 " in out and "│ max_height                 │ none " in out
    assert "owner none (the command line's)" in out and "quadruped.xml (3,587 bytes)" in out

    listed = cli("envs")
    assert "cli_quad" in listed.output and "owner: command line" in listed.output

    (tmp_path / "forward.py").write_text(FORWARD)
    checked = cli("check", "--env", "cli_quad", "forward.py")
    assert checked.exit_code == 0, checked.output
    assert (
        "forward.py: accepted (reward program, dry run on" in checked.output and "states of cli_quad" in checked.output
    )

    removed = cli("envs", "remove", "cli_quad")
    assert removed.exit_code == 0 and "removed cli_quad" in removed.output
    gone = cli("envs", "show", "cli_quad")
    assert gone.exit_code == 2 and "unknown env 'cli_quad'" in gone.output


def test_a_refused_robot_is_a_clear_error_and_nothing_is_stored(cli, tmp_path: Path) -> None:
    model = tmp_path / "robot.xml"
    model.write_bytes(robot(head='<include file="/etc/passwd"/>'))
    refused = cli("envs", "add", "hostile", str(model))
    assert refused.exit_code == 2
    assert "refers to the file '/etc/passwd', which is not a relative path" in " ".join(refused.output.split())
    assert SECRET not in refused.output
    assert "unknown env 'hostile'" in cli("envs", "show", "hostile").output
    bad = cli("envs", "add", "Ant-v5", str(ROBOTS / "quadruped.xml"))
    assert bad.exit_code == 2 and "not the name of a built-in env" in " ".join(bad.output.split())


def test_assets_are_read_from_a_directory_under_the_names_the_mjcf_uses(cli, tmp_path: Path) -> None:
    (tmp_path / "model" / "meshes").mkdir(parents=True)
    model = tmp_path / "model" / "robot.xml"
    model.write_bytes(
        robot(
            head='<compiler meshdir="meshes"/>' + MESH.format("part.stl"),
            world='<body name="prop" pos="1 0 0.1"><geom type="mesh" mesh="m"/></body>',
        )
    )
    (tmp_path / "model" / "meshes" / "part.stl").write_bytes(binary_stl(4))
    (tmp_path / "model" / "README.txt").write_text("not part of the robot")
    added = cli("envs", "add", "meshy", str(model), "--assets", str(tmp_path / "model"))
    assert added.exit_code == 0, added.output
    assert "meshes/part.stl (" in cli("envs", "show", "meshy").output


@pytest.mark.slow
def test_an_evaluation_on_a_robot_from_the_command_line(tmp_path: Path) -> None:
    """(A whole search on a robot in this process: tests/benchmarks/test_task_suite.py; through a worker:
    tests/app/jobs/test_robot_e2e.py.)"""
    added = rewardsmith(tmp_path, "envs", "add", "run_quad", str(ROBOTS / "quadruped.xml"), "--episode-steps", "100")
    assert added.returncode == 0, added.stdout + added.stderr
    (tmp_path / "forward.py").write_text(FORWARD)
    trained = rewardsmith(
        tmp_path,
        "evaluate",
        "--env",
        "run_quad",
        "--reward",
        "forward.py",
        "--timesteps",
        "1024",
        "--eval-episodes",
        "1",
        "--out",
        str(tmp_path / "evaluated"),
    )
    assert trained.returncode == 0, trained.stdout + trained.stderr
    result = json.loads((tmp_path / "evaluated" / "result.json").read_text())
    assert result["env"] == "run_quad" and result["status"] == "ok" and result["timesteps"] == 1024
