"""`rewardsmith envs add`, `envs show`, `envs remove` as a person uses them, and a robot used by name by `check` and
`run`: subprocesses on a data directory of their own, the robot stored in its database in between."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.envs.test_mjcf import SECRET, robot
from tests.support.robots import ROBOTS

FORWARD = "import numpy as np\n\n\ndef compute_reward(state, action):\n    return state.x_velocity, {'forward': state.x_velocity}\n"


def rewardsmith(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("REWARDSMITH_", "OPENAI_"))}
    clean |= {"REWARDSMITH_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=300
    )


def test_a_robot_is_added_shown_used_by_name_and_removed(tmp_path: Path) -> None:
    added = rewardsmith(
        tmp_path,
        "envs",
        "add",
        "cli_quad",
        str(ROBOTS / "quadruped.xml"),
        "--episode-steps",
        "200",
        "--termination",
        "height",
    )
    assert added.returncode == 0, added.stdout + added.stderr
    assert "added cli_quad" in added.stdout

    shown = rewardsmith(tmp_path, "envs", "show", "cli_quad")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert out.startswith("# cli_quad") and "- front_left_foot: a foot" in out
    assert "## Fitness metrics for this env" in out and "- forward_distance:" in out and "- reach:" not in out
    for row in ("frame_skip", "episode_steps", "reset_noise", "termination", "min_height", "max_height", "min_upright"):
        assert f"│ {row} " in out, row  # every setting, its default resolved (min_height: half the start height)
    assert "│ min_height                 │ 0.15 " in out and "│ max_height                 │ none " in out
    assert "owner none (the command line's)" in out and "quadruped.xml (3,587 bytes)" in out

    listed = rewardsmith(tmp_path, "envs")
    assert "cli_quad" in listed.stdout and "owner: command line" in listed.stdout

    (tmp_path / "forward.py").write_text(FORWARD)
    checked = rewardsmith(tmp_path, "check", "--env", "cli_quad", "forward.py")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert (
        "forward.py: accepted (reward program, dry run on" in checked.stdout and "states of cli_quad" in checked.stdout
    )

    removed = rewardsmith(tmp_path, "envs", "remove", "cli_quad")
    assert removed.returncode == 0 and "removed cli_quad" in removed.stdout
    gone = rewardsmith(tmp_path, "envs", "show", "cli_quad")
    assert gone.returncode == 2 and "unknown env 'cli_quad'" in gone.stderr


def test_a_refused_robot_is_a_clear_error_and_nothing_is_stored(tmp_path: Path) -> None:
    model = tmp_path / "robot.xml"
    model.write_bytes(robot(head='<include file="/etc/passwd"/>'))
    refused = rewardsmith(tmp_path, "envs", "add", "hostile", str(model))
    assert refused.returncode == 2
    assert "refers to the file '/etc/passwd', which is not a relative path" in refused.stderr
    assert SECRET not in refused.stdout + refused.stderr
    assert "unknown env 'hostile'" in rewardsmith(tmp_path, "envs", "show", "hostile").stderr
    bad = rewardsmith(tmp_path, "envs", "add", "Ant-v5", str(ROBOTS / "quadruped.xml"))
    assert bad.returncode == 2 and "not the name of a built-in env" in bad.stderr


def test_assets_are_read_from_a_directory_under_the_names_the_mjcf_uses(tmp_path: Path) -> None:
    from tests.envs.test_mjcf import MESH, binary_stl

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
    added = rewardsmith(tmp_path, "envs", "add", "meshy", str(model), "--assets", str(tmp_path / "model"))
    assert added.returncode == 0, added.stdout + added.stderr
    assert "meshes/part.stl (" in rewardsmith(tmp_path, "envs", "show", "meshy").stdout


@pytest.mark.slow
def test_a_run_and_an_evaluation_on_a_robot_from_the_command_line(tmp_path: Path) -> None:
    assert rewardsmith(tmp_path, "envs", "add", "run_quad", str(ROBOTS / "quadruped.xml")).returncode == 0
    out = tmp_path / "out"
    proc = rewardsmith(
        tmp_path,
        "run",
        "--env",
        "run_quad",
        "--task",
        "walk forward",
        "--designer",
        "offline",
        "--iterations",
        "1",
        "--samples",
        "1",
        "--timesteps",
        "2048",
        "--final-seeds",
        "0",
        "--no-baselines",
        "--eval-episodes",
        "1",
        "--episode-steps",
        "100",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((out / "run.json").read_text())
    assert doc["status"] == "succeeded" and doc["task"]["env"] == "run_quad"
    assert doc["best_candidate"]["code"].startswith("# Written by the offline designer (no LLM)")
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
